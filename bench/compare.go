package bench

import (
	"errors"
	"maps"
	"strings"

	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/dataplane/memport"
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

// SchemaVersion is the version of the JSON documents "dataplane bench" and
// "dataplane run" print (docs/cli.md lists their keys). It changes
// whenever a key is renamed or removed or changes meaning.
const SchemaVersion = 3

// Envelope is what every JSON document of the CLI starts with.
type Envelope struct {
	SchemaVersion int    `json:"schema_version"`
	Command       string `json:"command"`  // bench | run
	Scenario      string `json:"scenario"` // the bench scenario; "run" for run
	Machine       string `json:"machine"`  // CPU model, CPUs, kernel
}

// NewEnvelope returns the envelope for command and scenario.
func NewEnvelope(command, scenario string) Envelope {
	return Envelope{SchemaVersion: SchemaVersion, Command: command, Scenario: scenario, Machine: machine()}
}

// Report is the JSON the CLI prints: the median over the subject's runs,
// the baseline's, and each run.
type Report struct {
	Envelope
	Path        string            `json:"path,omitempty"`
	Mode        string            `json:"mode"`
	Link        string            `json:"link"`
	FrameSize   int               `json:"frame_size"`            // the mean when several are sent
	FrameSizes  []int             `json:"frame_sizes,omitempty"` // the sizes sent in turn (imix, a list)
	Replay      *ReplayReport     `json:"replay,omitempty"`      // the capture replayed
	Batch       int               `json:"batch,omitempty"`       // packets per burst
	Flows       int               `json:"flows,omitempty"`       // flows the load is spread over
	FlowOrder   string            `json:"flow_order,omitempty"`  // seq | random
	DurationS   float64           `json:"duration_s"`
	Cores       string            `json:"cores"`
	Packets     uint64            `json:"packets"`
	OfferedMpps float64           `json:"offered_mpps"`
	Mpps        float64           `json:"mpps"`
	Gbps        float64           `json:"gbps"`
	Drops       map[string]uint64 `json:"drops"`
	Absorbed    uint64            `json:"absorbed"`
	Reinjected  uint64            `json:"reinjected"`
	Completions uint64            `json:"completions"`
	Latency     LatencyNS         `json:"latency_ns"`
	// StageLatency breaks the subject's last run down by stage (with
	// --stages): see memport.StageNames.
	StageLatency map[string]LatencyNS `json:"stage_latency_ns,omitempty"`
	Baseline     *BaselineReport      `json:"baseline,omitempty"`
	Ratio        float64              `json:"ratio,omitempty"`
	// BusyRatio is the subject's busy time per packet over the
	// baseline's: the median of the ratios of the runs paired in the
	// order they ran (a pair ran within seconds, under the same load).
	BusyRatio       float64 `json:"busy_ratio,omitempty"`
	AllocsPerPacket float64 `json:"allocs_per_packet"`
	BusyNSPerPacket float64 `json:"busy_ns_per_packet"`
	GCCycles        uint32  `json:"gc_cycles"`
	GCAfterWarmup   uint32  `json:"gc_cycles_after_warmup"`
	RSSKB           struct {
		Start int64 `json:"start"`
		End   int64 `json:"end"`
	} `json:"rss_kb"`
	Accounting dataplane.Accounting `json:"accounting"` // the subject's last run, after its drain
	Runs       []RunReport          `json:"runs"`
	CoreRTTNS  int64                `json:"core_rtt_ns,omitempty"` // cache-line round trip between the two CPUs used, measured before the runs
}

// ReplayReport describes a replayed capture.
type ReplayReport struct {
	File   string      `json:"file"`
	Frames int         `json:"frames"`
	Sizes  []SizeClass `json:"sizes"`
}

// BaselineReport is the baseline's median.
type BaselineReport struct {
	Name    string    `json:"name"`
	Mpps    float64   `json:"mpps"`
	Latency LatencyNS `json:"latency_ns"`
	// BusyNSPerPacket is measured as the subject's is (AF_XDP baselines;
	// 0 where the baseline does not measure it).
	BusyNSPerPacket float64 `json:"busy_ns_per_packet"`
}

// RunReport is one run, in the order they ran.
type RunReport struct {
	Subject bool      `json:"subject"`
	Link    string    `json:"link"`
	Mpps    float64   `json:"mpps"`
	Latency LatencyNS `json:"latency_ns"`
	Leaked  int       `json:"leaked"`
}

func latencyOf(r *Result) LatencyNS { return percentiles(r.Latency) }

func percentiles(h *hdrhistogram.Histogram) LatencyNS {
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

// runner runs one subject (true) or baseline (false) run; i counts runs.
type runner func(subject bool, i, of int) (*Result, error)

// alternate runs subject and baseline runs times each, A B, B A, A B ...
// so that drift cancels, and fills rep with the medians.
func alternate(rep *Report, runs int, baseline bool, baselineName string, run runner, hgrm io.Writer, plotPath string) error {
	runs = max(runs, 1)
	var order []bool // true = subject
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
	var subj, base, baseBusy []float64
	var subjLat, baseLat []LatencyNS
	var last, lastBase *Result
	var subjResults []*Result
	for i, isSubject := range order {
		r, err := run(isSubject, i, len(order))
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		lat := latencyOf(r)
		name := rep.Link
		if !isSubject {
			name = baselineName
		}
		rep.Runs = append(rep.Runs, RunReport{Subject: isSubject, Link: name, Mpps: r.Mpps, Latency: lat, Leaked: r.Accounting.Leaked})
		if isSubject && r.Accounting.Leaked != 0 {
			return fmt.Errorf("run %d: %w: %+v", i+1, ErrLeaked, r.Accounting)
		}
		if isSubject {
			subj, subjLat = append(subj, r.Mpps), append(subjLat, lat)
			subjResults = append(subjResults, r)
			last = r
		} else {
			base, baseLat = append(base, r.Mpps), append(baseLat, lat)
			baseBusy = append(baseBusy, r.BusyNSPerPacket)
			lastBase = r
		}
	}
	rep.Mpps = median(subj)
	rep.Latency = medianLatency(subjLat)
	if len(last.Stages) > 0 {
		rep.StageLatency = map[string]LatencyNS{}
		for name, h := range last.Stages {
			if h.TotalCount() > 0 {
				rep.StageLatency[name] = percentiles(h)
			}
		}
	}
	rep.Cores = last.Plan
	rep.Packets = last.Packets
	rep.OfferedMpps = last.OfferedMpps
	rep.Gbps = last.Gbps
	rep.DurationS = last.Elapsed.Seconds()
	rep.Drops = last.Stats.Drops
	if rep.Drops == nil {
		rep.Drops = map[string]uint64{}
	}
	if last.Missed > 0 { // the generator port's, before the switch
		rep.Drops = maps.Clone(rep.Drops)
		if rep.Drops == nil {
			rep.Drops = map[string]uint64{}
		}
		rep.Drops["port_rx_missed"] = last.Missed
	}
	rep.Absorbed, rep.Reinjected, rep.Completions = last.Stats.Absorbed, last.Stats.Reinjected, last.Stats.Completions
	if last.Packets > 0 {
		rep.AllocsPerPacket = float64(last.Mallocs) / float64(last.Packets)
	}
	rep.GCCycles = last.GCCycles
	rep.GCAfterWarmup = last.GCAfterWarmup
	rep.RSSKB.Start, rep.RSSKB.End = last.RSSStartKB, last.RSSEndKB
	var busy []float64
	for _, r := range subjResults {
		busy = append(busy, r.BusyNSPerPacket)
	}
	rep.BusyNSPerPacket = median(busy)
	rep.Accounting = last.Accounting
	if baseline {
		rep.Baseline = &BaselineReport{Name: baselineName, Mpps: median(base), Latency: medianLatency(baseLat),
			BusyNSPerPacket: median(baseBusy)}
		if rep.Baseline.Mpps > 0 {
			rep.Ratio = rep.Mpps / rep.Baseline.Mpps
		}
		var pairs []float64
		for i, r := range subjResults {
			if i < len(baseBusy) && baseBusy[i] > 0 && r.BusyNSPerPacket > 0 {
				pairs = append(pairs, r.BusyNSPerPacket/baseBusy[i])
			}
		}
		rep.BusyRatio = median(pairs)
	}
	if plotPath != "" {
		curves := map[string]*hdrhistogram.Histogram{"wfpxdp (" + rep.Link + ")": last.Latency}
		if lastBase != nil {
			curves[baselineName] = lastBase.Latency
		}
		title := fmt.Sprintf("%s %s, %d-byte frames, offered %.2f Mpps", rep.Scenario, rep.Path, rep.FrameSize, rep.OfferedMpps)
		if err := PlotLatency(plotPath, title, curves); err != nil {
			return err
		}
	}
	if hgrm != nil && last.Latency != nil {
		if _, err := last.Latency.PercentilesPrint(hgrm, 5, 1000); err != nil { // values in µs
			return fmt.Errorf("write hgrm: %w", err)
		}
	}
	return nil
}

func progressPrinter(w io.Writer, i, of int, name string) func(Progress) {
	if w == nil {
		return nil
	}
	return func(p Progress) {
		s := p.Elapsed.Seconds()
		fmt.Fprintf(w, "run %d/%d %-6s %5.1fs  offered %7.3f Mpps  rx %7.3f  tx %7.3f  drops %d%s  absorbed %d  reinjected %d  completions %d\n",
			i+1, of, name, s, float64(p.Offered)/s/1e6, float64(p.RX)/s/1e6, float64(p.TX)/s/1e6,
			p.Drops, DropPairs(p.DropsBy), p.Absorbed, p.Reinj, p.Completions)
	}
}

// DropPairs formats drop counts by reason as " (reason=count reason=count)",
// sorted by reason; empty when there are none.
func DropPairs(m map[string]uint64) string {
	if len(m) == 0 {
		return ""
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(" (")
	for i, k := range names {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", k, m[k])
	}
	b.WriteString(")")
	return b.String()
}

// ComparePipeline runs the in-memory pipeline scenario runs times with the
// subject's options and, with a baseline, runs times with the baseline's,
// alternated, and reports medians. The baselines: "chan" (the same path
// with channel links) and "forward" (the same links on the forward path:
// the ratio is then what absorbing and reinjecting costs against
// forwarding); "" runs none. Progress lines go to progress (nil: none);
// hgrm, if not nil, receives the subject's last latency distribution in
// HdrHistogram's percentile text format.
func ComparePipeline(o PipelineOptions, runs int, baseline string, progress io.Writer, hgrm io.Writer, plotPath string) (*Report, error) {
	rep := &Report{Envelope: NewEnvelope("bench", "pipeline-mem"), Path: string(o.Path), Mode: o.Mode.String(), Link: o.Link.String(),
		FrameSize: max(o.FrameSize, 64), FrameSizes: o.FrameSizes, Batch: o.Batch, Flows: max(o.Flows, 1), FlowOrder: flowOrderName(o.FlowOrder)}
	switch baseline {
	case "", PipelineBaselineChan, PipelineBaselineForward:
	default:
		return nil, fmt.Errorf("pipeline baseline %q: want %s, %s or none", baseline, PipelineBaselineChan, PipelineBaselineForward)
	}
	err := alternate(rep, runs, baseline != "", baseline, func(subject bool, i, of int) (*Result, error) {
		ro := o
		name := ro.Link.String()
		if !subject {
			name = baseline
			if baseline == PipelineBaselineForward {
				ro.Path = PathForward
			} else {
				ro.Link = dataplane.LinkChan
			}
		}
		ro.Progress = progressPrinter(progress, i, of, name)
		r, err := RunPipeline(ro)
		return r, err
	}, hgrm, plotPath)
	return rep, err
}

// The baselines ComparePipeline runs.
const (
	PipelineBaselineChan    = "chan"    // the same path, channel links
	PipelineBaselineForward = "forward" // the forward path, the same links
)

// CompareAFXDP runs an AF_XDP scenario on its own veth pairs and namespace
// (built once, torn down at the end), the switch alternated with the
// asavie/xdp loop when baseline is true.
//
// Every run gets fresh veth pairs and namespace: asavie/xdp v0.3.3's
// Socket.Close leaves its rings mapped, so the kernel never releases its
// socket and that interface queue stays busy for the life of the process.
func CompareAFXDP(o AFXDPOptions, runs int, baseline bool, progress io.Writer, hgrm io.Writer, plotPath string) (*Report, error) {
	if err := CanRunAFXDP(); err != nil {
		return nil, err
	}
	if len(o.CPUs) == 0 {
		o.CPUs = []int{0, 1}
	}
	rep := &Report{Envelope: NewEnvelope("bench", o.Scenario), Mode: o.Mode.String(), Link: "ring", FrameSize: max(o.FrameSize, 60), Batch: o.Batch,
		Flows: o.Flows.N}
	if o.Flows.N > 0 {
		rep.FlowOrder = map[bool]string{false: "seq", true: "random"}[o.Flows.Random]
	}
	rep.CoreRTTNS = int64(CoreRTT(o.CPUs[0], o.CPUs[len(o.CPUs)-1], 20000))
	err := alternate(rep, runs, baseline, "asavie", func(subject bool, i, of int) (res *Result, err error) {
		rig, err := newAFXDPRig(o.FrameSize, o.Flows)
		if err != nil {
			return nil, err
		}
		rig.rate, rig.replay = o.Rate, o.Replay
		defer func() {
			if cerr := rig.close(); err == nil && cerr != nil {
				err = fmt.Errorf("tear down: %w", cerr)
			}
		}()
		ro := o
		name := "switch"
		if !subject {
			name = "asavie"
		}
		ro.Progress = progressPrinter(progress, i, of, name)
		if subject {
			return rig.runSubject(ro)
		}
		return rig.runAsavie(ro)
	}, hgrm, plotPath)
	return rep, err
}

func flowOrderName(o memport.FlowOrder) string {
	if o == memport.FlowsRandom {
		return "random"
	}
	return "seq"
}

// machine describes where a result was measured: CPU model, CPUs, kernel,
// date.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := "unknown kernel"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%s, %d CPUs, %s, %s", model, numCPU(), kernel, time.Now().UTC().Format("2006-01-02"))
}
