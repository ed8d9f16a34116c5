package inject

import (
	"bytes"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/wfpxdp/wfpxdp/nbl"
)

// GUID is a vSwitch identifier, as carried in the VSWITCH_ID incoming value
// (R11) and passed to the inject call as an FWP_BYTE_BLOB.
type GUID [16]byte

// Switch is what the injection model needs of a virtual switch; the
// dataplane implements it, and injecttest has a small one for tests.
//
// Every method may be called concurrently from many goroutines and must not
// block or allocate.
type Switch interface {
	// ID returns the switch's GUID.
	ID() GUID
	// PortValid reports whether a packet may be injected as coming from
	// port with NIC index nic (R12); port 0, the default port, is always
	// valid (R13).
	PortValid(port uint32, nic uint16) bool
	// HasCallouts reports whether the owner of the handle with id handle
	// has a callout filter at a vSwitch layer, so it can see the injected
	// packets again; injecting with none fails (R22). Either layer counts:
	// packets absorbed at egress are reinjected through the ingress call
	// (R9).
	HasCallouts(handle uint32) bool
	// Inject takes ownership of an accepted injection and queues it on the
	// switch's injection ring and returns STATUS_SUCCESS, or keeps nothing
	// and returns why not: STATUS_INSUFFICIENT_RESOURCES (the ring is
	// full; retry later), STATUS_FWP_L2_DRIVER_NOT_READY (never started),
	// STATUS_NDIS_PAUSED (stopped). The switch calls inj.Tag before it
	// classifies the lists, and eventually passes each list, with Status
	// set, to a Completer (R16, R18, G2).
	Inject(inj Injection) Status
}

// maxHandles bounds the handles alive at once; ids carry a 20-bit
// generation above the slot bits, so an id comes back only after 2^20
// more handles have been created (a list still tagged with it by then
// would read as injected by the new handle).
const (
	handleSlotBits = 12
	maxHandles     = 1 << handleSlotBits
	maxChain       = 1 << 16 // longest chain one inject call accepts
)

// Engine is the filter engine's injection side: it creates handles and
// knows the attached switches.
//
// Threading contract: every method is safe for concurrent use. The per-packet
// paths (inject, state query, completion) take no lock.
type Engine struct {
	switches atomic.Pointer[[]Switch] // copy-on-write; mu serialises writers

	handles [maxHandles]atomic.Pointer[Handle] // slot -> live handle

	mu         sync.Mutex
	freeSlots  []uint32     // mu protects freeSlots: unused handle slots
	generation uint32       // mu protects generation: bumped per handle
	completers []*Completer // mu protects completers: for the G5 check

	misuse struct {
		destroyInCallback atomic.Uint64 // G5
		completionPanics  atomic.Uint64 // completion functions that panicked
	}
}

// NewEngine returns an engine with no switch attached: handle creation
// reports STATUS_FWP_TCPIP_NOT_READY until one is (R2).
func NewEngine() *Engine {
	e := &Engine{freeSlots: make([]uint32, 0, maxHandles-1)}
	for s := uint32(maxHandles - 1); s >= 1; s-- { // slot 0 unused: id 0 = not injected
		e.freeSlots = append(e.freeSlots, s)
	}
	e.switches.Store(&[]Switch{})
	return e
}

// Attach makes sw known to the engine: its GUID becomes valid for inject
// calls (R11).
func (e *Engine) Attach(sw Switch) {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := *e.switches.Load()
	next := append(append(make([]Switch, 0, len(old)+1), old...), sw)
	e.switches.Store(&next)
}

// Detach forgets sw: new inject calls naming it fail (R11). Injections it
// already accepted are its to complete, with STATUS_INVALID_DEVICE_STATE if
// it cannot deliver them (G2).
func (e *Engine) Detach(sw Switch) {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := *e.switches.Load()
	next := make([]Switch, 0, len(old))
	for _, s := range old {
		if s != sw {
			next = append(next, s)
		}
	}
	e.switches.Store(&next)
}

// lookup returns the attached switch whose GUID is id, or nil.
func (e *Engine) lookup(id []byte) Switch {
	for _, sw := range *e.switches.Load() {
		g := sw.ID()
		if bytes.Equal(g[:], id) {
			return sw
		}
	}
	return nil
}

// InjectionHandleCreate models FwpsInjectionHandleCreate0 (R1-R3). The
// address family is ignored for L2 handles (pass AFUnspec). It returns
// STATUS_FWP_TCPIP_NOT_READY while no switch is attached (R2),
// STATUS_FWP_INVALID_FLAGS for no or unknown type flags, and
// STATUS_INSUFFICIENT_RESOURCES when every handle slot is in use.
func (e *Engine) InjectionHandleCreate(addressFamily uint16, flags InjectionType) (*Handle, Status) {
	_ = addressFamily // R3: ignored
	if flags == 0 || flags&^injectionTypeAll != 0 {
		return nil, StatusFwpInvalidFlags
	}
	if len(*e.switches.Load()) == 0 {
		return nil, StatusFwpTCPIPNotReady
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.freeSlots) == 0 {
		return nil, StatusInsufficientResources
	}
	slot := e.freeSlots[len(e.freeSlots)-1]
	e.freeSlots = e.freeSlots[:len(e.freeSlots)-1]
	e.generation++
	h := &Handle{
		eng:     e,
		id:      e.generation<<handleSlotBits | slot,
		types:   flags,
		drained: make(chan struct{}),
	}
	e.handles[slot].Store(h)
	return h, StatusSuccess
}

// handle returns the live handle with tag id, or nil.
func (e *Engine) handle(id uint32) *Handle {
	h := e.handles[id&(maxHandles-1)].Load()
	if h == nil || h.id != id {
		return nil
	}
	return h
}

// forget frees a destroyed handle's slot.
func (e *Engine) forget(h *Handle) {
	slot := h.id & (maxHandles - 1)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.handles[slot].CompareAndSwap(h, nil) {
		e.freeSlots = append(e.freeSlots, slot)
	}
}

// Misuse returns the counts of Destroy calls refused inside a completion
// function (G5) and of completion functions that panicked.
func (e *Engine) Misuse() (destroyInCallback, completionPanics uint64) {
	return e.misuse.destroyInCallback.Load(), e.misuse.completionPanics.Load()
}

// inCompletionCallback reports whether the calling goroutine is inside a
// completion function run by one of the engine's Completers. Slow (it reads
// the goroutine id from the stack); only Destroy calls it.
func (e *Engine) inCompletionCallback() bool {
	e.mu.Lock()
	busy := make([]*Completer, 0, len(e.completers))
	for _, c := range e.completers {
		if c.inCallback.Load() {
			busy = append(busy, c)
		}
	}
	e.mu.Unlock()
	if len(busy) == 0 {
		return false
	}
	me := goid()
	for _, c := range busy {
		if c.goid.Load() == me {
			return true
		}
	}
	return false
}

// goid returns the calling goroutine's id, parsed from "goroutine N [".
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	var id uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}

// isOriginal reports whether l is an original received list, the only kind
// that may be injected without a completion function (R15, G4).
func isOriginal(l *nbl.NBL) bool { return l.OwnsFrame() && !l.IsClone() }
