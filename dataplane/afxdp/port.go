package afxdp

import (
	"fmt"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/wfpxdp/wfpxdp/nbl"
	"github.com/wfpxdp/wfpxdp/ring"
)

// Port is one queue of an interface as a dataplane.Driver: an AF_XDP
// socket over the switch's arena (the UMEM), registered in the interface's
// XSKMAP.
//
// Zero-copy end to end: a frame received on one port is sent on another by
// putting its UMEM address on that port's TX ring. Lists whose data is not
// in the UMEM (allocated over caller data) are copied into a free frame and
// counted (Copies).
type Port struct {
	name string
	sock *Socket
	prog *Program
	tx   *ring.SPSC[txEntry] // lists on the TX ring, in order (egress -> completion)

	rxScratch []*nbl.NBL // fill refill scratch; ingress only
	// given has a bit per frame handed to the kernel to receive into and
	// not received yet: frames on the fill ring, the RX ring, and those the
	// kernel took off the fill ring and keeps in its own free list. The
	// ingress stage writes it; after Close, once the socket is closed, the
	// completion side returns every frame still marked.
	given     []uint64
	scan      int        // reclaim position in given; completion side
	fdClosed  bool       // the socket is closed; completion side
	copyCache *nbl.Cache // frames for TX copies; egress only
	pending   []txEntry  // reap scratch; completion only
	entries   []txEntry  // transmit scratch (a field: zeroing a stack array per call cost 12 % of l2fwd); egress only

	copies     atomic.Uint64
	copyFailed atomic.Uint64
	txMismatch atomic.Uint64 // completions whose address was not the expected one
	closed     atomic.Bool
	released   atomic.Bool
	dead       atomic.Pointer[error]              // set when the interface went away
	lastStats  atomic.Pointer[unix.XDPStatistics] // the kernel's counters as the socket closed
	polls      uint32                             // Receive calls; ingress only
	fillTarget int64                              // most frames kept on the fill ring
}

// Err reports why the port stopped working (its interface was removed or
// went down for good), or nil. The switch detaches a port whose driver
// reports an error.
func (p *Port) Err() error {
	if e := p.dead.Load(); e != nil {
		return *e
	}
	return nil
}

// checkLink reads the socket's pending error: the kernel sets ENETDOWN on
// an AF_XDP socket whose device is unregistered.
func (p *Port) checkLink() {
	v, err := unix.GetsockoptInt(p.sock.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil && v == 0 {
		return
	}
	if err == nil {
		err = unix.Errno(v)
	}
	e := fmt.Errorf("port %s: interface gone: %w", p.name, err)
	p.dead.CompareAndSwap(nil, &e)
}

// PortOptions configure a port.
type PortOptions struct {
	Name   string
	Socket SocketOptions
	// Program is the XDP program of the interface; the port registers its
	// socket in the program's XSKMAP at the socket's queue.
	Program *Program
	Batch   int // fill refill burst; 64
	// FillTarget bounds the frames the port keeps on its fill ring (and so
	// away from every other port sharing the UMEM); by default
	// DefaultFillTarget(RingSize, frames in the UMEM, 1). The UMEM should
	// hold the sum of the ports' targets and what is in flight.
	FillTarget int
}

// DefaultFillTarget is the fill ring depth for a socket with rings of
// ringSize entries (0: the default, 2048) over a UMEM of frames shared by
// sockets sockets: three quarters of the ring, but no more than half the
// UMEM split between the sockets.
//
// Depth matters beyond not starving the kernel: in copy mode the kernel
// writes each frame on the CPU that receives it, and the switch then reads
// its header on another. With a shallow ring the same few hundred frames
// come round again while their lines still sit in the switch CPU's cache,
// so every kernel write first has to take the line back from that cache.
// Measured here (afxdp-rxdrop, 2048-entry rings, 8192 frames): fill 512
// received 8.7 Mpps, fill 1536 10.1–10.5 Mpps, with the same generator.
func DefaultFillTarget(ringSize uint32, frames, sockets int) int {
	if ringSize == 0 {
		ringSize = defaultRingSize
	}
	return max(min(int(ringSize)*3/4, frames/(2*max(sockets, 1))), 1)
}

// NewPort opens the socket and registers it with the program.
func NewPort(arena *nbl.Arena, o PortOptions) (*Port, error) {
	if o.Batch == 0 {
		o.Batch = 64
	}
	s, err := Open(arena, o.Socket)
	if err != nil {
		return nil, fmt.Errorf("port %s: %w", o.Name, err)
	}
	q, err := ring.NewSPSC[txEntry](int(s.opts.RingSize))
	if err != nil {
		s.close()
		return nil, err
	}
	if o.FillTarget <= 0 {
		o.FillTarget = DefaultFillTarget(s.opts.RingSize, arena.NumFrames(), 1)
	}
	p := &Port{name: o.Name, sock: s, prog: o.Program, tx: q, fillTarget: int64(max(o.FillTarget, o.Batch)),
		rxScratch: make([]*nbl.NBL, o.Batch), copyCache: arena.Frames().NewCache(16),
		given:   make([]uint64, (arena.NumFrames()+63)/64),
		pending: make([]txEntry, 256), entries: make([]txEntry, 64)}
	if o.Program != nil {
		if err := o.Program.Register(o.Socket.Queue, s.FD()); err != nil {
			s.close()
			return nil, fmt.Errorf("port %s: %w", o.Name, err)
		}
	}
	return p, nil
}

// Socket returns the port's socket.
func (p *Port) Socket() *Socket { return p.sock }

// Name implements dataplane.Driver.
func (p *Port) Name() string { return p.name }

// Receive implements dataplane.Driver: it tops the fill ring up from frames,
// then takes received frames off the RX ring, waking the kernel when it
// asks.
func (p *Port) Receive(dst []*nbl.NBL, frames *nbl.Cache) int {
	if p.closed.Load() || p.dead.Load() != nil {
		return 0
	}
	if p.polls++; p.polls&1023 == 0 {
		p.checkLink()
	}
	s := p.sock
	if s.inFill.Load()+int64(len(p.rxScratch)) > p.fillTarget {
		// enough frames with the kernel already
	} else if k := s.refill(frames, p.rxScratch); k > 0 {
		for _, l := range p.rxScratch[:k] {
			i := l.Index()
			p.given[i/64] |= 1 << (i % 64)
		}
	}
	n := s.receive(dst, p.given)
	// In copy mode the kernel fills from the RX path itself; a wakeup
	// syscall only matters to a zero-copy driver.
	if n == 0 && s.zcopy && s.opts.NeedWakeup && s.fill.needWakeup() {
		s.wakeups.Add(1)
		wakeRX(s.fd)
	}
	return n
}

// txMinBurst is the fewest lists Transmit puts on the TX ring when it
// cannot take all it is offered.
const txMinBurst = 32

// Transmit implements dataplane.Driver. A multi-buffer list leaves as one
// descriptor per buffer, XDP_PKT_CONTD on all but the last.
func (p *Port) Transmit(src []*nbl.NBL) int {
	if p.closed.Load() || p.dead.Load() != nil {
		return 0
	}
	s := p.sock
	want := len(src) // descriptors: one per buffer
	if s.sg {
		for _, l := range src {
			for b := l.NB().Next; b != nil; b = b.Next {
				want++
			}
		}
	}
	room := min(int(s.tx.prodFree(uint32(want))), p.tx.Free())
	if room < want && room < min(txMinBurst, int(s.opts.RingSize)/2) {
		// Room for only a few: wait for a fuller burst rather than pay a
		// kick (in copy mode, a sendto doing up to 32 frames) for them.
		return 0
	}
	idx := s.tx.cachedProd
	descs, sent := 0, 0
	entries := p.entries
	for _, l := range src {
		if l.Chained() {
			k := p.putChain(l, idx, descs, room)
			if k == 0 {
				break
			}
			descs += k
			sent++
			continue
		}
		if descs == room {
			break
		}
		e := txEntry{list: l}
		addr, ok := s.frameAddr(l)
		if !ok { // data outside the UMEM: copy into a frame
			var one [1]*nbl.NBL
			if p.copyCache.Get(one[:]) == 0 {
				p.copyFailed.Add(1)
				break
			}
			c := one[0]
			copy(c.NB().Frame()[rxHeadroom:], l.Data())
			c.NB().SetData(rxHeadroom, l.NB().DataLength)
			e.copy = c
			addr = s.arena.Addr(c) + rxHeadroom
			p.copies.Add(1)
		}
		e.addr = addr
		d := s.tx.desc(idx + uint32(descs))
		d.Addr, d.Len, d.Options = addr, l.NB().DataLength, 0
		entries[descs%len(entries)] = e
		descs++
		if descs%len(entries) == 0 {
			p.tx.EnqueueBurst(entries[:])
		}
		sent++
	}
	if rem := descs % len(entries); rem > 0 {
		p.tx.EnqueueBurst(entries[:rem])
	}
	if descs > 0 {
		s.inTx.Add(int64(descs))
		s.tx.submit(uint32(descs))
		if !s.opts.NeedWakeup || s.tx.needWakeup() {
			s.flushTX()
		}
	}
	return sent
}

// putChain writes the descriptors of multi-buffer list l at TX ring index
// idx+descs (entries for them in p.entries, flushed to p.tx as they fill)
// and returns how many, or 0 when they do not fit in room or the socket
// cannot send chains (bound without MultiBuffer; the switch binds every
// socket of a UMEM alike, so a chain never meets one).
func (p *Port) putChain(l *nbl.NBL, idx uint32, descs, room int) int {
	s := p.sock
	k := 0
	for b := l.NB(); b != nil; b = b.Next {
		k++
	}
	addr, ok := s.frameAddr(l)
	if descs+k > room || !s.sg || !ok {
		return 0
	}
	entries := p.entries
	e := txEntry{list: l, addr: addr}
	for b := l.NB(); b != nil; b = b.Next {
		if b != l.NB() {
			e = txEntry{addr: s.arena.Addr(b.List()) + uint64(b.DataOffset)}
		}
		d := s.tx.desc(idx + uint32(descs))
		d.Addr, d.Len, d.Options = e.addr, b.DataLength, 0
		if b.Next != nil {
			d.Options = unix.XDP_PKT_CONTD
		}
		entries[descs%len(entries)] = e
		descs++
		if descs%len(entries) == 0 {
			p.tx.EnqueueBurst(entries[:])
		}
	}
	return k
}

// Reap implements dataplane.Driver: completions arrive in TX order; each
// gives back its list and, for a copied one, the copy's frame. It kicks the
// kernel when TX is outstanding and it asks.
func (p *Port) Reap(dst []*nbl.NBL) int {
	s := p.sock
	want := min(len(dst)/2, len(p.pending))
	if p.closed.Load() && (s.inTx.Load() == 0 || p.dead.Load() != nil) {
		return p.reapClosed(dst, want)
	}
	n := int(min(s.comp.consAvail(uint32(want)), uint32(want)))
	got := 0
	if n > 0 {
		k := p.tx.DequeueBurst(p.pending[:n])
		idx := s.comp.cachedCons
		for i, e := range p.pending[:k] {
			if *s.comp.addr(idx + uint32(i)) != e.addr {
				p.txMismatch.Add(1)
			}
			if e.list == nil {
				continue // a later buffer of a multi-buffer packet: its list went with the first
			}
			dst[got] = e.list
			got++
			if e.copy != nil {
				dst[got] = e.copy
				got++
			}
		}
		s.comp.release(uint32(n))
		s.inTx.Add(-int64(n))
	} else if atomic.LoadUint32(s.tx.consumer) != atomic.LoadUint32(s.tx.producer) && (!s.opts.NeedWakeup || s.tx.needWakeup()) {
		// (the published producer, not Transmit's cached one: Reap may run
		// on another goroutine)
		s.flushTX() // descriptors still on the TX ring: the kernel needs a kick
	}
	return got
}

// reapClosed runs on the completion side after Close, once TX has drained
// (or the device is gone, when the TX FIFO will never complete and is ours
// again): it closes the socket, after which the kernel touches none of our
// frames, then hands back every frame still marked as given for RX.
func (p *Port) reapClosed(dst []*nbl.NBL, want int) int {
	s := p.sock
	got := 0
	if k := p.tx.DequeueBurst(p.pending[:want]); k > 0 { // dead device only
		for _, e := range p.pending[:k] {
			if e.list == nil {
				continue
			}
			dst[got] = e.list
			got++
			if e.copy != nil {
				dst[got] = e.copy
				got++
			}
		}
		s.inTx.Add(-int64(k))
		return got
	}
	if !p.fdClosed {
		p.fdClosed = true
		if st, err := statistics(s.fd); err == nil {
			p.lastStats.Store(&st)
		}
		s.closeFD()
	}
	for p.scan < len(p.given)*64 && got < len(dst) {
		w, b := p.scan/64, p.scan%64
		p.scan++
		if p.given[w]&(1<<b) == 0 {
			continue
		}
		p.given[w] &^= 1 << b
		l := s.arena.Desc(uint32(p.scan - 1))
		dst[got] = l
		got++
		s.inFill.Add(-1)
	}
	if p.scan >= len(p.given)*64 && p.released.CompareAndSwap(false, true) {
		s.inFill.Store(0)
		s.unmapAll()
	}
	return got
}

// Held implements dataplane.Driver: frames on the fill and RX rings plus
// lists on the TX and completion rings.
func (p *Port) Held() int {
	return int(p.sock.inFill.Load() + p.sock.inTx.Load())
}

// Close implements dataplane.Driver: the socket leaves the XSKMAP (no more
// RX). Reap then returns the TX in flight as it completes, closes the
// socket, and returns every frame the kernel had to receive into.
func (p *Port) Close(frames *nbl.Cache) error {
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	if p.prog != nil {
		p.prog.Unregister(p.sock.opts.Queue)
	}
	if h := p.sock.rxHead; h != nil { // the first buffers of a packet whose rest never came
		p.sock.rxHead, p.sock.rxTail = nil, nil
		frames.Put([]*nbl.NBL{h})
	}
	p.copyCache.Flush()
	return nil
}

// XDPStats returns the kernel's XDP_STATISTICS for the port's socket; after
// the socket has closed, the last values it had.
func (p *Port) XDPStats() (unix.XDPStatistics, error) {
	if st := p.lastStats.Load(); st != nil {
		return *st, nil
	}
	return p.sock.Stats()
}

// Counters returns TX copies made, copies that failed for lack of a frame,
// and completions whose address did not match.
func (p *Port) Counters() (copies, copyFailed, mismatches uint64) {
	return p.copies.Load(), p.copyFailed.Load(), p.txMismatch.Load()
}

// rxHeadroom is where copy-mode AF_XDP puts a received frame in its UMEM
// frame: XDP_PACKET_HEADROOM bytes in.
const rxHeadroom = 256

// MaxFrameLen is the longest frame (Ethernet header included, no FCS) a
// UMEM frame of frameSize bytes carries, received or sent.
func MaxFrameLen(frameSize int) int { return frameSize - rxHeadroom }

// MaxDescsPerFrame is the most descriptors the kernel takes for one frame
// on TX (net.core.max_skb_frags + 1; beyond it the frame is counted
// tx_invalid_descs and lost), so the most UMEM frames a multi-buffer
// frame may span.
const MaxDescsPerFrame = 18

// MaxMultiBufferFrameLen is the longest frame a multi-buffer socket over
// UMEM frames of frameSize bytes carries.
func MaxMultiBufferFrameLen(frameSize int) int { return MaxDescsPerFrame * MaxFrameLen(frameSize) }

// MaxMTU is the largest interface MTU whose frames, with one VLAN tag,
// fit a UMEM frame of frameSize bytes (or, with multiBuffer, the frames a
// multi-buffer frame may span).
func MaxMTU(frameSize int, multiBuffer bool) int {
	if multiBuffer {
		return MaxMultiBufferFrameLen(frameSize) - 14 - 4
	}
	return MaxFrameLen(frameSize) - 14 - 4
}

// CheckMTU tells whether interface ifname, with MTU mtu, can be a port of a
// switch whose UMEM frames are frameSize bytes, with or without
// multi-buffer sockets. A veth or NIC accepts frames of its MTU plus an
// Ethernet header and a VLAN tag; a frame the socket cannot take would be
// lost in the kernel with no counter the switch can read, so such a port
// is refused before it starts.
func CheckMTU(ifname string, mtu, frameSize int, multiBuffer bool) error {
	if mtu <= MaxMTU(frameSize, multiBuffer) {
		return nil
	}
	if multiBuffer {
		return fmt.Errorf("%s: MTU %d needs frames of %d bytes with a VLAN tag, but a multi-buffer frame spans at most %d UMEM frames of %d bytes (MTU up to %d): lower the MTU (ip link set %s mtu %d)",
			ifname, mtu, mtu+18, MaxDescsPerFrame, MaxFrameLen(frameSize), MaxMTU(frameSize, true), ifname, MaxMTU(frameSize, true))
	}
	fix := fmt.Sprintf("turn multi-buffer on (switch.multi_buffer: auto or on), or lower the MTU (ip link set %s mtu %d)", ifname, MaxMTU(frameSize, false))
	if frameSize < 4096 && mtu <= MaxMTU(4096, false) {
		fix = fmt.Sprintf("set switch.frame_size: 4096 (MTU up to %d), %s", MaxMTU(4096, false), fix)
	}
	return fmt.Errorf("%s: MTU %d needs frames of %d bytes with a VLAN tag, but a %d-byte UMEM frame carries %d (frame size less %d bytes of headroom; MTU up to %d) and multi-buffer is off: %s",
		ifname, mtu, mtu+18, frameSize, MaxFrameLen(frameSize), rxHeadroom, MaxMTU(frameSize, false), fix)
}
