package ring

import (
	"errors"
	"sync"
	"testing"
	"unsafe"
)

// queue is the common surface of both ring types, used to run one set of
// tests over each.
type queue interface {
	EnqueueBurst([]uint64) int
	EnqueueBulk([]uint64) int
	DequeueBurst([]uint64) int
	DequeueBulk([]uint64) int
	Len() int
	Cap() int
	Free() int
}

func newQueues(t testing.TB, size int) map[string]queue {
	s, err := NewSPSC[uint64](size)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMPSC[uint64](size)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]queue{"spsc": s, "mpsc": m}
}

func TestNewRejectsBadSizes(t *testing.T) {
	for _, size := range []int{-1, 0, 1, 3, 6, 1000, 1<<31 + 1} {
		if _, err := NewSPSC[int](size); !errors.Is(err, ErrSize) {
			t.Errorf("NewSPSC(%d) err = %v, want ErrSize", size, err)
		}
		if _, err := NewMPSC[int](size); !errors.Is(err, ErrSize) {
			t.Errorf("NewMPSC(%d) err = %v, want ErrSize", size, err)
		}
	}
	for _, size := range []int{2, 4, 1024} {
		if r, err := NewSPSC[int](size); err != nil || r.Cap() != size {
			t.Errorf("NewSPSC(%d) = cap %v, %v", size, r.Cap(), err)
		}
	}
}

func TestBulkAndBurstSemantics(t *testing.T) {
	for name, q := range newQueues(t, 8) {
		t.Run(name, func(t *testing.T) {
			src := []uint64{1, 2, 3, 4, 5, 6}
			if n := q.EnqueueBulk(src); n != 6 {
				t.Fatalf("EnqueueBulk 6 into empty 8 = %d", n)
			}
			if n := q.EnqueueBulk(src[:3]); n != 0 {
				t.Fatalf("EnqueueBulk 3 with 2 free = %d, want 0", n)
			}
			if n := q.EnqueueBurst([]uint64{7, 8, 9}); n != 2 {
				t.Fatalf("EnqueueBurst 3 with 2 free = %d, want 2", n)
			}
			if q.Len() != 8 || q.Free() != 0 {
				t.Fatalf("Len %d Free %d, want 8 0", q.Len(), q.Free())
			}
			dst := make([]uint64, 10)
			if n := q.DequeueBulk(dst[:9]); n != 0 {
				t.Fatalf("DequeueBulk 9 of 8 = %d, want 0", n)
			}
			if n := q.DequeueBulk(dst[:3]); n != 3 || dst[0] != 1 || dst[2] != 3 {
				t.Fatalf("DequeueBulk 3 = %d %v", n, dst[:3])
			}
			// wrap around the end of the array
			if n := q.EnqueueBurst([]uint64{10, 11, 12}); n != 3 {
				t.Fatalf("EnqueueBurst after wrap = %d", n)
			}
			n := q.DequeueBurst(dst)
			want := []uint64{4, 5, 6, 7, 8, 10, 11, 12}
			if n != len(want) {
				t.Fatalf("DequeueBurst = %d, want %d", n, len(want))
			}
			for i, v := range want {
				if dst[i] != v {
					t.Fatalf("dst[%d] = %d, want %d (%v)", i, dst[i], v, dst[:n])
				}
			}
			if q.DequeueBurst(dst) != 0 || q.EnqueueBurst(nil) != 0 || q.DequeueBulk(nil) != 0 {
				t.Fatal("empty operations moved elements")
			}
		})
	}
}

// TestIndexWrap runs the free-running uint32 indices across 2^32.
func TestIndexWrap(t *testing.T) {
	s, _ := NewSPSC[uint64](4)
	s.head.Store(^uint32(0) - 1)
	s.tail.Store(^uint32(0) - 1)
	s.headCache, s.tailCache = s.head.Load(), s.tail.Load()
	m, _ := NewMPSC[uint64](4)
	start := ^uint32(0) - 1
	m.head.Store(start)
	m.tail.Store(start)
	m.ready = start
	for i := range m.slots {
		// each slot holds an unpublished value for the positions around start
		m.slots[i].seq.Store(start + uint32((i-int(start&3))&3))
	}
	for name, q := range map[string]queue{"spsc": s, "mpsc": m} {
		var next, want uint64
		buf := make([]uint64, 3)
		for round := 0; round < 10; round++ {
			for i := range buf {
				buf[i] = next
				next++
			}
			if q.EnqueueBulk(buf) != 3 {
				t.Fatalf("%s: round %d enqueue failed", name, round)
			}
			if q.DequeueBulk(buf) != 3 {
				t.Fatalf("%s: round %d dequeue failed", name, round)
			}
			for _, v := range buf {
				if v != want {
					t.Fatalf("%s: got %d want %d", name, v, want)
				}
				want++
			}
		}
	}
}

// TestLayout proves that each side's hot fields sit on their own cache line.
func TestLayout(t *testing.T) {
	const line = 64
	var s SPSC[*int]
	sameLine := func(a, b uintptr) bool { return a/line == b/line }
	if sameLine(unsafe.Offsetof(s.tail), unsafe.Offsetof(s.head)) {
		t.Error("SPSC tail and head share a cache line")
	}
	if !sameLine(unsafe.Offsetof(s.tail), unsafe.Offsetof(s.headCache)) {
		t.Error("SPSC producer fields split across lines")
	}
	if !sameLine(unsafe.Offsetof(s.head), unsafe.Offsetof(s.tailCache)) {
		t.Error("SPSC consumer fields split across lines")
	}
	if d := unsafe.Offsetof(s.head) - unsafe.Offsetof(s.tail); d < line {
		t.Errorf("SPSC head-tail distance %d < %d", d, line)
	}
	if d := unsafe.Offsetof(s.mask) - unsafe.Offsetof(s.head); d < line {
		t.Errorf("SPSC read-only fields %d bytes from head", d)
	}
	if unsafe.Offsetof(s.tail) < line {
		t.Error("SPSC tail not separated from whatever precedes the ring")
	}
	var m MPSC[*int]
	if d := unsafe.Offsetof(m.head) - unsafe.Offsetof(m.tail); d < line {
		t.Errorf("MPSC head-tail distance %d < %d", d, line)
	}
	if d := unsafe.Offsetof(m.mask) - unsafe.Offsetof(m.head); d < line {
		t.Errorf("MPSC read-only fields %d bytes from head", d)
	}
}

func TestZeroAllocs(t *testing.T) {
	for name, q := range newQueues(t, 256) {
		src := make([]uint64, 32)
		dst := make([]uint64, 32)
		ops := map[string]func(){
			"burst": func() { q.EnqueueBurst(src); q.DequeueBurst(dst) },
			"bulk":  func() { q.EnqueueBulk(src); q.DequeueBulk(dst) },
		}
		for op, f := range ops {
			if a := testing.AllocsPerRun(1000, f); a != 0 {
				t.Errorf("%s %s: %v allocs per run, want 0", name, op, a)
			}
		}
	}
	// Pointer elements too: the dataplane's rings carry *NBL.
	p, _ := NewSPSC[*int](64)
	x := new(int)
	src := []*int{x, x, x, x}
	dst := make([]*int, 4)
	if a := testing.AllocsPerRun(1000, func() { p.EnqueueBurst(src); p.DequeueBurst(dst) }); a != 0 {
		t.Errorf("SPSC[*int]: %v allocs", a)
	}
}

// stressElems is how many elements each stress test moves in total.
func stressElems(t *testing.T) int {
	if testing.Short() {
		return 1 << 20
	}
	return 10_000_000
}

func TestSPSCStress(t *testing.T) {
	total := stressElems(t)
	r, _ := NewSPSC[uint64](1024)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]uint64, 37)
		next := 0
		for next < total {
			n := min(len(buf), total-next)
			for i := 0; i < n; i++ {
				buf[i] = uint64(next + i)
			}
			var k int
			if next%2 == 0 {
				k = r.EnqueueBurst(buf[:n])
			} else {
				k = r.EnqueueBulk(buf[:n])
			}
			next += k
		}
	}()
	buf := make([]uint64, 29)
	want := uint64(0)
	for int(want) < total {
		var n int
		if want%3 == 0 && total-int(want) >= len(buf) {
			n = r.DequeueBulk(buf)
		} else {
			n = r.DequeueBurst(buf)
		}
		for _, v := range buf[:n] {
			if v != want {
				t.Fatalf("got %d, want %d", v, want)
			}
			want++
		}
	}
	wg.Wait()
	if r.Len() != 0 {
		t.Fatalf("ring not empty at end: %d", r.Len())
	}
}

// TestMPSCStress: several producers, per-producer order kept, nothing lost or
// duplicated. Producers yield at random points, which under -race and
// GOMAXPROCS>=2 exercises preemption between reserve and publish.
func TestMPSCStress(t *testing.T) {
	const producers = 4
	total := stressElems(t)
	per := total / producers
	r, _ := NewMPSC[uint64](512)
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			buf := make([]uint64, 16)
			next := 0
			for next < per {
				n := min(1+next%len(buf), per-next)
				for i := 0; i < n; i++ {
					buf[i] = uint64(p)<<32 | uint64(next+i)
				}
				if p%2 == 0 {
					next += r.EnqueueBurst(buf[:n])
				} else {
					next += r.EnqueueBulk(buf[:n])
				}
			}
		}(p)
	}
	var seen [producers]uint64
	buf := make([]uint64, 32)
	for got := 0; got < per*producers; {
		n := r.DequeueBurst(buf)
		for _, v := range buf[:n] {
			p, seq := v>>32, v&0xffffffff
			if p >= producers || seq != seen[p] {
				t.Fatalf("producer %d: got seq %d, want %d", p, seq, seen[p])
			}
			seen[p]++
		}
		got += n
	}
	wg.Wait()
	if n := r.DequeueBurst(buf); n != 0 || r.Len() != 0 {
		t.Fatalf("extra elements after all were received: %d", n)
	}
}

// TestMPSCPreemptedProducer reserves a run and does not publish it: the
// consumer must stop there, other producers must keep going, and when the
// run is published everything arrives exactly once.
func TestMPSCPreemptedProducer(t *testing.T) {
	r, _ := NewMPSC[uint64](16)
	r.EnqueueBulk([]uint64{1, 2})
	pos, n := r.reserve(3, true) // "preempted" producer holds 3 slots
	if n != 3 {
		t.Fatal("reserve failed")
	}
	if r.EnqueueBulk([]uint64{6, 7}) != 2 {
		t.Fatal("second producer blocked by the reserved run")
	}
	dst := make([]uint64, 16)
	if k := r.DequeueBurst(dst); k != 2 || dst[0] != 1 || dst[1] != 2 {
		t.Fatalf("dequeue before publish = %d %v, want [1 2]", k, dst[:k])
	}
	if k := r.DequeueBurst(dst); k != 0 {
		t.Fatalf("dequeue past an unpublished run = %d", k)
	}
	for i := uint32(0); i < 3; i++ {
		r.slots[(pos+i)&r.mask].val = uint64(3 + i)
	}
	r.slots[pos&r.mask].runLen = 3
	r.slots[pos&r.mask].seq.Store(pos + 1)
	k := r.DequeueBurst(dst)
	want := []uint64{3, 4, 5, 6, 7}
	if k != len(want) {
		t.Fatalf("after publish got %d %v", k, dst[:k])
	}
	for i, v := range want {
		if dst[i] != v {
			t.Fatalf("after publish got %v, want %v", dst[:k], want)
		}
	}
}
