package ring

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wfpxdp/wfpxdp/ring/pin"
)

// desc stands in for a packet descriptor: the benchmarks move pointers to
// preallocated ones, as the dataplane's stages move *nbl.NBL.
type desc struct{ seq uint64 }

const (
	producerCPU = 0
	consumerCPU = 1
	// benchSlots is the capacity, in elements, of every ring and channel
	// here: the size of the dataplane's stage rings.
	benchSlots = 1024
)

// pinnedPair runs produce on the benchmark goroutine pinned to producerCPU
// and consume on another goroutine pinned to consumerCPU, both moving b.N
// descriptors, and reports ns/desc. That is how the dataplane's stages run:
// unpinned, Go's scheduler may put both goroutines on one core, which
// flatters channels.
func pinnedPair(b *testing.B, produce func(descs []*desc, n int), consume func(n int)) {
	descs := make([]*desc, 256)
	for i := range descs {
		descs[i] = &desc{seq: uint64(i)}
	}
	b.ReportAllocs()
	var wg sync.WaitGroup
	ready := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		unpin, err := pin.Thread(consumerCPU)
		ready <- err
		if err != nil {
			return
		}
		defer unpin()
		consume(b.N)
	}()
	if err := <-ready; err != nil {
		b.Skip("cannot pin consumer:", err)
	}
	unpin, err := pin.Thread(producerCPU)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	produce(descs, b.N)
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	unpin()
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N), "ns/desc")
}

type burstRing interface {
	EnqueueBurst([]*desc) int
	DequeueBurst([]*desc) int
}

func ringProduce(r burstRing, burst int) func([]*desc, int) {
	return func(descs []*desc, total int) {
		for sent := 0; sent < total; {
			n := min(burst, total-sent)
			sent += r.EnqueueBurst(descs[:n])
		}
	}
}

func ringConsume(r burstRing, burst int) func(int) {
	return func(total int) {
		buf := make([]*desc, burst)
		for got := 0; got < total; {
			got += r.DequeueBurst(buf)
		}
	}
}

// BenchmarkHandoff moves descriptors between two pinned goroutines through
// each ring type and through the two channel baselines. Read ns/desc.
func BenchmarkHandoff(b *testing.B) {
	for _, burst := range []int{1, 8, 32, 256} {
		b.Run(fmt.Sprintf("spsc-burst%d", burst), func(b *testing.B) {
			r, _ := NewSPSC[*desc](benchSlots)
			pinnedPair(b, ringProduce(r, burst), ringConsume(r, burst))
		})
	}
	b.Run("mpsc-burst32", func(b *testing.B) {
		r, _ := NewMPSC[*desc](benchSlots)
		pinnedPair(b, ringProduce(r, 32), ringConsume(r, 32))
	})
	chanPtr := func(b *testing.B) {
		ch := make(chan *desc, benchSlots)
		pinnedPair(b, func(descs []*desc, total int) {
			for i := 0; i < total; i++ {
				ch <- descs[i&255]
			}
		}, func(total int) {
			for i := 0; i < total; i++ {
				<-ch
			}
		})
	}
	b.Run("chan-ptr", chanPtr)
	chanBatch := func(b *testing.B, slots int) {
		ch := make(chan [32]*desc, slots/32)
		pinnedPair(b, func(descs []*desc, total int) {
			var batch [32]*desc
			copy(batch[:], descs)
			for sent := 0; sent < total; sent += 32 {
				ch <- batch
			}
		}, func(total int) {
			for got := 0; got < total; got += 32 {
				batch := <-ch
				_ = batch
			}
		})
	}
	b.Run("chan-batch32", func(b *testing.B) { chanBatch(b, benchSlots) })
	// A channel with 16x the capacity rarely has to park and wake the other
	// side, which is most of a channel hop's cost between pinned cores. Run
	// it and a ring of the same capacity so the README can show both.
	b.Run("chan-batch32-cap16k", func(b *testing.B) { chanBatch(b, 16*benchSlots) })
	b.Run("spsc-burst32-cap16k", func(b *testing.B) {
		r, _ := NewSPSC[*desc](16 * benchSlots)
		pinnedPair(b, ringProduce(r, 32), ringConsume(r, 32))
	})
}
