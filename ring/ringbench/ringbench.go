// Package ringbench moves descriptors between two goroutines pinned to two
// CPUs through a ring or a channel and times it: the measurement behind
// ring's Go benchmarks and the harness's "ring" scenario.
package ringbench

import (
	"fmt"
	"sync"
	"time"

	"github.com/wfpxdp/wfpxdp/ring"
	"github.com/wfpxdp/wfpxdp/ring/pin"
)

// Desc stands in for a packet descriptor: the links move pointers to
// preallocated ones, as the dataplane's stages move *nbl.NBL.
type Desc struct{ Seq uint64 }

// Kinds of link.
const (
	SPSC       = "spsc"         // ring.SPSC, bursts of Burst
	MPSC       = "mpsc"         // ring.MPSC, bursts of Burst
	ChanPtr    = "chan-ptr"     // chan *Desc, one at a time
	ChanBatch  = "chan-batch32" // chan [32]*Desc
	maxBurst   = 256
	defaultCap = 1024
)

// Options say what to move and where.
type Options struct {
	Kind     string
	Burst    int // SPSC/MPSC: descriptors per call; 32
	Slots    int // link capacity in descriptors; 1024 (the stage-ring size)
	Producer int // CPUs
	Consumer int
}

// Handoff moves n descriptors from a producer pinned to o.Producer to a
// consumer pinned to o.Consumer and returns the time it took.
func Handoff(o Options, n int) (time.Duration, error) {
	if o.Burst == 0 {
		o.Burst = 32
	}
	if o.Slots == 0 {
		o.Slots = defaultCap
	}
	if o.Burst > maxBurst {
		return 0, fmt.Errorf("ringbench: burst %d > %d", o.Burst, maxBurst)
	}
	descs := make([]*Desc, maxBurst)
	for i := range descs {
		descs[i] = &Desc{Seq: uint64(i)}
	}
	var produce func()
	var consume func()
	switch o.Kind {
	case SPSC, MPSC:
		var r interface {
			EnqueueBurst([]*Desc) int
			DequeueBurst([]*Desc) int
		}
		var err error
		if o.Kind == SPSC {
			r, err = ring.NewSPSC[*Desc](o.Slots)
		} else {
			r, err = ring.NewMPSC[*Desc](o.Slots)
		}
		if err != nil {
			return 0, err
		}
		produce = func() {
			for sent := 0; sent < n; {
				sent += r.EnqueueBurst(descs[:min(o.Burst, n-sent)])
			}
		}
		consume = func() {
			buf := make([]*Desc, o.Burst)
			for got := 0; got < n; {
				got += r.DequeueBurst(buf)
			}
		}
	case ChanPtr:
		ch := make(chan *Desc, o.Slots)
		produce = func() {
			for i := 0; i < n; i++ {
				ch <- descs[i&(maxBurst-1)]
			}
		}
		consume = func() {
			for i := 0; i < n; i++ {
				<-ch
			}
		}
	case ChanBatch:
		ch := make(chan [32]*Desc, max(1, o.Slots/32))
		produce = func() {
			var batch [32]*Desc
			copy(batch[:], descs)
			for sent := 0; sent < n; sent += 32 {
				ch <- batch
			}
		}
		consume = func() {
			for got := 0; got < n; got += 32 {
				<-ch
			}
		}
	default:
		return 0, fmt.Errorf("ringbench: unknown kind %q", o.Kind)
	}
	var wg sync.WaitGroup
	ready := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		unpin, err := pin.Thread(o.Consumer)
		ready <- err
		if err != nil {
			return
		}
		defer unpin()
		consume()
	}()
	if err := <-ready; err != nil {
		wg.Wait()
		return 0, fmt.Errorf("ringbench: pin consumer: %w", err)
	}
	unpin, err := pin.Thread(o.Producer)
	if err != nil {
		return 0, fmt.Errorf("ringbench: pin producer: %w", err)
	}
	defer unpin()
	start := time.Now()
	produce()
	wg.Wait()
	return time.Since(start), nil
}
