package pcap_test

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/dataplane/memport"
	"github.com/wfpxdp/wfpxdp/dataplane/pcap"
	"github.com/wfpxdp/wfpxdp/inject"
)

const (
	macGen  dataplane.MAC = 0x02000000000a
	macSink dataplane.MAC = 0x02000000000b
)

// run sends n frames, alternating IPv4 (absorbed by an inspector and
// reinjected) and 0x88b5 (blocked), through a switch capturing at points
// into a capture of size records; it returns the sink's count and the
// switch's stats.
func run(t *testing.T, n uint64, c *dataplane.Capture) (uint64, dataplane.Stats) {
	t.Helper()
	sw, err := dataplane.New(inject.NewEngine(), dataplane.Config{ID: inject.GUID{7}, NoPin: true, Frames: 2048, Capture: c})
	if err != nil {
		t.Fatal(err)
	}
	gen, _ := memport.New(memport.Config{Name: "gen", Limit: n, Templates: []memport.Template{
		{Dst: macSink, Src: macGen}, {Dst: macSink, Src: macGen, EtherType: 0x88b5, Size: 100}}})
	sink, _ := memport.New(memport.Config{Name: "sink"})
	sw.AddPort(1, 0, macGen, gen)
	sw.AddPort(2, 0, macSink, sink)
	if err := sw.RegisterCallout(dataplane.NewInspector("inspect", nil)); err != nil {
		t.Fatal(err)
	}
	err = sw.SetFilters([]dataplane.Filter{
		{Name: "inspect-ipv4", Layer: dataplane.LayerIngress, Weight: 2, Action: dataplane.FilterCallout, Callout: "inspect",
			Conditions: []dataplane.Condition{{Field: dataplane.FieldEtherType, Value: 0x0800}}},
		{Name: "block-88b5", Layer: dataplane.LayerIngress, Weight: 1, Action: dataplane.FilterBlock,
			Conditions: []dataplane.Condition{{Field: dataplane.FieldEtherType, Value: 0x88b5}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if got, _ := sink.Received(); got == n/2 && sw.Stats().Drops["blocked"] == n/2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := sink.Received()
	return got, sw.Stats()
}

// The file holds every absorbed, injected and dropped frame, and tcpdump
// reads it: the count matches and the fields are the frames' own.
func TestCaptureToPcapReadByTcpdump(t *testing.T) {
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skip("tcpdump is not installed (apt-get install tcpdump; .ci/run installs it)")
	}
	const n = 1000
	c, err := dataplane.NewCapture(dataplane.CaptureAll, 4096)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cap.pcap")
	w, err := pcap.Create(path, c)
	if err != nil {
		t.Fatal(err)
	}
	got, st := run(t, n, c)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	captured, lost := c.Counts()
	want := uint64(n/2 + n/2 + n/2) // absorbed, injected, dropped
	if got != n/2 || captured != want || lost != 0 || w.Written() != want {
		t.Fatalf("sink %d, captured %d lost %d written %d, want %d (stats %+v)", got, captured, lost, w.Written(), want, st)
	}
	out, err := exec.Command(tcpdump, "-r", path, "-nn", "-e").Output()
	if err != nil {
		t.Fatalf("tcpdump -r: %v", err)
	}
	var lines, ipv4, exp int
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "\t") {
			continue // tcpdump's hex dump of a payload it does not decode
		}
		lines++
		if !strings.Contains(l, "02:00:00:00:00:0a > 02:00:00:00:00:0b") {
			t.Fatalf("tcpdump line without the frame's MACs: %s", l)
		}
		switch {
		case strings.Contains(l, "ethertype IPv4 (0x0800)"):
			ipv4++
		case strings.Contains(l, "ethertype Unknown (0x88b5)") && strings.Contains(l, "length 100"):
			exp++
		}
	}
	if lines != int(want) || ipv4 != n || exp != n/2 {
		t.Fatalf("tcpdump read %d packets (%d IPv4, %d 0x88b5 of length 100), want %d (%d, %d)\n%s", lines, ipv4, exp, want, n, n/2, out[:min(len(out), 2000)])
	}
}

// A full capture ring loses captures, counted, never traffic.
func TestCaptureFullLosesCapturesNotTraffic(t *testing.T) {
	const n = 2000
	c, _ := dataplane.NewCapture(dataplane.CaptureAbsorbed, 64) // nobody drains it
	got, st := run(t, n, c)
	captured, lost := c.Counts()
	if got != n/2 || st.Absorbed != n/2 || st.Reinjected != n/2 {
		t.Fatalf("traffic affected: sink %d, stats %+v", got, st)
	}
	if captured != 64 || lost != n/2-64 {
		t.Fatalf("captured %d lost %d, want 64 and %d", captured, lost, n/2-64)
	}
	if _, err := dataplane.ParseCapturePoints("absorbed,bogus"); err == nil {
		t.Fatal("bogus capture point accepted")
	}
	if p, err := dataplane.ParseCapturePoints("dropped,injected"); err != nil || p.String() != "dropped,injected" {
		t.Fatalf("%v %v", p, err)
	}
}
