package nbl

import (
	"sync/atomic"
	"unsafe"
)

// CompleteFunc models FWPS_INJECT_COMPLETE0 (spec R37): called once per
// injected list, on the completion stage, with Status set. dispatchLevel is
// always false in Go and kept for fidelity.
type CompleteFunc func(context any, l *NBL, dispatchLevel bool)

// MetaFlags says which vSwitch metadata fields are valid, with the values of
// FWPS_METADATA_FIELD_VSWITCH_* (spec R39).
type MetaFlags uint32

// vSwitch metadata field bits (R39).
const (
	MetaSourcePortID      MetaFlags = 0x4
	MetaSourceNICIndex    MetaFlags = 0x8
	MetaPacketContext     MetaFlags = 0x10
	MetaDestinationPortID MetaFlags = 0x20
)

// L2 flags (FWP_CONDITION_L2_*, R39).
const (
	L2RawIPv4                    uint32 = 0x1
	L2RawIPv6                    uint32 = 0x2
	L2ReclassifyMultiDestination uint32 = 0x8
)

// Stamp indexes NBL.Stamps: monotonic nanoseconds at which a packet passed
// a point of the pipeline, for per-stage latency.
type Stamp int

// Points of the pipeline a packet may be stamped at.
const (
	StampRX       Stamp = iota // received from a port
	StampClassify              // entered classify (ingress)
	StampAbsorb                // handed to a callout worker
	StampInject                // injected back to ingress
	StampTX                    // handed to a port for transmit
	NumStamps
)

// VSwitchMeta is the vSwitch part of FWPS_INCOMING_METADATA_VALUES0 the
// dataplane carries with each packet (R12, R39).
type VSwitchMeta struct {
	Flags             MetaFlags // which of the fields below are valid
	SourcePortID      uint32    // NDIS_SWITCH_PORT_ID; 0 is the default port (R13)
	DestinationPortID uint32    // set on the egress layer
	SourceNICIndex    uint16    // NDIS_SWITCH_NIC_INDEX; 0 = the port's own adapter
	L2Flags           uint32    // L2* flags
	PacketContext     uint64    // opaque vSwitch packet context (R36)
}

// NB models NET_BUFFER: a zero-copy view of DataLength bytes at DataOffset
// of a frame. The frame is a slice of the arena's region (received
// packets), the parent's frame (clones), or caller-owned data (allocated
// lists).
type NB struct {
	// Next is the next buffer of the same packet: a frame larger than
	// one UMEM frame (AF_XDP multi-buffer) is one list whose buffers are
	// the frames it arrived in, chained here as NDIS chains MDLs. Each
	// buffer after the first belongs to a frame descriptor of its own,
	// which goes back to the pool with the list's (List).
	Next       *NB
	DataOffset uint32 // bytes from the frame start to the Ethernet header
	DataLength uint32 // bytes of packet data
	frame      []byte // the whole frame; set by the arena or by Allocate/Clone
}

// List returns the list whose buffer b is (every NB is embedded in one).
func (b *NB) List() *NBL {
	return (*NBL)(unsafe.Add(unsafe.Pointer(b), -int(unsafe.Offsetof(NBL{}.nb))))
}

// Data returns the packet bytes: a slice of the frame, never a copy.
func (b *NB) Data() []byte {
	return b.frame[b.DataOffset : b.DataOffset+b.DataLength : len(b.frame)]
}

// Frame returns the whole frame the buffer points into.
func (b *NB) Frame() []byte { return b.frame }

// SetData sets the data window; it reports false (and changes nothing) if
// the window does not fit in the frame.
func (b *NB) SetData(offset, length uint32) bool {
	if uint64(offset)+uint64(length) > uint64(len(b.frame)) {
		return false
	}
	b.DataOffset, b.DataLength = offset, length
	return true
}

// descState is where a descriptor is, as far as its pool knows.
type descState uint8

const (
	stateFree descState = iota // in a Pool's free list or a Cache
	stateLive                  // handed out; owned by exactly one place
)

// Header holds every field of an NBL that its owner may set; the whole of
// it is cleared in one store when the descriptor is returned to its pool.
type Header struct {
	// Hot fields first: with the NBL's layout these share one cache line.
	Next   *NBL  // next list of a chain (R14); the owner links and cuts it
	Status int32 // NTSTATUS of the last operation; set before completion (R19)
	// InFlight is set while the list is owned by the engine between an
	// accepted injection and its completion (R22b).
	InFlight bool
	// BatchClassify is set by the dataplane while the list is being
	// classified as part of a chain by a callout that allows L2 batch
	// classify; cloning is refused then (R31).
	BatchClassify bool
	// Queue is the index of the pipeline (RX queue) that owns the list;
	// clones inherit it. Injections go back to that queue.
	Queue uint16
	// FloodCopy marks a clone the switch made to send one list to several
	// ports; the switch frees it when its copy is done.
	FloodCopy bool
	// HeldForCopies marks a list whose own journey ended while it still had
	// flood copies in flight; the switch finishes it after the last one.
	HeldForCopies bool

	// Injection state (R20, R24), written by inject/ when a list is
	// accepted. InjectedBy is the injecting handle's id, 0 if never
	// injected; InjectContext comes back from the state query.
	InjectedBy uint32

	// Context is scratch for the current owner (NET_BUFFER_LIST_CONTEXT).
	Context [2]uint64

	VSwitch VSwitchMeta

	FirstNetBuffer *NB  // always &the list's own buffer here
	Parent         *NBL // ParentNetBufferList: set on clones (R33)
	InjectContext  any
	// Complete and CompleteContext are the completion the inject call
	// registered (R18); nil for originals reinjected without one (G4).
	Complete        CompleteFunc
	CompleteContext any

	// Stamps holds monotonic nanoseconds per Stamp; 0 = not stamped.
	Stamps [NumStamps]int64
}

// NBL models NET_BUFFER_LIST (R38) plus the vSwitch metadata, injection tag
// and timestamps the dataplane needs (see Header). Exactly one owner at a
// time; fields are written by the owner only, except the child and
// reference counts, which are atomic because clones and references are
// released on other goroutines.
type NBL struct {
	// Layout: 256 bytes, four cache lines (the arena's array is
	// line-aligned). The first line holds the pool's bookkeeping and the
	// buffer (what a pool round trip and a data access touch), the second
	// the head of Header (chain, status, queue, context, vSwitch
	// metadata); the completion and stamps come after.
	pool      *Pool        // the pool this descriptor belongs to
	childRefs atomic.Int32 // live clones of this list (R33, R34)
	refs      atomic.Int32 // outstanding References (R35)
	index     uint32       // descriptor index; == frame index for frames
	state     descState    // written by the owner and the pool only
	keepFrame bool         // frame descriptor: the frame binding survives reset
	nb        NB

	Header
	_ [256 - 64 - unsafe.Sizeof(Header{})]byte // to 256 bytes (fails to compile if Header grows past it)
}

// Index returns the descriptor's index in its arena; for frame descriptors
// it is the frame index.
func (l *NBL) Index() uint32 { return l.index }

// Pool returns the pool the descriptor belongs to.
func (l *NBL) Pool() *Pool { return l.pool }

// OwnsFrame reports whether the list is a frame descriptor (an original
// received packet's list), as opposed to a clone or an allocated list.
func (l *NBL) OwnsFrame() bool { return l.keepFrame }

// NB returns the list's (only) buffer.
func (l *NBL) NB() *NB { return &l.nb }

// Data returns the packet bytes of the first buffer (zero-copy): the
// whole packet unless it spans several buffers (Chained).
func (l *NBL) Data() []byte { return l.nb.Data() }

// Chained reports whether the packet spans several buffers.
func (l *NBL) Chained() bool { return l.nb.Next != nil }

// DataLen returns the packet's length over all its buffers.
func (l *NBL) DataLen() uint32 {
	n := l.nb.DataLength
	for b := l.nb.Next; b != nil; b = b.Next {
		n += b.DataLength
	}
	return n
}

// ChildRefCount returns the number of live clones (R33).
func (l *NBL) ChildRefCount() int32 { return l.childRefs.Load() }

// RefCount returns the number of outstanding references (R35).
func (l *NBL) RefCount() int32 { return l.refs.Load() }

// Reference keeps the list valid after classify returns (R35); balance it
// with exactly one Dereference.
func (l *NBL) Reference() { l.refs.Add(1) }

// Dereference releases one Reference. Without a matching Reference it
// changes nothing and returns ErrNotReferenced (misuse, R35).
func (l *NBL) Dereference() error {
	for {
		n := l.refs.Load()
		if n <= 0 {
			return ErrNotReferenced
		}
		if l.refs.CompareAndSwap(n, n-1) {
			return nil
		}
	}
}

// Stamp records now (monotonic ns) at point s.
func (l *NBL) Stamp(s Stamp, now int64) { l.Stamps[s] = now }

// IsClone reports whether the list is a clone of another.
func (l *NBL) IsClone() bool { return l.Parent != nil }

// Root returns the original list a clone chain descends from.
func (l *NBL) Root() *NBL {
	for l.Parent != nil {
		l = l.Parent
	}
	return l
}

// reset clears everything an owner may have set, keeping the identity and,
// for frame descriptors, the frame binding.
func (l *NBL) reset() {
	l.Header = Header{FirstNetBuffer: &l.nb}
	l.nb.DataOffset, l.nb.DataLength, l.nb.Next = 0, 0, nil
	if !l.keepFrame {
		l.nb.frame = nil
	}
}
