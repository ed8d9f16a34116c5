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
	Reordered   uint64    `json:"reordered"` // probes that arrived after a later one
	Latency     LatencyNS `json:"latency_ns"`
	Leaked      int       `json:"leaked"`
}

// SweepReport is the latency scenario's result.
type SweepReport struct {
	Scenario  string      `json:"scenario"`
	Path      string      `json:"path"`
	Mode      string      `json:"mode"`
	FrameSize int         `json:"frame_size"`
	MaxMpps   float64     `json:"max_mpps"`
	Steps     []SweepStep `json:"steps"`
	Machine   string      `json:"machine"`
}

// LatencySweep measures the in-memory pipeline's maximum throughput, then
// its latency at each fraction of it (e.g. 0.1, 0.5, 0.9), each step for
// o.Duration. Loss and reordering come from the probes' sequence numbers.
func LatencySweep(o PipelineOptions, fractions []float64, progress io.Writer, plotPath string) (*SweepReport, error) {
	rep := &SweepReport{Scenario: "latency", Path: string(o.Path), Mode: o.Mode.String(), FrameSize: max(o.FrameSize, 64), Machine: machine()}
	maxo := o
	maxo.Rate, maxo.Duration = 0, max(o.Duration/2, time.Second)
	r, err := RunPipeline(maxo)
	if err != nil {
		return nil, fmt.Errorf("measure maximum: %w", err)
	}
	rep.MaxMpps = r.Mpps
	if progress != nil {
		fmt.Fprintf(progress, "maximum %.3f Mpps\n", r.Mpps)
	}
	curves := map[string]*hdrhistogram.Histogram{}
	for _, f := range fractions {
		so := o
		so.Rate = f * r.Mpps * 1e6
		sr, err := RunPipeline(so)
		if err != nil {
			return rep, fmt.Errorf("step %.0f%%: %w", 100*f, err)
		}
		step := SweepStep{Fraction: f, OfferedMpps: sr.OfferedMpps, Mpps: sr.Mpps, Reordered: sr.Reordered,
			Latency: latencyOf(sr), Leaked: sr.Accounting.Leaked}
		step.Lost = sr.Lost
		rep.Steps = append(rep.Steps, step)
		curves[fmt.Sprintf("%3.0f%% of max (%.2f Mpps)", 100*f, so.Rate/1e6)] = sr.Latency
		if progress != nil {
			l := step.Latency
			fmt.Fprintf(progress, "%3.0f%%: offered %.3f Mpps, delivered %.3f, p50 %d p99 %d p99.9 %d max %d ns\n",
				100*f, step.OfferedMpps, step.Mpps, l.P50, l.P99, l.P999, l.Max)
		}
		if sr.Accounting.Leaked != 0 {
			return rep, fmt.Errorf("step %.0f%%: %w", 100*f, ErrLeaked)
		}
	}
	if plotPath != "" {
		title := fmt.Sprintf("latency sweep, %s %s, max %.2f Mpps", o.Path, o.Mode, r.Mpps)
		if err := PlotLatency(plotPath, title, curves); err != nil {
			return rep, err
		}
	}
	return rep, nil
}
