package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wfpxdp/wfpxdp/dataplane/afxdp/afxdptest"
)

// "run" over AF_XDP on this test's own veth pairs (the example config with
// their names): frames sent into one port leave by the other, /metrics
// shows the sockets' ring statistics while it runs, and the final JSON
// has every frame back.
func TestRunAFXDPConfig(t *testing.T) {
	topo := afxdptest.Topology(t, 2, 1)
	cfg := filepath.Join(t.TempDir(), "afxdp.yaml")
	if err := os.WriteFile(cfg, afxdptest.ExampleConfig(t, topo, "../../dataplane/config/example.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a free port for --metrics
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	var out, errb bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run([]string{"run", "--config", cfg, "--duration", "3s", "--metrics", addr, "--json"}, &out, &errb)
	}()
	var body string
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(body, "wfpxdp_xdp_ring_events_total") {
		time.Sleep(50 * time.Millisecond)
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
		}
	}
	if !strings.Contains(body, `wfpxdp_xdp_ring_events_total{event="rx_dropped",socket="`+topo.Pairs[0].Host+`/0"}`) {
		t.Errorf("no AF_XDP ring statistics for %s in /metrics:\n%.2000s", topo.Pairs[0].Host, body)
	}
	const n = 2000
	frame := func(i int, b []byte) {
		copy(b, topo.Pairs[1].PeerMAC)
		copy(b[6:], topo.Pairs[0].PeerMAC)
		binary.BigEndian.PutUint16(b[12:], 0x0800)
		binary.BigEndian.PutUint32(b[14:], uint32(i))
	}
	stop := make(chan struct{})
	got := afxdptest.Receiver(t, topo, topo.Pairs[1].Peer, 0x0800, func(b []byte) bool { return len(b) >= 64 }, stop)
	afxdptest.SendPaced(t, topo, topo.Pairs[0].Peer, topo.Pairs[1].PeerMAC, n, frame)
	if err := <-done; err != nil {
		t.Fatalf("run: %v\n%s", err, errb.String())
	}
	close(stop)
	received := <-got
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("run --json: %v\n%s", err, out.String())
	}
	if received < n || num(t, m, "stats", "reinjected") < n || num(t, m, "accounting", "leaked") != 0 {
		t.Fatalf("received %d of %d; %v", received, n, m)
	}
}
