package inject_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/inject/injecttest"
	"github.com/wfpxdp/wfpxdp/nbl"
)

// R41: the codes and their names.
func TestStatusValues(t *testing.T) {
	want := map[inject.Status]uint32{
		inject.StatusSuccess: 0, inject.StatusPending: 0x103,
		inject.StatusUnsuccessful: 0xC0000001, inject.StatusInvalidHandle: 0xC0000008,
		inject.StatusInvalidParameter: 0xC000000D, inject.StatusNoMemory: 0xC0000017,
		inject.StatusInsufficientResources: 0xC000009A, inject.StatusNotSupported: 0xC00000BB,
		inject.StatusInvalidMember: 0xC000017B, inject.StatusInvalidDeviceState: 0xC0000184,
		inject.StatusFwpNullPointer: 0xC022001C, inject.StatusFwpInvalidFlags: 0xC022001E,
		inject.StatusFwpInvalidParameter: 0xC0220035, inject.StatusFwpL2DriverNotReady: 0xC022003E,
		inject.StatusFwpTCPIPNotReady: 0xC0220100, inject.StatusFwpInjectHandleClosing: 0xC0220101,
		inject.StatusFwpInjectHandleStale: 0xC0220102, inject.StatusFwpCannotPend: 0xC0220103,
		inject.StatusFwpDropNoICMP: 0xC0220104, inject.StatusNDISPaused: 0xC023002A,
	}
	names := map[string]bool{}
	for st, code := range want {
		if st.Code() != code {
			t.Errorf("%v = %#x, want %#x", st, st.Code(), code)
		}
		if st.NTSuccess() != (code < 0x80000000) {
			t.Errorf("%v NTSuccess = %v", st, st.NTSuccess())
		}
		if names[st.String()] || len(st.String()) < 10 {
			t.Errorf("bad or duplicate name %q", st.String())
		}
		names[st.String()] = true
	}
	if s := inject.Status(-5).String(); s != "NTSTATUS(0xFFFFFFFB)" {
		t.Errorf("unknown status prints %q", s)
	}
}

// R2: no handle before a switch is attached; R1/R3: L2 with any family.
func TestHandleCreate(t *testing.T) {
	eng := inject.NewEngine()
	if _, st := eng.InjectionHandleCreate(inject.AFUnspec, inject.InjectionTypeL2); st != inject.StatusFwpTCPIPNotReady {
		t.Fatalf("create before attach = %v, want FWP_TCPIP_NOT_READY (R2)", st)
	}
	injecttest.New(eng, injecttest.Options{ID: switchID})
	for _, af := range []uint16{inject.AFUnspec, 2, 23, 0xffff} { // R3
		h, st := eng.InjectionHandleCreate(af, inject.InjectionTypeL2)
		if st != inject.StatusSuccess || h == nil {
			t.Fatalf("create af=%d: %v", af, st)
		}
		if h.Destroy() != inject.StatusSuccess {
			t.Fatal("destroy failed")
		}
	}
	// R1: flags may be OR'd; none or unknown ones are refused
	if _, st := eng.InjectionHandleCreate(0, inject.InjectionTypeL2|inject.InjectionTypeNetwork); st != inject.StatusSuccess {
		t.Fatalf("OR'd flags: %v", st)
	}
	for _, f := range []inject.InjectionType{0, 0x40, 0x10 | 0x100} {
		if _, st := eng.InjectionHandleCreate(0, f); st != inject.StatusFwpInvalidFlags {
			t.Errorf("flags %#x: %v, want FWP_INVALID_FLAGS", f, st)
		}
	}
}

// R6: a handle without the L2 bit is stale for vSwitch injection; a
// destroyed or nil handle is invalid. The caller keeps its lists.
func TestHandleStaleAndInvalid(t *testing.T) {
	e := newEnv(t, injecttest.Options{})
	net, _ := e.eng.InjectionHandleCreate(2, inject.InjectionTypeNetwork)
	head, b := e.packets(2)
	rec := newRecorder()
	if st := net.InjectVSwitchEthernetIngressAsync(nil, 0, nil, switchID[:], 0, 0, head, rec.complete, nil); st != inject.StatusFwpInjectHandleStale {
		t.Fatalf("non-L2 handle: %v, want FWP_INJECT_HANDLE_STALE", st)
	}
	dead, _ := e.eng.InjectionHandleCreate(0, inject.InjectionTypeL2)
	dead.Destroy()
	if st := dead.InjectVSwitchEthernetIngressAsync(nil, 0, nil, switchID[:], 0, 0, head, rec.complete, nil); st != inject.StatusInvalidHandle {
		t.Fatalf("destroyed handle: %v, want INVALID_HANDLE", st)
	}
	if st := dead.Destroy(); st != inject.StatusInvalidHandle {
		t.Fatalf("second destroy: %v", st)
	}
	var none *inject.Handle
	if st := none.InjectVSwitchEthernetIngressAsync(nil, 0, nil, switchID[:], 0, 0, head, rec.complete, nil); st != inject.StatusInvalidHandle {
		t.Fatalf("nil handle: %v", st)
	}
	e.sw.Drain()
	if rec.total() != 0 || b[0].InFlight || b[1].InFlight {
		t.Fatal("a refused injection was taken")
	}
	if err := e.frames.Put(b); err != nil {
		t.Fatalf("caller could not free its lists: %v", err)
	}
	e.checkAllFree()
}

// R4: Destroy returns only after every pending injection has completed and
// its completion function has run.
func TestDestroyWaitsForCompletions(t *testing.T) {
	e := newEnv(t, injecttest.Options{})
	rec := newRecorder()
	rec.onCall = func(l *nbl.NBL) {}
	head, b := e.packets(8)
	reserveClones := make([]*nbl.NBL, 0, 8)
	for _, l := range b { // inject clones so completions must run
		cl, st := inject.AllocateCloneNetBufferList(e.reserve, l, 0)
		if st != inject.StatusSuccess {
			t.Fatal(st)
		}
		reserveClones = append(reserveClones, cl)
	}
	_ = head
	if st := e.inject(nbl.Link(reserveClones), rec.complete, "c"); st != inject.StatusSuccess {
		t.Fatal(st)
	}
	if e.h.Pending() != 8 {
		t.Fatalf("pending = %d", e.h.Pending())
	}
	done := make(chan inject.Status)
	go func() { done <- e.h.Destroy() }()
	select {
	case st := <-done:
		t.Fatalf("Destroy returned %v with 8 injections pending", st)
	case <-time.After(50 * time.Millisecond):
	}
	// R5: while closing, new injections are refused and not taken
	more, mb := e.packets(1)
	if st := e.inject(more, nil, nil); st != inject.StatusFwpInjectHandleClosing {
		t.Fatalf("inject while closing: %v, want FWP_INJECT_HANDLE_CLOSING", st)
	}
	if mb[0].InFlight {
		t.Fatal("refused list left marked in flight")
	}
	e.sw.Drain()
	if st := <-done; st != inject.StatusSuccess {
		t.Fatalf("Destroy = %v", st)
	}
	if rec.total() != 8 {
		t.Fatalf("Destroy returned before all completions ran: %d", rec.total())
	}
	for _, cl := range reserveClones {
		if inject.FreeCloneNetBufferList(e.reserve, cl) != inject.StatusSuccess {
			t.Fatal("free clone")
		}
	}
	e.frames.Put(b)
	e.frames.Put(mb)
	e.checkAllFree()
}

// G5: Destroy from inside a completion function fails at once instead of
// waiting for itself.
func TestDestroyInsideCompletion(t *testing.T) {
	e := newEnv(t, injecttest.Options{})
	var got inject.Status
	fn := func(ctx any, l *nbl.NBL, _ bool) {
		got = e.h.Destroy()
		e.frames.Put([]*nbl.NBL{l})
	}
	head, _ := e.packets(1)
	if st := e.inject(head, fn, nil); st != inject.StatusSuccess {
		t.Fatal(st)
	}
	finished := make(chan struct{})
	go func() { e.sw.Drain(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		t.Fatal("Destroy inside a completion deadlocked")
	}
	if got != inject.StatusInvalidDeviceState {
		t.Fatalf("Destroy inside completion = %v, want INVALID_DEVICE_STATE", got)
	}
	if n, _ := e.eng.Misuse(); n != 1 {
		t.Fatalf("misuse count %d", n)
	}
	// the handle is still usable and can be destroyed normally afterwards
	if st := e.h.Destroy(); st != inject.StatusSuccess {
		t.Fatalf("later Destroy = %v", st)
	}
	e.checkAllFree()
}

// R4/R5 under concurrency: injections racing a Destroy either are refused
// (and not taken) or complete before Destroy returns.
func TestDestroyRace(t *testing.T) {
	for round := 0; round < 20; round++ {
		e := newEnv(t, injecttest.Options{})
		ctx, cancel := context.WithCancel(context.Background())
		var runWG sync.WaitGroup
		runWG.Add(1)
		go func() { defer runWG.Done(); e.sw.Run(ctx) }()
		var completed, accepted, refused sync.Map
		var wg sync.WaitGroup
		var destroyed sync.WaitGroup
		destroyed.Add(1)
		var afterDestroy int64
		var mu sync.Mutex
		destroyDone := false
		fn := func(_ any, l *nbl.NBL, _ bool) {
			mu.Lock()
			if destroyDone {
				afterDestroy++
			}
			mu.Unlock()
			completed.Store(l, true)
		}
		pool := e.arena.Frames()
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 30; i++ {
					b := make([]*nbl.NBL, 2)
					if pool.Get(b) != 2 {
						return
					}
					b[0].NB().SetData(0, 64)
					b[1].NB().SetData(0, 64)
					st := e.h.InjectVSwitchEthernetIngressAsync(nil, 0, nil, switchID[:], 0, 0, nbl.Link(b), fn, nil)
					if st == inject.StatusSuccess {
						accepted.Store(b[0], true)
						accepted.Store(b[1], true)
					} else {
						refused.Store(b[0], st)
					}
				}
			}()
		}
		time.Sleep(time.Duration(round%4) * time.Millisecond)
		st := e.h.Destroy()
		mu.Lock()
		destroyDone = true
		mu.Unlock()
		wg.Wait()
		cancel()
		runWG.Wait()
		if st != inject.StatusSuccess {
			t.Fatalf("Destroy = %v", st)
		}
		if afterDestroy != 0 {
			t.Fatalf("round %d: %d completions ran after Destroy returned", round, afterDestroy)
		}
		accepted.Range(func(k, _ any) bool {
			if _, ok := completed.Load(k); !ok {
				t.Fatalf("accepted list never completed")
			}
			return true
		})
		refused.Range(func(_, v any) bool {
			if s := v.(inject.Status); s != inject.StatusFwpInjectHandleClosing && s != inject.StatusInvalidHandle {
				t.Fatalf("refused with %v", s)
			}
			return true
		})
	}
}
