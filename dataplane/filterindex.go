package dataplane

// The filter index: per layer, the filters that test a key (a
// destination MAC, an ether type), found by the key; the forwarding
// table (table.go) shares only its hash.

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
