package bench

import (
	"sync"
	"time"

	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/ring/pin"
)

// JitterThreshold is the shortest gap between two clock reads that Jitter
// counts as a stall: a read takes tens of nanoseconds, so a microsecond
// without one is time the thread did not have.
const JitterThreshold = time.Microsecond

// JitterBucketsNS are the lower bounds of Jitter's stall buckets.
var JitterBucketsNS = [...]int64{1_000, 10_000, 100_000, 1_000_000}

// JitterBucket is the stalls of one length range on one CPU.
type JitterBucket struct {
	MinNS     int64   `json:"min_ns"`     // the range is [MinNS, the next bucket's MinNS)
	PerSecond float64 `json:"per_second"` // stalls a second
	LostPct   float64 `json:"lost_pct"`   // share of the time spent in them
}

// JitterCPU is what a polling thread on one CPU lost.
type JitterCPU struct {
	CPU     int            `json:"cpu"`
	Pinned  bool           `json:"pinned"` // false: could not pin; the figures are for wherever it ran
	ReadNS  float64        `json:"read_ns"`
	Stalls  []JitterBucket `json:"stalls"`
	LostPct float64        `json:"lost_pct"` // all stalls together
	MaxNS   int64          `json:"max_ns"`   // the longest
}

// Jitter measures what the machine takes from a polling thread: on each
// of cpus at once, a thread pinned there at the lcores' nice value reads
// the clock in a tight loop for d, and every gap of JitterThreshold or more
// between two reads is a stall — an interrupt, another thread, or (in a
// VM, invisible to the guest's own counters) the host descheduling the
// vCPU. A packet that arrives during a stall waits it out, so the stalls
// set a floor under any latency percentile the switch can show on this
// machine, and their share of the time is throughput no code can have.
func Jitter(cpus []int, d time.Duration) []JitterCPU {
	out := make([]JitterCPU, len(cpus))
	var wg sync.WaitGroup
	for i, cpu := range cpus {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &out[i]
			r.CPU = cpu
			if unpin, err := pin.Thread(cpu); err == nil {
				r.Pinned = true
				defer unpin()
				if restore, err := pin.Nice(LcoreNice); err == nil {
					defer restore()
				}
			}
			var s jitterStalls
			reads := s.loop(dataplane.Now, dataplane.Now()+d.Nanoseconds())
			*r = s.report(*r, reads)
		}()
	}
	wg.Wait()
	return out
}

// jitterStalls counts stalls by JitterBucketsNS.
type jitterStalls struct {
	n    [len(JitterBucketsNS)]uint64
	ns   [len(JitterBucketsNS)]int64
	max  int64
	span int64 // from the first read to the last
}

// loop reads clock until it passes until and returns the number of reads.
func (s *jitterStalls) loop(clock func() int64, until int64) uint64 {
	first := clock()
	last, reads := first, uint64(1)
	for last < until {
		now := clock()
		reads++
		if g := now - last; g >= int64(JitterThreshold) {
			b := len(JitterBucketsNS) - 1
			for g < JitterBucketsNS[b] {
				b--
			}
			s.n[b]++
			s.ns[b] += g
			s.max = max(s.max, g)
		}
		last = now
	}
	s.span = last - first
	return reads
}

// report fills r from the stalls of a loop of reads.
func (s *jitterStalls) report(r JitterCPU, reads uint64) JitterCPU {
	span := float64(max(s.span, 1))
	r.ReadNS = span / float64(reads)
	r.MaxNS = s.max
	for b, min := range JitterBucketsNS {
		lost := float64(s.ns[b]) / span * 100
		r.Stalls = append(r.Stalls, JitterBucket{MinNS: min, PerSecond: float64(s.n[b]) / (span / 1e9), LostPct: lost})
		r.LostPct += lost
	}
	return r
}
