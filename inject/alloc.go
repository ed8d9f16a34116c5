package inject

import (
	"errors"

	"github.com/wfpxdp/wfpxdp/nbl"
)

// AllocateNetBufferAndNetBufferList models
// FwpsAllocateNetBufferAndNetBufferList0 (R32): a list with one buffer over
// caller-owned data, dataLength bytes at dataOffset, taking its descriptor
// from reserve (a cache of an arena's reserve pool). The caller owns the
// data and must keep it unchanged until the list is freed, which may only
// happen after its injection completes. Returns
// STATUS_INSUFFICIENT_RESOURCES when the reserve is exhausted and
// STATUS_INVALID_PARAMETER for a window outside data, an empty one, or a
// cache that is not of a reserve pool.
func AllocateNetBufferAndNetBufferList(reserve *nbl.Cache, data []byte, dataOffset, dataLength uint32) (*nbl.NBL, Status) {
	if reserve == nil {
		return nil, StatusInvalidParameter
	}
	l, err := reserve.Allocate(data, dataOffset, dataLength)
	switch {
	case errors.Is(err, nbl.ErrExhausted):
		return nil, StatusInsufficientResources
	case err != nil:
		return nil, StatusInvalidParameter
	}
	return l, StatusSuccess
}

// FreeNetBufferList models FwpsFreeNetBufferList0: it returns an allocated
// list to reserve. A list still in flight, with live clones or references,
// already free, or not allocated from that pool is refused with
// STATUS_INVALID_PARAMETER and left as it was.
func FreeNetBufferList(reserve *nbl.Cache, l *nbl.NBL) Status {
	if l == nil || reserve == nil || l.InFlight || l.IsClone() || l.OwnsFrame() {
		return StatusInvalidParameter
	}
	return putOne(reserve, l)
}

// AllocateCloneNetBufferList models FwpsAllocateCloneNetBufferList0 (R33):
// a shallow clone of original from reserve, sharing its data, with Parent
// set and the original's child count incremented. flags must be 0. Refused
// with STATUS_INVALID_PARAMETER while original is being classified in a
// batch (R31), and STATUS_INSUFFICIENT_RESOURCES when the reserve is empty.
// The caller owns the clone; free it with FreeCloneNetBufferList, normally in
// its completion (R34).
func AllocateCloneNetBufferList(reserve *nbl.Cache, original *nbl.NBL, flags uint32) (*nbl.NBL, Status) {
	if reserve == nil || original == nil || flags != 0 || original.BatchClassify {
		return nil, StatusInvalidParameter
	}
	cl := reserve.Clone(original)
	if cl == nil {
		return nil, StatusInsufficientResources
	}
	return cl, StatusSuccess
}

// FreeCloneNetBufferList models FwpsFreeCloneNetBufferList0 (R34): it
// returns a clone to reserve and decrements its parent's child count, after
// which the parent may be returned to its owner once it has no other
// children. Refused with STATUS_INVALID_PARAMETER for a list that is not a
// clone, is in flight, or has children or references of its own.
func FreeCloneNetBufferList(reserve *nbl.Cache, clone *nbl.NBL) Status {
	if clone == nil || reserve == nil || !clone.IsClone() || clone.InFlight {
		return StatusInvalidParameter
	}
	return putOne(reserve, clone)
}

func putOne(c *nbl.Cache, l *nbl.NBL) Status {
	one := [1]*nbl.NBL{l}
	if err := c.Put(one[:]); err != nil {
		return StatusInvalidParameter
	}
	return StatusSuccess
}

// ReferenceNetBufferList models FwpsReferenceNetBufferList0 (R35): it keeps
// l valid after classify returns; balance it with exactly one
// DereferenceNetBufferList. intendToModify is recorded by WFP to decide
// whether to copy; lists here are never copied, so it is ignored.
func ReferenceNetBufferList(l *nbl.NBL, intendToModify bool) {
	_ = intendToModify
	l.Reference()
}

// DereferenceNetBufferList models FwpsDereferenceNetBufferList0 (R35). A
// dereference without a matching reference is misuse: nothing changes and
// it returns STATUS_INVALID_PARAMETER (WFP's returns nothing; it would
// corrupt the count).
func DereferenceNetBufferList(l *nbl.NBL, dispatchLevel bool) Status {
	_ = dispatchLevel
	if l == nil || l.Dereference() != nil {
		return StatusInvalidParameter
	}
	return StatusSuccess
}
