package dataplane

import (
	"sync/atomic"

	"golang.org/x/sys/cpu"
)

// counter is a statistics counter: written by one stage, per batch, read
// by anyone.
type counter struct{ v atomic.Uint64 }

func (c *counter) add(n int) {
	if n != 0 {
		c.v.Add(uint64(n))
	}
}

func (c *counter) load() uint64 { return c.v.Load() }

// DropReason says why the switch dropped a packet.
type DropReason uint8

// Drop reasons.
const (
	DropMalformed      DropReason = iota // runt or truncated VLAN tag
	DropBlocked                          // a BLOCK filter or callout (not absorbed)
	DropEgressBlocked                    // blocked at the egress layer
	DropForwardFull                      // the classify -> forward ring was full
	DropAbsorbFull                       // a callout's absorb ring was full (fail closed)
	DropTxFull                           // the destination port's TX path was full
	DropNoDestination                    // unknown destination with nobody to flood to, or detached port
	DropCloneExhausted                   // no reserve descriptor for a flood copy
	DropSourceGone                       // injected as coming from a removed port (G2)
	numDropReasons
)

var dropNames = [numDropReasons]string{
	"malformed", "blocked", "egress_blocked", "forward_ring_full", "absorb_ring_full",
	"tx_full", "no_destination", "clone_exhausted", "source_port_gone",
}

func (r DropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return "unknown"
}

// Stats is a snapshot of the switch's counters.
type Stats struct {
	RX, TX                uint64   // packets received from and sent to ports
	QueueRX               []uint64 // packets received, per queue
	Classified            uint64   // classify passes (ingress + egress)
	Absorbed              uint64   // lists absorbed by callouts
	Reinjected            uint64   // lists injected back at ingress and classified again
	Flooded               uint64   // flood copies made
	Completions           uint64   // injected lists completed
	Discarded             uint64   // absorbed lists a callout discarded
	Drops                 map[string]uint64
	TotalDrops            uint64
	InjectRefused         uint64 // absorbed lists the engine refused to reinject
	CompletionPanics      uint64
	MisusedDescriptorsPut uint64 // lists the completion stage could not return
}

type stageCounters struct {
	_                                                              cpu.CacheLinePad
	rx, tx, classified, absorbed, reinjected, flooded, completions counter
	drops                                                          [numDropReasons]counter
	misuse                                                         counter
	_                                                              cpu.CacheLinePad
}

// DropReasons returns every drop reason, in order.
func DropReasons() []DropReason {
	rs := make([]DropReason, numDropReasons)
	for i := range rs {
		rs[i] = DropReason(i)
	}
	return rs
}
