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
	RX                    uint64            `json:"rx"`                      // packets received from ports
	TX                    uint64            `json:"tx"`                      // packets sent to ports
	QueueRX               []uint64          `json:"queue_rx"`                // packets received, per queue
	Classified            uint64            `json:"classified"`              // classify passes (ingress + egress)
	Absorbed              uint64            `json:"absorbed"`                // lists absorbed by callouts
	Reinjected            uint64            `json:"reinjected"`              // lists injected back at ingress and classified again
	Flooded               uint64            `json:"flooded"`                 // flood copies made
	Completions           uint64            `json:"completions"`             // injected lists completed
	Discarded             uint64            `json:"discarded"`               // absorbed lists a callout discarded
	Drops                 map[string]uint64 `json:"drops"`                   // by reason (DropReason.String), the non-zero ones
	TotalDrops            uint64            `json:"total_drops"`             // the sum of Drops
	InjectRefused         uint64            `json:"inject_refused"`          // absorbed lists the engine refused to reinject
	CompletionPanics      uint64            `json:"completion_panics"`       // completion functions that panicked (recovered)
	MisusedDescriptorsPut uint64            `json:"misused_descriptors_put"` // lists the completion stage could not return
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
