// Command dataplane runs the wfpxdp harness.
//
//	dataplane bench [scenario] [flags]
//
// Scenarios: afxdp-vswitch (the default as root: its own veth pairs and
// namespace, a line-rate generator, the whole vSwitch path over AF_XDP),
// afxdp-rxdrop, and pipeline-mem (the same path over the in-memory port,
// and the default without privileges). Run "dataplane bench -h" for the
// flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wfpxdp/wfpxdp/bench"
	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/dataplane/afxdp"
	"github.com/wfpxdp/wfpxdp/dataplane/memport"
	"github.com/wfpxdp/wfpxdp/ring/pin"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "dataplane:", err)
		os.Exit(1)
	}
}

// scenarioDef is one bench scenario: its flags (besides the common
// --duration, --cores and --json), the defaults it changes, and what runs
// it.
type scenarioDef struct {
	name, summary string
	flags         string            // space-separated names of the flags that apply
	defaults      map[string]string // flag defaults of this scenario
	run           func(b *benchCmd) error
}

const (
	afxdpFlags = "mode frame-size batch rate baseline runs flows flow-order replay probe-rate hgrm plot cpuprofile metrics pcap capture capture-ring"
	memFlags   = "path mode frame-size batch rate baseline runs filters queues flows flow-order replay stages hgrm plot cpuprofile metrics pcap capture capture-ring"
)

var scenarios = []scenarioDef{
	{name: bench.ScenarioVSwitch, summary: "veth -> AF_XDP -> classify, absorb, reinject, forward -> AF_XDP -> veth\n(default as root; builds and removes its own veth pairs and namespace)",
		flags: afxdpFlags, defaults: map[string]string{"batch": "64"}, run: (*benchCmd).afxdp},
	{name: bench.ScenarioRXDrop, summary: "veth -> AF_XDP -> classify -> drop",
		flags: afxdpFlags, defaults: map[string]string{"batch": "64"}, run: (*benchCmd).afxdp},
	{name: bench.ScenarioL2Fwd, summary: "veth -> AF_XDP -> swap MACs -> AF_XDP -> veth (the AF_XDP layer alone, no switch)",
		flags: "frame-size batch rate baseline runs flows flow-order replay probe-rate hgrm plot cpuprofile", defaults: map[string]string{"batch": "64"}, run: (*benchCmd).afxdp},
	{name: bench.ScenarioTCP, summary: "bulk TCP between two namespaces at default offloads, through the switch (absorb + reinject)\nand through a Linux bridge on the same veth pairs, alternated, per MTU",
		flags: "runs mtu cpuprofile", defaults: map[string]string{"duration": "5s", "runs": "3"}, run: (*benchCmd).tcp},
	{name: "pipeline-mem", summary: "the vSwitch pipeline over the in-memory port (default without root)",
		flags: memFlags, run: (*benchCmd).pipelineMem},
	{name: "sizes", summary: "pipeline-mem at each frame size (64 ... 1518, or --sizes): Mpps and Gb/s per size",
		flags: "path mode batch baseline runs filters queues flows flow-order sizes plot cpuprofile", defaults: map[string]string{"duration": "3s"},
		run: (*benchCmd).sizes},
	{name: "latency", summary: "pipeline-mem's maximum, then its latency at 10%, 50% and 90% of it (--port afxdp: over AF_XDP)",
		flags:    "path mode frame-size batch filters queues port probe-rate plot cpuprofile metrics pcap capture capture-ring",
		defaults: map[string]string{"duration": "3s"}, run: (*benchCmd).latency},
	{name: "ndr", summary: "zero-loss search (RFC 2544): the highest offered rate with no loss (NDR) and with loss within\n--pdr-loss (PDR), by bisection over paced trials, then latency at 10/50/90 % of the NDR",
		flags: "path mode frame-size batch filters queues flows flow-order rx-ring port final pdr-loss plot cpuprofile",
		// a deep RX ring (2 ms at 4 Mpps): the host's stalls of up to a
		// millisecond (bench jitter) must not decide a switch's NDR
		defaults: map[string]string{"duration": "2s", "rx-ring": "8192"}, run: (*benchCmd).ndr},
	{name: "ring", summary: "descriptors between two pinned cores through an SPSC ring (--baseline chan: chan [32]*T)",
		flags: "batch baseline runs cpuprofile", defaults: map[string]string{"duration": "2s"}, run: (*benchCmd).micro},
	{name: "pool", summary: "descriptor get+put through the per-core cache (--baseline syncpool: sync.Pool)",
		flags: "batch baseline runs cpuprofile", defaults: map[string]string{"duration": "2s"}, run: (*benchCmd).micro},
	{name: "jitter", summary: "what the machine takes from a polling thread on each CPU: stalls of 1 µs and more",
		defaults: map[string]string{"duration": "5s"}, run: (*benchCmd).jitter},
}

func scenarioByName(name string) *scenarioDef {
	for i := range scenarios {
		if scenarios[i].name == name {
			return &scenarios[i]
		}
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprintln(w, `usage: dataplane bench [scenario] [flags]   (dataplane bench SCENARIO -h lists its flags)
       dataplane run --config FILE [flags]   (the switch a YAML file describes; see dataplane/config/example.yaml)

scenarios:`)
	for _, sc := range scenarios {
		lines := strings.Split(sc.summary, "\n")
		fmt.Fprintf(w, "  %-14s %s\n", sc.name, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(w, "  %-14s %s\n", "", l)
		}
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "run" {
		return runSwitch(args[1:], stdout, stderr)
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		usage(stdout)
		return nil
	}
	if len(args) == 0 || args[0] != "bench" {
		usage(stderr)
		return errors.New("missing command: bench or run")
	}
	args = args[1:]
	name := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if name == "" {
		name = bench.ScenarioVSwitch
		if err := bench.CanRunAFXDP(); err != nil && !isHelp(args) {
			fmt.Fprintf(stderr, "note: %v; running pipeline-mem over the in-memory port instead\n", err)
			name = "pipeline-mem"
		}
	}
	sc := scenarioByName(name)
	if sc == nil {
		usage(stderr)
		return fmt.Errorf("unknown scenario %q", name)
	}
	b, err := parseBench(sc, args, stdout, stderr)
	if err != nil || b == nil {
		return err // b == nil: -h answered
	}
	if *b.cpuprof != "" {
		f, err := os.Create(*b.cpuprof)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	return sc.run(b)
}

func isHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			return true
		}
	}
	return false
}

// benchCmd is one bench command: its scenario and parsed flags.
type benchCmd struct {
	sc             *scenarioDef
	fs             *flag.FlagSet
	stdout, stderr io.Writer

	path, mode, baseline, cpus, hgrm, plotFile, cpuprof, port, mtus, flowOrder, frameSize, sizeList, replay *string
	duration, final                                                                                         *time.Duration
	batch, runs, filters, queues, probes, flows, rxRing                                                     *int
	rate, pdrLoss                                                                                           *float64
	jsonOut, stages                                                                                         *bool
	obs                                                                                                     observeFlags

	o bench.PipelineOptions // from the flags
}

// parseBench parses args with the flags of sc: a flag that does not apply
// to sc is an error naming it; -h prints sc's flags and returns nil, nil.
func parseBench(sc *scenarioDef, args []string, stdout, stderr io.Writer) (*benchCmd, error) {
	fs := flag.NewFlagSet("bench "+sc.name, flag.ContinueOnError)
	b := &benchCmd{sc: sc, fs: fs, stdout: stdout, stderr: stderr}
	b.path = fs.String("path", "absorb-reinject", "what the switch does with each packet: forward | absorb-reinject")
	b.mode = fs.String("mode", "rtc", "stage placement: rtc | pipeline")
	b.duration = fs.Duration("duration", 10*time.Second, "length of each run (latency: of each step)")
	b.frameSize = fs.String("frame-size", "64", "frame size in bytes (60..1792); in-memory scenarios also take imix (7:4:1 of 64, 570, 1518 bytes) or a list sent in turn, e.g. 64,1518")
	b.batch = fs.Int("batch", 32, "packets per burst, 1..256 (AF_XDP scenarios: 64, the most the kernel's copy-mode RX posts at once)")
	b.rate = fs.Float64("rate", 0, "offered packets per second (0: as many as the switch takes)")
	b.baseline = fs.String("baseline", "none", "baseline run alternately in the same command: chan or forward (pipeline-mem, sizes), chan (ring), asavie (afxdp-*), syncpool (pool), none")
	b.runs = fs.Int("runs", 1, "runs of the subject (and of the baseline); medians are reported")
	b.cpus = fs.String("cores", "", "CPUs to pin to, e.g. 0,1 (default: all this process may use; afxdp-*: the generator gets the first)")
	b.filters = fs.Int("filters", 100, "extra non-matching filters installed (shows the filter index at work)")
	b.jsonOut = fs.Bool("json", false, "print one JSON object instead of the table (docs/cli.md lists its keys)")
	b.hgrm = fs.String("hgrm", "", "write the latency distribution (HdrHistogram text format) to this file")
	b.plotFile = fs.String("plot", "", "draw the latency percentile curves to this PNG file")
	b.cpuprof = fs.String("cpuprofile", "", "write a Go CPU profile of the whole command to this file")
	b.queues = fs.Int("queues", 1, "switch queues, each its own pipeline with its own generator and sink queue")
	b.port = fs.String("port", "memory", "the sweep's ports: memory (in-memory) or afxdp (veth + AF_XDP, as root)")
	b.stages = fs.Bool("stages", false, "stamp lists at each stage and report latency per stage (rx -> absorb worker -> reinject -> tx -> sink)")
	b.probes = fs.Int("probe-rate", 10000, "timestamped latency probes per second sent alongside the load (0: none)")
	b.flows = fs.Int("flows", 1, "flows the load is spread over: source and destination MAC, IPv4 addresses and UDP port vary (the sink's addresses are static entries)")
	b.flowOrder = fs.String("flow-order", "seq", "the order frames take the flows in: seq | random (a random permutation, repeated)")
	b.replay = fs.String("replay", "", "send the frames of this capture (pcap or pcapng), in turn, looping, instead of generated ones")
	b.final = fs.Duration("final", 10*time.Second, "the final trial at the NDR found, which must lose nothing")
	b.pdrLoss = fs.Float64("pdr-loss", 0.005, "the loss ratio the PDR allows")
	b.rxRing = fs.Int("rx-ring", 2048, "the in-memory generator port's RX ring when paced, in frames")
	b.sizeList = fs.String("sizes", "64,128,256,512,1024,1280,1518", "the frame sizes to sweep, comma-separated (60..1792)")
	b.mtus = fs.String("mtu", "1500,9000", "the veth MTUs to compare at, comma-separated (above 1774, AF_XDP multi-buffer carries each frame in several UMEM frames)")
	b.obs = addObserveFlags(fs)
	applies := map[string]bool{"duration": true, "cores": true, "json": true}
	for _, f := range strings.Fields(sc.flags) {
		applies[f] = true
	}
	for name, v := range sc.defaults {
		f := fs.Lookup(name)
		f.Value.Set(v)
		f.DefValue = v
	}
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: dataplane bench %s [flags]\n  %s\n\nflags:\n", sc.name, strings.ReplaceAll(sc.summary, "\n", "\n  "))
		fs.VisitAll(func(f *flag.Flag) {
			if !applies[f.Name] {
				return
			}
			fmt.Fprintf(fs.Output(), "  --%s", f.Name)
			if typ, _ := flag.UnquoteUsage(f); typ != "" {
				fmt.Fprintf(fs.Output(), " %s", typ)
			}
			fmt.Fprintf(fs.Output(), "\n    \t%s", f.Usage)
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
				fmt.Fprintf(fs.Output(), " (default %s)", f.DefValue)
			}
			fmt.Fprintln(fs.Output())
		})
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return nil, nil
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("bench %s: unexpected argument %q", sc.name, fs.Arg(0))
	}
	var bad error
	fs.Visit(func(f *flag.Flag) {
		if !applies[f.Name] && bad == nil {
			bad = fmt.Errorf("bench %s: --%s does not apply to this scenario (dataplane bench %s -h lists its flags)", sc.name, f.Name, sc.name)
		}
	})
	if bad != nil {
		return nil, bad
	}
	return b, b.check()
}

// check validates the flag values and fills b.o.
func (b *benchCmd) check() error {
	sizes, err := bench.ParseFrameSizes(*b.frameSize, 60, 1792)
	if err != nil {
		return fmt.Errorf("--frame-size %v", err)
	}
	if len(sizes) > 1 && b.sc.flags != memFlags && b.sc.name != "latency" && b.sc.name != "sizes" {
		return fmt.Errorf("--frame-size %s: bench %s sends one size", *b.frameSize, b.sc.name)
	}
	o := bench.PipelineOptions{Path: bench.Path(*b.path), Duration: *b.duration, FrameSize: bench.MeanSize(sizes),
		Batch: *b.batch, Rate: *b.rate, Filters: *b.filters, Stages: *b.stages, Queues: *b.queues}
	switch *b.mode {
	case "rtc":
		o.Mode = dataplane.ModeRTC
	case "pipeline":
		o.Mode = dataplane.ModePipeline
	default:
		return fmt.Errorf("--mode %q: want rtc or pipeline", *b.mode)
	}
	switch {
	case o.Path != bench.PathForward && o.Path != bench.PathAbsorbReinject:
		return fmt.Errorf("--path %q: want forward or absorb-reinject", *b.path)
	case *b.batch < 1 || *b.batch > 256:
		return fmt.Errorf("--batch %d: want 1..256", *b.batch)
	case *b.queues < 1 || *b.queues > 64:
		return fmt.Errorf("--queues %d: want 1..64", *b.queues)
	case *b.duration <= 0:
		return fmt.Errorf("--duration %v: want > 0", *b.duration)
	case *b.runs < 1:
		return fmt.Errorf("--runs %d: want >= 1", *b.runs)
	case *b.rate < 0:
		return fmt.Errorf("--rate %v: want >= 0 packets per second", *b.rate)
	case *b.port != "memory" && *b.port != "afxdp":
		return fmt.Errorf("--port %q: want memory or afxdp", *b.port)
	case *b.flows < 1 || *b.flows > 1<<20 || strings.HasPrefix(b.sc.name, "afxdp-") && *b.flows > 1<<16:
		return fmt.Errorf("--flows %d: want 1..%d", *b.flows, map[bool]int{false: 1 << 20, true: 1 << 16}[strings.HasPrefix(b.sc.name, "afxdp-")])
	case *b.flowOrder != "seq" && *b.flowOrder != "random":
		return fmt.Errorf("--flow-order %q: want seq or random", *b.flowOrder)
	}
	if len(sizes) > 1 {
		o.FrameSizes = sizes
	}
	if *b.replay != "" {
		if b.given("frame-size") || b.given("flows") {
			return errors.New("--replay sends the capture's frames as they are: it takes no --frame-size or --flows")
		}
		if strings.HasPrefix(b.sc.name, "afxdp-") && *b.rate <= 0 {
			return fmt.Errorf("--replay over AF_XDP needs --rate: the paced AF_XDP generator sends the capture (the live-frames one sends one frame)")
		}
		frames, err := bench.LoadCapture(*b.replay, 1792)
		if err != nil {
			return err
		}
		o.Replay = frames
		total := 0
		for _, f := range frames {
			total += len(f)
		}
		o.FrameSize = total / len(frames)
	}
	o.Flows = *b.flows
	o.RXRing = *b.rxRing
	if *b.flowOrder == "random" {
		o.FlowOrder = memport.FlowsRandom
	}
	if *b.cpus != "" {
		for _, f := range strings.Split(*b.cpus, ",") {
			c, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || c < 0 {
				return fmt.Errorf("--cores %q: want a comma-separated list of CPU numbers", *b.cpus)
			}
			o.CPUs = append(o.CPUs, c)
		}
	}
	if *b.port == "afxdp" && b.given("batch") == false {
		o.Batch = 64 // the AF_XDP default, as the afxdp scenarios have
	}
	b.o = o
	return nil
}

// given reports whether flag name was set on the command line.
func (b *benchCmd) given(name string) bool {
	set := false
	b.fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// withBaseline checks --baseline against the scenario.
func (b *benchCmd) withBaseline() (bool, error) {
	name, err := b.baselineName()
	return name != "", err
}

// baselineName checks --baseline against the scenario and returns it ("":
// none).
func (b *benchCmd) baselineName() (string, error) {
	want := map[string][]string{"pipeline-mem": {bench.PipelineBaselineChan, bench.PipelineBaselineForward},
		"sizes": {bench.PipelineBaselineChan, bench.PipelineBaselineForward}, "ring": {"chan"}, "pool": {"syncpool"},
		bench.ScenarioVSwitch: {"asavie"}, bench.ScenarioRXDrop: {"asavie"}, bench.ScenarioL2Fwd: {"asavie"}}[b.sc.name]
	if *b.baseline == "none" || *b.baseline == "" {
		return "", nil
	}
	if slices.Contains(want, *b.baseline) {
		return *b.baseline, nil
	}
	if len(want) == 0 {
		return "", fmt.Errorf("--baseline %q: bench %s takes no baseline", *b.baseline, b.sc.name)
	}
	return "", fmt.Errorf("--baseline %q: bench %s takes --baseline %s or none", *b.baseline, b.sc.name, strings.Join(want, ", "))
}

// progress is where live lines go: stderr, or nowhere with --json.
func (b *benchCmd) progress() io.Writer {
	if *b.jsonOut {
		return nil
	}
	return b.stderr
}

// observe starts the metrics server and capture the flags ask for.
func (b *benchCmd) observe() (*observer, func(), error) {
	ob, err := b.obs.start(b.stderr, *b.jsonOut)
	if err != nil {
		return nil, nil, err
	}
	return ob, func() {
		if serr := ob.stop(b.stderr, *b.jsonOut); serr != nil {
			fmt.Fprintln(b.stderr, "dataplane:", serr)
		}
	}, nil
}

// stopOnSignal makes Ctrl-C end the current run early; the result is still
// printed.
func (b *benchCmd) stopOnSignal() func() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	b.o.Stop = ctx.Done()
	return stop
}

// report prints rep as JSON or as the table, and writes --hgrm's file.
func (b *benchCmd) report(run func(hgrm io.Writer) (*bench.Report, error)) error {
	var hw io.Writer
	var hf *os.File
	if *b.hgrm != "" {
		f, err := os.Create(*b.hgrm)
		if err != nil {
			return fmt.Errorf("--hgrm: %w", err)
		}
		hf, hw = f, f
	}
	rep, err := run(hw)
	if hf != nil {
		if cerr := hf.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("--hgrm: %w", cerr)
		}
	}
	if rep != nil {
		if *b.jsonOut {
			if jerr := writeJSON(b.stdout, rep); jerr != nil {
				return jerr
			}
		} else {
			printTable(b.stdout, rep)
		}
	}
	return err
}

func (b *benchCmd) afxdpOptions(ob *observer) bench.AFXDPOptions {
	o := b.o
	ao := bench.AFXDPOptions{Scenario: b.sc.name, Mode: o.Mode, Batch: o.Batch, FrameSize: o.FrameSize,
		Duration: o.Duration, CPUs: o.CPUs, Stop: o.Stop, ProbeRate: *b.probes, Observe: ob.Observe, Rate: o.Rate}
	if len(ao.CPUs) > 0 {
		ao.GenCPU = ao.CPUs[0]
	}
	if b.given("flows") || b.given("flow-order") {
		ao.Flows = afxdp.Flows{N: *b.flows, Random: *b.flowOrder == "random"}
	}
	ao.Replay = o.Replay
	return ao
}

func (b *benchCmd) afxdp() error {
	header := fmt.Sprintf("%s: mode %s, %d-byte frames, %v per run, own veth pairs + namespace (removed at the end)",
		b.sc.name, b.o.Mode, b.o.FrameSize, b.o.Duration)
	return b.compare(header, func(ob *observer, withBase bool, hw io.Writer) (*bench.Report, error) {
		return bench.CompareAFXDP(b.afxdpOptions(ob), *b.runs, withBase, b.progress(), hw, *b.plotFile)
	})
}

func (b *benchCmd) pipelineMem() error {
	header := fmt.Sprintf("pipeline-mem: path %s, mode %s, %d-byte frames, %v per run, in-memory port (no privileges needed)",
		b.o.Path, b.o.Mode, b.o.FrameSize, b.o.Duration)
	base, _ := b.baselineName() // compare checks it first
	return b.compare(header, func(ob *observer, withBase bool, hw io.Writer) (*bench.Report, error) {
		b.o.Observe = ob.Observe
		return bench.ComparePipeline(b.o, *b.runs, base, b.progress(), hw, *b.plotFile)
	})
}

// compare runs a subject-and-baseline scenario: the baseline checked, the
// metrics and capture started, Ctrl-C ending the run, the header printed,
// then run's report printed.
func (b *benchCmd) compare(header string, run func(ob *observer, withBase bool, hw io.Writer) (*bench.Report, error)) error {
	withBase, err := b.withBaseline()
	if err != nil {
		return err
	}
	ob, stopObs, err := b.observe()
	if err != nil {
		return err
	}
	defer stopObs()
	defer b.stopOnSignal()()
	if !*b.jsonOut {
		fmt.Fprintln(b.stderr, header)
	}
	return b.report(func(hw io.Writer) (*bench.Report, error) {
		rep, err := run(ob, withBase, hw)
		b.noteReplay(rep)
		return rep, err
	})
}

// noteReplay describes the replayed capture, if any, in rep.
func (b *benchCmd) noteReplay(rep *bench.Report) {
	if rep != nil && len(b.o.Replay) > 0 {
		rep.Replay = &bench.ReplayReport{File: *b.replay, Frames: len(b.o.Replay), Sizes: bench.SizeDistribution(b.o.Replay)}
	}
}

func (b *benchCmd) micro() error {
	withBase, err := b.withBaseline()
	if err != nil {
		return err
	}
	defer b.stopOnSignal()()
	mo := bench.MicroOptions{Duration: b.o.Duration, Batch: b.o.Batch, CPUs: b.o.CPUs}
	return b.report(func(io.Writer) (*bench.Report, error) {
		if b.sc.name == "ring" {
			return bench.CompareRing(mo, *b.runs, withBase, b.progress())
		}
		return bench.ComparePool(mo, *b.runs, withBase, b.progress())
	})
}

func (b *benchCmd) latency() error {
	ob, stopObs, err := b.observe()
	if err != nil {
		return err
	}
	defer stopObs()
	b.o.Observe = ob.Observe
	fractions := []float64{0.1, 0.5, 0.9}
	var rep *bench.SweepReport
	if *b.port == "afxdp" {
		ao := b.afxdpOptions(ob)
		ao.Scenario = ""
		rep, err = bench.LatencySweepAFXDP(ao, fractions, b.progress(), *b.plotFile)
	} else {
		rep, err = bench.LatencySweep(b.o, fractions, b.progress(), *b.plotFile)
	}
	if rep == nil {
		return err
	}
	if *b.jsonOut {
		if jerr := writeJSON(b.stdout, rep); jerr != nil {
			return jerr
		}
		return err
	}
	w := b.stdout
	fmt.Fprintf(w, "\nlatency sweep (%s, %s, %d-byte frames): maximum %.3f Mpps\n", rep.Path, rep.Mode, rep.FrameSize, rep.MaxMpps)
	fmt.Fprintf(w, "%6s %10s %10s %8s %8s %10s %10s %10s %10s %6s\n", "load", "offered", "delivered", "missed", "lost", "p50", "p99", "p99.9", "max", "leaked")
	for _, st := range rep.Steps {
		l := st.Latency
		fmt.Fprintf(w, "%5.0f%% %10.3f %10.3f %8d %8d %10s %10s %10s %10s %6d\n", 100*st.Fraction, st.OfferedMpps, st.Mpps, st.Missed, st.Lost,
			fmtNS(l.P50), fmtNS(l.P99), fmtNS(l.P999), fmtNS(l.Max), st.Leaked)
	}
	return err
}

func (b *benchCmd) tcp() error {
	o := bench.TCPOptions{Duration: b.o.Duration, Runs: *b.runs, CPUs: b.o.CPUs}
	for _, f := range strings.Split(*b.mtus, ",") {
		m, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || m < 1280 || m > afxdp.MaxMTU(2048, true) {
			return fmt.Errorf("--mtu %q: want MTUs of 1280..%d, comma-separated", *b.mtus, afxdp.MaxMTU(2048, true))
		}
		o.MTUs = append(o.MTUs, m)
	}
	if err := bench.CanRunAFXDP(); err != nil {
		return fmt.Errorf("bench tcp: %w", err)
	}
	if len(o.CPUs) > 0 {
		o.SenderCPU = o.CPUs[0]
	}
	defer b.stopOnSignal()()
	o.Stop = b.o.Stop
	rep, err := bench.RunTCP(o, b.progress())
	if rep == nil {
		return err
	}
	if *b.jsonOut {
		return errors.Join(err, writeJSON(b.stdout, rep))
	}
	w := b.stdout
	fmt.Fprintf(w, "\ntcp: bulk TCP, one stream, %v per transfer, median of %d each, alternated\ncores %s\n", b.o.Duration, o.Runs, rep.Cores)
	fmt.Fprintf(w, "%6s %6s %12s %12s %7s %10s %6s\n", "mtu", "frame", "switch Gb/s", "bridge Gb/s", "ratio", "checksums", "leaked")
	for _, r := range rep.Rows {
		fmt.Fprintf(w, "%6d %6d %12.2f %12.2f %6.2fx %10d %6d\n", r.MTU, r.FrameSize, r.SwitchGbps, r.BridgeGbps, r.Ratio, r.Checksums, r.Leaked)
	}
	return err
}

func (b *benchCmd) sizes() error {
	base, err := b.baselineName()
	if err != nil {
		return err
	}
	withBase := base != ""
	sizes, err := bench.ParseFrameSizes(*b.sizeList, 60, 1792)
	if err != nil {
		return fmt.Errorf("--sizes: %v", err)
	}
	defer b.stopOnSignal()()
	rep, err := bench.RunSizes(b.o, sizes, *b.runs, base, b.progress(), *b.plotFile)
	if rep == nil {
		return err
	}
	if *b.jsonOut {
		return errors.Join(err, writeJSON(b.stdout, rep))
	}
	w := b.stdout
	fmt.Fprintf(w, "\nsizes (%s, %s), %v per run, median of %d\ncores %s\n%6s %10s %9s", rep.Path, rep.Mode, b.o.Duration, *b.runs, rep.Cores, "size", "Mpps", "Gb/s")
	if withBase {
		fmt.Fprintf(w, " %10s %7s", base+" Mpps", "ratio")
	}
	fmt.Fprintln(w)
	for _, st := range rep.Steps {
		fmt.Fprintf(w, "%6d %10.3f %9.2f", st.FrameSize, st.Mpps, st.Gbps)
		if withBase {
			fmt.Fprintf(w, " %10.3f %6.2fx", st.BaselineMpps, st.Ratio)
		}
		fmt.Fprintln(w)
	}
	return err
}

func (b *benchCmd) ndr() error {
	if *b.pdrLoss < 0 || *b.pdrLoss >= 1 || *b.final <= 0 || *b.rxRing < 1 {
		return fmt.Errorf("--pdr-loss %v, --final %v, --rx-ring %d: want 0 <= loss < 1, a final trial > 0 and a ring of a frame or more", *b.pdrLoss, *b.final, *b.rxRing)
	}
	no := bench.NDROptions{Trial: b.o.Duration, Final: *b.final, PDRLoss: *b.pdrLoss}
	defer b.stopOnSignal()()
	var rep *bench.NDRReport
	var err error
	if *b.port == "afxdp" {
		rep, err = bench.NDRAFXDP(b.afxdpOptions(&observer{}), no, b.progress(), *b.plotFile)
	} else {
		rep, err = bench.NDRMemory(b.o, no, b.progress(), *b.plotFile)
	}
	if rep == nil {
		return err
	}
	if *b.jsonOut {
		return errors.Join(err, writeJSON(b.stdout, rep))
	}
	w := b.stdout
	fmt.Fprintf(w, "\nzero-loss search (%s port, %s, %s, %d-byte frames), trials of %v, final %v\n", rep.Port, rep.Path, rep.Mode, rep.FrameSize, b.o.Duration, *b.final)
	fmt.Fprintf(w, "maximum       %.3f Mpps (unpaced)\n", rep.MaxMpps)
	fmt.Fprintf(w, "PDR           %.3f Mpps (loss <= %.2f %%)\n", rep.PDRMpps, 100*rep.PDRLossRatio)
	fmt.Fprintf(w, "NDR           %.3f Mpps; final trial: offered %d, lost %d\n", rep.NDRMpps, rep.Final.Offered, rep.Final.Lost)
	if rep.GeneratorLimited {
		fmt.Fprintln(w, "note          the generator could not offer some rates the search asked for: these figures are its limit, not the switch's")
	}
	for _, st := range rep.Latency {
		fmt.Fprintf(w, "latency %3.0f%%  offered %.3f Mpps: %s\n", 100*st.Fraction, st.OfferedMpps, fmtLatency(st.Latency))
	}
	fmt.Fprintf(w, "trials        %d\n", len(rep.Trials))
	return err
}

func (b *benchCmd) jitter() error {
	return runJitter(b.stdout, b.o.CPUs, b.o.Duration, *b.jsonOut)
}

// fmtNS formats nanoseconds with the unit that suits the value: 876 ns,
// 2.65 µs, 1.37 ms, 1.20 s.
func fmtNS(ns int64) string {
	switch {
	case ns < 1000:
		return fmt.Sprintf("%d ns", ns)
	case ns < 1000_000:
		return fmt.Sprintf("%.2f µs", float64(ns)/1e3)
	case ns < 1000_000_000:
		return fmt.Sprintf("%.2f ms", float64(ns)/1e6)
	}
	return fmt.Sprintf("%.2f s", float64(ns)/1e9)
}

// fmtLatency is a row of percentiles with units.
func fmtLatency(l bench.LatencyNS) string {
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  p99.99 %s  max %s",
		fmtNS(l.P50), fmtNS(l.P90), fmtNS(l.P99), fmtNS(l.P999), fmtNS(l.P9999), fmtNS(l.Max))
}

func printTable(w io.Writer, r *bench.Report) {
	if r.Scenario == "ring" || r.Scenario == "pool" {
		fmt.Fprintf(w, "\nscenario      %s (%s)\ncores         %s\n", r.Scenario, r.Link, r.Cores)
		if r.CoreRTTNS > 0 {
			fmt.Fprintf(w, "core RTT      %d ns\n", r.CoreRTTNS)
		}
		fmt.Fprintf(w, "throughput    %.2f M descriptors/s = %.2f ns/descriptor (median of %d)\n", r.Mpps, 1e3/r.Mpps, countSubject(r))
		if b := r.Baseline; b != nil {
			fmt.Fprintf(w, "baseline      %s: %.2f M descriptors/s = %.2f ns/descriptor\nratio         %.2fx\n", b.Name, b.Mpps, 1e3/b.Mpps, r.Ratio)
		}
		fmt.Fprintf(w, "allocs        %.6f per descriptor, GC cycles %d\n", r.AllocsPerPacket, r.GCCycles)
		return
	}
	if r.Path != "" {
		fmt.Fprintf(w, "\nscenario      %s (%s)\n", r.Scenario, r.Path)
	} else {
		fmt.Fprintf(w, "\nscenario      %s\n", r.Scenario)
	}
	fmt.Fprintf(w, "cores         %s\n", r.Cores)
	if r.CoreRTTNS > 0 {
		fmt.Fprintf(w, "core RTT      %d ns (a cache line there and back between the two CPUs, before the runs)\n", r.CoreRTTNS)
	}
	if len(r.FrameSizes) > 0 {
		fmt.Fprintf(w, "frame sizes   %v in turn (mean %d B), bursts of %d\n", r.FrameSizes, r.FrameSize, r.Batch)
	} else {
		fmt.Fprintf(w, "frame size    %d B, bursts of %d\n", r.FrameSize, r.Batch)
	}
	if r.Flows > 1 {
		fmt.Fprintf(w, "flows         %d (%s)\n", r.Flows, r.FlowOrder)
	}
	if rp := r.Replay; rp != nil {
		fmt.Fprintf(w, "replay        %s: %d frames, looping; by size:", rp.File, rp.Frames)
		for _, c := range rp.Sizes {
			fmt.Fprintf(w, " %d..%d=%d", c.Min, min(c.Max, 9999), c.Frames)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "packets       %d in %.2f s (last run)\n", r.Packets, r.DurationS)
	fmt.Fprintf(w, "offered       %.3f Mpps\n", r.OfferedMpps)
	fmt.Fprintf(w, "throughput    %.3f Mpps  %.2f Gb/s (median of %d)\n", r.Mpps, r.Gbps, countSubject(r))
	fmt.Fprintf(w, "absorbed      %d  reinjected %d  completions %d\n", r.Absorbed, r.Reinjected, r.Completions)
	var total uint64
	for _, v := range r.Drops {
		total += v
	}
	fmt.Fprintf(w, "drops         %d%s\n", total, bench.DropPairs(r.Drops))
	fmt.Fprintf(w, "latency       %s\n", fmtLatency(r.Latency))
	for _, name := range memport.StageNames {
		if l, ok := r.StageLatency[name]; ok {
			fmt.Fprintf(w, "  %-26s %s\n", name, fmtLatency(l))
		}
	}
	if b := r.Baseline; b != nil {
		fmt.Fprintf(w, "baseline      %s: %.3f Mpps, latency %s", b.Name, b.Mpps, fmtLatency(b.Latency))
		if b.BusyNSPerPacket > 0 {
			fmt.Fprintf(w, ", busy %.1f ns/pkt", b.BusyNSPerPacket)
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "ratio         %.2fx\n", r.Ratio)
		if r.BusyRatio > 0 {
			fmt.Fprintf(w, "busy ratio    %.2fx the baseline's busy ns/pkt (median of the paired runs; below 1: cheaper per packet)\n", r.BusyRatio)
		}
	}
	busy := "not measured (no packets delivered)"
	if r.BusyNSPerPacket > 0 {
		busy = fmt.Sprintf("%.1f ns/pkt (rounds that moved packets, incl. their syscalls)", r.BusyNSPerPacket)
	}
	fmt.Fprintf(w, "allocs/pkt    %.6f   GC cycles %d   busy %s\n", r.AllocsPerPacket, r.GCCycles, busy)
	fmt.Fprintf(w, "memory        RSS %d KiB after warm-up, %d KiB at the end; GC cycles after warm-up %d\n",
		r.RSSKB.Start, r.RSSKB.End, r.GCAfterWarmup)
	fmt.Fprintf(w, "accounting    %d frames, %d free at end, %d leaked\n", r.Accounting.FramesTotal, r.Accounting.FramesFree, r.Accounting.Leaked)
}

func countSubject(r *bench.Report) int {
	n := 0
	for _, x := range r.Runs {
		if x.Subject {
			n++
		}
	}
	return n
}

// runJitter runs the jitter scenario on cpus (all this process may use if
// none) for d and prints its report.
func runJitter(w io.Writer, cpus []int, d time.Duration, jsonOut bool) error {
	if len(cpus) == 0 {
		var err error
		if cpus, err = pin.CPUs(); err != nil {
			return err
		}
	}
	rs := bench.Jitter(cpus, d)
	if jsonOut {
		return writeJSON(w, struct {
			bench.Envelope
			DurationS   float64           `json:"duration_s"`
			ThresholdNS int64             `json:"threshold_ns"`
			CPUs        []bench.JitterCPU `json:"cpus"`
		}{bench.NewEnvelope("bench", "jitter"), d.Seconds(), int64(bench.JitterThreshold), rs})
	}
	fmt.Fprintf(w, "jitter: a thread pinned on each CPU (nice %d) reads the clock for %v; a gap of %v or more between reads is a stall\n",
		bench.LcoreNice, d, bench.JitterThreshold)
	fmt.Fprintf(w, "%4s %8s", "cpu", "read ns")
	for _, b := range bench.JitterBucketsNS {
		fmt.Fprintf(w, " %14s", "≥"+time.Duration(b).String()+" /s (%)")
	}
	fmt.Fprintf(w, " %7s %9s\n", "lost %", "max µs")
	for _, r := range rs {
		fmt.Fprintf(w, "%4d %8.1f", r.CPU, r.ReadNS)
		for _, b := range r.Stalls {
			fmt.Fprintf(w, " %14s", fmt.Sprintf("%.0f (%.2f)", b.PerSecond, b.LostPct))
		}
		fmt.Fprintf(w, " %7.2f %9.1f", r.LostPct, float64(r.MaxNS)/1e3)
		if !r.Pinned {
			fmt.Fprint(w, "  (not pinned)")
		}
		fmt.Fprintln(w)
	}
	return nil
}
