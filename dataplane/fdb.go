package dataplane

import "sync/atomic"

// macTable is the forwarding database: an open-addressing hash table from
// MAC to port slot, each entry one atomic word (MAC in the high 48 bits,
// port slot + 1 in the low 15 bits, bit 15 set for a static entry), so
// lookups from one stage and learning from another need no lock. Learning
// never moves a static entry. It never shrinks.
//
// Threading contract: any goroutine may call lookup and learn.
type macTable struct {
	slots []atomic.Uint64
	mask  uint64
	full  atomic.Uint64 // learn attempts dropped because the probe window was full
}

const (
	macProbe   = 8 // slots examined per operation
	macStatic  = 1 << 15
	macSlotMsk = macStatic - 1
)

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
			return int(e&macSlotMsk) - 1
		}
	}
	return -1
}

// learn records that m is reachable through port slot; it returns at once
// when the entry is already right (the common case: one load). A static
// entry for m stays as it is.
func (t *macTable) learn(m MAC, slot int) {
	t.put(uint64(m)<<16|uint64(slot+1), false)
}

// pin records a static entry: m is reachable through slot whatever is
// learned later, until the port is detached.
func (t *macTable) pin(m MAC, slot int) bool {
	return t.put(uint64(m)<<16|uint64(slot+1)|macStatic, true)
}

func (t *macTable) put(want uint64, static bool) bool {
	m := MAC(want >> 16)
	h := macHash(m)
	for i := uint64(0); i < macProbe; i++ {
		p := &t.slots[(h+i)&t.mask]
		e := p.Load()
		switch {
		case e == want:
			return true
		case e == 0:
			if p.CompareAndSwap(0, want) {
				return true
			}
			if e = p.Load(); MAC(e>>16) != m {
				continue
			}
			fallthrough
		case MAC(e>>16) == m: // moved to another port
			if e&macStatic != 0 && !static {
				return true
			}
			p.Store(want)
			return true
		}
	}
	t.full.Add(1)
	return false
}

// forget removes every entry pointing at port slot (port detached). A hole
// can cut a probe chain; entries behind it then miss until relearned, and
// their traffic floods meanwhile, which is what an unknown MAC does anyway.
func (t *macTable) forget(slot int) {
	for i := range t.slots {
		e := t.slots[i].Load()
		if e != 0 && int(e&macSlotMsk)-1 == slot {
			t.slots[i].CompareAndSwap(e, 0)
		}
	}
}
