package dataplane_test

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/dataplane/memport"
	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/nbl"
)

// The public API called in orders an embedder may well use: each call gets
// the status the spec names, and nothing panics or hangs.

// allocFrame builds one list over a fresh Ethernet frame to macB from the
// switch's reserve.
func allocFrame(t *testing.T, sw *dataplane.Switch) *nbl.NBL {
	t.Helper()
	frame := make([]byte, 64)
	macB.Put(frame)
	macA.Put(frame[6:])
	frame[12], frame[13] = 0x08, 0x00
	l, st := inject.AllocateNetBufferAndNetBufferList(sw.Arena().Reserve().NewCache(2), frame, 0, 64)
	if st != inject.StatusSuccess {
		t.Fatal(st)
	}
	return l
}

func noop(any, *nbl.NBL, bool) {}

// within fails the test if f does not return within d (a hang).
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// R41: an injection before the first Start is refused with
// STATUS_FWP_L2_DRIVER_NOT_READY, after Stop with STATUS_NDIS_PAUSED; the
// caller keeps the list (R17) and Close returns.
func TestInjectWhileStopped(t *testing.T) {
	r := newRig(t, rigOpts{callouts: []*dataplane.Callout{dataplane.NewInspector("i", nil)},
		filters: []dataplane.Filter{{Name: "i", Layer: dataplane.LayerIngress, Action: dataplane.FilterCallout, Callout: "i"}}})
	h := r.sw.Handle("i")
	l := allocFrame(t, r.sw)
	id := r.sw.ID()
	if st := h.InjectVSwitchEthernetIngressAsync(nil, 0, nil, id[:], 0, 0, l, noop, nil); st != inject.StatusFwpL2DriverNotReady {
		t.Fatalf("before Start: %v", st)
	}
	if err := r.sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.sw.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := h.InjectVSwitchEthernetIngressAsync(nil, 0, nil, id[:], 0, 0, l, noop, nil); st != inject.StatusNDISPaused {
		t.Fatalf("after Stop: %v", st)
	}
	if l.InFlight {
		t.Fatal("a refused list is marked in flight")
	}
	l.Pool().Put([]*nbl.NBL{l})
	within(t, 5*time.Second, "Close", func() {
		if err := r.sw.Close(); err != nil {
			t.Error(err)
		}
	})
}

// R22 is the handle owner's: a callout with no filter cannot inject, even
// while another callout has one.
func TestInjectNeedsOwnFilter(t *testing.T) {
	r := newRig(t, rigOpts{callouts: []*dataplane.Callout{dataplane.NewInspector("with", nil), dataplane.NewInspector("without", nil)},
		filters: []dataplane.Filter{{Name: "w", Layer: dataplane.LayerIngress, Action: dataplane.FilterCallout, Callout: "with"}}})
	if err := r.sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer r.stop()
	l := allocFrame(t, r.sw)
	id := r.sw.ID()
	if st := r.sw.Handle("without").InjectVSwitchEthernetIngressAsync(nil, 0, nil, id[:], 0, 0, l, noop, nil); st != inject.StatusInvalidDeviceState {
		t.Fatalf("callout without a filter: %v", st)
	}
	done := make(chan struct{})
	if st := r.sw.Handle("with").InjectVSwitchEthernetIngressAsync(nil, 0, nil, id[:], 0, 0, l,
		func(any, *nbl.NBL, bool) { close(done) }, nil); st != inject.StatusSuccess {
		t.Fatalf("callout with a filter: %v", st)
	}
	<-done
	l.Pool().Put([]*nbl.NBL{l})
}

// A list whose data window runs past its frame is refused at the inject
// call (R14), not left to panic on a stage.
func TestInjectWindowPastFrame(t *testing.T) {
	r := newRig(t, rigOpts{callouts: []*dataplane.Callout{dataplane.NewInspector("i", nil)},
		filters: []dataplane.Filter{{Name: "i", Layer: dataplane.LayerIngress, Action: dataplane.FilterCallout, Callout: "i"}}})
	if err := r.sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer r.stop()
	id := r.sw.ID()
	l := allocFrame(t, r.sw)
	for _, w := range []struct{ off, n uint32 }{{60, 14}, {0, 65}, {0xFFFF_FFF0, 0x20}, {1, 64}} {
		l.NB().DataOffset, l.NB().DataLength = w.off, w.n
		if st := r.sw.Handle("i").InjectVSwitchEthernetIngressAsync(nil, 0, nil, id[:], 0, 0, l, noop, nil); st != inject.StatusInvalidParameter {
			t.Fatalf("window %d+%d over 64 bytes: %v", w.off, w.n, st)
		}
	}
	l.Pool().Put([]*nbl.NBL{l})
}

// A callout registered after Start and Stop takes part from the next
// Start: no lcore panics on a callout table it was not built with.
func TestRegisterCalloutAfterRestart(t *testing.T) {
	r := newRig(t, rigOpts{})
	if err := r.sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.stop()
	var seen atomic.Int64
	late := dataplane.NewInspector("late", func(b []*nbl.NBL) { seen.Add(int64(len(b))) })
	if err := r.sw.RegisterCallout(late); err != nil {
		t.Fatal(err)
	}
	if err := r.sw.SetFilters([]dataplane.Filter{{Name: "l", Layer: dataplane.LayerIngress, Action: dataplane.FilterCallout, Callout: "late"}}); err != nil {
		t.Fatal(err)
	}
	before := r.received(2)
	r.run(func() bool { return seen.Load() >= 10000 })
	if seen.Load() < 10000 || r.received(2) < before+10000 {
		t.Fatalf("the late callout saw %d packets; the sink got %d more", seen.Load(), r.received(2)-before)
	}
}

// Stop and Close from several goroutines at once, while traffic flows:
// one of them drains, the others wait or return; no panic, no hang.
func TestConcurrentStopAndClose(t *testing.T) {
	r := newRig(t, rigOpts{})
	if err := r.sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	within(t, 10*time.Second, "concurrent Stop and Close", func() {
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i%2 == 0 {
					r.sw.Stop(context.Background())
				} else {
					r.sw.Close()
				}
			}()
		}
		wg.Wait()
	})
	if err := r.sw.Start(context.Background()); err != dataplane.ErrClosed {
		t.Fatalf("Start after Close: %v", err)
	}
	r.checkAccounting()
}

// AddFilter from many goroutines at once loses none.
func TestConcurrentAddFilter(t *testing.T) {
	r := newRig(t, rigOpts{limit: 1})
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.sw.AddFilter(dataplane.Filter{Name: "block", Layer: dataplane.LayerIngress, Action: dataplane.FilterBlock,
				Conditions: []dataplane.Condition{{Field: dataplane.FieldEtherType, Value: uint64(0x9000 + i), Mask: 0xffff}}})
		}()
	}
	wg.Wait()
	if n := len(r.sw.Filters()); n != 50 {
		t.Fatalf("%d filters after 50 concurrent AddFilter calls", n)
	}
}

// An inspector at the egress layer delivers each broadcast once per port
// (R26): the first copy is reinjected, the later ones discarded, and the
// reinjected packet's own copies are the inspector's (injected by self).
func TestEgressInspectorFloodsOnce(t *testing.T) {
	const n = 200
	r := newRig(t, rigOpts{ports: 2, limit: n, templates: []memport.Template{{Dst: dataplane.Broadcast, Src: macA}},
		callouts: []*dataplane.Callout{dataplane.NewInspector("e", nil)},
		filters:  []dataplane.Filter{{Name: "e", Layer: dataplane.LayerEgress, Action: dataplane.FilterCallout, Callout: "e"}}})
	r.run(func() bool { return r.received(2) >= n && r.received(3) >= n && r.gen.Sent() >= n })
	time.Sleep(10 * time.Millisecond)
	if r.received(2) != n || r.received(3) != n {
		t.Fatalf("%d broadcasts delivered %d and %d frames to the two other ports", n, r.received(2), r.received(3))
	}
}

// A flood copy of an injected packet carries the injection's tag: the
// injecting callout sees its own packet, another callout sees it as
// injected by other (R24, G6).
func TestFloodCopyKeepsInjectionTag(t *testing.T) {
	var mu sync.Mutex
	states := map[inject.InjectionState]int{}
	watch := &dataplane.Callout{Name: "watch", Classify: func(c *dataplane.Call, out *dataplane.ClassifyOut) {
		st, _ := inject.QueryInjectionState(c.Handle, c.List)
		mu.Lock()
		states[st]++
		mu.Unlock()
		out.ActionType = dataplane.ActionPermit
	}}
	r := newRig(t, rigOpts{ports: 2, limit: 100, templates: []memport.Template{{Dst: dataplane.Broadcast, Src: macA}},
		callouts: []*dataplane.Callout{dataplane.NewInspector("i", nil), watch},
		filters: []dataplane.Filter{{Name: "i", Layer: dataplane.LayerIngress, Action: dataplane.FilterCallout, Callout: "i"},
			{Name: "w", Layer: dataplane.LayerEgress, Action: dataplane.FilterCallout, Callout: "watch"}}})
	r.run(func() bool { return r.received(2) >= 100 && r.received(3) >= 100 })
	mu.Lock()
	defer mu.Unlock()
	if states[inject.InjectedByOther] != 200 || states[inject.NotInjected] != 0 {
		t.Fatalf("egress saw the injected broadcasts' copies as %v, want 200 injected by other", states)
	}
}

// Nothing in the Switch's exported API lets a caller hand it an injection
// the engine has not validated (G1).
func TestSwitchExportsNoInjectBypass(t *testing.T) {
	typ := reflect.TypeOf(&dataplane.Switch{})
	for _, name := range []string{"Inject", "PortValid", "HasCallouts"} {
		if _, ok := typ.MethodByName(name); ok {
			t.Errorf("(*Switch).%s is exported", name)
		}
	}
	// The worker's stage is the lcore's: worker code polling it from
	// inside would run itself again.
	if _, ok := reflect.TypeOf(&dataplane.Worker{}).MethodByName("Poll"); ok {
		t.Error("(*Worker).Poll is exported")
	}
}

// R31: a callout that allows L2 batch classify may not clone the packets
// it is given: the clone call refuses while it classifies them, and the
// flag is gone once it returns.
func TestBatchClassifyRefusesClone(t *testing.T) {
	var refused, cloned, after atomic.Int64
	var reserve *nbl.Cache
	c := &dataplane.Callout{Name: "batch", Flags: dataplane.CalloutAllowL2BatchClassify,
		Classify: func(c *dataplane.Call, out *dataplane.ClassifyOut) {
			if _, st := inject.AllocateCloneNetBufferList(reserve, c.List, 0); st == inject.StatusInvalidParameter {
				refused.Add(1)
			} else {
				cloned.Add(1)
			}
			out.ActionType = dataplane.ActionPermit
		}}
	plain := &dataplane.Callout{Name: "plain", Classify: func(c *dataplane.Call, out *dataplane.ClassifyOut) {
		if c.List.BatchClassify {
			after.Add(1)
		}
		out.ActionType = dataplane.ActionPermit
	}}
	r := newRig(t, rigOpts{limit: 100, callouts: []*dataplane.Callout{c, plain},
		filters: []dataplane.Filter{{Name: "b", Layer: dataplane.LayerIngress, Weight: 2, Action: dataplane.FilterCallout, Callout: "batch"},
			{Name: "p", Layer: dataplane.LayerIngress, Weight: 1, Action: dataplane.FilterCallout, Callout: "plain"}}})
	reserve = r.sw.Arena().Reserve().NewCache(2)
	r.run(func() bool { return r.received(2) >= 100 })
	if refused.Load() != 100 || cloned.Load() != 0 || after.Load() != 0 {
		t.Fatalf("clones refused %d, made %d; flag seen by the next callout %d", refused.Load(), cloned.Load(), after.Load())
	}
}

// R21: a callout built as a literal is called for its own reinjected
// packets too, and sees them as INJECTED_BY_SELF, as in WFP; one made by
// NewCallout is not (it permits them first), and every packet is still
// absorbed once and delivered once.
func TestOwnInjectionsClassify(t *testing.T) {
	const n = 5000
	var selfSeen, otherSeen atomic.Int64
	literal := &dataplane.Callout{Name: "literal", Classify: func(c *dataplane.Call, out *dataplane.ClassifyOut) {
		if c.InjectedBySelf() {
			selfSeen.Add(1)
			out.Permit()
			return
		}
		out.Absorb()
	}, Worker: func(w *dataplane.Worker, absorbed []*nbl.NBL) { w.Reinject(absorbed) }}
	built := dataplane.NewCallout("built", dataplane.ClassifyFunc(func(c *dataplane.Call, out *dataplane.ClassifyOut) {
		if c.InjectedBySelf() {
			otherSeen.Add(1)
		}
		out.Absorb()
	}), func(w *dataplane.Worker, absorbed []*nbl.NBL) { w.Reinject(absorbed) })
	r := newRig(t, rigOpts{limit: n, callouts: []*dataplane.Callout{literal, built},
		filters: []dataplane.Filter{{Name: "l", Layer: dataplane.LayerIngress, Weight: 2, Action: dataplane.FilterCallout, Callout: "literal"},
			{Name: "b", Layer: dataplane.LayerIngress, Weight: 1, Action: dataplane.FilterCallout, Callout: "built"}}})
	r.run(func() bool { return r.received(2) >= n })
	st := r.sw.Stats()
	// Each packet: literal absorbs and reinjects it; literal sees its own
	// and permits, built absorbs it and reinjects a clone; literal sees the
	// clone of its own (PREVIOUSLY_INJECTED_BY_SELF) and permits, built's
	// own is permitted before its classifier; delivered once.
	if r.received(2) != n || otherSeen.Load() != 0 || selfSeen.Load() < n {
		t.Fatalf("delivered %d of %d; literal saw its own %d times, built saw its own %d times; %+v", r.received(2), n, selfSeen.Load(), otherSeen.Load(), st)
	}
}

// A list absorbed while still in flight for another callout's injection
// is reinjected as a clone; when no clone can be made (the reserve is
// exhausted) the packet ends there, and the first injector's completion
// says so (INSUFFICIENT_RESOURCES), not SUCCESS; nothing is counted as
// descriptor misuse.
func TestChainedInjectionFailureStatus(t *testing.T) {
	const n = 20000
	var mu sync.Mutex
	statuses := map[inject.Status]int{}
	first := dataplane.NewCallout("first", dataplane.ClassifyFunc(func(c *dataplane.Call, out *dataplane.ClassifyOut) { out.Absorb() }),
		func(w *dataplane.Worker, absorbed []*nbl.NBL) {
			for _, l := range absorbed {
				st := w.Handle().InjectVSwitchEthernetIngressAsync(nil, 0, nil, w.SwitchID(), l.VSwitch.SourcePortID, 0, l,
					func(_ any, l *nbl.NBL, _ bool) {
						mu.Lock()
						statuses[inject.Status(l.Status)]++
						mu.Unlock()
						l.Pool().Put([]*nbl.NBL{l})
					}, nil)
				if st != inject.StatusSuccess {
					w.Discard(l)
				}
			}
		})
	r := newRig(t, rigOpts{cfg: dataplane.Config{Reserve: 4}, limit: n,
		callouts: []*dataplane.Callout{first, dataplane.NewInspector("second", nil)},
		filters: []dataplane.Filter{
			{Name: "a", Layer: dataplane.LayerIngress, Weight: 2, Action: dataplane.FilterCallout, Callout: "first"},
			{Name: "b", Layer: dataplane.LayerIngress, Weight: 1, Action: dataplane.FilterCallout, Callout: "second"},
		}})
	r.run(func() bool {
		mu.Lock()
		defer mu.Unlock()
		return statuses[inject.StatusSuccess]+statuses[inject.StatusInsufficientResources] >= n
	})
	st := r.sw.Stats()
	mu.Lock()
	defer mu.Unlock()
	ok, failed := statuses[inject.StatusSuccess], statuses[inject.StatusInsufficientResources]
	if ok+failed != n || uint64(ok) != r.received(2) || uint64(failed) != st.Discarded || st.MisusedDescriptorsPut != 0 {
		t.Fatalf("completions %v; delivered %d, discarded %d, misuse %d", statuses, r.received(2), st.Discarded, st.MisusedDescriptorsPut)
	}
	t.Logf("%d delivered, %d ended for want of a clone", ok, failed)
}

// A filter may name its callout by reference; a reference to a callout
// that was not registered (or to another callout of the same name) is
// refused.
func TestFilterCalloutRef(t *testing.T) {
	c := dataplane.NewInspector("i", nil)
	r := newRig(t, rigOpts{limit: 1000, callouts: []*dataplane.Callout{c}})
	if err := r.sw.SetFilters([]dataplane.Filter{{Name: "ref", Layer: dataplane.LayerIngress, Action: dataplane.FilterCallout, CalloutRef: c}}); err != nil {
		t.Fatal(err)
	}
	other := dataplane.NewInspector("i", nil)
	if err := r.sw.SetFilters([]dataplane.Filter{{Name: "x", Layer: dataplane.LayerIngress, Action: dataplane.FilterCallout, CalloutRef: other}}); err == nil {
		t.Fatal("a reference to an unregistered callout was accepted")
	}
	r.run(func() bool { return r.received(2) >= 1000 })
	if st := r.sw.Stats(); st.Absorbed != 1000 || st.Reinjected != 1000 {
		t.Fatalf("%+v", st)
	}
}

// R40: the incoming value indexes are WFP's, in its order.
func TestFieldIndexes(t *testing.T) {
	if dataplane.FieldIndexVSwitchID != 7 || dataplane.FieldIndexVSwitchSourceVMID != 11 ||
		dataplane.FieldIndexIngressL2Flags != 12 || dataplane.NumIngressFields != 14 ||
		dataplane.FieldIndexEgressDestinationInterfaceID != 12 || dataplane.FieldIndexEgressL2Flags != 15 || dataplane.NumEgressFields != 17 {
		t.Fatal("incoming value indexes out of R40's order")
	}
}

// Misuse of the configuration calls is an error, never a panic later on
// an lcore: a nil driver or callout, and changes after Close.
func TestConfigurationMisuse(t *testing.T) {
	r := newRig(t, rigOpts{})
	if _, err := r.sw.AddPort(7, 0, 0, nil); err == nil {
		t.Error("a nil driver accepted")
	}
	if err := r.sw.RegisterCallout(nil); err == nil {
		t.Error("a nil callout accepted")
	}
	if err := r.sw.Close(); err != nil {
		t.Fatal(err)
	}
	extra, _ := memport.New(memport.Config{Name: "late"})
	if _, err := r.sw.AddPort(8, 0, 0, extra); !errors.Is(err, dataplane.ErrClosed) {
		t.Errorf("AddPort after Close: %v", err)
	}
	if err := r.sw.RegisterCallout(dataplane.NewInspector("late", nil)); !errors.Is(err, dataplane.ErrClosed) {
		t.Errorf("RegisterCallout after Close: %v", err)
	}
	if err := r.sw.Stop(context.Background()); err != nil {
		t.Errorf("Stop after Close: %v", err)
	}
	if err := r.sw.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}
