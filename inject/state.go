package inject

import "github.com/wfpxdp/wfpxdp/nbl"

// InjectionState models FWPS_PACKET_INJECTION_STATE (R23).
type InjectionState int

// The four injection states, with their fwpsk.h values (R23).
const (
	NotInjected              InjectionState = 0 // FWPS_PACKET_NOT_INJECTED
	InjectedBySelf           InjectionState = 1 // FWPS_PACKET_INJECTED_BY_SELF
	InjectedByOther          InjectionState = 2 // FWPS_PACKET_INJECTED_BY_OTHER
	PreviouslyInjectedBySelf InjectionState = 3 // FWPS_PACKET_PREVIOUSLY_INJECTED_BY_SELF
)

// String returns the fwpsk.h name.
func (s InjectionState) String() string {
	switch s {
	case NotInjected:
		return "FWPS_PACKET_NOT_INJECTED"
	case InjectedBySelf:
		return "FWPS_PACKET_INJECTED_BY_SELF"
	case InjectedByOther:
		return "FWPS_PACKET_INJECTED_BY_OTHER"
	case PreviouslyInjectedBySelf:
		return "FWPS_PACKET_PREVIOUSLY_INJECTED_BY_SELF"
	}
	return "FWPS_PACKET_INJECTION_STATE(?)"
}

// QueryInjectionState models FwpsQueryPacketInjectionState0 (R24): for a
// list being classified it returns
//   - InjectedBySelf with its injection context if h injected it;
//   - PreviouslyInjectedBySelf with the ancestor's context if it is a clone
//     (of a clone ...) of a list h injected, and was itself injected by
//     another handle or not at all (G6);
//   - InjectedByOther, context nil, if another handle injected it;
//   - NotInjected, context nil, if it came from a port.
//
// A callout must PERMIT (or CONTINUE) lists in the two self states and must
// not modify or pend them (R21, R25). Borrows l; does not block or allocate.
func QueryInjectionState(h *Handle, l *nbl.NBL) (InjectionState, any) {
	if h == nil || l == nil {
		return NotInjected, nil
	}
	if l.InjectedBy == h.id {
		return InjectedBySelf, l.InjectContext
	}
	if a := h.taggedAncestor(l); a != nil {
		return PreviouslyInjectedBySelf, a.InjectContext
	}
	if l.InjectedBy != 0 {
		return InjectedByOther, nil
	}
	return NotInjected, nil
}
