package dataplane

import "sync/atomic"

// macTable is the forwarding database: an open-addressing hash table from
// MAC to port slot, each entry one atomic word (MAC in the high 48 bits,
// port slot + 1 in the low 16), so lookups from one stage and learning from
// another need no lock. It never shrinks; Flush empties it.
//
// Threading contract: any goroutine may call lookup and learn.
type macTable struct {
	slots []atomic.Uint64
	mask  uint64
	full  atomic.Uint64 // learn attempts dropped because the probe window was full
}

const macProbe = 8 // slots examined per operation

func newMACTable(size int) *macTable {
	n := 1
	for n < size {
		n <<= 1
	}
	return &macTable{slots: make([]atomic.Uint64, n), mask: uint64(n - 1)}
}

func macHash(m MAC) uint64 { return (uint64(m) * 0x9E3779B97F4A7C15) >> 20 }

// lookup returns the port slot learned for m, or -1.
func (t *macTable) lookup(m MAC) int {
	h := macHash(m)
	for i := uint64(0); i < macProbe; i++ {
		e := t.slots[(h+i)&t.mask].Load()
		if e == 0 {
			return -1
		}
		if MAC(e>>16) == m {
			return int(e&0xFFFF) - 1
		}
	}
	return -1
}

// learn records that m is reachable through port slot; it returns at once
// when the entry is already right (the common case: one load).
func (t *macTable) learn(m MAC, slot int) {
	want := uint64(m)<<16 | uint64(slot+1)
	h := macHash(m)
	for i := uint64(0); i < macProbe; i++ {
		p := &t.slots[(h+i)&t.mask]
		e := p.Load()
		switch {
		case e == want:
			return
		case e == 0:
			if p.CompareAndSwap(0, want) {
				return
			}
			if e = p.Load(); MAC(e>>16) != m {
				continue
			}
			fallthrough
		case MAC(e>>16) == m: // moved to another port
			p.Store(want)
			return
		}
	}
	t.full.Add(1)
}

// forget removes every entry pointing at port slot (port detached). A hole
// can cut a probe chain; entries behind it then miss until relearned, and
// their traffic floods meanwhile, which is what an unknown MAC does anyway.
func (t *macTable) forget(slot int) {
	for i := range t.slots {
		e := t.slots[i].Load()
		if e != 0 && int(e&0xFFFF)-1 == slot {
			t.slots[i].CompareAndSwap(e, 0)
		}
	}
}

// keyIndex maps keys (MACs, ether types) to filter lists by open
// addressing; built once per filter-set compile, read-only after.
type keyIndex struct {
	keys  []uint64
	lists [][]int32
	mask  uint64
}

func newKeyIndex(m map[uint64][]int32) keyIndex {
	n := 1
	for n < 2*len(m) {
		n <<= 1
	}
	x := keyIndex{keys: make([]uint64, n), lists: make([][]int32, n), mask: uint64(n - 1)}
	for k, v := range m {
		h := macHash(MAC(k)) & x.mask
		for x.lists[h] != nil {
			h = (h + 1) & x.mask
		}
		x.keys[h], x.lists[h] = k, v
	}
	return x
}

// get returns the list for key k, or nil.
func (x *keyIndex) get(k uint64) []int32 {
	if len(x.keys) == 0 {
		return nil
	}
	for h := macHash(MAC(k)) & x.mask; x.lists[h] != nil; h = (h + 1) & x.mask {
		if x.keys[h] == k {
			return x.lists[h]
		}
	}
	return nil
}
