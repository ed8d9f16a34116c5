package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// "run" on the in-memory example: every generated packet absorbed,
// reinjected and delivered, metrics served, the injected packets in a pcap
// file, the accounting in the JSON.
func TestRunMemoryConfigJSON(t *testing.T) {
	pcapPath := filepath.Join(t.TempDir(), "run.pcap")
	m, _, err := runCLI(t, "run", "--config", "../../dataplane/config/example-memory.yaml", "--duration", "5s", // 200 000 frames: 0.2 s alone, seconds under -race beside the other packages
		"--metrics", "127.0.0.1:0", "--pcap", pcapPath, "--capture", "injected", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if num(t, m, "stats", "rx") != 200000 || num(t, m, "stats", "reinjected") != 200000 || num(t, m, "stats", "tx") != 200000 {
		t.Fatalf("stats %v", m["stats"])
	}
	if num(t, m, "accounting", "leaked") != 0 || num(t, m, "accounting", "frames_free") != num(t, m, "accounting", "frames_total") {
		t.Fatalf("accounting %v", m["accounting"])
	}
	st, err := os.Stat(pcapPath)
	if err != nil || st.Size() < 200000*64 {
		t.Fatalf("pcap: %v %v", st, err)
	}
}

// buildCLI compiles the command into a directory anyone may read.
func buildCLI(t *testing.T) string {
	t.Helper()
	// Not t.TempDir: its parent is private to root, and the binary runs as
	// nobody in TestWithoutPrivileges, with files beside it.
	dir, err := os.MkdirTemp("", "wfpxdp-cli-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "dataplane")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// Bad input, from the outside: each a one-line error naming the problem,
// exit status 1.
func TestBadInputExitStatus(t *testing.T) {
	bin := buildCLI(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("switch:\n  frame_size: 3000\nports:\n  - id: 1\n    interface: lo\n"), 0o644)
	noIf := filepath.Join(dir, "noif.yaml")
	os.WriteFile(noIf, []byte("ports:\n  - id: 1\n    interface: wfpx-nosuch9\n"), 0o644)
	queues := filepath.Join(dir, "queues.yaml")
	os.WriteFile(queues, []byte("switch:\n  queues: 8\nports:\n  - id: 1\n    interface: lo\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run"}, `run: --config FILE is required`},
		{[]string{"run", "--config", filepath.Join(dir, "missing.yaml")}, `config: open .*missing\.yaml: no such file or directory`},
		{[]string{"run", "--config", bad}, `bad\.yaml:2: switch\.frame_size: 3000 is not a power of two`},
		{[]string{"run", "--config", queues}, `queues\.yaml:5: ports\[0\]\.interface: lo has 1 RX queue\(s\); switch\.queues is 8`},
		{[]string{"run", "--config", "../../dataplane/config/example-memory.yaml", "--capture", "sideways", "--pcap", filepath.Join(dir, "x.pcap")}, `--capture: capture point "sideways"`},
		{[]string{"run", "--config", "../../dataplane/config/example-memory.yaml", "--metrics", "256.0.0.1:1"}, `--metrics: metrics: listen on 256\.0\.0\.1:1`},
		{[]string{"bench", "pipeline-mem", "--frame-size", "20"}, `--frame-size 20: want 60\.\.1792 bytes`},
	} {
		if os.Geteuid() != 0 && strings.Contains(strings.Join(tc.args, " "), "queues") {
			continue // as non-root the AF_XDP check comes first
		}
		cmd := exec.Command(bin, tc.args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 {
			t.Errorf("%v: exit %v, want status 1", tc.args, err)
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		last := lines[len(lines)-1]
		if !regexp.MustCompile(`^dataplane: .*` + tc.want).MatchString(last) {
			t.Errorf("%v: last stderr line %q does not match %q", tc.args, last, tc.want)
		}
	}
	if os.Geteuid() == 0 {
		cmd := exec.Command(bin, "run", "--config", noIf)
		out, err := cmd.CombinedOutput()
		if err == nil || !regexp.MustCompile(`dataplane: .*noif\.yaml:3: ports\[0\]\.interface: wfpx-nosuch9: no such network interface here`).Match(out) {
			t.Errorf("unknown interface: %v %s", err, out)
		}
	}
}

// Without root: "run" on an AF_XDP config names the capabilities it lacks,
// and "bench" says in one line that it falls back to the in-memory port and
// runs. As root the test drops to nobody with setpriv.
func TestWithoutPrivileges(t *testing.T) {
	bin := buildCLI(t)
	wrap := func(args ...string) *exec.Cmd { return exec.Command(bin, args...) }
	if os.Geteuid() == 0 {
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Skip("setpriv (util-linux) not installed: cannot drop root to test the unprivileged path")
		}
		wrap = func(args ...string) *exec.Cmd {
			return exec.Command(setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", bin}, args...)...)
		}
	}
	// The checkout may live under a directory nobody else can enter (a
	// clone under mktemp -d): hand the unprivileged process a copy beside
	// the binary, in the directory buildCLI opened to everyone.
	src, err := os.ReadFile("../../dataplane/config/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(filepath.Dir(bin), "example.yaml")
	if err := os.WriteFile(cfg, src, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := wrap("run", "--config", cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is an AF_XDP port: that needs root (CAP_NET_ADMIN and CAP_BPF for the XDP program, CAP_NET_RAW for the socket)") {
		t.Fatalf("run without root: %v\n%s", err, out)
	}
	cmd := wrap("bench", "--duration", "300ms", "--json")
	cmd.Env = append(os.Environ(), "HOME=/tmp")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench without root: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "running pipeline-mem over the in-memory port instead") || !strings.Contains(stdout.String(), `"scenario": "pipeline-mem"`) {
		t.Fatalf("bench without root:\nstderr %s\nstdout %.300s", stderr.String(), stdout.String())
	}
}

// SIGTERM ends "run" cleanly: the switch drains, the accounting is
// printed with nothing leaked, exit status 0.
func TestRunStopsOnSIGTERM(t *testing.T) {
	bin := buildCLI(t)
	src, err := os.ReadFile("../../dataplane/config/example-memory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "endless.yaml")
	os.WriteFile(cfg, bytes.Replace(src, []byte("count: 200000"), []byte("count: 0"), 1), 0o644)
	cmd := exec.Command(bin, "run", "--config", cfg, "--stats", "200ms")
	var stdout bytes.Buffer
	var stderr syncBuffer // read while the command writes it
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "Mpps") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
	if !regexp.MustCompile(`accounting  4096 frames, 4096 free at end, 0 leaked`).Match(stdout.Bytes()) ||
		!regexp.MustCompile(`rx +\d+\.\d+ Mpps`).Match(stderr.Bytes()) {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
}

// syncBuffer is a bytes.Buffer safe to read while another goroutine writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Bytes() []byte { return []byte(s.String()) }

// SIGHUP reloads the file while traffic flows: a new filter and a new port
// apply, a change that cannot be made live is refused by name and the
// switch keeps running; at the end nothing has leaked.
func TestRunReloadsOnSIGHUP(t *testing.T) {
	bin := buildCLI(t)
	src, err := os.ReadFile("../../dataplane/config/example-memory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base := string(bytes.Replace(src, []byte("count: 200000"), []byte("count: 0"), 1))
	cfg := filepath.Join(t.TempDir(), "live.yaml")
	os.WriteFile(cfg, []byte(base), 0o644)
	cmd := exec.Command(bin, "run", "--config", cfg, "--stats", "100ms", "--json")
	var stdout bytes.Buffer
	var stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFor := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(stderr.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in:\n%s", what, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("running ")
	// a block filter above the inspector, and a third port
	live := base + `  - name: block-ipv4
    layer: ingress
    weight: 100
    action: block
    conditions:
      - field: ether_type
        value: 0x0800
`
	live = strings.Replace(live, "\ncallouts:", "  - name: extra\n    id: 3\n    kind: memory\n\ncallouts:", 1)
	os.WriteFile(cfg, []byte(live), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor("reloaded " + cfg + ": added port 3 (extra); filters: 2 in force")
	os.WriteFile(cfg, []byte(strings.Replace(live, "frames: 4096", "frames: 8192", 1)), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor("reload refused, still running as before")
	waitFor("switch.frames")
	time.Sleep(200 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
	var m map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if num(t, m, "accounting", "leaked") != 0 || num(t, m, "drops", "blocked") == 0 {
		t.Fatalf("after the reloads: accounting %v drops %v", m["accounting"], m["drops"])
	}
	if ports, _ := m["ports"].([]any); len(ports) != 3 {
		t.Fatalf("ports after the reload: %v", m["ports"])
	}
}
