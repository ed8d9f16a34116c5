package bench

import (
	"fmt"
	"io"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// NDROptions configure a zero-loss search (RFC 2544 throughput; the NDR
// and PDR of TRex and FD.io CSIT).
type NDROptions struct {
	Trial      time.Duration // each search trial
	Final      time.Duration // the trial at the NDR found, which must lose nothing
	PDRLoss    float64       // the loss ratio the PDR allows; 0.005
	Resolution float64       // the search stops when its interval is this fraction of the rate; 0.01
	MaxTrials  int           // bound on the trials of each search; 12
	Latency    []float64     // fractions of the NDR to measure latency at; 0.1, 0.5, 0.9
}

// NDRTrial is one trial of the search.
type NDRTrial struct {
	Search        string  `json:"search"` // max | pdr | ndr | final | latency
	RateMpps      float64 `json:"rate_mpps"`
	OfferedMpps   float64 `json:"offered_mpps"`
	DeliveredMpps float64 `json:"delivered_mpps"`
	Offered       uint64  `json:"offered"`
	Lost          uint64  `json:"lost"` // offered and not delivered: dropped, missed at the port's RX ring, or lost
	LossRatio     float64 `json:"loss_ratio"`
	// GeneratorShort: the generator offered less than 97 % of the rate
	// asked, so the trial says nothing about the switch at that rate.
	GeneratorShort bool `json:"generator_short,omitempty"`
	Leaked         int  `json:"leaked"`
}

// NDRReport is the result of a zero-loss search.
type NDRReport struct {
	Envelope
	Port         string      `json:"port"` // memory | afxdp
	Path         string      `json:"path"`
	Mode         string      `json:"mode"`
	FrameSize    int         `json:"frame_size"`
	MaxMpps      float64     `json:"max_mpps"` // unpaced throughput
	NDRMpps      float64     `json:"ndr_mpps"`
	PDRMpps      float64     `json:"pdr_mpps"`
	PDRLossRatio float64     `json:"pdr_loss_ratio"` // the loss the PDR allows
	Final        NDRTrial    `json:"final"`          // the NDR held for the final trial's length
	Latency      []SweepStep `json:"latency"`        // at fractions of the NDR
	// GeneratorLimited: the generator could not offer some rate the search
	// wanted to try; the NDR and PDR are then at most what it could offer,
	// not the switch's.
	GeneratorLimited bool       `json:"generator_limited"`
	Trials           []NDRTrial `json:"trials"`
}

// trialFunc runs the switch at rate (packets per second; 0: unpaced) for
// d; probes says whether latency is measured (over AF_XDP the probes are
// extra frames, left out of the loss trials).
type trialFunc func(rate float64, d time.Duration, probes bool) (*Result, error)

// lossOf is what r offered and did not deliver: dropped, missed at the
// port's RX ring, or lost, once the switch drained where that was counted
// (else what did not arrive by the end).
func lossOf(r *Result) (offered, lost uint64) {
	offered = r.Offered
	if r.Drained {
		return offered, r.Lost + r.Missed + r.Stats.TotalDrops
	}
	if offered > r.Packets {
		lost = offered - r.Packets
	}
	return offered, lost
}

// SearchNDR measures the unpaced maximum, then searches, by bisection
// over paced trials, the highest rate with a loss ratio within PDRLoss
// (the PDR) and the highest with no loss at all (the NDR). Each trial's
// loss comes from the counts after the switch drained: what the generator
// offered (missed frames at the port's RX ring included) less what
// reached the sink. The NDR is then held for Final; if that trial loses,
// the NDR steps down 5 % and is tried again, at most three times.
// Latency is then measured at fractions of the NDR.
func SearchNDR(rep *NDRReport, o NDROptions, trial trialFunc, progress io.Writer, plotPath string) error {
	if o.PDRLoss == 0 {
		o.PDRLoss = 0.005
	}
	if o.Resolution == 0 {
		o.Resolution = 0.01
	}
	if o.MaxTrials == 0 {
		o.MaxTrials = 12
	}
	if o.Latency == nil {
		o.Latency = []float64{0.1, 0.5, 0.9}
	}
	rep.PDRLossRatio = o.PDRLoss
	run := func(search string, rate float64, d time.Duration) (NDRTrial, *Result, error) {
		r, err := trial(rate, d, search == "latency")
		if err != nil {
			return NDRTrial{}, nil, fmt.Errorf("%s trial at %.3f Mpps: %w", search, rate/1e6, err)
		}
		offered, lost := lossOf(r)
		t := NDRTrial{Search: search, RateMpps: rate / 1e6, OfferedMpps: r.OfferedMpps, DeliveredMpps: r.Mpps,
			Offered: offered, Lost: lost, Leaked: r.Accounting.Leaked}
		if offered > 0 {
			t.LossRatio = float64(lost) / float64(offered)
		}
		t.GeneratorShort = rate > 0 && r.OfferedMpps < 0.97*rate/1e6
		rep.GeneratorLimited = rep.GeneratorLimited || t.GeneratorShort
		rep.Trials = append(rep.Trials, t)
		if progress != nil {
			short := ""
			if t.GeneratorShort {
				short = "  (the generator fell short)"
			}
			fmt.Fprintf(progress, "%-7s %8.3f Mpps: offered %.3f, delivered %.3f, lost %d (%.4f %%)%s\n",
				search, t.RateMpps, t.OfferedMpps, t.DeliveredMpps, t.Lost, 100*t.LossRatio, short)
		}
		if t.Leaked != 0 {
			return t, r, fmt.Errorf("%s trial: %w", search, ErrLeaked)
		}
		return t, r, nil
	}
	max, _, err := run("max", 0, o.Trial)
	if err != nil {
		return err
	}
	rep.MaxMpps = max.DeliveredMpps
	// bisect returns the highest rate in (lo, hi] that passes, or lo.
	bisect := func(search string, lo, hi float64, pass func(NDRTrial) bool) (float64, error) {
		for i := 0; i < o.MaxTrials && hi-lo > o.Resolution*hi; i++ {
			mid := (lo + hi) / 2
			t, _, err := run(search, mid, o.Trial)
			if err != nil {
				return lo, err
			}
			if pass(t) && !t.GeneratorShort {
				lo = mid
			} else {
				hi = mid
			}
		}
		return lo, nil
	}
	top := 1.05 * rep.MaxMpps * 1e6
	pdr, err := bisect("pdr", 0, top, func(t NDRTrial) bool { return t.LossRatio <= o.PDRLoss })
	if err != nil {
		return err
	}
	rep.PDRMpps = pdr / 1e6
	ndr, err := bisect("ndr", 0, pdr*1.001+1, func(t NDRTrial) bool { return t.Lost == 0 })
	if err != nil {
		return err
	}
	for try := 0; ndr > 0; try++ {
		t, _, err := run("final", ndr, o.Final)
		if err != nil {
			return err
		}
		rep.Final = t
		if t.Lost == 0 || try == 2 {
			break
		}
		ndr *= 0.95
	}
	rep.NDRMpps = ndr / 1e6
	curves := map[string]*hdrhistogram.Histogram{}
	for _, f := range o.Latency {
		if ndr == 0 {
			break
		}
		t, r, err := run("latency", f*ndr, o.Trial)
		if err != nil {
			return err
		}
		rep.Latency = append(rep.Latency, SweepStep{Fraction: f, OfferedMpps: t.OfferedMpps, Mpps: t.DeliveredMpps,
			Lost: t.Lost, Missed: r.Missed, Reordered: r.Reordered, Latency: latencyOf(r), Leaked: t.Leaked})
		curves[fmt.Sprintf("%3.0f%% of NDR (%.2f Mpps)", 100*f, f*ndr/1e6)] = r.Latency
	}
	if plotPath != "" {
		var x, y []float64
		for _, t := range rep.Trials {
			if t.Search == "pdr" || t.Search == "ndr" || t.Search == "final" {
				x, y = append(x, t.OfferedMpps), append(y, 100*t.LossRatio)
			}
		}
		sortXY(x, y)
		title := fmt.Sprintf("zero-loss search, %s %s: NDR %.2f Mpps, PDR(%.1f %%) %.2f Mpps", rep.Path, rep.Mode, rep.NDRMpps, 100*o.PDRLoss, rep.PDRMpps)
		if err := PlotXY(plotPath, title, "offered (Mpps)", "loss (%)", Series{"trials", x, y}); err != nil {
			return err
		}
		if len(curves) > 0 {
			if err := PlotLatency(latencyPlotPath(plotPath), fmt.Sprintf("latency at fractions of the NDR (%.2f Mpps)", rep.NDRMpps), curves); err != nil {
				return err
			}
		}
	}
	return nil
}

// latencyPlotPath is where SearchNDR draws the latency curves: path with
// "-latency" before its extension.
func latencyPlotPath(path string) string {
	for i := len(path) - 1; i >= 0 && path[i] != '/'; i-- {
		if path[i] == '.' {
			return path[:i] + "-latency" + path[i:]
		}
	}
	return path + "-latency"
}

// sortXY sorts the points by x.
func sortXY(x, y []float64) {
	for i := 1; i < len(x); i++ {
		for j := i; j > 0 && x[j] < x[j-1]; j-- {
			x[j], x[j-1] = x[j-1], x[j]
			y[j], y[j-1] = y[j-1], y[j]
		}
	}
}

// NDRMemory searches the NDR of the in-memory pipeline (o's path, mode and
// frames): paced trials of the in-memory generator, whose RX ring holds
// RXRing frames (memport's default when 0).
func NDRMemory(o PipelineOptions, no NDROptions, progress io.Writer, plotPath string) (*NDRReport, error) {
	rep := &NDRReport{Envelope: NewEnvelope("bench", "ndr"), Port: "memory", Path: string(o.Path), Mode: o.Mode.String(), FrameSize: max(o.FrameSize, 64)}
	trial := func(rate float64, d time.Duration, _ bool) (*Result, error) {
		so := o
		so.Rate, so.Duration = rate, d
		return RunPipeline(so) // Offered counts the frames missed at the RX ring
	}
	return rep, SearchNDR(rep, no, trial, progress, plotPath)
}

// NDRAFXDP searches the NDR of the afxdp-vswitch path: the maximum from
// the unpaced live-frames generator, each trial offered by the paced
// AF_XDP TX generator on fresh veth pairs; loss counts the kernel's drops
// too. The paced generator tops out around 2 Mpps on veth here: rates it
// cannot offer are marked, and the report says the result is the
// generator's limit.
func NDRAFXDP(o AFXDPOptions, no NDROptions, progress io.Writer, plotPath string) (*NDRReport, error) {
	if err := CanRunAFXDP(); err != nil {
		return nil, err
	}
	if len(o.CPUs) == 0 {
		o.CPUs = []int{0, 1}
	}
	o.Scenario = ScenarioVSwitch
	rep := &NDRReport{Envelope: NewEnvelope("bench", "ndr"), Port: "afxdp", Path: "afxdp-vswitch", Mode: o.Mode.String(), FrameSize: max(o.FrameSize, 60)}
	trial := func(rate float64, d time.Duration, probes bool) (*Result, error) {
		so := o
		so.Duration = d
		if !probes {
			so.ProbeRate = 0
		}
		return runOnFreshRig(so, rate)
	}
	return rep, SearchNDR(rep, no, trial, progress, plotPath)
}
