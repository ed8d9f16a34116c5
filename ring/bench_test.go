package ring_test

import (
	"fmt"
	"testing"

	"github.com/wfpxdp/wfpxdp/ring/ringbench"
)

// handoff runs one ringbench configuration as a Go benchmark: producer on
// CPU 0, consumer on CPU 1, b.N descriptors; read ns/desc. Unpinned, Go's
// scheduler may put both goroutines on one core, which flatters channels.
func handoff(b *testing.B, o ringbench.Options) {
	o.Producer, o.Consumer = 0, 1
	b.ReportAllocs()
	d, err := ringbench.Handoff(o, b.N)
	if err != nil {
		b.Skip(err)
	}
	b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "ns/desc")
}

// BenchmarkHandoff moves descriptors between two pinned goroutines through
// each ring type and through the two channel baselines, every link holding
// 1024 descriptors (the stage-ring size) but for the cap16k pair.
func BenchmarkHandoff(b *testing.B) {
	for _, burst := range []int{1, 8, 32, 256} {
		b.Run(fmt.Sprintf("spsc-burst%d", burst), func(b *testing.B) {
			handoff(b, ringbench.Options{Kind: ringbench.SPSC, Burst: burst})
		})
	}
	b.Run("mpsc-burst32", func(b *testing.B) { handoff(b, ringbench.Options{Kind: ringbench.MPSC}) })
	b.Run("chan-ptr", func(b *testing.B) { handoff(b, ringbench.Options{Kind: ringbench.ChanPtr}) })
	b.Run("chan-batch32", func(b *testing.B) { handoff(b, ringbench.Options{Kind: ringbench.ChanBatch}) })
	// A channel with 16x the capacity rarely has to park and wake the other
	// side, which is most of a channel hop's cost between pinned cores. Run
	// it and a ring of the same capacity so the README can show both.
	b.Run("chan-batch32-cap16k", func(b *testing.B) {
		handoff(b, ringbench.Options{Kind: ringbench.ChanBatch, Slots: 16 * 1024})
	})
	b.Run("spsc-burst32-cap16k", func(b *testing.B) {
		handoff(b, ringbench.Options{Kind: ringbench.SPSC, Slots: 16 * 1024})
	})
}
