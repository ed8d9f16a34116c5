package afxdp

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file holds every unsafe operation and raw syscall of the package:
// socket options with struct arguments, the ring mmaps, and the producer
// and consumer words the kernel shares with us.

// kring is one mmap'd AF_XDP ring: fill and completion rings carry uint64
// frame addresses, RX and TX rings carry unix.XDPDesc.
type kring struct {
	mem      []byte
	producer *uint32 // shared with the kernel: atomic access only
	consumer *uint32 // shared with the kernel: atomic access only
	flags    *uint32 // XDP_RING_NEED_WAKEUP
	descs    unsafe.Pointer
	mask     uint32
	size     uint32

	// cached copies, private to the single user of this side of the ring
	cachedProd uint32
	cachedCons uint32
}

func setsockoptPtr(fd, level, opt int, p unsafe.Pointer, size uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(p), size, 0)
	if e != 0 {
		return e
	}
	return nil
}

func getsockoptPtr(fd, level, opt int, p unsafe.Pointer, size uintptr) error {
	sz := uint32(size)
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(p), uintptr(unsafe.Pointer(&sz)), 0)
	if e != 0 {
		return e
	}
	return nil
}

// registerUMEM registers region as the socket's UMEM (XDP_UMEM_REG).
func registerUMEM(fd int, region []byte, frameSize, headroom uint32) error {
	reg := unix.XDPUmemReg{
		Addr:     uint64(uintptr(unsafe.Pointer(&region[0]))),
		Len:      uint64(len(region)),
		Size:     frameSize,
		Headroom: headroom,
	}
	return setsockoptPtr(fd, unix.SOL_XDP, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg))
}

func mmapOffsets(fd int) (unix.XDPMmapOffsets, error) {
	var off unix.XDPMmapOffsets
	err := getsockoptPtr(fd, unix.SOL_XDP, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), unsafe.Sizeof(off))
	return off, err
}

func statistics(fd int) (unix.XDPStatistics, error) {
	var st unix.XDPStatistics
	err := getsockoptPtr(fd, unix.SOL_XDP, unix.XDP_STATISTICS, unsafe.Pointer(&st), unsafe.Sizeof(st))
	return st, err
}

// mapRing mmaps one ring of n entries of entSize bytes at pgoff.
func mapRing(fd int, off unix.XDPRingOffset, pgoff int64, n, entSize uint32) (*kring, error) {
	length := int(off.Desc) + int(n*entSize)
	mem, err := unix.Mmap(fd, pgoff, length, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap ring: %w", err)
	}
	base := unsafe.Pointer(&mem[0])
	return &kring{
		mem:      mem,
		producer: (*uint32)(unsafe.Add(base, off.Producer)),
		consumer: (*uint32)(unsafe.Add(base, off.Consumer)),
		flags:    (*uint32)(unsafe.Add(base, off.Flags)),
		descs:    unsafe.Add(base, off.Desc),
		mask:     n - 1,
		size:     n,
	}, nil
}

func (r *kring) unmap() {
	if r != nil && r.mem != nil {
		unix.Munmap(r.mem)
		r.mem = nil
	}
}

// Producer side (fill, TX rings: we produce, the kernel consumes).

// free returns how many entries we may produce, refreshing the cached
// consumer only when the cache says fewer than want.
func (r *kring) prodFree(want uint32) uint32 {
	free := r.size - (r.cachedProd - r.cachedCons)
	if free < want {
		// Acquire pairs with the kernel's release of the consumer index.
		r.cachedCons = atomic.LoadUint32(r.consumer)
		free = r.size - (r.cachedProd - r.cachedCons)
	}
	return free
}

func (r *kring) addr(i uint32) *uint64 {
	return (*uint64)(unsafe.Add(r.descs, uintptr(i&r.mask)*8))
}

func (r *kring) desc(i uint32) *unix.XDPDesc {
	return (*unix.XDPDesc)(unsafe.Add(r.descs, uintptr(i&r.mask)*unsafe.Sizeof(unix.XDPDesc{})))
}

// submit publishes n produced entries. Release pairs with the kernel's
// acquire of the producer index.
func (r *kring) submit(n uint32) {
	r.cachedProd += n
	atomic.StoreUint32(r.producer, r.cachedProd)
}

// Consumer side (RX, completion rings: the kernel produces, we consume).

// avail returns how many entries we may consume.
func (r *kring) consAvail(want uint32) uint32 {
	avail := r.cachedProd - r.cachedCons
	if avail < want {
		// Acquire pairs with the kernel's release of the producer index.
		r.cachedProd = atomic.LoadUint32(r.producer)
		avail = r.cachedProd - r.cachedCons
	}
	return avail
}

// release returns n consumed entries to the kernel.
func (r *kring) release(n uint32) {
	r.cachedCons += n
	atomic.StoreUint32(r.consumer, r.cachedCons)
}

func (r *kring) needWakeup() bool {
	return atomic.LoadUint32(r.flags)&unix.XDP_RING_NEED_WAKEUP != 0
}

// kick wakes the kernel's TX processing (sendto with MSG_DONTWAIT).
func kick(fd int) error {
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	switch e {
	case 0, unix.EAGAIN, unix.EBUSY, unix.ENOBUFS, unix.ENETDOWN:
		return nil
	}
	return e
}

// wakeRX asks the kernel to refill from the fill ring (recvfrom with
// MSG_DONTWAIT), used when the fill ring has NEED_WAKEUP set.
func wakeRX(fd int) {
	unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
}

// mapAligned maps size bytes of anonymous memory starting on an align
// boundary (a power of two): it maps size+align and unmaps the parts before
// and after. unix.Mmap cannot do it (its Munmap takes only whole mappings),
// hence the pointer calls.
func mapAligned(size, align int) ([]byte, error) {
	total := uintptr(size + align)
	p, err := unix.MmapPtr(-1, 0, nil, total, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, err
	}
	head := (uintptr(align) - uintptr(p)%uintptr(align)) % uintptr(align)
	aligned := unsafe.Add(p, head)
	if head > 0 {
		unix.MunmapPtr(p, head)
	}
	if tail := total - head - uintptr(size); tail > 0 {
		unix.MunmapPtr(unsafe.Add(aligned, size), tail)
	}
	return unsafe.Slice((*byte)(aligned), size), nil
}

// unmapRegion unmaps a region from mapAligned.
func unmapRegion(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(b)), uintptr(len(b)))
}
