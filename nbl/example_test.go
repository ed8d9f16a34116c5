package nbl_test

import (
	"fmt"

	"github.com/wfpxdp/wfpxdp/nbl"
)

// A stage takes frame descriptors from its cache, works on the frames in
// place (zero-copy), and returns them in a batch.
func ExampleCache() {
	arena, err := nbl.NewArena(nbl.Config{Frames: 64, FrameSize: 2048, Reserve: 16})
	if err != nil {
		panic(err)
	}
	frames := arena.Frames().NewCache(32)
	batch := make([]*nbl.NBL, 8)
	n := frames.Get(batch)
	for _, l := range batch[:n] {
		l.NB().SetData(256, 64)    // 256 bytes of headroom, 64-byte frame
		copy(l.Data(), "\xff\xff") // writes straight into the region
	}
	l := batch[0]
	fmt.Println("got", n, "- descriptor index is frame index:", arena.Addr(l) == uint64(l.Index())*2048)
	if err := frames.Put(batch[:n]); err != nil {
		panic(err)
	}
	frames.Flush()
	fmt.Println("free again:", arena.Frames().Available())
	// Output:
	// got 8 - descriptor index is frame index: true
	// free again: 64
}

// A clone shares its parent's data; the parent cannot be returned until the
// clone is freed (R33, R34).
func ExampleCache_Clone() {
	arena, _ := nbl.NewArena(nbl.Config{Frames: 4, FrameSize: 2048, Reserve: 4})
	frames, reserve := arena.Frames().NewCache(4), arena.Reserve().NewCache(4)
	one := make([]*nbl.NBL, 1)
	frames.Get(one)
	parent := one[0]
	clone := reserve.Clone(parent)
	fmt.Println("children:", parent.ChildRefCount())
	fmt.Println("return parent early:", frames.Put(one))
	reserve.Put([]*nbl.NBL{clone})
	fmt.Println("children:", parent.ChildRefCount(), "return parent:", frames.Put(one))
	// Output:
	// children: 1
	// return parent early: nbl: descriptor returned while it has live clones or references
	// children: 0 return parent: <nil>
}
