package nbl

// Clone makes a shallow clone of parent from the reserve cache c (R33): the
// clone shares parent's frame and data window, copies its vSwitch metadata,
// points Parent at it, and increments parent's child count. Returns nil if
// the reserve is exhausted (INSUFFICIENT_RESOURCES) or c is not a
// cache of the reserve pool. The caller owns the
// clone and frees it with Put on a cache of the same pool, which releases
// the parent (R34). Clones of clones are allowed.
func (c *Cache) Clone(parent *NBL) *NBL {
	var one [1]*NBL
	if c.pool != c.pool.arena.reserve || c.Get(one[:]) == 0 {
		return nil
	}
	cl := one[0]
	// the clone shares every buffer: its first, and through Next the
	// parent's others, which stay the parent's
	cl.nb = NB{DataOffset: parent.nb.DataOffset, DataLength: parent.nb.DataLength, frame: parent.nb.frame, Next: parent.nb.Next}
	cl.VSwitch = parent.VSwitch
	cl.Queue = parent.Queue
	cl.Parent = parent
	parent.childRefs.Add(1)
	return cl
}

// Allocate builds a list over caller-owned data (R32): one buffer whose data
// window is length bytes at offset. The data must stay valid and unchanged
// until the list is returned; the descriptor comes from c (the reserve).
// Returns ErrBounds for a window outside data or an empty one, and
// ErrExhausted when no descriptor is free, ErrForeign when c is not a cache
// of the reserve pool.
func (c *Cache) Allocate(data []byte, offset, length uint32) (*NBL, error) {
	if length == 0 || uint64(offset)+uint64(length) > uint64(len(data)) {
		return nil, ErrBounds
	}
	if c.pool != c.pool.arena.reserve {
		return nil, ErrForeign
	}
	var one [1]*NBL
	if c.Get(one[:]) == 0 {
		return nil, ErrExhausted
	}
	l := one[0]
	l.nb = NB{DataOffset: offset, DataLength: length, frame: data}
	return l, nil
}
