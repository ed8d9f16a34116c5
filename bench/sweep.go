package bench

import (
	"fmt"
	"io"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// SweepStep is one offered load of a latency sweep.
type SweepStep struct {
	Fraction    float64   `json:"fraction"` // of the measured maximum
	OfferedMpps float64   `json:"offered_mpps"`
	Mpps        float64   `json:"mpps"`
	Lost        uint64    `json:"lost"`      // generated and never delivered (counted after the drain)
	Missed      uint64    `json:"missed"`    // in-memory, paced: arrived at the generator port's full RX ring
	Reordered   uint64    `json:"reordered"` // probes that arrived after a later one
	Latency     LatencyNS `json:"latency_ns"`
	Leaked      int       `json:"leaked"`
}

// SweepReport is the latency scenario's result.
type SweepReport struct {
	Envelope
	Path      string      `json:"path"`
	Mode      string      `json:"mode"`
	FrameSize int         `json:"frame_size"`
	MaxMpps   float64     `json:"max_mpps"`
	Steps     []SweepStep `json:"steps"`
}

// LatencySweep measures the in-memory pipeline's maximum throughput, then
// its latency at each fraction of it (e.g. 0.1, 0.5, 0.9), each step for
// o.Duration. Loss and reordering come from the probes' sequence numbers.
func LatencySweep(o PipelineOptions, fractions []float64, progress io.Writer, plotPath string) (*SweepReport, error) {
	rep := &SweepReport{Envelope: NewEnvelope("bench", "latency"), Path: string(o.Path), Mode: o.Mode.String(), FrameSize: max(o.FrameSize, 64)}
	run := func(rate float64) (*Result, error) {
		so := o
		so.Rate = rate
		if rate == 0 {
			so.Duration = max(o.Duration/2, time.Second)
		}
		return RunPipeline(so)
	}
	return rep, sweep(rep, run, fractions, progress, plotPath, fmt.Sprintf("latency sweep, %s %s", o.Path, o.Mode))
}

// LatencySweepAFXDP is LatencySweep over AF_XDP (the afxdp-vswitch path,
// own veth pairs per step): the maximum from the unpaced live-frames
// generator, then each fraction of it offered by the paced AF_XDP TX
// generator, latency from the timestamped probes at the far end. Lost is
// what was offered and never delivered (the kernel's drops included).
func LatencySweepAFXDP(o AFXDPOptions, fractions []float64, progress io.Writer, plotPath string) (*SweepReport, error) {
	if err := CanRunAFXDP(); err != nil {
		return nil, err
	}
	if len(o.CPUs) == 0 {
		o.CPUs = []int{0, 1}
	}
	o.Scenario = ScenarioVSwitch
	rep := &SweepReport{Envelope: NewEnvelope("bench", "latency"), Path: "afxdp-vswitch", Mode: o.Mode.String(), FrameSize: max(o.FrameSize, 60)}
	run := func(rate float64) (*Result, error) {
		res, err := runOnFreshRig(o, rate)
		if res != nil && res.Offered > res.Packets {
			res.Lost = res.Offered - res.Packets
		}
		return res, err
	}
	return rep, sweep(rep, run, fractions, progress, plotPath, fmt.Sprintf("latency sweep over AF_XDP, %s", o.Mode))
}

// runOnFreshRig runs the switch once on AF_XDP rig of its own (fresh veth
// pairs), offered rate frames per second by the paced generator (0: the
// live-frames generator, unpaced), and tears the rig down.
func runOnFreshRig(o AFXDPOptions, rate float64) (res *Result, err error) {
	rig, err := newAFXDPRig(o.FrameSize, o.Flows)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := rig.close(); err == nil && cerr != nil {
			err = fmt.Errorf("tear down: %w", cerr)
		}
	}()
	rig.rate, rig.replay = rate, o.Replay
	return rig.runSubject(o)
}

// sweep runs the maximum (rate 0), then each fraction of it, into rep.
func sweep(rep *SweepReport, run func(rate float64) (*Result, error), fractions []float64, progress io.Writer, plotPath, title string) error {
	r, err := run(0)
	if err != nil {
		return fmt.Errorf("measure maximum: %w", err)
	}
	rep.MaxMpps = r.Mpps
	if progress != nil {
		fmt.Fprintf(progress, "maximum %.3f Mpps\n", r.Mpps)
	}
	curves := map[string]*hdrhistogram.Histogram{}
	for _, f := range fractions {
		rate := f * r.Mpps * 1e6
		sr, err := run(rate)
		if err != nil {
			return fmt.Errorf("step %.0f%%: %w", 100*f, err)
		}
		step := SweepStep{Fraction: f, OfferedMpps: sr.OfferedMpps, Mpps: sr.Mpps, Reordered: sr.Reordered,
			Latency: latencyOf(sr), Leaked: sr.Accounting.Leaked, Lost: sr.Lost, Missed: sr.Missed}
		rep.Steps = append(rep.Steps, step)
		curves[fmt.Sprintf("%3.0f%% of max (%.2f Mpps)", 100*f, rate/1e6)] = sr.Latency
		if progress != nil {
			l := step.Latency
			fmt.Fprintf(progress, "%3.0f%%: offered %.3f Mpps, delivered %.3f, p50 %d p99 %d p99.9 %d max %d ns\n",
				100*f, step.OfferedMpps, step.Mpps, l.P50, l.P99, l.P999, l.Max)
		}
		if sr.Accounting.Leaked != 0 {
			return fmt.Errorf("step %.0f%%: %w", 100*f, ErrLeaked)
		}
	}
	if plotPath != "" {
		if err := PlotLatency(plotPath, fmt.Sprintf("%s, max %.2f Mpps", title, r.Mpps), curves); err != nil {
			return err
		}
	}
	return nil
}
