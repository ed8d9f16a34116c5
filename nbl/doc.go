// Package nbl holds the packet descriptors of the dataplane: NBL and NB,
// modelled on NDIS's NET_BUFFER_LIST and NET_BUFFER (spec R38), and the
// fixed pools they live in.
//
// Everything is preallocated by an Arena: one descriptor per frame of a
// shared byte region (the AF_XDP UMEM, or plain memory for the in-memory
// port), whose index equals the frame's index, and a separate reserve of
// descriptors without frames of their own for clones (R33) and for lists
// allocated over caller-owned data (R32). Nothing is allocated per packet:
//
//	rx:       frame i arrives  ->  Arena.Desc(i) is its NBL, NB.Data() a
//	          slice of frame i (zero-copy)
//	stages:   the *NBL moves through rings; one owner at a time
//	done:     the owner returns it through a Cache (per pinned goroutine)
//	          to its Pool, which resets it for the next frame
//
// A Pool is a fixed free list shared by all goroutines behind a mutex that
// is taken once per refill or flush of a Cache, never per packet; a Cache is
// the per-core cache of DPDK's mempool and belongs to one goroutine. Pools
// detect a descriptor returned twice, returned to the wrong pool, or
// returned while it still has clones or references, and count it instead of
// corrupting the free list.
package nbl
