// Command perfdoc runs the benchmark scenarios and rewrites the figures in
// docs/performance.md: the part between the perfdoc markers, stamped with
// the commit, the date, the machine and the exact commands. Run it from
// the repository's root, as root for the AF_XDP scenarios (they are left
// out otherwise, and the page says so):
//
//	go run ./cmd/perfdoc            # about 12 minutes
//	go run ./cmd/perfdoc -quick     # shorter runs, for a look
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const (
	beginMark = "<!-- perfdoc:begin -->"
	endMark   = "<!-- perfdoc:end -->"
)

func main() {
	quick := flag.Bool("quick", false, "shorter runs (1 pair of 2 s runs), for a look")
	doc := flag.String("doc", "docs/performance.md", "the page to rewrite")
	flag.Parse()
	if err := run(*quick, *doc); err != nil {
		fmt.Fprintln(os.Stderr, "perfdoc:", err)
		os.Exit(1)
	}
}

func run(quick bool, doc string) error {
	page, err := os.ReadFile(doc)
	if err != nil {
		return err
	}
	if _, err := splice(page, nil); err != nil {
		return fmt.Errorf("%s: %w", doc, err)
	}
	dir, err := os.MkdirTemp("", "perfdoc-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "dataplane")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/dataplane").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	// the commit measured is the one built, whatever happens to the tree
	// while the scenarios run
	commit := strings.TrimSpace(output("git", "rev-parse", "--short", "HEAD"))
	if output("git", "status", "--porcelain", "--untracked-files=no") != "" {
		commit += " with local changes"
	}
	p := &pageWriter{bin: bin, quick: quick, root: os.Geteuid() == 0, commit: commit}
	var b bytes.Buffer
	p.write(&b)
	if p.err != nil {
		return p.err
	}
	out, err := splice(page, b.Bytes())
	if err != nil {
		return err
	}
	return os.WriteFile(doc, out, 0o644)
}

// splice returns page with the text between its begin and end marks
// replaced by body.
func splice(page, body []byte) ([]byte, error) {
	head, rest, ok := bytes.Cut(page, []byte(beginMark))
	_, tail, ok2 := bytes.Cut(rest, []byte(endMark))
	if !ok || !ok2 {
		return nil, fmt.Errorf("no %s ... %s section", beginMark, endMark)
	}
	// a new slice: head and tail share page's array, and appending to
	// head would write over tail
	var out []byte
	for _, part := range [][]byte{head, []byte(beginMark), {'\n'}, body, []byte(endMark), tail} {
		out = append(out, part...)
	}
	return out, nil
}

// pageWriter runs the commands and writes their tables.
type pageWriter struct {
	bin         string
	quick, root bool
	machine     string
	commit      string
	err         error
}

// bench runs "dataplane bench ARGS --json" and returns its JSON and the
// command as a reader would type it.
func (p *pageWriter) bench(args ...string) (map[string]any, string) {
	shown := "go run ./cmd/dataplane bench " + strings.Join(args, " ")
	if p.err != nil {
		return nil, shown
	}
	fmt.Fprintln(os.Stderr, "perfdoc:", shown)
	cmd := exec.Command(p.bin, append(append([]string{"bench"}, args...), "--json")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		p.err = fmt.Errorf("%s: %v\n%s", shown, err, stderr.String())
		return nil, shown
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		p.err = fmt.Errorf("%s: %v", shown, err)
		return nil, shown
	}
	if s, _ := m["machine"].(string); s != "" {
		p.machine = s
	}
	return m, shown
}

// pairs is the run count and duration of a comparison.
func (p *pageWriter) pairs() (runs, dur string) {
	if p.quick {
		return "1", "2s"
	}
	return "3", "5s"
}

func (p *pageWriter) write(w *bytes.Buffer) {
	var body bytes.Buffer
	p.pipelineMem(&body)
	p.wfpPath(&body)
	p.pairsTable(&body)
	p.ndr(&body)
	p.afxdp(&body)
	p.tcp(&body)
	p.latency(&body)
	p.jitter(&body)
	fmt.Fprintf(w, "Measured at commit %s on %s, %s, by `go run ./cmd/perfdoc`.\n\n", p.commit, time.Now().UTC().Format("2006-01-02 15:04 MST"), p.machine)
	w.Write(body.Bytes())
}

func output(name string, args ...string) string {
	out, _ := exec.Command(name, args...).Output()
	return string(out)
}

func num(m map[string]any, path ...string) float64 {
	var v any = m
	for _, k := range path {
		mm, _ := v.(map[string]any)
		v = mm[k]
	}
	f, _ := v.(float64)
	return f
}

func (p *pageWriter) pipelineMem(w *bytes.Buffer) {
	runs, dur := p.pairs()
	fmt.Fprintf(w, "### The vSwitch pipeline over the in-memory port (64-byte frames)\n\n")
	fmt.Fprintf(w, "Rings against the same stages wired with channels (`--baseline chan`), alternated, medians; 100 extra non-matching filters installed.\n\n")
	fmt.Fprintf(w, "| path | mode | rings Mpps | channels Mpps | ratio | busy ns/pkt | command |\n|---|---|---|---|---|---|---|\n")
	for _, path := range []string{"absorb-reinject", "forward"} {
		for _, mode := range []string{"rtc", "pipeline"} {
			m, cmd := p.bench("pipeline-mem", "--path", path, "--mode", mode, "--baseline", "chan", "--runs", runs, "--duration", dur)
			fmt.Fprintf(w, "| %s | %s | %.2f | %.2f | %.2f× | %.1f | `%s` |\n", path, mode, num(m, "mpps"), num(m, "baseline", "mpps"),
				num(m, "ratio"), num(m, "busy_ns_per_packet"), cmd)
		}
	}
	w.WriteString("\n")
}

// alternate runs two bench commands A B B A … (runs pairs) and returns
// the median Mpps of each.
func (p *pageWriter) alternate(runs int, a, b []string) (ma, mb float64, cmds [2]string) {
	var as, bs []float64
	for i := 0; i < runs; i++ {
		order := [][]string{a, b}
		if i%2 == 1 {
			order = [][]string{b, a}
		}
		for _, args := range order {
			m, cmd := p.bench(args...)
			if &args[0] == &a[0] {
				as, cmds[0] = append(as, num(m, "mpps")), cmd
			} else {
				bs, cmds[1] = append(bs, num(m, "mpps")), cmd
			}
		}
	}
	return median(as), median(bs), cmds
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// wfpPath compares absorb-reinject with forwarding in one command each
// (--baseline forward), at one flow and many.
func (p *pageWriter) wfpPath(w *bytes.Buffer) {
	runs, dur := p.pairs()
	fmt.Fprintf(w, "### The WFP path against forwarding (in-memory, RTC)\n\n")
	fmt.Fprintf(w, "Absorb-reinject (every packet absorbed by an inspector, reinjected, classified again) against forwarding in one command: `--baseline forward` alternates the two paths A B B A, medians; 100 extra non-matching filters installed.\n\n")
	fmt.Fprintf(w, "| flows | absorb-reinject Mpps | forward Mpps | ratio | busy ns/pkt, absorb-reinject / forward | command |\n|---|---|---|---|---|---|\n")
	for _, flows := range []string{"1", "1024", "65536"} {
		m, cmd := p.bench("pipeline-mem", "--baseline", "forward", "--flows", flows, "--runs", runs, "--duration", dur)
		fmt.Fprintf(w, "| %s | %.2f | %.2f | %.2f× | %.1f / %.1f | `%s` |\n", flows, num(m, "mpps"), num(m, "baseline", "mpps"),
			num(m, "ratio"), num(m, "busy_ns_per_packet"), num(m, "baseline", "busy_ns_per_packet"), cmd)
	}
	w.WriteString("\n")
}

// pairsTable compares paths and flow counts with each other, alternated.
func (p *pageWriter) pairsTable(w *bytes.Buffer) {
	runs, dur := 3, "5s"
	if p.quick {
		runs, dur = 1, "2s"
	}
	fmt.Fprintf(w, "### Many flows against one, many filters against few (in-memory, RTC)\n\n")
	fmt.Fprintf(w, "Each pair alternated A B B A, %d runs each, medians.\n\n| compared | A Mpps | B Mpps | B / A | commands |\n|---|---|---|---|---|\n", runs)
	base := []string{"pipeline-mem", "--duration", dur}
	row := func(what string, a, b []string) {
		ma, mb, cmds := p.alternate(runs, append(append([]string(nil), base...), a...), append(append([]string(nil), base...), b...))
		ratio := 0.0
		if ma > 0 {
			ratio = mb / ma
		}
		fmt.Fprintf(w, "| %s | %.2f | %.2f | %.2f× | `%s`, `%s` |\n", what, ma, mb, ratio, cmds[0], cmds[1])
	}
	row("absorb-reinject: 1 flow (A), 1 024 flows (B)", []string{"--flows", "1"}, []string{"--flows", "1024"})
	row("absorb-reinject: 1 flow (A), 65 536 flows (B)", []string{"--flows", "1"}, []string{"--flows", "65536"})
	row("absorb-reinject: 100 filters (A), 1 000 (B)", []string{"--filters", "100"}, []string{"--filters", "1000"})
	row("forward: 1 flow (A), 1 024 random-order flows (B)", []string{"--path", "forward", "--flows", "1"}, []string{"--path", "forward", "--flows", "1024", "--flow-order", "random"})
	w.WriteString("\n")
}

// ndr runs the zero-loss search twice in a row.
func (p *pageWriter) ndr(w *bytes.Buffer) {
	trial, final := "2s", "10s"
	if p.quick {
		trial, final = "1s", "3s"
	}
	fmt.Fprintf(w, "### Zero-loss search (in-memory port, absorb-reinject, RTC), twice in a row\n\n")
	fmt.Fprintf(w, "| run | maximum Mpps | PDR (0.5 %%) Mpps | NDR Mpps | final trial at the NDR: offered, lost | command |\n|---|---|---|---|---|---|\n")
	for i := 1; i <= 2; i++ {
		m, cmd := p.bench("ndr", "--duration", trial, "--final", final)
		fm, _ := m["final"].(map[string]any)
		fmt.Fprintf(w, "| %d | %.2f | %.2f | %.2f | %.0f, %.0f | `%s` |\n", i, num(m, "max_mpps"), num(m, "pdr_mpps"), num(m, "ndr_mpps"),
			num(fm, "offered"), num(fm, "lost"), cmd)
	}
	w.WriteString("\n")
}

// rootSection writes a section's heading and reports whether its
// scenarios can run; without root it says so under the heading instead.
func (p *pageWriter) rootSection(w *bytes.Buffer, title string) bool {
	fmt.Fprintf(w, "### %s\n\n", title)
	if !p.root {
		fmt.Fprintf(w, "Not measured: this needs root.\n\n")
	}
	return p.root
}

func (p *pageWriter) afxdp(w *bytes.Buffer) {
	runs, dur := p.pairs()
	if !p.rootSection(w, "AF_XDP over veth (64-byte frames)") {
		return
	}
	fmt.Fprintf(w, "Against a loop over asavie/xdp written to win (`--baseline asavie`), alternated, medians; generator on CPU 0, switch on CPU 1, bursts of 64.\n\n")
	fmt.Fprintf(w, "| scenario | offered Mpps | ours Mpps | asavie Mpps | ratio | busy ns/pkt ours / asavie | busy ratio | command |\n|---|---|---|---|---|---|---|---|\n")
	for _, run := range [][]string{{"afxdp-rxdrop"}, {"afxdp-rxdrop", "--rate", "500000"}, {"afxdp-l2fwd"}, {"afxdp-vswitch"}} {
		m, cmd := p.bench(append(slices.Clone(run), "--baseline", "asavie", "--runs", runs, "--duration", dur)...)
		fmt.Fprintf(w, "| %s | %.2f | %.2f | %.2f | %.2f× | %.1f / %.1f | %.2f× | `%s` |\n", strings.Join(run, " "), num(m, "offered_mpps"), num(m, "mpps"),
			num(m, "baseline", "mpps"), num(m, "ratio"), num(m, "busy_ns_per_packet"), num(m, "baseline", "busy_ns_per_packet"), num(m, "busy_ratio"), cmd)
	}
	w.WriteString("\n")
}

func (p *pageWriter) tcp(w *bytes.Buffer) {
	runs, dur := p.pairs()
	if !p.rootSection(w, "Real TCP between namespaces: the switch against a Linux bridge") {
		return
	}
	m, cmd := p.bench("tcp", "--runs", runs, "--duration", dur)
	fmt.Fprintf(w, "One bulk TCP stream, the namespaces at default offloads, the switch absorbing and reinjecting every frame; alternated, medians. `%s`\n\n", cmd)
	fmt.Fprintf(w, "| MTU | UMEM frame | switch Gb/s | bridge Gb/s | ratio | checksums completed |\n|---|---|---|---|---|---|\n")
	rows, _ := m["rows"].([]any)
	for _, r := range rows {
		rm, _ := r.(map[string]any)
		fmt.Fprintf(w, "| %.0f | %.0f | %.2f | %.2f | %.2f× | %.0f |\n", num(rm, "mtu"), num(rm, "frame_size"), num(rm, "switch_gbps"),
			num(rm, "bridge_gbps"), num(rm, "ratio"), num(rm, "checksums_completed"))
	}
	w.WriteString("\n")
}

func (p *pageWriter) latency(w *bytes.Buffer) {
	dur := "2s"
	if p.quick {
		dur = "1s"
	}
	m, cmd := p.bench("latency", "--duration", dur)
	fmt.Fprintf(w, "### Latency under load (in-memory port, absorb-reinject, RTC)\n\n`%s`: maximum %.2f Mpps, then paced steps; latency from each frame's arrival.\n\n", cmd, num(m, "max_mpps"))
	fmt.Fprintf(w, "| load | offered Mpps | delivered Mpps | missed | p50 | p99 | p99.9 | max |\n|---|---|---|---|---|---|---|---|\n")
	steps, _ := m["steps"].([]any)
	for _, s := range steps {
		sm, _ := s.(map[string]any)
		fmt.Fprintf(w, "| %.0f %% | %.3f | %.3f | %.0f | %s | %s | %s | %s |\n", 100*num(sm, "fraction"), num(sm, "offered_mpps"), num(sm, "mpps"),
			num(sm, "missed"), us(num(sm, "latency_ns", "p50")), us(num(sm, "latency_ns", "p99")), us(num(sm, "latency_ns", "p999")), us(num(sm, "latency_ns", "max")))
	}
	w.WriteString("\n")
}

func (p *pageWriter) jitter(w *bytes.Buffer) {
	m, cmd := p.bench("jitter", "--duration", "5s")
	fmt.Fprintf(w, "### The machine's floor: `%s`\n\n", cmd)
	fmt.Fprintf(w, "| CPU | stalls ≥ 1 µs /s | ≥ 10 µs /s | ≥ 100 µs /s | ≥ 1 ms /s | time lost | longest |\n|---|---|---|---|---|---|---|\n")
	cpus, _ := m["cpus"].([]any)
	for _, c := range cpus {
		cm, _ := c.(map[string]any)
		stalls, _ := cm["stalls"].([]any)
		var per [4]float64
		for i, s := range stalls {
			if i < 4 {
				per[i] = num(s.(map[string]any), "per_second")
			}
		}
		fmt.Fprintf(w, "| %.0f | %.0f | %.0f | %.0f | %.0f | %.2f %% | %s |\n", num(cm, "cpu"), per[0], per[1], per[2], per[3], num(cm, "lost_pct"), us(num(cm, "max_ns")))
	}
	w.WriteString("\n")
}

// us formats nanoseconds in µs (or ms above 10 ms).
func us(ns float64) string {
	if ns >= 10e6 {
		return fmt.Sprintf("%.1f ms", ns/1e6)
	}
	return fmt.Sprintf("%.1f µs", ns/1e3)
}
