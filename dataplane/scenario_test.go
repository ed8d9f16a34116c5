package dataplane_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/dataplane/memport"
	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/nbl"
)

// rewriter is a callout that absorbs every packet it did not inject,
// builds a modified copy (destination MAC rewritten) over its own buffer,
// injects the copy with a completion that frees it and discards the
// original, and PERMITs its own copies when they come back (R8, R15, R21,
// R32).
type rewriter struct {
	to         dataplane.MAC
	sw         *dataplane.Switch
	compCache  *nbl.Cache // used only by the completion stage's goroutine
	worker     *dataplane.Worker
	mu         sync.Mutex
	statuses   map[inject.Status]int
	completed  atomic.Uint64
	injected   atomic.Uint64
	panicEvery uint64
}

func (rw *rewriter) callout() *dataplane.Callout {
	return &dataplane.Callout{
		Name: "rewrite",
		Classify: func(c *dataplane.Call, out *dataplane.ClassifyOut) {
			if st, _ := inject.QueryInjectionState(c.Handle, c.List); st == inject.InjectedBySelf {
				out.ActionType = dataplane.ActionPermit
				return
			}
			out.ActionType, out.Flags = dataplane.ActionBlock, dataplane.ClassifyFlagAbsorb
		},
		Worker: func(w *dataplane.Worker, absorbed []*nbl.NBL) {
			rw.worker = w
			for _, orig := range absorbed {
				buf := append([]byte(nil), orig.Data()...)
				rw.to.Put(buf[0:6])
				l, st := inject.AllocateNetBufferAndNetBufferList(w.Reserve(), buf, 0, uint32(len(buf)))
				if st != inject.StatusSuccess {
					w.Discard(orig)
					continue
				}
				st = w.Handle().InjectVSwitchEthernetIngressAsync(nil, 0, nil, w.SwitchID(),
					orig.VSwitch.SourcePortID, 0, l, rw.complete, orig)
				if st != inject.StatusSuccess {
					inject.FreeNetBufferList(w.Reserve(), l)
					w.Discard(orig)
					continue
				}
				rw.injected.Add(1)
			}
		},
	}
}

// complete runs on the completion stage: free the copy, discard the
// original it was made from.
func (rw *rewriter) complete(ctx any, l *nbl.NBL, _ bool) {
	rw.mu.Lock()
	rw.statuses[inject.Status(l.Status)]++
	rw.mu.Unlock()
	if rw.compCache == nil {
		rw.compCache = rw.sw.Arena().Reserve().NewCache(64)
	}
	inject.FreeNetBufferList(rw.compCache, l)
	rw.worker.Discard(ctx.(*nbl.NBL))
	n := rw.completed.Add(1)
	if rw.panicEvery > 0 && n%rw.panicEvery == 0 {
		panic("callout bug")
	}
}

func newRewriterRig(t *testing.T, m dataplane.Mode, limit uint64, rate float64) (*rig, *rewriter) {
	rw := &rewriter{to: macC, statuses: map[inject.Status]int{}}
	r := newRig(t, rigOpts{
		// every absorbed frame may have a copy in flight: the reserve must
		// hold one per frame plus what the caches keep
		cfg:      dataplane.Config{Mode: m, Frames: 1024, Reserve: 2048},
		limit:    limit,
		ports:    2,
		callouts: []*dataplane.Callout{rw.callout()},
		filters: []dataplane.Filter{{Name: "rewrite", Layer: dataplane.LayerIngress, Weight: 5,
			Action: dataplane.FilterCallout, Callout: "rewrite"}},
	})
	r.gen.SetRate(rate)
	rw.sw = r.sw
	return r, rw
}

// Clone/allocate + modify + inject: every packet is rewritten to port 3's
// MAC, arrives there and not at port 2, and every injected copy completes
// exactly once with STATUS_SUCCESS.
func TestModifyAndInject(t *testing.T) {
	for _, m := range []dataplane.Mode{dataplane.ModeRTC, dataplane.ModePipeline} {
		t.Run(m.String(), func(t *testing.T) {
			const n = 5000
			r, rw := newRewriterRig(t, m, n, 0)
			r.run(func() bool { return r.received(3) == n && rw.completed.Load() == n })
			if r.received(3) != n || r.received(2) != 0 || rw.statuses[inject.StatusSuccess] != n {
				t.Fatalf("port3 %d port2 %d statuses %v", r.received(3), r.received(2), rw.statuses)
			}
			rw.compCache.Flush()
			r.checkAccounting()
		})
	}
}

// A destination port removed while traffic and injected copies are in
// flight: each copy still completes exactly once, with STATUS_SUCCESS or
// (G2) STATUS_INVALID_DEVICE_STATE, nothing leaks, and the switch keeps
// forwarding (the rewritten MAC is now unknown, so it floods to port 2).
// TestG2Statuses in the package checks the statuses deterministically.
func TestPortDetachedInFlight(t *testing.T) {
	r, rw := newRewriterRig(t, dataplane.ModeRTC, 0, 2e6)
	if err := r.sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if err := r.sw.RemovePort(3); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	r.gen.SetRate(-1) // stop generating
	time.Sleep(10 * time.Millisecond)
	r.stop()
	rw.compCache.Flush()
	r.checkAccounting()
	if rw.completed.Load() != rw.injected.Load() {
		t.Fatalf("injected %d, completed %d", rw.injected.Load(), rw.completed.Load())
	}
	for st := range rw.statuses {
		if st != inject.StatusSuccess && st != inject.StatusInvalidDeviceState {
			t.Fatalf("unexpected completion status %v", st)
		}
	}
	if r.received(3) == 0 || r.received(2) == 0 {
		t.Fatalf("port 3 got %d before removal, port 2 %d after", r.received(3), r.received(2))
	}
}

// A completion function that panics is contained and counted; the switch
// keeps completing the rest and nothing leaks.
func TestCompletionPanicContained(t *testing.T) {
	const n = 3000
	r, rw := newRewriterRig(t, dataplane.ModeRTC, n, 0)
	rw.panicEvery = 10
	r.run(func() bool { return rw.completed.Load() == n })
	if got := r.sw.Stats().CompletionPanics; got != n/10 {
		t.Fatalf("panics counted %d, want %d", got, n/10)
	}
	if r.received(3) != n {
		t.Fatalf("received %d", r.received(3))
	}
	rw.compCache.Flush()
	r.checkAccounting()
}

// R7: lists a callout still holds when the switch stops are discarded by
// its worker, and every frame comes back.
func TestStopDiscardsHeld(t *testing.T) {
	var held atomic.Uint64
	hoarder := &dataplane.Callout{
		Name: "hoard",
		Classify: func(c *dataplane.Call, out *dataplane.ClassifyOut) {
			out.ActionType, out.Flags = dataplane.ActionBlock, dataplane.ClassifyFlagAbsorb
		},
		Worker: func(w *dataplane.Worker, absorbed []*nbl.NBL) {
			for _, l := range absorbed {
				w.Hold(l)
			}
			held.Add(uint64(len(absorbed)))
		},
	}
	r := newRig(t, rigOpts{limit: 500, callouts: []*dataplane.Callout{hoarder},
		filters: []dataplane.Filter{{Name: "h", Layer: dataplane.LayerIngress, Action: dataplane.FilterCallout, Callout: "hoard"}}})
	r.run(func() bool { return held.Load() == 500 })
	if st := r.sw.Stats(); st.Discarded != 500 || r.received(2) != 0 {
		t.Fatalf("discarded %d received %d", st.Discarded, r.received(2))
	}
}

// Pool exhaustion under load: a tiny frame pool and a tiny reserve; the
// generator starves (counted by the port), flood copies fail (counted),
// nothing leaks and traffic still flows.
func TestPoolExhaustion(t *testing.T) {
	r := newRig(t, rigOpts{
		cfg:       dataplane.Config{Frames: 16, Reserve: 2, Batch: 32},
		limit:     20000,
		ports:     2,
		templates: []memport.Template{{Dst: dataplane.Broadcast, Src: macA}},
	})
	r.run(func() bool { return r.gen.Sent() == 20000 && r.received(2) == 20000 })
	st := r.sw.Stats()
	if r.received(2) != 20000 || st.Drops["clone_exhausted"] == 0 || r.gen.Starved() == 0 {
		t.Fatalf("received %d/%d drops %v starved %d", r.received(2), r.received(3), st.Drops, r.gen.Starved())
	}
	if r.received(3)+st.Drops["clone_exhausted"] != 20000 {
		t.Fatalf("port 3 got %d, %d copies failed: some vanished", r.received(3), st.Drops["clone_exhausted"])
	}
}
