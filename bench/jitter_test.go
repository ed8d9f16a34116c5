package bench

import (
	"testing"
	"time"

	"github.com/wfpxdp/wfpxdp/ring/pin"
)

// Gaps between clock reads land in their buckets; shorter ones are not
// stalls.
func TestJitterBuckets(t *testing.T) {
	gaps := []int64{50, 999, 1_000, 5_000, 10_000, 99_999, 100_000, 2_000_000, 60}
	var clock, sum int64 = 1000, 0
	for _, g := range gaps {
		sum += g
	}
	i := 0
	fake := func() int64 {
		if i > 0 {
			clock += gaps[i-1]
		}
		i++
		return clock
	}
	var s jitterStalls
	reads := s.loop(fake, 1000+sum)
	if reads != uint64(len(gaps)+1) {
		t.Fatalf("%d reads, want %d", reads, len(gaps)+1)
	}
	if want := [4]uint64{2, 2, 1, 1}; s.n != want {
		t.Fatalf("stalls by bucket %v, want %v", s.n, want)
	}
	if want := [4]int64{6_000, 109_999, 100_000, 2_000_000}; s.ns != want || s.max != 2_000_000 || s.span != sum {
		t.Fatalf("stall time by bucket %v, max %d, span %d", s.ns, s.max, s.span)
	}
	r := s.report(JitterCPU{}, reads)
	if lost := float64(6_000+109_999+100_000+2_000_000) / float64(sum) * 100; len(r.Stalls) != 4 || r.Stalls[2].MinNS != 100_000 ||
		r.LostPct < lost-1e-9 || r.LostPct > lost+1e-9 || r.MaxNS != 2_000_000 {
		t.Fatalf("report %+v", r)
	}
}

// On the real clock, each CPU reports reads and a share of time lost
// between 0 and 100 %.
func TestJitter(t *testing.T) {
	cpus, err := pin.CPUs()
	if err != nil {
		t.Fatal(err)
	}
	rs := Jitter(cpus, 200*time.Millisecond)
	if len(rs) != len(cpus) {
		t.Fatalf("%d results for %d CPUs", len(rs), len(cpus))
	}
	for _, r := range rs {
		if r.ReadNS <= 0 || r.ReadNS > 10_000 || r.LostPct < 0 || r.LostPct > 100 || len(r.Stalls) != len(JitterBucketsNS) {
			t.Fatalf("cpu %d: %+v", r.CPU, r)
		}
	}
}
