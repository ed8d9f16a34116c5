package inject_test

import (
	"testing"

	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/inject/injecttest"
	"github.com/wfpxdp/wfpxdp/nbl"
)

// R23: the numeric values and names of the states.
func TestInjectionStateValues(t *testing.T) {
	want := map[inject.InjectionState]string{
		0: "FWPS_PACKET_NOT_INJECTED", 1: "FWPS_PACKET_INJECTED_BY_SELF",
		2: "FWPS_PACKET_INJECTED_BY_OTHER", 3: "FWPS_PACKET_PREVIOUSLY_INJECTED_BY_SELF",
	}
	for v, name := range want {
		if v.String() != name {
			t.Errorf("%d = %q, want %q", int(v), v.String(), name)
		}
	}
	if inject.NotInjected != 0 || inject.InjectedBySelf != 1 || inject.InjectedByOther != 2 || inject.PreviouslyInjectedBySelf != 3 {
		t.Fatal("state values differ from fwpsk.h")
	}
}

// R24, R20, G6: the four states, with the context only in the self states.
func TestQueryInjectionState(t *testing.T) {
	type query struct {
		state inject.InjectionState
		ctx   any
	}
	var e *env
	var h2 *inject.Handle
	var got []([2]query) // per reclassified list: as seen by h1 and by h2
	e = newEnv(t, injecttest.Options{Classify: func(l *nbl.NBL) inject.Status {
		s1, c1 := inject.QueryInjectionState(e.h, l)
		s2, c2 := inject.QueryInjectionState(h2, l)
		got = append(got, [2]query{{s1, c1}, {s2, c2}})
		return inject.StatusSuccess
	}})
	h2, _ = e.eng.InjectionHandleCreate(0, inject.InjectionTypeL2)

	_, b := e.packets(1)
	orig := b[0]
	if s, c := inject.QueryInjectionState(e.h, orig); s != inject.NotInjected || c != nil {
		t.Fatalf("from a port: %v %v", s, c)
	}
	// inject the original through h1; keep it with a completion that does
	// not free it so its tag stays for the clone below
	keep := func(any, *nbl.NBL, bool) {}
	if st := e.h.InjectVSwitchEthernetIngressAsync("ctx1", 0, nil, switchID[:], 0, 0, orig, keep, nil); st != inject.StatusSuccess {
		t.Fatal(st)
	}
	e.sw.Drain()
	// clone it and inject the clone through h2
	cl, _ := inject.AllocateCloneNetBufferList(e.reserve, orig, 0)
	if s, c := inject.QueryInjectionState(e.h, cl); s != inject.PreviouslyInjectedBySelf || c != "ctx1" {
		t.Fatalf("uninjected clone of a self-injected list: %v %v (G6)", s, c)
	}
	if s, c := inject.QueryInjectionState(h2, cl); s != inject.NotInjected || c != nil {
		t.Fatalf("uninjected clone seen by h2: %v %v", s, c)
	}
	if st := h2.InjectVSwitchEthernetIngressAsync("ctx2", 0, nil, switchID[:], 0, 0, cl, keep, nil); st != inject.StatusSuccess {
		t.Fatal(st)
	}
	e.sw.Drain()
	want := [][2]query{
		{{inject.InjectedBySelf, "ctx1"}, {inject.InjectedByOther, nil}},
		{{inject.PreviouslyInjectedBySelf, "ctx1"}, {inject.InjectedBySelf, "ctx2"}},
	}
	if len(got) != len(want) {
		t.Fatalf("%d reclassifications, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("reclassification %d: got %v, want %v", i, got[i], want[i])
		}
	}
	if s, _ := inject.QueryInjectionState(nil, orig); s != inject.NotInjected {
		t.Fatal("nil handle")
	}
	inject.FreeCloneNetBufferList(e.reserve, cl)
	e.frames.Put(b)
	e.checkAllFree()
}

// R21, R25, R29: a callout that absorbs every packet it has not injected
// itself and reinjects it unmodified from its worker inspects each packet
// exactly once and lets each through exactly once: no infinite loop.
func TestAbsorbReinjectTerminates(t *testing.T) {
	const n = 100
	var e *env
	inspected := map[*nbl.NBL]int{}
	permitted := map[*nbl.NBL]int{}
	var absorbed []*nbl.NBL
	// classify is the callout: PERMIT its own packets, absorb the rest.
	classify := func(l *nbl.NBL) bool {
		if st, _ := inject.QueryInjectionState(e.h, l); st == inject.InjectedBySelf || st == inject.PreviouslyInjectedBySelf {
			permitted[l]++
			return true
		}
		inspected[l]++
		absorbed = append(absorbed, l)
		return false
	}
	e = newEnv(t, injecttest.Options{Classify: func(l *nbl.NBL) inject.Status {
		if !classify(l) {
			t.Fatal("the callout absorbed its own reinjected packet")
		}
		return inject.StatusSuccess
	}})
	_, b := e.packets(n)
	for _, l := range b { // received from a port
		classify(l)
	}
	// the worker reinjects what it absorbed, unmodified, in chains of 16
	for len(absorbed) > 0 {
		k := min(16, len(absorbed))
		if st := e.inject(nbl.Link(absorbed[:k]), nil, nil); st != inject.StatusSuccess {
			t.Fatal(st)
		}
		absorbed = absorbed[k:]
		for e.sw.Drain() > 0 {
		}
	}
	for _, l := range b {
		if inspected[l] != 1 || permitted[l] != 1 {
			t.Fatalf("packet inspected %d, permitted %d times", inspected[l], permitted[l])
		}
	}
	e.checkAllFree() // G4: the originals went back to their pool
}
