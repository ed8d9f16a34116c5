package dataplane

import (
	"fmt"
	"sync/atomic"

	"github.com/wfpxdp/wfpxdp/nbl"
)

// Driver is one queue of a network port as the switch drives it: the
// in-memory port (dataplane/memport) and the AF_XDP port implement it.
//
// Threading contract: Receive is called only by the queue's ingress stage,
// Transmit only by its egress stage, Reap only by its completion stage;
// the three may run on different goroutines at once. Held may be called
// from anywhere. No method blocks or allocates.
type Driver interface {
	// Name identifies the port in errors and statistics.
	Name() string
	// Receive fills dst with received lists, each a frame descriptor whose
	// data window holds one frame starting at its Ethernet header, and
	// returns how many. The driver takes the frames it needs to receive
	// into (fill) from frames, a cache owned by the caller's stage.
	Receive(dst []*nbl.NBL, frames *nbl.Cache) int
	// Transmit takes ownership of src[:n] and returns n; the rest stay
	// with the caller (the TX path is full).
	Transmit(src []*nbl.NBL) int
	// Reap fills dst with lists whose transmission has finished and
	// returns how many; ownership passes back to the caller.
	Reap(dst []*nbl.NBL) int
	// Held returns how many frames the driver holds now (fill, rx, tx and
	// completion rings), for accounting.
	Held() int
	// Close stops receiving; it is called on the receive side (the ingress
	// stage, or the only goroutine of a stopped switch) and may put frames
	// it holds into frames. After Close, Reap returns everything else the
	// driver still holds (TX in flight, and frames it had given the kernel
	// to receive into) until Held() == 0.
	Close(frames *nbl.Cache) error
}

// ReleaseDriver closes a driver that is not (or no longer) a switch
// port's, reaps until it holds nothing, and returns every frame it had to
// the frame pool of arena. It is how a driver built for a port that could
// not be added is undone without losing a frame.
func ReleaseDriver(d Driver, arena *nbl.Arena) error {
	frames := arena.Frames().NewCache(64)
	defer frames.Release()
	err := d.Close(frames)
	buf := make([]*nbl.NBL, 64)
	// Reap at least once, even when the driver holds nothing: a driver
	// lets go of what it has of the system's (an AF_XDP socket, and with
	// it the interface queue it is bound to) on the reap that finds it
	// empty, and a port that never received holds no frame.
	for {
		n := d.Reap(buf)
		if n == 0 {
			break
		}
		frames.Put(buf[:n])
	}
	if n := d.Held(); n > 0 && err == nil {
		err = fmt.Errorf("release %s: %d frames still held", d.Name(), n)
	}
	return err
}

// Failer is implemented by drivers that can fail for good (an interface
// removed under them); the switch detaches a port whose driver reports an
// error, drains it, and keeps serving the other ports.
type Failer interface {
	Err() error
}

// portState is a switch port's lifecycle.
const (
	portAttached uint32 = iota
	portDraining        // detached: no RX, no TX; completions still reaped
	portGone
)

// Port is a switch port: an id, its NIC indexes, and the driver per queue.
type Port struct {
	ID     uint32 // NDIS_SWITCH_PORT_ID; 0 is the default, trusted port (R13)
	MaxNIC uint16 // valid NIC indexes are 0..MaxNIC (R12)
	MAC    MAC    // if non-zero, a static forwarding entry to this port
	slot   int
	queues []Driver // one per switch queue
	state  atomic.Uint32
	closed chan struct{} // closed when a detach has finished draining

	drainedQueues atomic.Int32          // queues that have finished draining a detach
	rxClosed      atomic.Uint64         // bit q: queue q's ingress stage has closed its driver
	drained       atomic.Uint64         // bit q: queue q's completion stage has drained it
	failure       atomic.Pointer[error] // why the switch detached the port itself

	rx, tx, txFull   counter
	rxBytes, txBytes counter       // frame bytes (Ethernet header on, no FCS)
	csumDone         counter       // partial L4 checksums finished on TX
	checksum         atomic.Uint32 // a ChecksumMode; read by the egress stage per burst
}

// SetChecksum sets whether the port finishes partial L4 checksums on the
// frames it transmits (ChecksumAuto, the default) or sends them as they
// are; it takes effect from the next burst. See ChecksumMode.
func (p *Port) SetChecksum(m ChecksumMode) { p.checksum.Store(uint32(m)) }

// Checksum returns the port's checksum mode.
func (p *Port) Checksum() ChecksumMode { return ChecksumMode(p.checksum.Load()) }

// PortCounters are one port's traffic counters since it was added.
type PortCounters struct {
	ID                 uint32 `json:"id"`
	RXPackets          uint64 `json:"rx_packets"`
	RXBytes            uint64 `json:"rx_bytes"`
	TXPackets          uint64 `json:"tx_packets"`
	TXBytes            uint64 `json:"tx_bytes"`
	TXFull             uint64 `json:"tx_full"`
	ChecksumsCompleted uint64 `json:"checksums_completed"`
}

// Snapshot returns the port's counters.
func (p *Port) Snapshot() PortCounters {
	return PortCounters{ID: p.ID, RXPackets: p.rx.load(), RXBytes: p.rxBytes.load(), TXPackets: p.tx.load(),
		TXBytes: p.txBytes.load(), TXFull: p.txFull.load(), ChecksumsCompleted: p.csumDone.load()}
}

// transmitted counts lists the port's driver took.
func (p *Port) transmitted(lists []*nbl.NBL) {
	b := 0
	for _, l := range lists {
		b += int(l.DataLen())
	}
	p.tx.add(len(lists))
	p.txBytes.add(b)
}

func (p *Port) attached() bool { return p.state.Load() == portAttached }

// Err returns why the switch detached the port on its own (its driver
// failed), or nil.
func (p *Port) Err() error {
	if e := p.failure.Load(); e != nil {
		return *e
	}
	return nil
}

// Counters returns packets received and transmitted on this port, and
// txFull: lists that could not go straight to its TX path because it was
// full (they waited in the egress stage, or were dropped as tx_full when
// that filled too).
func (p *Port) Counters() (rx, tx, txFull uint64) {
	return p.rx.load(), p.tx.load(), p.txFull.load()
}
