package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/wfpxdp/wfpxdp/dataplane/afxdp/afxdptest"
)

func runCLI(t *testing.T, args ...string) (map[string]any, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(args, &out, &errb)
	if err != nil || !strings.Contains(strings.Join(args, " "), "--json") {
		return nil, errb.String(), err
	}
	var m map[string]any
	if jerr := json.Unmarshal(out.Bytes(), &m); jerr != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", jerr, out.String())
	}
	return m, errb.String(), nil
}

func num(t *testing.T, m map[string]any, path ...string) float64 {
	t.Helper()
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%v: not an object at %q", path, p)
		}
		v, ok = mm[p]
		if !ok {
			t.Fatalf("JSON lacks %v", path)
		}
	}
	f, ok := v.(float64)
	if !ok {
		t.Fatalf("%v = %v, not a number", path, v)
	}
	return f
}

// The harness's JSON carries the fields the README promises, with real
// values: traffic moved, latency measured, nothing leaked.
func TestBenchPipelineMemJSON(t *testing.T) {
	m, _, err := runCLI(t, "bench", "pipeline-mem", "--duration", "300ms", "--baseline", "chan", "--json")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"scenario", "mode", "cores", "drops", "runs", "baseline"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if num(t, m, "mpps") <= 0 || num(t, m, "packets") <= 0 || num(t, m, "offered_mpps") <= 0 || num(t, m, "gbps") <= 0 {
		t.Errorf("no traffic: %v", m)
	}
	if num(t, m, "latency_ns", "p50") <= 0 || num(t, m, "latency_ns", "p99") < num(t, m, "latency_ns", "p50") {
		t.Errorf("latency percentiles: %v", m["latency_ns"])
	}
	if num(t, m, "accounting", "leaked") != 0 || num(t, m, "accounting", "frames_total") <= 0 {
		t.Errorf("accounting: %v", m["accounting"])
	}
	if num(t, m, "baseline", "mpps") <= 0 || num(t, m, "ratio") <= 0 || num(t, m, "frame_size") != 64 {
		t.Errorf("baseline: %v ratio %v", m["baseline"], m["ratio"])
	}
	_ = num(t, m, "allocs_per_packet")
	_ = num(t, m, "gc_cycles")
	_ = num(t, m, "duration_s")
}

// --baseline forward runs the forward path alternately with the subject's
// absorb-reinject: the ratio is what absorbing and reinjecting costs.
func TestBenchPipelineForwardBaseline(t *testing.T) {
	m, _, err := runCLI(t, "bench", "pipeline-mem", "--duration", "200ms", "--runs", "2", "--baseline", "forward", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if name, _ := m["baseline"].(map[string]any)["name"].(string); name != "forward" {
		t.Fatalf("baseline %v, want forward", m["baseline"])
	}
	runs, _ := m["runs"].([]any)
	var order []string
	for _, r := range runs {
		order = append(order, r.(map[string]any)["link"].(string))
	}
	if strings.Join(order, " ") != "ring forward forward ring" {
		t.Fatalf("runs %v, want subject and forward alternated (A B B A)", order)
	}
	if m["path"] != "absorb-reinject" || num(t, m, "absorbed") == 0 {
		t.Fatalf("subject: path %v, absorbed %v", m["path"], m["absorbed"])
	}
	ratio, base := num(t, m, "ratio"), num(t, m, "baseline", "mpps")
	if base <= 0 || ratio <= 0 || math.Abs(ratio-num(t, m, "mpps")/base) > 1e-9 {
		t.Fatalf("ratio %v, mpps %v, forward %v", ratio, num(t, m, "mpps"), base)
	}
	if _, _, err := runCLI(t, "bench", "ring", "--duration", "100ms", "--baseline", "forward"); err == nil || !strings.Contains(err.Error(), "takes --baseline chan") {
		t.Fatalf("ring --baseline forward: %v", err)
	}
}

// --hgrm writes the distribution in HdrHistogram's text format.
func TestBenchHgrm(t *testing.T) {
	path := t.TempDir() + "/lat.hgrm"
	if _, _, err := runCLI(t, "bench", "pipeline-mem", "--duration", "200ms", "--rate", "500000", "--hgrm", path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "Value") || !strings.Contains(string(b), "Percentile") || !strings.Contains(string(b), "#[Mean") {
		t.Fatalf("not an .hgrm file:\n%s", b)
	}
}

// --plot draws the latency curves of subject and baseline into a PNG.
func TestBenchPlot(t *testing.T) {
	path := t.TempDir() + "/lat.png"
	if _, _, err := runCLI(t, "bench", "pipeline-mem", "--duration", "200ms", "--rate", "500000", "--baseline", "chan", "--plot", path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 1000 || string(b[1:4]) != "PNG" {
		t.Fatalf("not a PNG (%d bytes)", len(b))
	}
}

// The latency scenario measures the maximum, then three load steps, each
// with latency and no loss or leak.
func TestBenchLatencySweep(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run([]string{"bench", "latency", "--duration", "300ms", "--json"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		MaxMpps float64 `json:"max_mpps"`
		Steps   []struct {
			Fraction float64 `json:"fraction"`
			Mpps     float64 `json:"mpps"`
			Lost     uint64  `json:"lost"`
			Leaked   int     `json:"leaked"`
			Latency  struct {
				P50, P99 int64
			} `json:"latency_ns"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if rep.MaxMpps <= 0 || len(rep.Steps) != 3 {
		t.Fatalf("%+v", rep)
	}
	for _, st := range rep.Steps {
		if st.Mpps <= 0 || st.Latency.P50 <= 0 || st.Leaked != 0 || st.Lost != 0 {
			t.Errorf("step %+v", st)
		}
	}
}

// Bad input: one clear error each, nothing run.
func TestBenchBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "nope"},
		{"bench", "pipeline-mem", "--mode", "fast"},
		{"bench", "pipeline-mem", "--path", "sideways"},
		{"bench", "pipeline-mem", "--frame-size", "20"},
		{"bench", "pipeline-mem", "--batch", "0"},
		{"bench", "pipeline-mem", "--baseline", "asavie"},
		{"bench", "pipeline-mem", "--cores", "a,b"},
		{"frobnicate"},
	} {
		if _, _, err := runCLI(t, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// As root, the default scenario builds its own veth pairs and namespace
// and moves traffic through AF_XDP (afxdp's TestTopologyCleanup checks the
// teardown).
func TestBenchAFXDPDefault(t *testing.T) {
	afxdptest.SkipUnlessPrivileged(t)
	m, _, err := runCLI(t, "bench", "--duration", "1s", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if m["scenario"] != "afxdp-vswitch" || num(t, m, "packets") <= 0 || num(t, m, "accounting", "leaked") != 0 {
		t.Fatalf("%v", m)
	}
	if num(t, m, "latency_ns", "p50") <= 0 {
		t.Fatalf("no latency measured over AF_XDP: %v", m["latency_ns"])
	}
}

// --stages breaks the latency down by stage in the JSON; the stages add up
// to about the end-to-end latency.
func TestBenchStagesJSON(t *testing.T) {
	m, _, err := runCLI(t, "bench", "pipeline-mem", "--duration", "500ms", "--rate", "1000000", "--stages", "--json")
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, name := range []string{"arrival_to_rx", "rx_to_absorb_worker", "absorb_worker_to_reinject", "reinject_to_tx", "tx_to_sink"} {
		p50 := num(t, m, "stage_latency_ns", name, "p50")
		if p50 <= 0 {
			t.Errorf("%s p50 %v", name, p50)
		}
		sum += p50
	}
	if e2e := num(t, m, "latency_ns", "p50"); sum > 3*e2e || sum < e2e/3 {
		t.Errorf("stage p50s add up to %v ns, end to end p50 is %v ns", sum, e2e)
	}
}

// --rate paces the AF_XDP load (the paced AF_XDP TX generator): the switch
// gets what is offered, and delivers it, with latency measured.
func TestBenchAFXDPPaced(t *testing.T) {
	afxdptest.SkipUnlessPrivileged(t)
	// a rate the switch keeps up with even under -race (10x slower)
	m, _, err := runCLI(t, "bench", "afxdp-vswitch", "--rate", "30000", "--probe-rate", "1000", "--duration", "1s", "--json")
	if err != nil {
		t.Fatal(err)
	}
	off, got := num(t, m, "offered_mpps"), num(t, m, "mpps")
	if off < 0.027 || off > 0.033 || got < 0.95*off || num(t, m, "accounting", "leaked") != 0 {
		t.Fatalf("offered %.3f Mpps, delivered %.3f: %v", off, got, m)
	}
	if num(t, m, "latency_ns", "p50") <= 0 {
		t.Fatalf("no latency: %v", m["latency_ns"])
	}
}

// The latency sweep over AF_XDP: a maximum, then three paced steps below
// it, each with latency measured and nothing leaked.
func TestLatencySweepAFXDP(t *testing.T) {
	afxdptest.SkipUnlessPrivileged(t)
	m, _, err := runCLI(t, "bench", "latency", "--port", "afxdp", "--duration", "1s", "--probe-rate", "2000", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if num(t, m, "max_mpps") <= 0 {
		t.Fatalf("no maximum: %v", m)
	}
	steps, ok := m["steps"].([]any)
	if !ok || len(steps) != 3 {
		t.Fatalf("steps: %v", m["steps"])
	}
	for i, s := range steps {
		st := s.(map[string]any)
		if num(t, st, "offered_mpps") <= 0 || num(t, st, "mpps") <= 0 || num(t, st, "latency_ns", "p50") <= 0 || num(t, st, "leaked") != 0 {
			t.Fatalf("step %d: %v", i, st)
		}
	}
}

// The ring and pool scenarios run their subject against their baseline,
// alternated, and report descriptors per second and the ratio.
func TestBenchRingAndPool(t *testing.T) {
	for _, tc := range []struct{ scenario, baseline string }{{"ring", "chan"}, {"pool", "syncpool"}} {
		m, _, err := runCLI(t, "bench", tc.scenario, "--baseline", tc.baseline, "--duration", "200ms", "--json")
		if err != nil {
			t.Fatal(err)
		}
		if m["scenario"] != tc.scenario || num(t, m, "mpps") <= 0 || num(t, m, "baseline", "mpps") <= 0 || num(t, m, "ratio") <= 0 {
			t.Fatalf("%s: %v", tc.scenario, m)
		}
		if runs, _ := m["runs"].([]any); len(runs) != 2 {
			t.Fatalf("%s: runs %v", tc.scenario, m["runs"])
		}
	}
}

// --queues runs one pipeline per queue, each fed by its own generator
// queue; every queue moves traffic.
func TestBenchQueues(t *testing.T) {
	m, _, err := runCLI(t, "bench", "pipeline-mem", "--queues", "2", "--duration", "300ms", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if num(t, m, "mpps") <= 0 || num(t, m, "accounting", "leaked") != 0 {
		t.Fatalf("%v", m)
	}
	if !strings.Contains(m["cores"].(string), "q1.ingress") {
		t.Fatalf("core plan has no second queue: %v", m["cores"])
	}
}

// bench jitter reports, for each CPU asked for, the clock loop and the
// stalls by length, as JSON and as a table; --cores picks the CPUs.
func TestBenchJitter(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run([]string{"bench", "jitter", "--duration", "200ms", "--cores", "0", "--json"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Scenario string `json:"scenario"`
		CPUs     []struct {
			CPU     int     `json:"cpu"`
			ReadNS  float64 `json:"read_ns"`
			LostPct float64 `json:"lost_pct"`
			Stalls  []struct {
				MinNS int64 `json:"min_ns"`
			} `json:"stalls"`
		} `json:"cpus"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if rep.Scenario != "jitter" || len(rep.CPUs) != 1 || rep.CPUs[0].CPU != 0 || rep.CPUs[0].ReadNS <= 0 ||
		len(rep.CPUs[0].Stalls) != 4 || rep.CPUs[0].Stalls[0].MinNS != 1000 {
		t.Fatalf("%+v", rep)
	}
	out.Reset()
	if err := run([]string{"bench", "jitter", "--duration", "100ms"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "≥1µs") || strings.Count(out.String(), "\n") < 3 {
		t.Fatalf("table:\n%s", out.String())
	}
}
