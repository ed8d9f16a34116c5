package dataplane

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wfpxdp/wfpxdp/nbl"
	"github.com/wfpxdp/wfpxdp/ring"
)

// CapturePoint is a place in the switch where packets can be copied out
// for a packet capture; points combine as bits.
type CapturePoint uint8

// Capture points: lists a callout absorbed, lists the switch dropped (any
// reason), and lists injected back into the ingress path.
const (
	CaptureAbsorbed CapturePoint = 1 << iota
	CaptureDropped
	CaptureInjected
	CaptureAll = CaptureAbsorbed | CaptureDropped | CaptureInjected
)

var captureNames = []struct {
	p    CapturePoint
	name string
}{{CaptureAbsorbed, "absorbed"}, {CaptureDropped, "dropped"}, {CaptureInjected, "injected"}}

func (p CapturePoint) String() string {
	if p == CaptureAll {
		return "all"
	}
	var parts []string
	for _, n := range captureNames {
		if p&n.p != 0 {
			parts = append(parts, n.name)
		}
	}
	return strings.Join(parts, ",")
}

// ParseCapturePoints parses "all" or a comma-separated list of absorbed,
// dropped and injected.
func ParseCapturePoints(s string) (CapturePoint, error) {
	if s == "all" {
		return CaptureAll, nil
	}
	var p CapturePoint
	for _, f := range strings.Split(s, ",") {
		found := false
		for _, n := range captureNames {
			if strings.TrimSpace(f) == n.name {
				p |= n.p
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("capture point %q: want absorbed, dropped, injected (comma-separated) or all", f)
		}
	}
	return p, nil
}

// CaptureSnap is the most bytes of a frame a capture record keeps.
const CaptureSnap = 256

// CaptureRecord is one captured frame.
type CaptureRecord struct {
	Time   int64 // wall clock, ns since the Unix epoch
	Len    int   // bytes of the frame (the first NET_BUFFER of the list)
	Point  CapturePoint
	Reason DropReason // with CaptureDropped
	Port   uint32     // source port id
	n      uint16
	data   [CaptureSnap]byte
}

// Data returns the captured bytes, at most CaptureSnap of the frame.
func (r *CaptureRecord) Data() []byte { return r.data[:r.n] }

// Capture is a bounded ring of captured frames between the switch's stages
// (producers, lock-free) and one consumer (a pcap writer). The stages only
// copy frames into it; when it is full the capture loses records, counted,
// and the traffic goes on untouched. Set Config.Capture to enable it.
type Capture struct {
	points   CapturePoint
	ring     *ring.MPSC[CaptureRecord]
	captured atomic.Uint64
	lost     atomic.Uint64
}

// NewCapture returns a capture of points holding up to size records (a
// power of two).
func NewCapture(points CapturePoint, size int) (*Capture, error) {
	r, err := ring.NewMPSC[CaptureRecord](size)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	return &Capture{points: points, ring: r}, nil
}

// Points returns what the capture takes.
func (c *Capture) Points() CapturePoint { return c.points }

// Drain moves up to len(dst) records out of the ring; one consumer only.
func (c *Capture) Drain(dst []CaptureRecord) int { return c.ring.DequeueBurst(dst) }

// Counts returns the records captured and those lost to a full ring.
func (c *Capture) Counts() (captured, lost uint64) { return c.captured.Load(), c.lost.Load() }

// record copies lists into the ring if the capture takes point; a nil
// capture takes nothing. Called by stages, per batch; allocation-free.
func (c *Capture) record(lists []*nbl.NBL, point CapturePoint, reason DropReason) {
	if c == nil || c.points&point == 0 || len(lists) == 0 {
		return
	}
	now := time.Now().UnixNano()
	var rec [1]CaptureRecord
	r := &rec[0]
	r.Time, r.Point, r.Reason = now, point, reason
	var ok, lost uint64
	for _, l := range lists {
		d := l.Data()
		r.Len = len(d)
		r.Port = l.VSwitch.SourcePortID
		r.n = uint16(copy(r.data[:], d))
		if c.ring.EnqueueBurst(rec[:]) == 1 {
			ok++
		} else {
			lost++
		}
	}
	c.captured.Add(ok)
	if lost > 0 {
		c.lost.Add(lost)
	}
}
