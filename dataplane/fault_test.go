package dataplane_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/dataplane/memport"
	"github.com/wfpxdp/wfpxdp/nbl"
)

// staller is an inspector whose backend can stall: while stalled it holds
// every list it absorbed instead of reinjecting it; once resumed it
// reinjects them all, including those held, from the worker's idle calls.
func staller(stalled *atomic.Bool, held *atomic.Int64) *dataplane.Callout {
	c := dataplane.NewInspector("stall", nil)
	c.Worker = func(w *dataplane.Worker, absorbed []*nbl.NBL) {
		if stalled.Load() {
			for _, l := range absorbed {
				w.Hold(l)
			}
			held.Add(int64(len(absorbed)))
			return
		}
		if h := w.TakeHeld(); len(h) > 0 {
			held.Add(-int64(len(h)))
			w.Reinject(h)
		}
		w.Reinject(absorbed)
	}
	return c
}

// A stalled callout worker holds every frame it absorbed: the pool runs
// dry, the generator starves (counted by the port), nothing panics, nothing
// is dropped inside the switch. When the worker resumes — with no new
// traffic able to arrive, the pool being empty — its idle calls let it
// release what it held, and traffic flows again; every frame is accounted
// for at the end.
func TestStalledWorker(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			var stalled atomic.Bool
			var held atomic.Int64
			stalled.Store(true)
			r := newRig(t, rigOpts{cfg: dataplane.Config{Mode: m.mode, Link: m.link, Frames: 512},
				callouts: []*dataplane.Callout{staller(&stalled, &held)},
				filters: []dataplane.Filter{{Name: "s", Layer: dataplane.LayerIngress, Action: dataplane.FilterCallout,
					Callout: "stall"}}})
			if err := r.sw.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			// (in pipelined mode the worker's lcore may not have run yet
			// when the generator already starves: wait for both)
			for (r.gen.Starved() < 1000 || held.Load() == 0) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			h := held.Load()
			if r.gen.Starved() < 1000 || h == 0 || r.received(2) != 0 {
				t.Fatalf("stalled: starved %d, held %d, delivered %d", r.gen.Starved(), h, r.received(2))
			}
			if a := r.sw.Accounting(); a.FramesFree > 64*4 { // only what per-stage caches keep
				t.Fatalf("stalled worker holds %d frames, but %d are free: %+v", h, a.FramesFree, a)
			}
			stalled.Store(false)
			for r.received(2) < uint64(h)+10000 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if got := r.received(2); got < uint64(h)+10000 || held.Load() != 0 {
				t.Fatalf("after resuming: delivered %d (held %d), still held %d", got, h, held.Load())
			}
			r.stop()
			if st := r.sw.Stats(); st.TotalDrops != 0 {
				t.Fatalf("drops %v", st.Drops)
			}
		})
	}
}

// Every ring small and full at once: stage rings of 64, a sink whose TX
// queue holds 8, two generators, absorb + reinject on every packet, a
// flood to two ports for a third of the traffic. Back-pressure reaches the
// ports; what the switch drops is counted by reason; sent == delivered +
// dropped + discarded for every packet, and nothing leaks.
func TestEveryRingFull(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			const n = 20000
			r := newRig(t, rigOpts{
				cfg:       dataplane.Config{Mode: m.mode, Link: m.link, Frames: 256, Reserve: 64, RingSize: 64, Batch: 32},
				limit:     n,
				ports:     2,
				sinkTXQ:   8,
				templates: []memport.Template{{Dst: macB, Src: macA}, {Dst: macC, Src: macA}, {Dst: dataplane.Broadcast, Src: macA}},
				callouts:  []*dataplane.Callout{dataplane.NewInspector("inspect", nil)},
				filters: []dataplane.Filter{{Name: "i", Layer: dataplane.LayerIngress, Action: dataplane.FilterCallout,
					Callout: "inspect"}},
			})
			// Conservation: each of the n packets, and each flood copy made
			// or attempted (clone_exhausted), ends exactly once: delivered,
			// dropped (counted by reason) or discarded by the callout (its
			// reinjection refused when the injection link was full: fail
			// closed, R29; the channel baseline's link counts its room in
			// whole batches and refuses more often).
			ends := func(st dataplane.Stats) (got, want uint64) {
				return r.received(2) + r.received(3) + st.TotalDrops + st.Discarded, n + st.Flooded + st.Drops["clone_exhausted"]
			}
			r.run(func() bool {
				got, want := ends(r.sw.Stats())
				return r.gen.Sent() == n && got == want && r.sw.Stats().Flooded+r.sw.Stats().Discarded > 0
			})
			st := r.sw.Stats()
			out := r.received(2) + r.received(3)
			if got, want := ends(st); r.gen.Sent() != n || got != want {
				t.Fatalf("sent %d, delivered %d, drops %v (%d), discarded %d, flood copies %d: %d ends for %d packets and copies",
					r.gen.Sent(), out, st.Drops, st.TotalDrops, st.Discarded, st.Flooded, got, want)
			}
			var txFull uint64
			for _, p := range r.sw.Ports() {
				_, _, f := p.Counters()
				txFull += f
			}
			if txFull == 0 {
				t.Fatal("the sinks' TX queues never filled: the test did not test back-pressure")
			}
			t.Logf("delivered %d, drops %v, starved %d, lists held back by a full TX path %d", out, st.Drops, r.gen.Starved(), txFull)
		})
	}
}

// Stop in the middle of a burst, at full speed, repeatedly: every packet
// the generator sent is delivered, dropped (counted) or discarded by the
// callout while unloading (R7) — none vanishes — and every frame is back.
func TestStopMidBurst(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			r := newRig(t, rigOpts{cfg: dataplane.Config{Mode: m.mode, Link: m.link},
				callouts: []*dataplane.Callout{dataplane.NewInspector("inspect", nil)},
				filters: []dataplane.Filter{{Name: "i", Layer: dataplane.LayerIngress, Action: dataplane.FilterCallout,
					Callout: "inspect"}}})
			for round := 0; round < 5; round++ {
				if err := r.sw.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Duration(3+round*4) * time.Millisecond)
				r.stop() // accounting exact, no goroutine left
			}
			st := r.sw.Stats()
			if got := r.received(2); r.gen.Sent() != got+st.TotalDrops+st.Discarded || got == 0 {
				t.Fatalf("sent %d, delivered %d, dropped %d %v, discarded %d", r.gen.Sent(), got, st.TotalDrops, st.Drops, st.Discarded)
			}
		})
	}
}

// Two inspectors at the ingress layer: every packet is absorbed by each
// once and delivered once. The second absorbs lists the first reinjected,
// which are still in flight for the first (R22b): it reinjects a clone and
// the original completes to the first once the clone is done (R34); the
// first permits the clone, which it sees as previously injected by itself
// (R24). In pipelined mode the second absorb comes from the reinject
// stage's own link. (Before cloneInFlight these were refused and lost.)
func TestTwoInspectorsChain(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			const n = 5000
			r := newRig(t, rigOpts{cfg: dataplane.Config{Mode: m.mode, Link: m.link}, limit: n,
				callouts: []*dataplane.Callout{dataplane.NewInspector("first", nil), dataplane.NewInspector("second", nil)},
				filters: []dataplane.Filter{
					{Name: "a", Layer: dataplane.LayerIngress, Weight: 2, Action: dataplane.FilterCallout, Callout: "first"},
					{Name: "b", Layer: dataplane.LayerIngress, Weight: 1, Action: dataplane.FilterCallout, Callout: "second"},
				}})
			r.run(func() bool { return r.received(2) == n })
			st := r.sw.Stats()
			// completions: the first's n injections (each completes once the
			// second's clone of it is done) and the second's n clones
			if r.received(2) != n || st.Absorbed != 2*n || st.Reinjected != 2*n || st.Completions != 2*n || st.TotalDrops != 0 {
				t.Fatalf("received %d of %d, absorbed %d, reinjected %d, drops %v", r.received(2), n, st.Absorbed, st.Reinjected, st.Drops)
			}
		})
	}
}
