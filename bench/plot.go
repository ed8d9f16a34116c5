package bench

import (
	"fmt"
	"math"
	"sort"

	"github.com/HdrHistogram/hdrhistogram-go"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// PlotLatency writes a PNG (or SVG/PDF, by the file's extension) of the
// latency percentile distribution of each histogram: HdrHistogram's usual
// plot, the x axis 1/(1-percentile) on a log scale labelled 50% ... 99.99%,
// the y axis latency in microseconds.
func PlotLatency(path, title string, curves map[string]*hdrhistogram.Histogram) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (µs)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = percentileTicks{}
	p.Y.Min = 0
	names := make([]string, 0, len(curves))
	for name := range curves {
		names = append(names, name)
	}
	sort.Strings(names)
	var args []any
	for _, name := range names {
		h := curves[name]
		if h == nil || h.TotalCount() == 0 {
			continue
		}
		var xys plotter.XYs
		for _, b := range h.CumulativeDistribution() {
			if b.Quantile >= 100 {
				break
			}
			xys = append(xys, plotter.XY{X: 1 / (1 - b.Quantile/100), Y: float64(b.ValueAt) / 1000})
		}
		if len(xys) == 0 {
			continue
		}
		args = append(args, name, xys)
	}
	if len(args) == 0 {
		return fmt.Errorf("plot %s: no latency recorded", path)
	}
	if err := plotutil.AddLines(p, args...); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	if err := p.Save(8*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}

// percentileTicks labels the 1/(1-p) axis with percentiles.
type percentileTicks struct{}

func (percentileTicks) Ticks(min, max float64) []plot.Tick {
	var t []plot.Tick
	for _, p := range []float64{0, 50, 90, 99, 99.9, 99.99, 99.999} {
		x := 1 / (1 - p/100)
		if x >= min && x <= max*1.0001 {
			t = append(t, plot.Tick{Value: x, Label: trimPct(p)})
		}
	}
	return t
}

func trimPct(p float64) string {
	if p == math.Trunc(p) {
		return fmt.Sprintf("%.0f%%", p)
	}
	return fmt.Sprintf("%g%%", p)
}

// Series is one named line of an XY plot.
type Series struct {
	Name string
	X, Y []float64
}

// PlotXY writes a line plot of series (PNG, SVG or PDF by the file's
// extension), for the sweeps and searches.
func PlotXY(path, title, xLabel, yLabel string, series ...Series) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Y.Min = 0
	var args []any
	for _, s := range series {
		xys := make(plotter.XYs, len(s.X))
		for i := range s.X {
			xys[i] = plotter.XY{X: s.X[i], Y: s.Y[i]}
		}
		args = append(args, s.Name, xys)
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	if err := p.Save(8*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}
