package inject

import (
	"sync"
	"sync/atomic"

	"github.com/wfpxdp/wfpxdp/nbl"
)

// InjectionType holds the FWPS_INJECTION_TYPE_* flags given to
// InjectionHandleCreate (R1); they may be OR'd.
type InjectionType uint32

// Injection type flags (R1). vSwitch Ethernet injection needs InjectionTypeL2.
const (
	InjectionTypeStream           InjectionType = 0x1
	InjectionTypeTransport        InjectionType = 0x2
	InjectionTypeNetwork          InjectionType = 0x4
	InjectionTypeForward          InjectionType = 0x8
	InjectionTypeL2               InjectionType = 0x10
	InjectionTypeVSwitchTransport InjectionType = 0x20

	injectionTypeAll InjectionType = 0x3f
)

// AFUnspec is the address family to pass for L2 handles (R3); any value is
// accepted and ignored.
const AFUnspec = 0

// handle lifecycle states
const (
	handleOpen uint32 = iota
	handleClosing
	handleDestroyed
)

// Handle models an injection HANDLE from FwpsInjectionHandleCreate0.
//
// Threading contract: every method is safe for concurrent use; inject calls
// never block. Destroy blocks until the handle's pending injections have
// completed (R4).
type Handle struct {
	eng   *Engine
	id    uint32        // tag written into injected NBLs; reused only after 2^20 creations (see maxHandles)
	types InjectionType // the flags it was created with

	// pending counts NBLs accepted and not yet completed. Inject adds
	// before it checks state, Destroy sets state before it checks pending
	// (both sequentially consistent), so no injection slips past Destroy.
	pending atomic.Int64
	state   atomic.Uint32 // handleOpen -> handleClosing -> handleDestroyed

	drainedOnce sync.Once
	drained     chan struct{} // closed when closing and pending reaches 0
}

// ID returns the handle's tag, the value NBL.InjectedBy holds for lists it
// injected.
func (h *Handle) ID() uint32 { return h.id }

// Types returns the injection type flags the handle was created with.
func (h *Handle) Types() InjectionType { return h.types }

// Pending returns the number of lists injected through h that have not
// completed yet.
func (h *Handle) Pending() int64 { return h.pending.Load() }

// release drops n pending injections, waking Destroy if it waits for the
// last of them.
func (h *Handle) release(n int64) {
	if h.pending.Add(-n) == 0 && h.state.Load() != handleOpen {
		h.drainedOnce.Do(func() { close(h.drained) })
	}
}

// Destroy models FwpsInjectionHandleDestroy0. It refuses new injections
// from now on (R5: STATUS_FWP_INJECT_HANDLE_CLOSING), waits until every
// pending injection on the handle has completed and its completion function
// has run (R4), and returns STATUS_SUCCESS. Destroying a destroyed or
// closing handle returns STATUS_INVALID_HANDLE. Called from inside a
// completion function running on a Completer, where it would wait for
// itself forever, it returns STATUS_INVALID_DEVICE_STATE at once instead
// and the handle stays open (G5).
func (h *Handle) Destroy() Status {
	if h == nil {
		return StatusInvalidHandle
	}
	if h.eng.inCompletionCallback() {
		h.eng.misuse.destroyInCallback.Add(1)
		return StatusInvalidDeviceState
	}
	if !h.state.CompareAndSwap(handleOpen, handleClosing) {
		return StatusInvalidHandle
	}
	if h.pending.Load() == 0 {
		h.drainedOnce.Do(func() { close(h.drained) })
	}
	<-h.drained
	h.state.Store(handleDestroyed)
	h.eng.forget(h)
	return StatusSuccess
}

// check returns the status an injection through h must fail with, or
// success (R5, R6).
func (h *Handle) check() Status {
	switch {
	case h == nil:
		return StatusInvalidHandle
	case h.state.Load() == handleDestroyed:
		return StatusInvalidHandle
	case h.state.Load() == handleClosing:
		return StatusFwpInjectHandleClosing
	case h.types&InjectionTypeL2 == 0:
		return StatusFwpInjectHandleStale
	}
	return StatusSuccess
}

// tagged reports whether l, or an ancestor it was cloned from, carries this
// handle's tag; it returns the list that carries it.
func (h *Handle) taggedAncestor(l *nbl.NBL) *nbl.NBL {
	for p := l.Parent; p != nil; p = p.Parent {
		if p.InjectedBy == h.id {
			return p
		}
	}
	return nil
}
