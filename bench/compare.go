package bench

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/wfpxdp/wfpxdp/dataplane"
)

// LatencyNS holds latency percentiles in nanoseconds.
type LatencyNS struct {
	P50   int64 `json:"p50"`
	P90   int64 `json:"p90"`
	P99   int64 `json:"p99"`
	P999  int64 `json:"p999"`
	P9999 int64 `json:"p9999"`
	Max   int64 `json:"max"`
}

// Report is the JSON the CLI prints: the median over the subject's runs,
// the baseline's, and each run.
type Report struct {
	Scenario        string            `json:"scenario"`
	Path            string            `json:"path,omitempty"`
	Mode            string            `json:"mode"`
	Link            string            `json:"link"`
	FrameSize       int               `json:"frame_size"`
	DurationS       float64           `json:"duration_s"`
	Cores           string            `json:"cores"`
	Packets         uint64            `json:"packets"`
	OfferedMpps     float64           `json:"offered_mpps"`
	Mpps            float64           `json:"mpps"`
	Gbps            float64           `json:"gbps"`
	Drops           map[string]uint64 `json:"drops"`
	Absorbed        uint64            `json:"absorbed"`
	Reinjected      uint64            `json:"reinjected"`
	Completions     uint64            `json:"completions"`
	Latency         LatencyNS         `json:"latency_ns"`
	Baseline        *BaselineReport   `json:"baseline,omitempty"`
	Ratio           float64           `json:"ratio,omitempty"`
	AllocsPerPacket float64           `json:"allocs_per_packet"`
	GCCycles        uint32            `json:"gc_cycles"`
	Accounting      AccountingReport  `json:"accounting"`
	Runs            []RunReport       `json:"runs"`
	Machine         string            `json:"machine"`
}

// BaselineReport is the baseline's median.
type BaselineReport struct {
	Name    string    `json:"name"`
	Mpps    float64   `json:"mpps"`
	Latency LatencyNS `json:"latency_ns"`
}

// AccountingReport is the frame accounting at the end of the subject's
// last run.
type AccountingReport struct {
	FramesTotal     int `json:"frames_total"`
	FramesFreeAtEnd int `json:"frames_free_at_end"`
	Leaked          int `json:"leaked"`
}

// RunReport is one run, in the order they ran.
type RunReport struct {
	Subject bool      `json:"subject"`
	Link    string    `json:"link"`
	Mpps    float64   `json:"mpps"`
	Latency LatencyNS `json:"latency_ns"`
	Leaked  int       `json:"leaked"`
}

func latencyOf(r *Result) LatencyNS {
	h := r.Latency
	if h == nil || h.TotalCount() == 0 {
		return LatencyNS{}
	}
	return LatencyNS{P50: h.ValueAtQuantile(50), P90: h.ValueAtQuantile(90), P99: h.ValueAtQuantile(99),
		P999: h.ValueAtQuantile(99.9), P9999: h.ValueAtQuantile(99.99), Max: h.Max()}
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianLatency(ls []LatencyNS) LatencyNS {
	pick := func(f func(LatencyNS) int64) int64 {
		v := make([]float64, len(ls))
		for i, l := range ls {
			v[i] = float64(f(l))
		}
		return int64(median(v))
	}
	return LatencyNS{
		P50: pick(func(l LatencyNS) int64 { return l.P50 }), P90: pick(func(l LatencyNS) int64 { return l.P90 }),
		P99: pick(func(l LatencyNS) int64 { return l.P99 }), P999: pick(func(l LatencyNS) int64 { return l.P999 }),
		P9999: pick(func(l LatencyNS) int64 { return l.P9999 }), Max: pick(func(l LatencyNS) int64 { return l.Max }),
	}
}

// ErrLeaked is returned when a run ends with frames unaccounted for.
var ErrLeaked = errors.New("frames leaked")

// ComparePipeline runs the pipeline scenario runs times with the subject's
// links and, if baseline is true, runs times with channel links, in the
// order A B B A A B ..., and reports medians. Each run's progress goes to
// progress (nil: none). hgrm, if not nil, receives the subject's last
// latency distribution in HdrHistogram's percentile text format.
func ComparePipeline(o PipelineOptions, runs int, baseline bool, progress io.Writer, hgrm io.Writer) (*Report, error) {
	runs = max(runs, 1)
	var order []bool // true = subject; A B, B A, A B, ... so drift cancels
	for i := 0; i < runs; i++ {
		switch {
		case !baseline:
			order = append(order, true)
		case i%2 == 0:
			order = append(order, true, false)
		default:
			order = append(order, false, true)
		}
	}
	rep := &Report{Scenario: "pipeline-mem", Path: string(o.Path), Mode: o.Mode.String(), Link: o.Link.String(),
		FrameSize: max(o.FrameSize, 64), Machine: machine()}
	var subj, base []float64
	var subjLat, baseLat []LatencyNS
	var last *Result
	for i, isSubject := range order {
		ro := o
		if !isSubject {
			ro.Link = dataplane.LinkChan
		}
		if progress != nil {
			ro.Progress = func(p Progress) {
				fmt.Fprintf(progress, "run %d/%d %-4s %5.1fs  offered %7.3f Mpps  rx %7.3f  tx %7.3f  drops %d  absorbed %d  reinjected %d  completions %d\n",
					i+1, len(order), ro.Link, p.Elapsed.Seconds(), float64(p.Offered)/p.Elapsed.Seconds()/1e6,
					float64(p.RX)/p.Elapsed.Seconds()/1e6, float64(p.TX)/p.Elapsed.Seconds()/1e6,
					p.Drops, p.Absorbed, p.Reinj, p.Completions)
			}
		}
		r, err := RunPipeline(ro)
		if err != nil {
			return nil, fmt.Errorf("run %d (%s): %w", i+1, ro.Link, err)
		}
		lat := latencyOf(r)
		rep.Runs = append(rep.Runs, RunReport{Subject: isSubject, Link: ro.Link.String(), Mpps: r.Mpps, Latency: lat, Leaked: r.Accounting.Leaked})
		if r.Accounting.Leaked != 0 {
			return rep, fmt.Errorf("run %d: %w: %+v", i+1, ErrLeaked, r.Accounting)
		}
		if isSubject {
			subj, subjLat = append(subj, r.Mpps), append(subjLat, lat)
			last = r
		} else {
			base, baseLat = append(base, r.Mpps), append(baseLat, lat)
		}
	}
	rep.Mpps = median(subj)
	rep.Latency = medianLatency(subjLat)
	rep.Cores = last.Plan
	rep.Packets = last.Packets
	rep.OfferedMpps = last.OfferedMpps
	rep.Gbps = last.Gbps
	rep.DurationS = last.Elapsed.Seconds()
	rep.Drops = last.Stats.Drops
	rep.Absorbed, rep.Reinjected, rep.Completions = last.Stats.Absorbed, last.Stats.Reinjected, last.Stats.Completions
	rep.AllocsPerPacket = float64(last.Mallocs) / float64(max(last.Packets, 1))
	rep.GCCycles = last.GCCycles
	rep.Accounting = AccountingReport{FramesTotal: last.Accounting.FramesTotal,
		FramesFreeAtEnd: last.Accounting.FramesFree, Leaked: last.Accounting.Leaked}
	if baseline {
		rep.Baseline = &BaselineReport{Name: "chan", Mpps: median(base), Latency: medianLatency(baseLat)}
		if rep.Baseline.Mpps > 0 {
			rep.Ratio = rep.Mpps / rep.Baseline.Mpps
		}
	}
	if hgrm != nil && last.Latency != nil {
		if _, err := last.Latency.PercentilesPrint(hgrm, 5, 1000); err != nil { // ticks per half distance; values in µs
			return rep, fmt.Errorf("write hgrm: %w", err)
		}
	}
	return rep, nil
}

func machine() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s, %d CPUs, %s", host, numCPU(), time.Now().UTC().Format("2006-01-02"))
}
