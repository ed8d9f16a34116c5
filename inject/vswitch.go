package inject

import "github.com/wfpxdp/wfpxdp/nbl"

// Injection is one accepted inject call as the switch receives it: the
// chain plus the parameters to tag its lists with. It is a value so the
// switch's injection ring carries it without allocating.
type Injection struct {
	Lists             *nbl.NBL // the chain, linked through Next; InFlight set on each
	Count             int      // lists in the chain
	handle            uint32
	context           any
	complete          nbl.CompleteFunc
	completionContext any
	sourcePortID      uint32
	sourceNICIndex    uint16
}

// Tag writes the injection's tag, contexts and source port/NIC into every
// list of the chain (R12, R20) and sets Status to STATUS_PENDING. What the
// lists carried from an earlier pass through the egress layer (the
// destination port and RECLASSIFY_MULTI_DESTINATION, R26, R40) is cleared:
// an injected packet enters at ingress and is switched anew. The switch
// calls Tag once, on the goroutine that took the injection off its ring,
// before the lists are classified again.
func (inj *Injection) Tag() {
	for l := inj.Lists; l != nil; l = l.Next {
		l.VSwitch.Flags &^= nbl.MetaDestinationPortID
		l.VSwitch.DestinationPortID = 0
		l.VSwitch.L2Flags &^= nbl.L2ReclassifyMultiDestination
		l.InjectedBy = inj.handle
		l.InjectContext = inj.context
		l.Complete = inj.complete
		l.CompleteContext = inj.completionContext
		l.VSwitch.SourcePortID = inj.sourcePortID
		l.VSwitch.SourceNICIndex = inj.sourceNICIndex
		l.VSwitch.Flags |= nbl.MetaSourcePortID | nbl.MetaSourceNICIndex
		l.Status = int32(StatusPending)
	}
}

// HandleID returns the id of the handle the injection came through.
func (inj *Injection) HandleID() uint32 { return inj.handle }

// ethHeaderLen is the shortest data an injected list may carry: an Ethernet
// header (R14).
const ethHeaderLen = 14

// InjectVSwitchEthernetIngressAsync models
// FwpsInjectvSwitchEthernetIngressAsync0: it injects the chain lists,
// reinjected unmodified after an absorb or built by the allocate and clone
// calls, into the ingress path of the switch vSwitchID as if received on
// sourcePortID/sourceNICIndex (R8, R9). It never blocks and never runs a
// completion (R22a).
//
// Validation runs in the order of G1 over the whole chain before any list is
// accepted (R17):
//   - handle: nil or destroyed -> STATUS_INVALID_HANDLE; closing ->
//     STATUS_FWP_INJECT_HANDLE_CLOSING (R5); no L2 type ->
//     STATUS_FWP_INJECT_HANDLE_STALE (R6)
//   - flags != 0, reserved != nil -> STATUS_INVALID_PARAMETER (R10)
//   - vSwitchID missing or unknown, port or NIC unknown ->
//     STATUS_INVALID_PARAMETER (R11, R12)
//   - lists nil -> STATUS_FWP_NULL_POINTER; a list already in flight or
//     twice in the chain (R22b), a data window shorter than an Ethernet
//     header or past the end of its frame (R14), or the chain longer than
//     65536 -> STATUS_INVALID_PARAMETER
//   - complete nil while the chain holds a clone or an allocated list ->
//     STATUS_INVALID_PARAMETER (R15)
//   - the handle's owner has no callout filter at either vSwitch layer ->
//     STATUS_INVALID_DEVICE_STATE (R22)
//   - the switch has never been started -> STATUS_FWP_L2_DRIVER_NOT_READY;
//     it is stopped -> STATUS_NDIS_PAUSED (R41); its injection ring is
//     full -> STATUS_INSUFFICIENT_RESOURCES (retry later)
//
// On any failure no completion will run and the caller still owns every
// list, unchanged (R17). On STATUS_SUCCESS the engine owns every list until
// its completion (R16): the caller must not touch them. complete then runs
// exactly once per list, with completionContext, on the completion stage
// (R18), with the list's Status set (R19); lists injected without a
// completion go straight back to their frame pool instead (G4).
func (h *Handle) InjectVSwitchEthernetIngressAsync(
	injectionContext any,
	flags uint32,
	reserved any,
	vSwitchID []byte,
	sourcePortID uint32,
	sourceNICIndex uint16,
	lists *nbl.NBL,
	complete nbl.CompleteFunc,
	completionContext any,
) Status {
	if st := h.check(); st != StatusSuccess {
		return st
	}
	if flags != 0 || reserved != nil {
		return StatusInvalidParameter
	}
	if len(vSwitchID) == 0 {
		return StatusInvalidParameter
	}
	sw := h.eng.lookup(vSwitchID)
	if sw == nil || !sw.PortValid(sourcePortID, sourceNICIndex) {
		return StatusInvalidParameter
	}
	if lists == nil {
		return StatusFwpNullPointer
	}
	n, st := markChain(lists, complete == nil)
	if st != StatusSuccess {
		return st
	}
	if !sw.HasCallouts(h.id) {
		unmarkChain(lists, n)
		return StatusInvalidDeviceState
	}
	// Count the lists as pending before checking the handle's state again,
	// so a concurrent Destroy either refuses us or waits for us (R4, R5).
	h.pending.Add(int64(n))
	if h.state.Load() != handleOpen {
		unmarkChain(lists, n)
		h.release(int64(n))
		return StatusFwpInjectHandleClosing
	}
	inj := Injection{
		Lists: lists, Count: n, handle: h.id, context: injectionContext,
		complete: complete, completionContext: completionContext,
		sourcePortID: sourcePortID, sourceNICIndex: sourceNICIndex,
	}
	if st := sw.Inject(inj); st != StatusSuccess {
		unmarkChain(lists, n)
		h.release(int64(n))
		return st
	}
	return StatusSuccess
}

// markChain validates every list of the chain and sets InFlight on each,
// which also finds a list that appears twice (or a cycle). On failure it
// clears what it set and returns the status; on success, the count.
func markChain(head *nbl.NBL, noCompletion bool) (int, Status) {
	n := 0
	st := StatusSuccess
	for l := head; l != nil; l = l.Next {
		switch {
		case l.InFlight || n == maxChain: // R22b, or a cycle
			st = StatusInvalidParameter
		case l.FirstNetBuffer != l.NB() || !windowValid(l.NB()): // R14, R38
			st = StatusInvalidParameter
		case noCompletion && !isOriginal(l): // R15
			st = StatusInvalidParameter
		}
		if st != StatusSuccess {
			unmarkChain(head, n)
			return 0, st
		}
		l.InFlight = true
		n++
	}
	return n, StatusSuccess
}

// windowValid reports whether b's data window holds at least an Ethernet
// header and lies inside its frame (summed in 64 bits: no wrap-around).
func windowValid(b *nbl.NB) bool {
	return b.DataLength >= ethHeaderLen && uint64(b.DataOffset)+uint64(b.DataLength) <= uint64(len(b.Frame()))
}

// unmarkChain clears InFlight on the first n lists of the chain.
func unmarkChain(head *nbl.NBL, n int) {
	for l := head; n > 0; l, n = l.Next, n-1 {
		l.InFlight = false
	}
}
