package bench

import (
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/wfpxdp/wfpxdp/nbl"
	"github.com/wfpxdp/wfpxdp/ring/pin"
	"github.com/wfpxdp/wfpxdp/ring/ringbench"
)

// MicroOptions configure the "ring" and "pool" scenarios.
type MicroOptions struct {
	Duration time.Duration // per run, about
	Batch    int           // descriptors per burst; 32
	CPUs     []int         // ring: producer, consumer; pool: the first
}

// CompareRing moves descriptors between two pinned goroutines through an
// SPSC ring in bursts, and (baseline) through a channel of 32-descriptor
// arrays, alternated; Mpps is millions of descriptors a second.
func CompareRing(o MicroOptions, runs int, baseline bool, progress io.Writer) (*Report, error) {
	o = o.defaults()
	prod, cons := o.CPUs[0], o.CPUs[len(o.CPUs)-1]
	rep := &Report{Envelope: NewEnvelope("bench", "ring"), Mode: "pinned pair", Link: "ring", FrameSize: 0}
	rep.CoreRTTNS = int64(CoreRTT(prod, cons, 20000))
	// size the runs: ~Duration of the ring at its last measured speed
	n := 1 << 22
	err := alternate(rep, runs, baseline, "chan-batch32", func(subject bool, i, of int) (*Result, error) {
		opt := ringbench.Options{Kind: ringbench.SPSC, Burst: o.Batch, Producer: prod, Consumer: cons}
		if !subject {
			opt = ringbench.Options{Kind: ringbench.ChanBatch, Producer: prod, Consumer: cons}
		}
		r, err := micro(func() (int, error) {
			d, err := ringbench.Handoff(opt, n)
			if err == nil && subject && i == 0 { // first run: size the others to the duration
				n = max(1<<20, int(float64(n)*o.Duration.Seconds()/d.Seconds()))
			}
			return n, err
		})
		if err == nil {
			r.Plan = fmt.Sprintf("producer cpu%d, consumer cpu%d, %d-descriptor link", prod, cons, 1024)
			microProgress(progress, i, of, opt.Kind, r)
		}
		return r, err
	}, nil, "")
	return rep, err
}

// ComparePool takes and returns descriptors in bursts through an nbl
// per-core cache (in front of the shared pool) and, as the baseline,
// through a sync.Pool, on one pinned goroutine, alternated.
func ComparePool(o MicroOptions, runs int, baseline bool, progress io.Writer) (*Report, error) {
	o = o.defaults()
	cpu := o.CPUs[len(o.CPUs)-1]
	rep := &Report{Envelope: NewEnvelope("bench", "pool"), Mode: "one core", Link: "nbl.Cache"}
	arena, err := nbl.NewArena(nbl.Config{Frames: 4096, FrameSize: 2048})
	if err != nil {
		return nil, err
	}
	cache := arena.Frames().NewCache(512)
	sp := sync.Pool{New: func() any { return new(nbl.NBL) }} // after a GC it refills
	spDescs := make([]nbl.NBL, 4096)                         // the baseline pools descriptors too
	for i := range spDescs {
		sp.Put(&spDescs[i])
	}
	batch := make([]*nbl.NBL, o.Batch)
	err = alternate(rep, runs, baseline, "sync.Pool", func(subject bool, i, of int) (*Result, error) {
		r, err := micro(func() (int, error) {
			unpin, err := pin.Thread(cpu)
			if err != nil {
				return 0, err
			}
			defer unpin()
			n := 0
			for start := time.Now(); time.Since(start) < o.Duration; {
				for k := 0; k < 4096; k++ {
					if subject {
						cache.Get(batch)
						cache.Put(batch)
					} else {
						for j := range batch {
							batch[j] = sp.Get().(*nbl.NBL)
						}
						for j := range batch {
							sp.Put(batch[j])
						}
					}
				}
				n += 4096 * len(batch)
			}
			return n, nil
		})
		if err == nil {
			r.Plan = fmt.Sprintf("cpu%d, bursts of %d", cpu, o.Batch)
			microProgress(progress, i, of, map[bool]string{true: "nbl.Cache", false: "sync.Pool"}[subject], r)
		}
		return r, err
	}, nil, "")
	cache.Flush()
	return rep, err
}

func (o MicroOptions) defaults() MicroOptions {
	if o.Duration <= 0 {
		o.Duration = 2 * time.Second
	}
	if o.Batch <= 0 {
		o.Batch = 32
	}
	if len(o.CPUs) == 0 {
		o.CPUs = []int{0, 1}
	}
	return o
}

// micro runs f (which returns the descriptors it moved) and fills a Result
// with its rate, allocations and GC cycles.
func micro(f func() (int, error)) (*Result, error) {
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	start := time.Now()
	n, err := f()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&ms1)
	if err != nil {
		return nil, err
	}
	return &Result{Packets: uint64(n), Offered: uint64(n), Elapsed: elapsed,
		Mpps: float64(n) / elapsed.Seconds() / 1e6, OfferedMpps: float64(n) / elapsed.Seconds() / 1e6,
		GCCycles: ms1.NumGC - ms0.NumGC, Mallocs: ms1.Mallocs - ms0.Mallocs}, nil
}

func microProgress(w io.Writer, i, of int, name string, r *Result) {
	if w != nil {
		fmt.Fprintf(w, "run %d/%d %-13s %8.2f M descriptors/s  %6.2f ns/descriptor\n", i+1, of, name, r.Mpps, 1e3/r.Mpps)
	}
}
