package config_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/dataplane/afxdp/afxdptest"
	"github.com/wfpxdp/wfpxdp/dataplane/config"
)

func TestExamplesParse(t *testing.T) {
	for _, name := range []string{"example.yaml", "example-memory.yaml"} {
		f, err := config.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Ports) != 2 || len(f.Filters) == 0 {
			t.Fatalf("%s: %d ports, %d filters", name, len(f.Ports), len(f.Filters))
		}
	}
}

// Every bad field is refused with the file, its line and the field named.
func TestBadConfig(t *testing.T) {
	base, err := os.ReadFile("example-memory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, old, new string
		want           string // regexp the error must match
	}{
		{"unknown field", "  mode: rtc", "  mode: rtc\n  speed: fast", `^x\.yaml:9: field speed not found`},
		{"mode", "mode: rtc", "mode: turbo", `^x\.yaml:8: switch\.mode: "turbo": want rtc or pipeline$`},
		{"frame size", "  frames: 4096", "  frames: 4096\n  frame_size: 3000", `^x\.yaml:10: switch\.frame_size: 3000 is not a power of two`},
		{"frame size 1024", "  frames: 4096", "  frames: 4096\n  frame_size: 1024", `switch\.frame_size: 1024 is not 2048 or 4096`},
		{"batch", "  frames: 4096", "  frames: 4096\n  batch: 1000", `^x\.yaml:10: switch\.batch: 1000: want 1\.\.256$`},
		{"idle", "50us", "fifty", `^x\.yaml:10: switch\.idle_sleep: "fifty" is not a duration`},
		{"lcore nice", "  frames: 4096", "  frames: 4096\n  lcore_nice: -30", `^x\.yaml:10: switch\.lcore_nice: -30: want -20\.\.19$`},
		{"mac", "mac: 02:00:00:00:00:02", "mac: 02:00:zz", `^x\.yaml:26: ports\[1\]\.mac: "02:00:zz" is not a 48-bit MAC address`},
		{"multicast mac", "mac: 02:00:00:00:00:02", "mac: 01:00:5e:00:00:01", `ports\[1\]\.mac: 01:00:5e:00:00:01 is not a unicast address`},
		{"duplicate id", "    id: 2", "    id: 1", `^x\.yaml:24: ports\[1\]\.id: 1 is also the id of ports\[0\]$`},
		{"kind", "    kind: memory\n    mac: 02:00:00:00:00:02", "    kind: tap\n    mac: 02:00:00:00:00:02", `^x\.yaml:25: ports\[1\]\.kind: "tap": want afxdp or memory$`},
		{"afxdp without interface", "    kind: memory\n    mac: 02:00:00:00:00:02", "    kind: afxdp\n    mac: 02:00:00:00:00:02", `ports\[1\]\.interface: missing`},
		{"generate dst", "dst: 02:00:00:00:00:02", "dst: nowhere", `^x\.yaml:18: ports\[0\]\.generate\.dst: "nowhere"`},
		{"generate size", "size: 64", "size: 59", `ports\[0\]\.generate\.size: 59: want 60\.\.1792`},
		{"callout kind", "kind: inspector", "kind: sniffer", `^x\.yaml:30: callouts\[0\]\.kind: "sniffer": want inspector or counter$`},
		{"unknown callout", "callout: inspect\n", "callout: inspector\n", `^x\.yaml:36: filters\[0\]\.callout: "inspector": no callout of that name`},
		{"layer", "layer: ingress", "layer: middle", `^x\.yaml:34: filters\[0\]\.layer: "middle": want ingress or egress$`},
		{"condition field", "    callout: inspect\n", "    callout: inspect\n    conditions:\n      - field: colour\n        value: red\n", `^x\.yaml:38: filters\[0\]\.conditions\[0\]\.field: "colour": want one of`},
		{"condition value", "    callout: inspect\n", "    callout: inspect\n    conditions:\n      - field: ether_type\n        value: 0x10000\n", `^x\.yaml:39: filters\[0\]\.conditions\[0\]\.value: "0x10000": want a 16-bit number`},
		{"egress-only field", "    callout: inspect\n", "    callout: inspect\n    conditions:\n      - field: destination_port_id\n        value: 2\n", `destination_port_id is only known at the egress layer`},
		{"not yaml", "switch:", "switch: [", `^x\.yaml:\d+: `},
		{"wrong type", "frames: 4096", "frames: many", `^x\.yaml:9: cannot unmarshal !!str .many. into int$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := string(base)
			if !strings.Contains(src, tc.old) {
				t.Fatalf("example-memory.yaml no longer contains %q", tc.old)
			}
			src = strings.Replace(src, tc.old, tc.new, 1)
			_, err := config.Parse("x.yaml", []byte(src))
			if err == nil {
				t.Fatal("accepted")
			}
			if !regexp.MustCompile(tc.want).MatchString(err.Error()) {
				t.Fatalf("error %q does not match %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *config.Error", err)
			}
		})
	}
	if _, err := config.Parse("empty.yaml", nil); err == nil || !strings.Contains(err.Error(), "empty configuration") {
		t.Fatalf("empty file: %v", err)
	}
}

// Build refuses an interface that is not there, or has fewer queues than
// asked, before it sets anything up.
func TestBuildInterfaceErrors(t *testing.T) {
	for _, tc := range []struct{ iface, queues, want string }{
		{"wfpx-nosuch0", "1", `ports\[0\]\.interface: wfpx-nosuch0: no such network interface here`},
		{"lo", "64", `ports\[0\]\.interface: lo has 1 RX queue\(s\); switch\.queues is 64`},
	} {
		src := "switch:\n  queues: " + tc.queues + "\nports:\n  - id: 1\n    interface: " + tc.iface + "\n"
		f, err := config.Parse("x.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		rt, err := f.Build(config.BuildOptions{})
		if err == nil {
			rt.Close()
			t.Fatalf("%s: built", tc.iface)
		}
		if !regexp.MustCompile(`^x\.yaml:5: ` + tc.want).MatchString(err.Error()) {
			t.Fatalf("error %q does not match %q", err, tc.want)
		}
	}
}

// The in-memory example runs as written: every generated packet is
// absorbed, reinjected and delivered; nothing leaks.
func TestMemoryExampleRuns(t *testing.T) {
	f, err := config.Load("example-memory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f.Switch.Cores = nil
	rt, err := f.Build(config.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if err := rt.Switch.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	sink := rt.Ports[1].Memory[0]
	deadline := time.Now().Add(20 * time.Second)
	for n, _ := sink.Received(); n < 200000 && time.Now().Before(deadline); n, _ = sink.Received() {
		time.Sleep(5 * time.Millisecond)
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	st, a := rt.Switch.Stats(), rt.Switch.Accounting()
	if n, _ := sink.Received(); n != 200000 || st.Absorbed != 200000 || st.Reinjected != 200000 || st.TotalDrops != 0 {
		t.Fatalf("sink %d, stats %+v", n, st)
	}
	if a.Leaked != 0 {
		t.Fatalf("accounting %+v", a)
	}
}

// The AF_XDP example over this test's own veth pairs: IPv4 frames are
// absorbed, reinjected and reach the far end; other ether types are
// blocked; the egress counter counts what leaves; nothing leaks, and the
// XDP programs are gone after Close.
func TestAFXDPExampleRuns(t *testing.T) {
	topo := afxdptest.Topology(t, 2, 1)
	f, err := config.Parse("example.yaml", afxdptest.ExampleConfig(t, topo, "example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := f.Build(config.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	const n, nBlocked = 5000, 500
	const marker = 0x77667078
	isProbe := func(b []byte) bool { return len(b) >= 22 && binary.BigEndian.Uint32(b[18:]) == marker }
	stop := make(chan struct{})
	got := afxdptest.Receiver(t, topo, topo.Pairs[1].Peer, 0x0800, isProbe, stop)
	if err := rt.Switch.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	dst := topo.Pairs[1].PeerMAC
	frame := func(et uint16) func(i int, b []byte) {
		return func(i int, b []byte) {
			copy(b, dst)
			copy(b[6:], topo.Pairs[0].PeerMAC)
			binary.BigEndian.PutUint16(b[12:], et)
			binary.BigEndian.PutUint32(b[14:], uint32(i))
			binary.BigEndian.PutUint32(b[18:], marker)
		}
	}
	afxdptest.SendPaced(t, topo, topo.Pairs[0].Peer, dst, n, frame(0x0800))
	afxdptest.SendPaced(t, topo, topo.Pairs[0].Peer, dst, nBlocked, frame(0x88B5))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if st := rt.Switch.Stats(); st.Drops["blocked"] >= nBlocked && st.TX >= n {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	received := <-got
	if seen := rt.Ports[0].Program.Seen(); seen < n+nBlocked {
		t.Errorf("uplink's XDP program saw %d frames, want >= %d", seen, n+nBlocked)
	}
	xdpShown := regexp.MustCompile(`prog/xdp| xdp(generic)? `)
	if out, _ := exec.Command("ip", "link", "show", topo.Pairs[0].Host).CombinedOutput(); !xdpShown.Match(out) {
		t.Errorf("no XDP program shown on %s while running: %s", topo.Pairs[0].Host, out)
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	st := rt.Switch.Stats()
	out, _ := rt.Counters["count-out"].Counts(dataplane.LayerEgress)
	t.Logf("received %d, stats rx %d tx %d absorbed %d reinjected %d drops %v, egress counted %d", received, st.RX, st.TX, st.Absorbed, st.Reinjected, st.Drops, out)
	if received != n || st.Reinjected < n || st.Drops["blocked"] != nBlocked || out < n {
		t.Fatalf("received %d of %d, reinjected %d, blocked %d of %d, egress counted %d", received, n, st.Reinjected, st.Drops["blocked"], nBlocked, out)
	}
	if a := rt.Switch.Accounting(); a.Leaked != 0 {
		t.Fatalf("accounting %+v", a)
	}
	// nothing left behind: no XDP program on either interface
	for _, v := range topo.Pairs {
		out, err := exec.Command("ip", "link", "show", v.Host).CombinedOutput()
		if err != nil || xdpShown.Match(out) {
			t.Errorf("%s after Close: %s %v", v.Host, out, err)
		}
	}
}
