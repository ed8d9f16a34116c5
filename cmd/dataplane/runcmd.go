package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/wfpxdp/wfpxdp/bench"
	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/dataplane/config"
	"github.com/wfpxdp/wfpxdp/dataplane/metrics"
)

// runResult is what "run --json" prints at the end.
type runResult struct {
	bench.Envelope
	Config     string               `json:"config"`
	Cores      string               `json:"cores"`
	DurationS  float64              `json:"duration_s"`
	Drops      map[string]uint64    `json:"drops"` // = stats.drops, where bench has it
	Stats      dataplane.Stats      `json:"stats"`
	Ports      []config.PortReport  `json:"ports"`
	Accounting dataplane.Accounting `json:"accounting"`
}

// reload applies the configuration file again (SIGHUP): what can change
// while the switch runs is applied, anything else is refused and named;
// the switch keeps running either way.
func reload(rt *config.Runtime, path string, stderr io.Writer) {
	f, err := config.Load(path)
	if err == nil {
		var changes []string
		if changes, err = rt.Reload(f); err == nil {
			if len(changes) == 0 {
				changes = []string{"nothing changed"}
			}
			fmt.Fprintf(stderr, "reloaded %s: %s\n", path, strings.Join(changes, "; "))
			return
		}
	}
	fmt.Fprintf(stderr, "reload refused, still running as before: %v\n", err)
}

// runSwitch is "dataplane run --config FILE": the switch a config file
// describes, until SIGINT/SIGTERM or --duration; SIGHUP reloads the file.
func runSwitch(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfgPath  = fs.String("config", "", "the switch's configuration (YAML; see dataplane/config/example.yaml)")
		duration = fs.Duration("duration", 0, "stop after this long (0: run until SIGINT/SIGTERM)")
		every    = fs.Duration("stats", time.Second, "print a statistics line this often (0: never)")
		jsonOut  = fs.Bool("json", false, "print the final statistics and accounting as one JSON object")
	)
	obs := addObserveFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cfgPath == "" {
		fs.Usage()
		return errors.New("run: --config FILE is required")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("run: unexpected argument %q", fs.Arg(0))
	}
	f, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		for i, p := range f.Ports {
			if p.Kind == "afxdp" {
				return fmt.Errorf("%s: ports[%d] (%s on %s) is an AF_XDP port: that needs root "+
					"(CAP_NET_ADMIN and CAP_BPF for the XDP program, CAP_NET_RAW for the socket)", *cfgPath, i, p.Name, p.Interface)
			}
		}
	}
	o, err := obs.start(stderr, *jsonOut)
	if err != nil {
		return err
	}
	rt, err := f.Build(config.BuildOptions{Capture: o.Capture})
	if err != nil {
		o.stop(stderr, true)
		return err
	}
	sinks := rt.Sinks()
	latency := func() *hdrhistogram.Histogram {
		var h *hdrhistogram.Histogram
		for _, s := range sinks {
			if x := s.LatencySnapshot(); x != nil && x.TotalCount() > 0 {
				if h == nil {
					h = x
				} else {
					h.Merge(x)
				}
			}
		}
		return h
	}
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	sw := rt.Switch
	if err := sw.Start(ctx); err != nil { // Ctrl-C during the start ends it
		rt.Close()
		o.stop(stderr, true)
		return err
	}
	if o.OnStart != nil {
		o.OnStart(metrics.Source{Switch: sw, XDP: rt.XDPPorts(), Capture: o.Capture, Latency: latency})
	}
	// on stderr even with --json (stdout is the JSON): scripts wait for it
	fmt.Fprintf(stderr, "running %s: %d ports, cores %s; Ctrl-C stops, SIGHUP reloads\n", *cfgPath, len(rt.Ports), sw.Plan())
	if !*jsonOut {
		for _, r := range rt.Reports() {
			fmt.Fprintln(stderr, "  "+r.Setup())
		}
	}
	start := time.Now()
	var end <-chan time.Time
	if *duration > 0 {
		end = time.After(*duration)
	}
	var tick <-chan time.Time
	if *every > 0 && !*jsonOut {
		t := time.NewTicker(*every)
		defer t.Stop()
		tick = t.C
	}
	prev, prevT := sw.Stats(), start
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-end:
			break loop
		case <-hup:
			reload(rt, *cfgPath, stderr)
		case now := <-tick:
			st := sw.Stats()
			dt := now.Sub(prevT).Seconds()
			fmt.Fprintf(stderr, "%6.1fs rx %8.3f Mpps  tx %8.3f Mpps  absorbed %d  reinjected %d  completions %d  drops %d%s\n",
				now.Sub(start).Seconds(), float64(st.RX-prev.RX)/dt/1e6, float64(st.TX-prev.TX)/dt/1e6,
				st.Absorbed, st.Reinjected, st.Completions, st.TotalDrops, bench.DropPairs(st.Drops))
			for _, r := range rt.Reports() {
				fmt.Fprintf(stderr, "        port %d rx %d tx %d  checksums %d\n", r.ID, r.RXPackets, r.TXPackets, r.ChecksumsCompleted)
			}
			for _, p := range rt.Ports {
				if err := sw.PortErr(p.ID); err != nil && prev.RX != 0 {
					fmt.Fprintf(stderr, "        port %d (%s) detached: %v\n", p.ID, p.Name, err)
				}
			}
			prev, prevT = st, now
		}
	}
	elapsed := time.Since(start)
	cerr := rt.Close() // drains (R7), checks every frame is back, detaches the XDP programs
	oerr := o.stop(stderr, *jsonOut)
	st := sw.Stats()
	res := runResult{Envelope: bench.NewEnvelope("run", "run"), Config: *cfgPath, Cores: sw.Plan(), DurationS: elapsed.Seconds(),
		Drops: st.Drops, Stats: st, Ports: rt.Reports(), Accounting: sw.Accounting()}
	if *jsonOut {
		if err := writeJSON(stdout, res); err != nil {
			return err
		}
	} else {
		st, a := res.Stats, res.Accounting
		fmt.Fprintf(stdout, "\nran %.1f s: rx %d  tx %d  absorbed %d  reinjected %d  completions %d  flooded %d\n",
			res.DurationS, st.RX, st.TX, st.Absorbed, st.Reinjected, st.Completions, st.Flooded)
		fmt.Fprintf(stdout, "drops       %d%s\n", st.TotalDrops, bench.DropPairs(st.Drops))
		for _, r := range res.Ports {
			fmt.Fprintln(stdout, r.Traffic())
		}
		fmt.Fprintf(stdout, "accounting  %d frames, %d free at end, %d leaked\n", a.FramesTotal, a.FramesFree, a.Leaked)
	}
	return errors.Join(cerr, oerr)
}
