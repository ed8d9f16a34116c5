package bench

import (
	"fmt"
	"io"
)

// SizeSweep is the sizes scenario's default: RFC 2544's Ethernet sizes.
var SizeSweep = []int{64, 128, 256, 512, 1024, 1280, 1518}

// SizeStep is one frame size of a sweep.
type SizeStep struct {
	FrameSize    int     `json:"frame_size"`
	Mpps         float64 `json:"mpps"`
	Gbps         float64 `json:"gbps"`
	BaselineMpps float64 `json:"baseline_mpps,omitempty"`
	Ratio        float64 `json:"ratio,omitempty"`
	Leaked       int     `json:"leaked"`
}

// SizesReport is the sizes scenario's result.
type SizesReport struct {
	Envelope
	Path  string     `json:"path"`
	Mode  string     `json:"mode"`
	Cores string     `json:"cores"`
	Steps []SizeStep `json:"steps"`
}

// RunSizes runs pipeline-mem at each frame size (runs of subject and, with
// baseline, that baseline (see ComparePipeline), alternated) and reports the throughput
// per size; plotPath, if set, gets Mpps and Gb/s against the size.
func RunSizes(o PipelineOptions, sizes []int, runs int, baseline string, progress io.Writer, plotPath string) (*SizesReport, error) {
	rep := &SizesReport{Envelope: NewEnvelope("bench", "sizes"), Path: string(o.Path), Mode: o.Mode.String()}
	for _, size := range sizes {
		so := o
		so.FrameSize, so.FrameSizes = size, nil
		r, err := ComparePipeline(so, runs, baseline, nil, nil, "")
		if err != nil {
			return rep, fmt.Errorf("%d bytes: %w", size, err)
		}
		st := SizeStep{FrameSize: size, Mpps: r.Mpps, Gbps: r.Gbps, Ratio: r.Ratio, Leaked: r.Accounting.Leaked}
		if r.Baseline != nil {
			st.BaselineMpps = r.Baseline.Mpps
		}
		rep.Cores = r.Cores
		rep.Steps = append(rep.Steps, st)
		if progress != nil {
			fmt.Fprintf(progress, "%5d B  %8.3f Mpps  %7.2f Gb/s\n", size, st.Mpps, st.Gbps)
		}
	}
	if plotPath != "" {
		var x, mpps, gbps []float64
		for _, st := range rep.Steps {
			x, mpps, gbps = append(x, float64(st.FrameSize)), append(mpps, st.Mpps), append(gbps, st.Gbps)
		}
		title := fmt.Sprintf("pipeline-mem %s, %s: rate against frame size", o.Path, o.Mode)
		if err := PlotXY(plotPath, title, "frame size (bytes)", "Mpps / Gb/s", Series{"Mpps", x, mpps}, Series{"Gb/s", x, gbps}); err != nil {
			return rep, err
		}
	}
	return rep, nil
}
