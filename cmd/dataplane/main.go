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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wfpxdp/wfpxdp/bench"
	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/dataplane/memport"
	"github.com/wfpxdp/wfpxdp/ring/pin"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "dataplane:", err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, `usage: dataplane bench [scenario] [flags]
       dataplane run --config FILE [flags]   (the switch a YAML file describes; see dataplane/config/example.yaml)

scenarios:
  afxdp-vswitch  veth -> AF_XDP -> classify, absorb, reinject, forward -> AF_XDP -> veth
                 (default as root; builds and removes its own veth pairs and namespace)
  afxdp-rxdrop   veth -> AF_XDP -> classify -> drop
  afxdp-l2fwd    veth -> AF_XDP -> swap MACs -> AF_XDP -> veth (the AF_XDP layer alone, no switch)
  pipeline-mem   the vSwitch pipeline over the in-memory port (default without root)
  latency        pipeline-mem's maximum, then its latency at 10%, 50% and 90% of it (--port afxdp: over AF_XDP)
  ring           descriptors between two pinned cores through an SPSC ring (--baseline chan: chan [32]*T)
  pool           descriptor get+put through the per-core cache (--baseline syncpool: sync.Pool)
  jitter         what the machine takes from a polling thread on each CPU: stalls of 1 µs and more`)
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "run" {
		return runSwitch(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "bench" {
		usage(stderr)
		return errors.New("missing command: bench or run")
	}
	args = args[1:]
	scenario := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		scenario, args = args[0], args[1:]
	}
	switch scenario {
	case "":
		scenario = bench.ScenarioVSwitch
		if err := bench.CanRunAFXDP(); err != nil {
			fmt.Fprintf(stderr, "note: %v; running pipeline-mem over the in-memory port instead\n", err)
			scenario = "pipeline-mem"
		}
	case "pipeline-mem", "latency", "ring", "pool", "jitter", bench.ScenarioVSwitch, bench.ScenarioRXDrop, bench.ScenarioL2Fwd:
	default:
		usage(stderr)
		return fmt.Errorf("unknown scenario %q", scenario)
	}
	fs := flag.NewFlagSet("bench "+scenario, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		path      = fs.String("path", "absorb-reinject", "what the switch does with each packet: forward | absorb-reinject")
		mode      = fs.String("mode", "rtc", "stage placement: rtc | pipeline")
		duration  = fs.Duration("duration", 10*time.Second, "length of each run")
		frameSize = fs.Int("frame-size", 64, "frame size in bytes (60..2048)")
		batch     = fs.Int("batch", 32, "packets per burst, 1..256 (AF_XDP scenarios: 64 unless given, the most the kernel's copy-mode RX posts at once, its NAPI budget)")
		rate      = fs.Float64("rate", 0, "offered packets per second (0: as many as the switch takes)")
		baseline  = fs.String("baseline", "none", "baseline run alternately in the same command: chan (pipeline-mem) | asavie (afxdp-*) | none")
		runs      = fs.Int("runs", 1, "runs of the subject (and of the baseline); medians are reported")
		cpus      = fs.String("cores", "", "CPUs to pin to, e.g. 0,1 (default: all this process may use; afxdp-*: the generator gets the first)")
		filters   = fs.Int("filters", 100, "extra non-matching filters installed (shows the filter index at work)")
		jsonOut   = fs.Bool("json", false, "print one JSON object instead of the table")
		hgrm      = fs.String("hgrm", "", "write the latency distribution (HdrHistogram text format) to this file")
		plotFile  = fs.String("plot", "", "draw the latency percentile curves (subject and baseline) to this PNG file")
		cpuprof   = fs.String("cpuprofile", "", "write a Go CPU profile of the whole command to this file")
		queues    = fs.Int("queues", 1, "pipeline-mem, latency: switch queues, each its own pipeline with its own generator and sink queue (the AF_XDP scenarios run one)")
		port      = fs.String("port", "memory", "latency: the sweep's ports, memory (in-memory) or afxdp (veth + AF_XDP, as root)")
		stages    = fs.Bool("stages", false, "pipeline-mem: stamp lists at each stage and report latency per stage (rx -> absorb worker -> reinject -> tx -> sink)")
		probes    = fs.Int("probe-rate", 10000, "afxdp-vswitch/l2fwd: timestamped latency probes per second sent alongside the load (0: none)")
	)
	obs := addObserveFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	micro := scenario == "ring" || scenario == "pool"
	afx := scenario != "pipeline-mem" && scenario != "latency" && scenario != "jitter" && !micro
	if afx || (scenario == "latency" && *port == "afxdp") {
		given := false
		fs.Visit(func(f *flag.Flag) { given = given || f.Name == "batch" })
		if !given {
			*batch = 64
		}
	}
	o := bench.PipelineOptions{Path: bench.Path(*path), Duration: *duration, FrameSize: *frameSize,
		Batch: *batch, Rate: *rate, Filters: *filters, Stages: *stages, Queues: *queues}
	switch *mode {
	case "rtc":
		o.Mode = dataplane.ModeRTC
	case "pipeline":
		o.Mode = dataplane.ModePipeline
	default:
		return fmt.Errorf("--mode %q: want rtc or pipeline", *mode)
	}
	if o.Path != bench.PathForward && o.Path != bench.PathAbsorbReinject {
		return fmt.Errorf("--path %q: want forward or absorb-reinject", *path)
	}
	if *frameSize < 60 || *frameSize > 2048 {
		return fmt.Errorf("--frame-size %d: want 60..2048", *frameSize)
	}
	if *batch < 1 || *batch > 256 {
		return fmt.Errorf("--batch %d: want 1..256", *batch)
	}
	if *queues < 1 || *queues > 64 {
		return fmt.Errorf("--queues %d: want 1..64", *queues)
	}
	if *queues > 1 && scenario != "pipeline-mem" && scenario != "latency" {
		return fmt.Errorf("--queues %d: the %s scenario runs one queue (multi-queue AF_XDP is covered by dataplane/afxdp's TestMultiQueue)", *queues, scenario)
	}
	if *duration <= 0 {
		return fmt.Errorf("--duration %v: want > 0", *duration)
	}
	if *cpus != "" {
		for _, f := range strings.Split(*cpus, ",") {
			c, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || c < 0 {
				return fmt.Errorf("--cores %q: want a comma-separated list of CPU numbers", *cpus)
			}
			o.CPUs = append(o.CPUs, c)
		}
	}
	if scenario == "jitter" {
		return runJitter(stdout, o.CPUs, *duration, *jsonOut)
	}
	ob, err := obs.start(stderr, *jsonOut)
	if err != nil {
		return err
	}
	defer func() {
		if serr := ob.stop(stderr, *jsonOut); serr != nil {
			fmt.Fprintln(stderr, "dataplane:", serr)
		}
	}()
	o.Observe = ob.Observe
	if scenario == "latency" {
		if *duration == 10*time.Second {
			*duration = 3 * time.Second // per step
		}
		o.Duration = *duration
		var progress io.Writer = stderr
		if *jsonOut {
			progress = nil
		}
		var rep *bench.SweepReport
		var err error
		switch *port {
		case "memory":
			rep, err = bench.LatencySweep(o, []float64{0.1, 0.5, 0.9}, progress, *plotFile)
		case "afxdp":
			ao := bench.AFXDPOptions{Mode: o.Mode, Batch: o.Batch, FrameSize: o.FrameSize, Duration: o.Duration,
				CPUs: o.CPUs, Stop: o.Stop, ProbeRate: *probes, Observe: ob.Observe}
			if len(ao.CPUs) > 0 {
				ao.GenCPU = ao.CPUs[0]
			}
			rep, err = bench.LatencySweepAFXDP(ao, []float64{0.1, 0.5, 0.9}, progress, *plotFile)
		default:
			return fmt.Errorf("--port %q: want memory or afxdp", *port)
		}
		if rep != nil && *jsonOut {
			if jerr := writeJSON(stdout, rep); jerr != nil {
				return jerr
			}
		} else if rep != nil {
			fmt.Fprintf(stdout, "\nlatency sweep (%s, %s, %d-byte frames): maximum %.3f Mpps\n", rep.Path, rep.Mode, rep.FrameSize, rep.MaxMpps)
			fmt.Fprintf(stdout, "%6s %10s %10s %8s %8s %10s %10s %10s %10s %6s\n", "load", "offered", "delivered", "missed", "lost", "p50 ns", "p99 ns", "p99.9 ns", "max ns", "leaked")
			for _, st := range rep.Steps {
				l := st.Latency
				fmt.Fprintf(stdout, "%5.0f%% %10.3f %10.3f %8d %8d %10d %10d %10d %10d %6d\n", 100*st.Fraction, st.OfferedMpps, st.Mpps, st.Missed, st.Lost, l.P50, l.P99, l.P999, l.Max, st.Leaked)
			}
		}
		return err
	}
	var withBaseline bool
	switch {
	case *baseline == "none" || *baseline == "":
	case *baseline == "chan" && (scenario == "pipeline-mem" || scenario == "ring"), *baseline == "asavie" && afx,
		*baseline == "syncpool" && scenario == "pool":
		withBaseline = true
	default:
		return fmt.Errorf("--baseline %q: want chan for pipeline-mem and ring, asavie for the afxdp scenarios, syncpool for pool, or none", *baseline)
	}

	// Ctrl-C ends the current run early; the result is still printed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o.Stop = ctx.Done()

	var progress io.Writer = stderr
	if *jsonOut {
		progress = nil
	}
	var hw io.Writer
	var hf *os.File
	if *hgrm != "" {
		f, err := os.Create(*hgrm)
		if err != nil {
			return fmt.Errorf("--hgrm: %w", err)
		}
		hf, hw = f, f
	}
	var rep *bench.Report
	if micro {
		mo := bench.MicroOptions{Duration: o.Duration, Batch: o.Batch, CPUs: o.CPUs}
		if *duration == 10*time.Second {
			mo.Duration = 2 * time.Second // per run
		}
		if scenario == "ring" {
			rep, err = bench.CompareRing(mo, *runs, withBaseline, progress)
		} else {
			rep, err = bench.ComparePool(mo, *runs, withBaseline, progress)
		}
	} else if afx {
		ao := bench.AFXDPOptions{Scenario: scenario, Mode: o.Mode, Batch: o.Batch, FrameSize: o.FrameSize,
			Duration: o.Duration, CPUs: o.CPUs, Stop: o.Stop, ProbeRate: *probes, Observe: ob.Observe, Rate: *rate}
		if len(ao.CPUs) > 0 {
			ao.GenCPU = ao.CPUs[0]
		}
		if !*jsonOut {
			fmt.Fprintf(stderr, "%s: mode %s, %d-byte frames, %v per run, own veth pairs + namespace (removed at the end)\n",
				scenario, o.Mode, *frameSize, *duration)
		}
		rep, err = bench.CompareAFXDP(ao, *runs, withBaseline, progress, hw, *plotFile)
	} else {
		if !*jsonOut {
			fmt.Fprintf(stderr, "pipeline-mem: path %s, mode %s, %d-byte frames, %v per run, in-memory port (no privileges needed)\n",
				o.Path, o.Mode, *frameSize, *duration)
		}
		rep, err = bench.ComparePipeline(o, *runs, withBaseline, progress, hw, *plotFile)
	}
	if hf != nil {
		if cerr := hf.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("--hgrm: %w", cerr)
		}
	}
	if rep != nil {
		if *jsonOut {
			if jerr := writeJSON(stdout, rep); jerr != nil {
				return jerr
			}
		} else {
			printTable(stdout, rep)
		}
	}
	return err
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
	fmt.Fprintf(w, "frame size    %d B, bursts of %d\n", r.FrameSize, r.Batch)
	fmt.Fprintf(w, "packets       %d in %.2f s (last run)\n", r.Packets, r.DurationS)
	fmt.Fprintf(w, "offered       %.3f Mpps\n", r.OfferedMpps)
	fmt.Fprintf(w, "throughput    %.3f Mpps  %.2f Gb/s (median of %d)\n", r.Mpps, r.Gbps, countSubject(r))
	fmt.Fprintf(w, "absorbed      %d  reinjected %d  completions %d\n", r.Absorbed, r.Reinjected, r.Completions)
	fmt.Fprintf(w, "drops         %v\n", r.Drops)
	l := r.Latency
	fmt.Fprintf(w, "latency (ns)  p50 %d  p90 %d  p99 %d  p99.9 %d  p99.99 %d  max %d\n", l.P50, l.P90, l.P99, l.P999, l.P9999, l.Max)
	for _, name := range memport.StageNames {
		if l, ok := r.StageLatency[name]; ok {
			fmt.Fprintf(w, "  %-26s p50 %d  p90 %d  p99 %d  p99.9 %d  max %d\n", name, l.P50, l.P90, l.P99, l.P999, l.Max)
		}
	}
	if b := r.Baseline; b != nil {
		bl := b.Latency
		fmt.Fprintf(w, "baseline      %s: %.3f Mpps, latency (ns) p50 %d  p90 %d  p99 %d  p99.9 %d  max %d",
			b.Name, b.Mpps, bl.P50, bl.P90, bl.P99, bl.P999, bl.Max)
		if b.BusyNSPerPacket > 0 {
			fmt.Fprintf(w, ", busy %.1f ns/pkt", b.BusyNSPerPacket)
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "ratio         %.2fx\n", r.Ratio)
	}
	busy := "not measured (no block of idle poll rounds to learn an idle round's cost from: at this rate every block did some work)"
	if r.BusyNSPerPacket > 0 {
		busy = fmt.Sprintf("%.1f ns/pkt (rounds that moved packets, incl. their syscalls)", r.BusyNSPerPacket)
	}
	fmt.Fprintf(w, "allocs/pkt    %.6f   GC cycles %d   busy %s\n", r.AllocsPerPacket, r.GCCycles, busy)
	fmt.Fprintf(w, "memory        RSS %d KiB after warm-up, %d KiB at the end; GC cycles after warm-up %d\n",
		r.RSSKB.Start, r.RSSKB.End, r.GCAfterWarmup)
	fmt.Fprintf(w, "accounting    %d frames, %d free at end, %d leaked\n", r.Accounting.FramesTotal, r.Accounting.FramesFreeAtEnd, r.Accounting.Leaked)
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
	if d == 10*time.Second {
		d = 5 * time.Second
	}
	rs := bench.Jitter(cpus, d)
	if jsonOut {
		return writeJSON(w, struct {
			Scenario    string            `json:"scenario"`
			DurationS   float64           `json:"duration_s"`
			ThresholdNS int64             `json:"threshold_ns"`
			CPUs        []bench.JitterCPU `json:"cpus"`
		}{"jitter", d.Seconds(), int64(bench.JitterThreshold), rs})
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
