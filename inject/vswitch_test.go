package inject_test

import (
	"bytes"
	"sync/atomic"
	"testing"

	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/inject/injecttest"
	"github.com/wfpxdp/wfpxdp/nbl"
)

// R10, R11, R12, R14, R15, R17, R22, R22b, G1: each refusal returns the
// spec's status, takes nothing, runs no completion, and leaves the caller
// owning every list, unchanged.
func TestInjectValidation(t *testing.T) {
	otherID := inject.GUID{9}
	type call struct {
		flags    uint32
		reserved any
		id       []byte
		port     uint32
		nic      uint16
		nilFn    bool
	}
	ok := call{id: switchID[:]}
	tests := []struct {
		name  string
		c     call
		setup func(e *env, b []*nbl.NBL) *nbl.NBL // returns the chain head
		want  inject.Status
	}{
		{"R10 flags", call{flags: 1, id: switchID[:]}, nil, inject.StatusInvalidParameter},
		{"R10 reserved", call{reserved: 1, id: switchID[:]}, nil, inject.StatusInvalidParameter},
		{"R11 missing switch id", call{}, nil, inject.StatusInvalidParameter},
		{"R11 unknown switch id", call{id: otherID[:]}, nil, inject.StatusInvalidParameter},
		{"R11 short switch id", call{id: switchID[:8]}, nil, inject.StatusInvalidParameter},
		{"R12 unknown port", call{id: switchID[:], port: 7}, nil, inject.StatusInvalidParameter},
		{"R12 unknown nic", call{id: switchID[:], port: 3, nic: 2}, nil, inject.StatusInvalidParameter},
		{"G1 nil chain", ok, func(e *env, b []*nbl.NBL) *nbl.NBL { return nil }, inject.StatusFwpNullPointer},
		{"R14 runt last", ok, func(e *env, b []*nbl.NBL) *nbl.NBL {
			b[len(b)-1].NB().SetData(0, 13)
			return nbl.Link(b)
		}, inject.StatusInvalidParameter},
		{"R22b in flight", ok, func(e *env, b []*nbl.NBL) *nbl.NBL {
			b[2].InFlight = true
			return nbl.Link(b)
		}, inject.StatusInvalidParameter},
		{"R22b twice in chain", ok, func(e *env, b []*nbl.NBL) *nbl.NBL {
			h := nbl.Link(b)
			b[len(b)-1].Next = b[1] // cycle back
			return h
		}, inject.StatusInvalidParameter},
		{"R15 clone without completion", call{id: switchID[:], nilFn: true}, func(e *env, b []*nbl.NBL) *nbl.NBL {
			cl, _ := inject.AllocateCloneNetBufferList(e.reserve, b[0], 0)
			b[len(b)-1] = cl
			return nbl.Link(b)
		}, inject.StatusInvalidParameter},
		{"R15 allocated without completion", call{id: switchID[:], nilFn: true}, func(e *env, b []*nbl.NBL) *nbl.NBL {
			l, _ := inject.AllocateNetBufferAndNetBufferList(e.reserve, make([]byte, 64), 0, 64)
			b[len(b)-1] = l
			return nbl.Link(b)
		}, inject.StatusInvalidParameter},
		{"R22 no callout filter", ok, func(e *env, b []*nbl.NBL) *nbl.NBL {
			e.sw.SetCallouts(false)
			return nbl.Link(b)
		}, inject.StatusInvalidDeviceState},
		{"ring full", ok, func(e *env, b []*nbl.NBL) *nbl.NBL {
			for i := 0; i < 2; i++ { // fill the 2-slot ring
				l, _ := inject.AllocateNetBufferAndNetBufferList(e.reserve, make([]byte, 64), 0, 64)
				if st := e.inject(l, func(any, *nbl.NBL, bool) {}, nil); st != inject.StatusSuccess {
					e.t.Fatal(st)
				}
			}
			return nbl.Link(b)
		}, inject.StatusInsufficientResources},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, injecttest.Options{RingSize: 2})
			e.sw.AddPort(3, 1)
			_, b := e.packets(4)
			head := nbl.Link(b)
			if tc.setup != nil {
				head = tc.setup(e, b)
			}
			// snapshot what the caller owns
			var before [][]byte
			var flags []bool
			for l, i := head, 0; l != nil && i < 4; l, i = l.Next, i+1 {
				before = append(before, bytes.Clone(l.Data()))
				flags = append(flags, l.InFlight)
			}
			queued := e.sw.Pending()
			rec := newRecorder()
			fn := nbl.CompleteFunc(rec.complete)
			if tc.c.nilFn {
				fn = nil
			}
			st := e.h.InjectVSwitchEthernetIngressAsync("ctx", tc.c.flags, tc.c.reserved, tc.c.id, tc.c.port, tc.c.nic, head, fn, "cctx")
			if st != tc.want {
				t.Fatalf("status %v, want %v", st, tc.want)
			}
			if e.sw.Pending() != queued {
				t.Fatal("a refused chain reached the switch")
			}
			for l, i := head, 0; l != nil && i < 4; l, i = l.Next, i+1 {
				if !bytes.Equal(l.Data(), before[i]) || l.InFlight != flags[i] || l.InjectedBy != 0 {
					t.Fatalf("list %d changed by a refused injection", i)
				}
			}
			e.sw.Drain()
			if rec.total() != 0 {
				t.Fatal("completion ran for a refused injection (R17)")
			}
		})
	}
}

// R8, R12, R16, R18, R19, R20, R37, G3: an accepted chain is tagged,
// classified again unmodified, and completed exactly once per list with the
// same context, its Status set, dispatchLevel false, Next cut.
func TestInjectAcceptedChain(t *testing.T) {
	var e *env
	var seen []string
	e = newEnv(t, injecttest.Options{Classify: func(l *nbl.NBL) inject.Status {
		st, ctx := inject.QueryInjectionState(e.h, l)
		if st != inject.InjectedBySelf || ctx != "ictx" {
			t.Errorf("state at reclassify = %v %v", st, ctx)
		}
		if l.VSwitch.SourcePortID != 5 || l.VSwitch.SourceNICIndex != 1 ||
			l.VSwitch.Flags&(nbl.MetaSourcePortID|nbl.MetaSourceNICIndex) != nbl.MetaSourcePortID|nbl.MetaSourceNICIndex {
			t.Errorf("metadata not set: %+v", l.VSwitch) // R12
		}
		seen = append(seen, string(l.Data()[:1]))
		if l.Data()[0] == 3 {
			return inject.StatusFwpDropNoICMP // a later failure shows only in Status (R16)
		}
		return inject.StatusSuccess
	}})
	e.sw.AddPort(5, 1)
	_, b := e.packets(6)
	var clones []*nbl.NBL
	for _, l := range b {
		cl, _ := inject.AllocateCloneNetBufferList(e.reserve, l, 0)
		clones = append(clones, cl)
	}
	rec := newRecorder()
	rec.onCall = func(l *nbl.NBL) {
		if l.Next != nil {
			t.Error("Next not cut before completion (G3)")
		}
		if l.InFlight {
			t.Error("InFlight still set in completion")
		}
	}
	st := e.h.InjectVSwitchEthernetIngressAsync("ictx", 0, nil, switchID[:], 5, 1, nbl.Link(clones), rec.complete, "cctx")
	if st != inject.StatusSuccess {
		t.Fatal(st)
	}
	if rec.total() != 0 {
		t.Fatal("completion ran inside the inject call (R22a)")
	}
	e.sw.Drain()
	if rec.total() != 6 {
		t.Fatalf("%d completions, want 6", rec.total())
	}
	for i, cl := range clones {
		if rec.calls[cl] != 1 {
			t.Errorf("clone %d completed %d times (R18)", i, rec.calls[cl])
		}
		if rec.ctxs[i] != "cctx" || rec.dl[i] {
			t.Errorf("completion %d: ctx %v dispatchLevel %v", i, rec.ctxs[i], rec.dl[i])
		}
		want := inject.StatusSuccess
		if i == 3 {
			want = inject.StatusFwpDropNoICMP
		}
		if rec.stats[i] != want || rec.stats[i].NTSuccess() != (i != 3) { // R19
			t.Errorf("list %d status %v, want %v", i, rec.stats[i], want)
		}
		if inject.FreeCloneNetBufferList(e.reserve, cl) != inject.StatusSuccess {
			t.Fatal("free clone")
		}
	}
	if len(seen) != 6 {
		t.Fatalf("classified %d lists again, want 6 (R8)", len(seen))
	}
	e.frames.Put(b)
	e.checkAllFree()
}

// R18: completions may arrive one list at a time and in any order; each
// list still completes exactly once, and Destroy waits for the last.
func TestCompletionsOutOfOrder(t *testing.T) {
	eng := inject.NewEngine()
	sw := &captureSwitch{id: switchID}
	eng.Attach(sw)
	h, _ := eng.InjectionHandleCreate(0, inject.InjectionTypeL2)
	arena, _ := nbl.NewArena(nbl.Config{Frames: 16, FrameSize: 2048, Reserve: 16})
	reserve := arena.Reserve().NewCache(16)
	var lists []*nbl.NBL
	for i := 0; i < 10; i++ {
		l, _ := inject.AllocateNetBufferAndNetBufferList(reserve, make([]byte, 60), 0, 60)
		lists = append(lists, l)
	}
	rec := newRecorder()
	if st := h.InjectVSwitchEthernetIngressAsync(nil, 0, nil, switchID[:], 0, 0, nbl.Link(lists), rec.complete, 7); st != inject.StatusSuccess {
		t.Fatal(st)
	}
	inj := sw.got[0]
	inj.Tag()
	batch, _ := nbl.Split(inj.Lists, make([]*nbl.NBL, 0, 16))
	c := eng.NewCompleter(func([]*nbl.NBL) { t.Error("release called for allocated lists") })
	destroyed := make(chan inject.Status)
	go func() { destroyed <- h.Destroy() }()
	for i := len(batch) - 1; i >= 0; i-- { // one at a time, reversed
		c.Complete(batch[i : i+1])
		select {
		case <-destroyed:
			if i != 0 {
				t.Fatalf("Destroy returned with %d lists outstanding", i)
			}
		default:
		}
	}
	if st := <-destroyed; st != inject.StatusSuccess {
		t.Fatal(st)
	}
	for i, l := range lists {
		if rec.calls[l] != 1 {
			t.Fatalf("list %d completed %d times", i, rec.calls[l])
		}
		if rec.order[len(lists)-1-i] != l {
			t.Fatal("completions not delivered in the order completed")
		}
		inject.FreeNetBufferList(reserve, l)
	}
}

// captureSwitch keeps what it is given, for tests that complete by hand.
type captureSwitch struct {
	id  inject.GUID
	got []inject.Injection
}

func (s *captureSwitch) ID() inject.GUID               { return s.id }
func (s *captureSwitch) PortValid(uint32, uint16) bool { return true }
func (s *captureSwitch) HasCallouts(uint32) bool       { return true }
func (s *captureSwitch) Inject(inj inject.Injection) inject.Status {
	s.got = append(s.got, inj)
	return inject.StatusSuccess
}

// G4: originals injected without a completion go straight back to their
// owner; R15 allows nil completion only for them.
func TestOriginalWithoutCompletion(t *testing.T) {
	e := newEnv(t, injecttest.Options{})
	head, b := e.packets(5)
	if st := e.inject(head, nil, nil); st != inject.StatusSuccess {
		t.Fatal(st)
	}
	if e.arena.Frames().Available() != e.arena.Frames().Size()-5 {
		t.Fatal("frames back before completion")
	}
	e.sw.Drain()
	for _, l := range b {
		if l.InFlight || l.InjectedBy != 0 {
			t.Fatal("original not reset on return")
		}
	}
	e.checkAllFree()
}

// G2: a port removed, or the switch detached, after acceptance completes
// each list with STATUS_INVALID_DEVICE_STATE.
func TestPortRemovedInFlight(t *testing.T) {
	e := newEnv(t, injecttest.Options{})
	e.sw.AddPort(4, 0)
	_, b := e.packets(3)
	rec := newRecorder()
	rec.onCall = func(l *nbl.NBL) { e.frames.Put([]*nbl.NBL{l}) }
	if st := e.h.InjectVSwitchEthernetIngressAsync(nil, 0, nil, switchID[:], 4, 0, nbl.Link(b), rec.complete, nil); st != inject.StatusSuccess {
		t.Fatal(st)
	}
	e.sw.RemovePort(4)
	e.sw.Drain()
	if rec.total() != 3 {
		t.Fatal("lists from a removed port did not complete")
	}
	for _, st := range rec.stats {
		if st != inject.StatusInvalidDeviceState {
			t.Fatalf("status %v, want INVALID_DEVICE_STATE", st)
		}
	}
	// switch detached
	head, _ := e.packets(2)
	if st := e.inject(head, rec.complete, nil); st != inject.StatusSuccess {
		t.Fatal(st)
	}
	e.sw.Detach()
	e.sw.Drain()
	if rec.total() != 5 || rec.stats[4] != inject.StatusInvalidDeviceState {
		t.Fatal("detached switch did not complete with INVALID_DEVICE_STATE")
	}
	head, b2 := e.packets(1)
	if st := e.inject(head, rec.complete, nil); st != inject.StatusInvalidParameter {
		t.Fatalf("inject into detached switch = %v (R11)", st)
	}
	e.frames.Put(b2)
	e.checkAllFree()
}

// R22a: in strict mode the chain is completed before the inject call
// returns, so a caller that keeps using a list after STATUS_SUCCESS sees it
// already recycled; the completion still never runs on the caller's
// goroutine inside the call.
func TestStrictModeCatchesUseAfterSuccess(t *testing.T) {
	e := newEnv(t, injecttest.Options{Strict: true})
	done := make(chan struct{})
	ctx, cancel := contextWithCancel()
	go func() { e.sw.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	var inCall, ranInside atomic.Bool
	caller := curGoroutine()
	fn := func(_ any, l *nbl.NBL, _ bool) {
		if inCall.Load() && curGoroutine() == caller {
			ranInside.Store(true)
		}
		inject.FreeCloneNetBufferList(e.reserve, l)
	}
	_, b := e.packets(2)
	clones := []*nbl.NBL{}
	for _, l := range b {
		cl, _ := inject.AllocateCloneNetBufferList(e.reserve, l, 0)
		clones = append(clones, cl)
	}
	inCall.Store(true)
	st := e.h.InjectVSwitchEthernetIngressAsync("mine", 0, nil, switchID[:], 0, 0, nbl.Link(clones), fn, nil)
	inCall.Store(false)
	if st != inject.StatusSuccess {
		t.Fatal(st)
	}
	// The buggy caller reads its injection context back after SUCCESS:
	// the clone has already been completed and freed.
	if clones[0].InjectContext == "mine" || clones[0].InFlight || clones[0].Parent != nil {
		t.Fatal("strict mode did not complete the chain before returning")
	}
	if ranInside.Load() {
		t.Fatal("completion ran on the caller's goroutine inside the inject call")
	}
	e.frames.Put(b)
	e.checkAllFree()
}

// R26, R40: a list absorbed at egress and reinjected enters ingress
// afresh: Tag clears the destination port and RECLASSIFY_MULTI_DESTINATION
// it carried from the egress layer, and keeps the rest of its metadata.
func TestTagClearsEgressMetadata(t *testing.T) {
	eng := inject.NewEngine()
	sw := &captureSwitch{id: switchID}
	eng.Attach(sw)
	h, _ := eng.InjectionHandleCreate(0, inject.InjectionTypeL2)
	arena, _ := nbl.NewArena(nbl.Config{Frames: 16, FrameSize: 2048, Reserve: 16})
	reserve := arena.Reserve().NewCache(4)
	l, _ := inject.AllocateNetBufferAndNetBufferList(reserve, make([]byte, 60), 0, 60)
	l.VSwitch = nbl.VSwitchMeta{Flags: nbl.MetaDestinationPortID | nbl.MetaPacketContext, DestinationPortID: 3,
		L2Flags: nbl.L2ReclassifyMultiDestination | nbl.L2RawIPv4, PacketContext: 9}
	if st := h.InjectVSwitchEthernetIngressAsync(nil, 0, nil, switchID[:], 2, 0, l, newRecorder().complete, nil); st != inject.StatusSuccess {
		t.Fatal(st)
	}
	sw.got[0].Tag()
	v := l.VSwitch
	if v.Flags&nbl.MetaDestinationPortID != 0 || v.DestinationPortID != 0 || v.L2Flags&nbl.L2ReclassifyMultiDestination != 0 {
		t.Fatalf("egress metadata survived the reinjection: %+v", v)
	}
	if v.L2Flags&nbl.L2RawIPv4 == 0 || v.PacketContext != 9 || v.SourcePortID != 2 || v.Flags&nbl.MetaPacketContext == 0 {
		t.Fatalf("ingress metadata lost: %+v", v)
	}
}
