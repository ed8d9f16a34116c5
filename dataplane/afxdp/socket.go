package afxdp

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wfpxdp/wfpxdp/nbl"
)

// Errors that name what is missing.
var (
	ErrNotSupported = errors.New("AF_XDP sockets are not available (kernel built without CONFIG_XDP_SOCKETS?)")
	ErrPermission   = errors.New("permission denied: AF_XDP needs CAP_NET_RAW (and CAP_NET_ADMIN, CAP_BPF for the XDP program); run as root")
)

// BindMode chooses copy or zero-copy binding.
type BindMode uint8

// Bind modes. Auto tries zero-copy and falls back to copy mode (veth only
// has copy mode).
const (
	BindAuto BindMode = iota
	BindCopy
	BindZeroCopy
)

const defaultRingSize = 2048

// SocketOptions configures one AF_XDP socket.
type SocketOptions struct {
	Ifindex    int
	Queue      int
	RingSize   uint32 // entries in each of the four rings, a power of two; 2048
	Mode       BindMode
	NeedWakeup bool    // XDP_USE_NEED_WAKEUP: kick the kernel only when it asks
	Shared     *Socket // share this socket's UMEM (XDP_SHARED_UMEM); nil: register the arena's region
	// MultiBuffer binds with XDP_USE_SG: a frame larger than a UMEM frame
	// arrives as several descriptors and becomes one list with a chain of
	// buffers, and such a list leaves as several. Sockets sharing a UMEM
	// take the first socket's setting.
	MultiBuffer bool
}

// Socket is one AF_XDP socket bound to an interface queue, over the
// arena's region as UMEM. Threading contract: the fill and RX rings are
// used by one goroutine (the ingress stage), the TX ring by one (egress),
// the completion ring by one (completion); the counters may be read by
// anyone.
type Socket struct {
	fd    int
	opts  SocketOptions
	arena *nbl.Arena
	fill  *kring
	comp  *kring
	rx    *kring
	tx    *kring
	zcopy bool
	sg    bool // bound with XDP_USE_SG

	// A packet whose descriptors have been read up to one with
	// XDP_PKT_CONTD: its first list and last buffer; the receive side's.
	rxHead *nbl.NBL
	rxTail *nbl.NB

	// Frames in the kernel's hands, per ring pair: written by the stage
	// that owns the ring side, per batch.
	inFill  atomic.Int64 // submitted to fill, not yet received
	inTx    atomic.Int64 // submitted to TX, not yet reaped
	kicks   atomic.Uint64
	wakeups atomic.Uint64
}

// Open creates, configures, maps and binds an AF_XDP socket.
func Open(arena *nbl.Arena, o SocketOptions) (_ *Socket, err error) {
	if o.RingSize == 0 {
		o.RingSize = defaultRingSize
	}
	if o.RingSize&(o.RingSize-1) != 0 {
		return nil, fmt.Errorf("afxdp: ring size %d is not a power of two", o.RingSize)
	}
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.EAFNOSUPPORT):
		return nil, ErrNotSupported
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		return nil, ErrPermission
	case err != nil:
		return nil, fmt.Errorf("afxdp: socket: %w", err)
	}
	s := &Socket{fd: fd, opts: o, arena: arena}
	defer func() {
		if err != nil {
			s.unmapAll()
			unix.Close(fd)
		}
	}()
	if o.Shared == nil {
		if err := registerUMEM(fd, arena.Region(), uint32(arena.FrameSize()), 0); err != nil {
			if errors.Is(err, unix.ENOMEM) || errors.Is(err, unix.EPERM) {
				return nil, fmt.Errorf("afxdp: register umem of %d bytes: %w (raise RLIMIT_MEMLOCK or run with CAP_IPC_LOCK)", len(arena.Region()), err)
			}
			return nil, fmt.Errorf("afxdp: register umem: %w", err)
		}
	}
	for _, opt := range []int{unix.XDP_UMEM_FILL_RING, unix.XDP_UMEM_COMPLETION_RING, unix.XDP_RX_RING, unix.XDP_TX_RING} {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, opt, int(o.RingSize)); err != nil {
			return nil, fmt.Errorf("afxdp: set ring size (opt %d): %w", opt, err)
		}
	}
	off, err := mmapOffsets(fd)
	if err != nil {
		return nil, fmt.Errorf("afxdp: mmap offsets: %w", err)
	}
	descSize := uint32(16) // sizeof(struct xdp_desc)
	if s.rx, err = mapRing(fd, off.Rx, unix.XDP_PGOFF_RX_RING, o.RingSize, descSize); err != nil {
		return nil, err
	}
	if s.tx, err = mapRing(fd, off.Tx, unix.XDP_PGOFF_TX_RING, o.RingSize, descSize); err != nil {
		return nil, err
	}
	if s.fill, err = mapRing(fd, off.Fr, unix.XDP_UMEM_PGOFF_FILL_RING, o.RingSize, 8); err != nil {
		return nil, err
	}
	if s.comp, err = mapRing(fd, off.Cr, unix.XDP_UMEM_PGOFF_COMPLETION_RING, o.RingSize, 8); err != nil {
		return nil, err
	}
	// The producer side of fill and TX starts at the kernel's indices.
	s.fill.cachedProd, s.fill.cachedCons = atomic.LoadUint32(s.fill.producer), atomic.LoadUint32(s.fill.consumer)
	s.tx.cachedProd, s.tx.cachedCons = atomic.LoadUint32(s.tx.producer), atomic.LoadUint32(s.tx.consumer)
	s.rx.cachedProd, s.rx.cachedCons = atomic.LoadUint32(s.rx.producer), atomic.LoadUint32(s.rx.consumer)
	s.comp.cachedProd, s.comp.cachedCons = atomic.LoadUint32(s.comp.producer), atomic.LoadUint32(s.comp.consumer)

	var flags uint16
	if o.NeedWakeup {
		flags |= unix.XDP_USE_NEED_WAKEUP
	}
	if o.MultiBuffer {
		flags |= unix.XDP_USE_SG
	}
	sa := &unix.SockaddrXDP{Ifindex: uint32(o.Ifindex), QueueID: uint32(o.Queue)}
	if o.Shared != nil {
		sa.Flags |= unix.XDP_SHARED_UMEM
		sa.SharedUmemFD = uint32(o.Shared.fd)
	}
	bind := func(mode uint16) error {
		sa.Flags = sa.Flags&unix.XDP_SHARED_UMEM | flags | mode
		return unix.Bind(fd, sa)
	}
	bindOnce := func() (err error) {
		switch {
		case o.Shared != nil:
			// A socket sharing a UMEM takes its owner's mode and wakeup flags;
			// the kernel refuses them on the bind (EINVAL).
			sa.Flags = unix.XDP_SHARED_UMEM
			err = unix.Bind(fd, sa)
			s.zcopy = o.Shared.zcopy
			s.opts.NeedWakeup = o.Shared.opts.NeedWakeup
			s.sg = o.Shared.sg
		case o.Mode == BindCopy:
			err = bind(unix.XDP_COPY)
		case o.Mode == BindZeroCopy:
			err, s.zcopy = bind(unix.XDP_ZEROCOPY), true
		default:
			if err = bind(unix.XDP_ZEROCOPY); err == nil {
				s.zcopy = true
			} else {
				err = bind(unix.XDP_COPY)
			}
		}
		return err
	}
	// A queue stays bound for a moment after the socket that had it is
	// closed: the kernel clears the queue's pool from a work item, which a
	// busy CPU (a polling lcore's) can delay by milliseconds. EBUSY is
	// retried for a while before it is taken as another socket's queue.
	for deadline := time.Now().Add(bindBusyWait); ; {
		if err = bindOnce(); !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err == nil && o.Shared == nil {
		s.sg = o.MultiBuffer
	}
	if err != nil {
		if errors.Is(err, unix.ENODEV) {
			return nil, fmt.Errorf("afxdp: bind ifindex %d queue %d: no such interface or queue: %w", o.Ifindex, o.Queue, err)
		}
		if errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("afxdp: bind ifindex %d queue %d: another AF_XDP socket holds this queue (another process's; stop it, or use another queue): %w", o.Ifindex, o.Queue, err)
		}
		return nil, fmt.Errorf("afxdp: bind ifindex %d queue %d: %w", o.Ifindex, o.Queue, err)
	}
	return s, nil
}

// bindBusyWait bounds how long a bind retries EBUSY (see NewSocket).
const bindBusyWait = 2 * time.Second

// FD returns the socket's file descriptor (for the XSKMAP).
func (s *Socket) FD() int { return s.fd }

// ZeroCopy reports whether the socket is bound in zero-copy mode.
func (s *Socket) ZeroCopy() bool { return s.zcopy }

// Stats returns the kernel's XDP_STATISTICS for the socket.
func (s *Socket) Stats() (unix.XDPStatistics, error) { return statistics(s.fd) }

// Kicks returns the TX kicks (sendto) and RX wakeups (recvfrom) made.
func (s *Socket) Kicks() (tx, rx uint64) { return s.kicks.Load(), s.wakeups.Load() }

func (s *Socket) unmapAll() {
	if s == nil {
		return
	}
	s.rx.unmap()
	s.tx.unmap()
	s.fill.unmap()
	s.comp.unmap()
}

// refill tops the fill ring up with free frames from frames and returns
// how many it gave (they are scratch[:n]).
func (s *Socket) refill(frames *nbl.Cache, scratch []*nbl.NBL) int {
	free := s.fill.prodFree(uint32(len(scratch)))
	if free < uint32(len(scratch)) {
		return 0 // refill in whole bursts
	}
	n := frames.Get(scratch)
	if n == 0 {
		return 0
	}
	idx := s.fill.cachedProd
	for i, l := range scratch[:n] {
		*s.fill.addr(idx + uint32(i)) = s.arena.Addr(l)
	}
	s.inFill.Add(int64(n))
	s.fill.submit(uint32(n))
	return n
}

// receive takes up to len(dst) received frames off the RX ring, clearing
// their bits in given (frames handed to the kernel, by index). On a
// multi-buffer socket, descriptors marked XDP_PKT_CONTD are chained to
// the ones after them into one list (R38's buffer chain), handed out once
// its last descriptor is read; a packet cut by the end of the batch waits
// in rxHead for the rest.
func (s *Socket) receive(dst []*nbl.NBL, given []uint64) int {
	n := s.rx.consAvail(uint32(len(dst)))
	n = min(n, uint32(len(dst))) // a packet has one descriptor at least
	idx := s.rx.cachedCons
	got := 0
	for i := uint32(0); i < n; i++ {
		d := s.rx.desc(idx + i)
		l, f, ok := s.arena.Received(d.Addr, d.Len)
		if !ok {
			continue // the kernel never hands out addresses we did not give
		}
		given[f/64] &^= 1 << (f % 64)
		if !s.sg {
			dst[got] = l
			got++
			continue
		}
		if s.rxTail != nil {
			s.rxTail.Next = l.NB()
		} else {
			s.rxHead = l
		}
		s.rxTail = l.NB()
		if d.Options&unix.XDP_PKT_CONTD != 0 {
			continue
		}
		dst[got] = s.rxHead
		got++
		s.rxHead, s.rxTail = nil, nil
	}
	if n > 0 {
		s.rx.release(n)
		s.inFill.Add(-int64(n))
	}
	return got
}

// txEntry is one descriptor on the TX ring: the list it sends (nil for
// the second and later descriptors of a multi-buffer packet) and, when the
// list's data was not in the UMEM, the frame it was copied into.
type txEntry struct {
	list *nbl.NBL
	copy *nbl.NBL
	addr uint64
}

// frameAddr returns the UMEM address of a list's data if it lies in the
// region: originals and clones of originals (zero-copy).
func (s *Socket) frameAddr(l *nbl.NBL) (uint64, bool) {
	root := l.Root()
	if !root.OwnsFrame() {
		return 0, false
	}
	return s.arena.Addr(root) + uint64(l.NB().DataOffset), true
}

// close closes the socket and unmaps its rings.
func (s *Socket) close() {
	s.closeFD()
	s.unmapAll()
}

// closeFD closes the socket; the kernel then uses none of its rings or
// frames. The rings stay mapped until unmapAll.
func (s *Socket) closeFD() {
	if s.fd >= 0 {
		unix.Close(s.fd)
		s.fd = -1
	}
}

// flushTX wakes the kernel's TX processing. In copy mode each sendto sends
// at most a small batch (32 in current kernels) and returns, so it kicks
// until the kernel has taken every descriptor off the TX ring, up to a
// bound; in zero-copy mode one kick starts the driver.
func (s *Socket) flushTX() {
	for i := 0; i < 64; i++ {
		s.kicks.Add(1)
		if kick(s.fd) != nil || s.zcopy {
			return
		}
		if atomic.LoadUint32(s.tx.consumer) == atomic.LoadUint32(s.tx.producer) {
			return
		}
	}
}
