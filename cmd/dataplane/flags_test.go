package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wfpxdp/wfpxdp/bench"
)

// -h prints the usage and succeeds, for the command and for a scenario,
// which lists only its own flags.
func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"bench", "pipeline-mem", "-h"}, {"bench", "ring", "--help"}} {
		var out, errb bytes.Buffer
		if err := run(args, &out, &errb); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, errb.String())
		}
		if !strings.Contains(out.String(), "usage: dataplane") {
			t.Fatalf("%v printed:\n%s", args, out.String())
		}
	}
	var out bytes.Buffer
	run([]string{"bench", "ring", "-h"}, &out, io.Discard)
	if strings.Contains(out.String(), "--path") || !strings.Contains(out.String(), "--baseline") {
		t.Fatalf("ring's flags:\n%s", out.String())
	}
}

// A flag given is honoured even when it equals the general default; a
// scenario's own default applies when it is not given.
func TestFlagDefaultsPerScenario(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		args     []string
		want     time.Duration
		batch    int
	}{
		{"latency", nil, 3 * time.Second, 32},
		{"latency", []string{"--duration", "10s"}, 10 * time.Second, 32},
		{"jitter", []string{"--duration", "10s"}, 10 * time.Second, 32},
		{"pipeline-mem", nil, 10 * time.Second, 32},
		{"afxdp-vswitch", nil, 10 * time.Second, 64},
		{"afxdp-vswitch", []string{"--batch", "32"}, 10 * time.Second, 32},
		{"latency", []string{"--port", "afxdp"}, 3 * time.Second, 64},
	} {
		b, err := parseBench(scenarioByName(tc.scenario), tc.args, io.Discard, io.Discard)
		if err != nil {
			t.Fatalf("%s %v: %v", tc.scenario, tc.args, err)
		}
		if b.o.Duration != tc.want || b.o.Batch != tc.batch {
			t.Errorf("%s %v: duration %v batch %d, want %v and %d", tc.scenario, tc.args, b.o.Duration, b.o.Batch, tc.want, tc.batch)
		}
	}
}

// A flag that does not apply to the scenario is an error naming both.
func TestFlagNotForScenario(t *testing.T) {
	for _, tc := range [][]string{
		{"bench", "afxdp-rxdrop", "--path", "forward"},
		{"bench", "ring", "--rate", "1000"},
		{"bench", "jitter", "--filters", "3"},
		{"bench", "afxdp-l2fwd", "--stages"},
	} {
		_, _, err := runCLI(t, tc...)
		if err == nil || !strings.Contains(err.Error(), "does not apply") || !strings.Contains(err.Error(), tc[1]) {
			t.Errorf("%v: %v", tc, err)
		}
	}
}

// run --json and bench --json share their common keys, with the same
// meaning: the schema of docs/cli.md.
func TestJSONSchemaShared(t *testing.T) {
	bm, _, err := runCLI(t, "bench", "pipeline-mem", "--duration", "200ms", "--json")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("../../dataplane/config/example-memory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "short.yaml")
	os.WriteFile(cfg, bytes.Replace(src, []byte("count: 200000"), []byte("count: 1000"), 1), 0o644)
	var out bytes.Buffer
	if err := run([]string{"run", "--config", cfg, "--duration", "300ms", "--json"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var rm map[string]any
	if err := json.Unmarshal(out.Bytes(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, m := range []map[string]any{bm, rm} {
		if num(t, m, "schema_version") != 3 {
			t.Errorf("schema_version %v", m["schema_version"])
		}
		for _, k := range []string{"command", "scenario", "machine", "cores", "duration_s", "drops", "accounting"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%v lacks %q", m["command"], k)
			}
		}
		if s, _ := m["machine"].(string); !strings.Contains(s, "CPUs") {
			t.Errorf("machine: %q", m["machine"])
		}
		if _, ok := m["drops"].(map[string]any); !ok {
			t.Errorf("%v: drops is not an object: %v", m["command"], m["drops"])
		}
		for _, k := range []string{"frames_total", "frames_free", "frames_in_ports", "in_flight", "leaked"} {
			_ = num(t, m, "accounting", k)
		}
	}
	if bm["command"] != "bench" || rm["command"] != "run" || rm["scenario"] != "run" {
		t.Errorf("command/scenario: %v %v, %v %v", bm["command"], bm["scenario"], rm["command"], rm["scenario"])
	}
	for _, k := range []string{"rx", "tx", "absorbed", "reinjected", "completions", "total_drops"} {
		_ = num(t, rm, "stats", k)
	}
	if ports, _ := rm["ports"].([]any); len(ports) != 2 {
		t.Errorf("run ports: %v", rm["ports"])
	}
}

// Latencies print with units, drops as reason=count pairs.
func TestHumanOutput(t *testing.T) {
	for ns, want := range map[int64]string{876: "876 ns", 2645: "2.65 µs", 1374207: "1.37 ms", 2_500_000_000: "2.50 s"} {
		if got := fmtNS(ns); got != want {
			t.Errorf("fmtNS(%d) = %q, want %q", ns, got, want)
		}
	}
	if got := bench.DropPairs(map[string]uint64{"tx_full": 3, "blocked": 2}); got != " (blocked=2 tx_full=3)" {
		t.Errorf("dropPairs: %q", got)
	}
	var out bytes.Buffer
	if err := run([]string{"bench", "pipeline-mem", "--duration", "200ms"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "latency       p50 ") || strings.Contains(out.String(), "map[") {
		t.Fatalf("table:\n%s", out.String())
	}
}

// --frame-size takes imix and lists on the in-memory scenarios; bench sizes
// sweeps sizes and plots them; --flows spreads the load over many flows.
func TestSizesFlowsIMIX(t *testing.T) {
	m, _, err := runCLI(t, "bench", "pipeline-mem", "--frame-size", "imix", "--flows", "1024", "--flow-order", "random", "--duration", "300ms", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if num(t, m, "mpps") <= 0 || num(t, m, "flows") != 1024 || m["flow_order"] != "random" || num(t, m, "accounting", "leaked") != 0 {
		t.Fatalf("%v", m)
	}
	if sizes, _ := m["frame_sizes"].([]any); len(sizes) != 12 {
		t.Fatalf("frame_sizes %v", m["frame_sizes"])
	}
	png := filepath.Join(t.TempDir(), "sizes.png")
	m, _, err = runCLI(t, "bench", "sizes", "--sizes", "64,1518", "--duration", "200ms", "--plot", png, "--json")
	if err != nil {
		t.Fatal(err)
	}
	steps, _ := m["steps"].([]any)
	if len(steps) != 2 || num(t, steps[1].(map[string]any), "gbps") <= num(t, steps[0].(map[string]any), "gbps") {
		t.Fatalf("steps %v", m["steps"])
	}
	if st, err := os.Stat(png); err != nil || st.Size() == 0 {
		t.Fatalf("plot: %v", err)
	}
	if _, _, err := runCLI(t, "bench", "afxdp-rxdrop", "--frame-size", "imix"); err == nil {
		t.Fatal("imix accepted over AF_XDP")
	}
}

// --replay sends a capture's frames through the switch, looping, and
// reports its size distribution.
func TestBenchReplay(t *testing.T) {
	m, _, err := runCLI(t, "bench", "pipeline-mem", "--replay", "../../bench/testdata/mixed.pcap", "--duration", "300ms", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if num(t, m, "mpps") <= 0 || num(t, m, "replay", "frames") != 11 || num(t, m, "accounting", "leaked") != 0 {
		t.Fatalf("%v", m)
	}
	if _, _, err := runCLI(t, "bench", "pipeline-mem", "--replay", "../../bench/testdata/mixed.pcap", "--flows", "8"); err == nil {
		t.Fatal("--replay with --flows accepted")
	}
}

// bench ndr searches the no-drop and partial-drop rates by bisection and
// reports each trial, counted after the drain.
func TestBenchNDR(t *testing.T) {
	png := filepath.Join(t.TempDir(), "ndr.png")
	m, _, err := runCLI(t, "bench", "ndr", "--duration", "200ms", "--final", "300ms", "--plot", png, "--json")
	if err != nil {
		t.Fatal(err)
	}
	ndr, pdr := num(t, m, "ndr_mpps"), num(t, m, "pdr_mpps")
	if ndr <= 0 || pdr < ndr || num(t, m, "max_mpps") <= 0 || num(t, m, "pdr_loss_ratio") != 0.005 {
		t.Fatalf("ndr %v pdr %v: %v", ndr, pdr, m)
	}
	trials, _ := m["trials"].([]any)
	if len(trials) < 5 {
		t.Fatalf("%d trials", len(trials))
	}
	for _, tr := range trials {
		if num(t, tr.(map[string]any), "leaked") != 0 {
			t.Fatalf("trial leaked: %v", tr)
		}
	}
	for _, p := range []string{png, strings.TrimSuffix(png, ".png") + "-latency.png"} {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Fatalf("plot %s: %v", p, err)
		}
	}
}
