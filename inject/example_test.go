package inject_test

import (
	"fmt"

	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/inject/injecttest"
	"github.com/wfpxdp/wfpxdp/nbl"
)

// The loop the seed page warns about: a callout that absorbs packets and
// reinjects them must query the injection state and PERMIT its own, or it
// would inspect them forever (R21, R25).
func Example_absorbReinject() {
	arena, _ := nbl.NewArena(nbl.Config{Frames: 64, FrameSize: 2048})
	frames := arena.Frames().NewCache(16)
	eng := inject.NewEngine()
	id := inject.GUID{1}
	var h *inject.Handle
	var absorbed []*nbl.NBL
	inspections, permits := 0, 0
	// classify is the callout's classifyFn: true = PERMIT, false = BLOCK+ABSORB.
	classify := func(l *nbl.NBL) bool {
		if st, _ := inject.QueryInjectionState(h, l); st == inject.InjectedBySelf {
			permits++
			return true
		}
		inspections++
		absorbed = append(absorbed, l) // the callout owns it now
		return false
	}
	sw := injecttest.New(eng, injecttest.Options{ID: id, Classify: func(l *nbl.NBL) inject.Status {
		classify(l) // injected packets are classified again
		return inject.StatusSuccess
	}})
	h, _ = eng.InjectionHandleCreate(inject.AFUnspec, inject.InjectionTypeL2)

	rx := make([]*nbl.NBL, 4) // four packets arrive from port 0
	frames.Get(rx)
	for _, l := range rx {
		l.NB().SetData(0, 64)
		classify(l)
	}
	// the worker reinjects them unmodified; no completion needed (R15, G4)
	st := h.InjectVSwitchEthernetIngressAsync(nil, 0, nil, id[:], 0, 0, nbl.Link(absorbed), nil, nil)
	sw.Drain() // the switch classifies them again and completes them
	fmt.Println(st, "inspected", inspections, "permitted", permits)
	fmt.Println("destroy:", h.Destroy(), "frames free:", arena.Frames().Available())
	// Output:
	// STATUS_SUCCESS inspected 4 permitted 4
	// destroy: STATUS_SUCCESS frames free: 64
}

// Clone, modify, inject: the clone needs a completion function, which
// frees it; the original stays with the callout until its clones are gone
// (R15, R33, R34).
func Example_cloneModifyInject() {
	arena, _ := nbl.NewArena(nbl.Config{Frames: 8, FrameSize: 2048, Reserve: 8})
	frames, reserve := arena.Frames().NewCache(8), arena.Reserve().NewCache(8)
	eng := inject.NewEngine()
	id := inject.GUID{2}
	sw := injecttest.New(eng, injecttest.Options{ID: id})
	h, _ := eng.InjectionHandleCreate(inject.AFUnspec, inject.InjectionTypeL2)

	one := make([]*nbl.NBL, 1)
	frames.Get(one)
	orig := one[0]
	orig.NB().SetData(0, 64)

	// a clone shares the original's data; to modify, build a new list
	// over a private copy
	buf := append([]byte(nil), orig.Data()...)
	buf[0] = 0x02 // e.g. rewrite the destination MAC
	created, _ := inject.AllocateNetBufferAndNetBufferList(reserve, buf, 0, uint32(len(buf)))
	clone, _ := inject.AllocateCloneNetBufferList(reserve, orig, 0)
	done := func(ctx any, l *nbl.NBL, _ bool) {
		fmt.Println("completed", ctx, inject.Status(l.Status))
		if l.IsClone() {
			inject.FreeCloneNetBufferList(reserve, l)
		} else {
			inject.FreeNetBufferList(reserve, l)
		}
	}
	fmt.Println(h.InjectVSwitchEthernetIngressAsync(nil, 0, nil, id[:], 0, 0, nbl.Link([]*nbl.NBL{clone, created}), done, "ctx"))
	sw.Drain()
	fmt.Println("original free to return:", frames.Put(one) == nil)
	// Output:
	// STATUS_SUCCESS
	// completed ctx STATUS_SUCCESS
	// completed ctx STATUS_SUCCESS
	// original free to return: true
}
