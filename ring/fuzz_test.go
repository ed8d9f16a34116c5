package ring

import "testing"

// FuzzRing drives both ring types with a random sequence of operations and
// checks each against a plain slice queue. Each input byte is one operation:
// the low two bits pick EnqueueBurst, EnqueueBulk, DequeueBurst or
// DequeueBulk, the rest is the batch size.
func FuzzRing(f *testing.F) {
	f.Add([]byte{0x00, 0x10, 0x22, 0x13, 0xff, 0x7e})
	f.Add([]byte{0x41, 0x41, 0x41, 0x43, 0x43, 0x42})
	f.Fuzz(func(t *testing.T, ops []byte) {
		for name, q := range newQueues(t, 16) {
			var model []uint64
			var next uint64
			buf := make([]uint64, 64)
			for i, op := range ops {
				n := int(op >> 2)
				switch op & 3 {
				case 0, 1:
					for j := 0; j < n; j++ {
						buf[j] = next + uint64(j)
					}
					var got, want int
					if op&3 == 0 {
						got = q.EnqueueBurst(buf[:n])
						want = min(n, q.Cap()-len(model))
					} else {
						got = q.EnqueueBulk(buf[:n])
						if n <= q.Cap()-len(model) {
							want = n
						}
					}
					if got != want {
						t.Fatalf("%s op %d: enqueue(%d) = %d, want %d", name, i, n, got, want)
					}
					model = append(model, buf[:got]...)
					next += uint64(got)
				case 2, 3:
					var got, want int
					if op&3 == 2 {
						got = q.DequeueBurst(buf[:n])
						want = min(n, len(model))
					} else {
						got = q.DequeueBulk(buf[:n])
						if n <= len(model) {
							want = n
						}
					}
					if got != want {
						t.Fatalf("%s op %d: dequeue(%d) = %d, want %d", name, i, n, got, want)
					}
					for j := 0; j < got; j++ {
						if buf[j] != model[j] {
							t.Fatalf("%s op %d: element %d = %d, want %d", name, i, j, buf[j], model[j])
						}
					}
					model = model[got:]
				}
				if q.Len() != len(model) || q.Free() != q.Cap()-len(model) {
					t.Fatalf("%s op %d: Len %d Free %d, model %d", name, i, q.Len(), q.Free(), len(model))
				}
			}
		}
	})
}
