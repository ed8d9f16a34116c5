package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/wfpxdp/wfpxdp/dataplane/afxdp"
	"github.com/wfpxdp/wfpxdp/dataplane/afxdp/afxdptest"
)

// hostsConfig writes the AF_XDP example configuration with its two
// interfaces replaced by the switch ends of hs's first two hosts, extra
// lines added to its switch section, and returns its path.
func hostsConfig(t *testing.T, hs *afxdp.Hosts, switchExtra string) string {
	t.Helper()
	src, err := os.ReadFile("../../dataplane/config/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(src), "wfpx-up", hs.Hosts[0].Port)
	text = strings.ReplaceAll(text, "wfpx-vm", hs.Hosts[1].Port)
	text = strings.Replace(text, "cores: [1]", "cores: []", 1)
	if switchExtra != "" {
		text = strings.Replace(text, "frame_size: 2048     # 2048 or 4096", switchExtra, 1)
	}
	path := filepath.Join(t.TempDir(), "hosts.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runningSwitch is "dataplane run --json" started as a process.
type runningSwitch struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr syncBuffer
}

// startSwitch runs the CLI's "run" on cfg and returns once it says it is
// running.
func startSwitch(t *testing.T, cfg string) *runningSwitch {
	t.Helper()
	rs := &runningSwitch{}
	rs.cmd = exec.Command(buildCLI(t), "run", "--config", cfg, "--json")
	rs.cmd.Stdout, rs.cmd.Stderr = &rs.stdout, &rs.stderr
	if err := rs.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.cmd.Process.Kill(); rs.cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(rs.stderr.String(), "running ") {
		if time.Now().After(deadline) {
			t.Fatalf("the switch did not start:\n%s", rs.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return rs
}

// stop ends the switch with SIGTERM and returns its JSON result.
func (rs *runningSwitch) stop(t *testing.T) map[string]any {
	t.Helper()
	rs.cmd.Process.Signal(syscall.SIGTERM)
	if err := rs.cmd.Wait(); err != nil {
		t.Fatalf("run: %v\n%s", err, rs.stderr.String())
	}
	var m map[string]any
	if err := json.Unmarshal(rs.stdout.Bytes(), &m); err != nil {
		t.Fatalf("run --json: %v\n%s", err, rs.stdout.String())
	}
	return m
}

// echoServer listens on TCP port 5201 (IPv4 and IPv6) inside h and answers
// each connection, once the client has closed its side, with the SHA-256
// and the length of what it received.
func echoServer(t *testing.T, h *afxdp.Host) {
	t.Helper()
	var ln net.Listener
	err := h.InNS(func() (err error) {
		ln, err = net.Listen("tcp", ":5201")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(60 * time.Second))
				hash := sha256.New()
				n, _ := io.Copy(hash, c)
				var tail [8]byte
				binary.BigEndian.PutUint64(tail[:], uint64(n))
				c.Write(append(hash.Sum(nil), tail[:]...))
			}()
		}
	}()
}

// transfer sends size random bytes over TCP from h to addr:5201 and checks
// the echo server's digest and count of them.
func transfer(t *testing.T, h *afxdp.Host, addr string, size int) time.Duration {
	t.Helper()
	var c net.Conn
	err := h.InNS(func() (err error) {
		c, err = net.DialTimeout("tcp", net.JoinHostPort(addr, "5201"), 10*time.Second)
		return err
	})
	if err != nil {
		t.Fatalf("dial %s through the switch: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	data := make([]byte, size)
	rand.Read(data)
	start := time.Now()
	if _, err := c.Write(data); err != nil {
		t.Fatalf("write to %s: %v", addr, err)
	}
	c.(*net.TCPConn).CloseWrite()
	reply, err := io.ReadAll(c)
	elapsed := time.Since(start)
	if err != nil || len(reply) != 40 {
		t.Fatalf("reply from %s: %d bytes, %v", addr, len(reply), err)
	}
	want := sha256.Sum256(data)
	if !bytes.Equal(reply[:32], want[:]) || binary.BigEndian.Uint64(reply[32:]) != uint64(size) {
		t.Fatalf("%s received %d bytes with another digest than the %d sent", addr, binary.BigEndian.Uint64(reply[32:]), size)
	}
	return elapsed
}

// TCP over IPv4 and IPv6 and UDP between two network namespaces whose
// stacks keep their default offloads (checksums left partial), through
// "dataplane run" on the example configuration: every byte arrives, the
// switch finishes the checksums and counts them per port, nothing leaks.
func TestRunCarriesTCPAndUDP(t *testing.T) {
	hs := afxdptest.Hosts(t, 2, 0)
	rs := startSwitch(t, hostsConfig(t, hs, ""))
	a, b := &hs.Hosts[0], &hs.Hosts[1]
	echoServer(t, b)
	for _, addr := range []string{b.IPv4.String(), b.IPv6.String()} {
		el := transfer(t, a, addr, 8<<20)
		t.Logf("8 MiB to %s in %v", addr, el)
	}
	// UDP through the stacks: the receiver's kernel drops a datagram whose
	// checksum does not verify, so arriving at all is the check.
	for _, addr := range []string{b.IPv4.String(), b.IPv6.String()} {
		udpEcho(t, a, b, addr)
	}
	// ICMP and ICMPv6 echo, answered by b's stack
	ping(t, a, b.IPv4, false)
	ping(t, a, b.IPv6, true)
	m := rs.stop(t)
	if num(t, m, "accounting", "leaked") != 0 {
		t.Fatalf("leaked: %v", m["accounting"])
	}
	ports, _ := m["ports"].([]any)
	if len(ports) != 2 {
		t.Fatalf("ports: %v", m["ports"])
	}
	completed := 0.0
	for _, p := range ports {
		pm := p.(map[string]any)
		completed += pm["checksums_completed"].(float64)
		if pm["xdp_mode"] == "" || pm["bind"] != "copy" || pm["checksum"] != "auto" || pm["rx_packets"].(float64) == 0 {
			t.Errorf("port report: %v", pm)
		}
	}
	if completed == 0 {
		t.Errorf("no checksum completed; ports %v", ports)
	}
}

// ping sends ICMP (or ICMPv6) echo requests from a to addr until one is
// answered.
func ping(t *testing.T, a *afxdp.Host, addr netip.Addr, v6 bool) {
	t.Helper()
	network, proto, typ := "ip4:icmp", 1, icmp.Type(ipv4.ICMPTypeEcho)
	if v6 {
		network, proto, typ = "ip6:ipv6-icmp", 58, ipv6.ICMPTypeEchoRequest
	}
	var c *icmp.PacketConn
	if err := a.InNS(func() (err error) { c, err = icmp.ListenPacket(network, ""); return err }); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: 0x5c, Seq: 1, Data: []byte("through the switch")}}
	wire, err := msg.Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	for try := 0; try < 5; try++ {
		if _, err := c.WriteTo(wire, &net.IPAddr{IP: addr.AsSlice()}); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				break
			}
			m, err := icmp.ParseMessage(proto, buf[:n])
			if err == nil && (m.Type == ipv4.ICMPTypeEchoReply || m.Type == ipv6.ICMPTypeEchoReply) && from.String() == addr.String() {
				return
			}
		}
	}
	t.Fatalf("no echo reply from %s", addr)
}

// udpEcho sends one datagram from a to addr (host b) through the
// stacks and waits for it.
func udpEcho(t *testing.T, a, b *afxdp.Host, addr string) {
	t.Helper()
	var rc net.PacketConn
	if err := b.InNS(func() (err error) { rc, err = net.ListenPacket("udp", ":5300"); return err }); err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var sc net.Conn
	if err := a.InNS(func() (err error) { sc, err = net.Dial("udp", net.JoinHostPort(addr, "5300")); return err }); err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	buf := make([]byte, 2048)
	for try := 0; try < 5; try++ {
		sc.Write([]byte("datagram through the switch"))
		rc.SetReadDeadline(time.Now().Add(time.Second))
		if n, _, err := rc.ReadFrom(buf); err == nil && string(buf[:n]) == "datagram through the switch" {
			return
		}
	}
	t.Fatalf("no UDP datagram reached %s", addr)
}

// A frame whose UDP checksum is correct arrives unchanged and one whose
// checksum is wrong arrives still wrong: the switch finishes partial
// checksums, it does not launder corruption.
func TestRunKeepsWrongChecksumsWrong(t *testing.T) {
	hs := afxdptest.Hosts(t, 2, 0)
	rs := startSwitch(t, hostsConfig(t, hs, ""))
	a, b := &hs.Hosts[0], &hs.Hosts[1]
	good := udpFrame(a.MAC, b.MAC, 0)
	bad := udpFrame(a.MAC, b.MAC, 0x1234)
	if binary.BigEndian.Uint16(good[40:]) == 0x1234 {
		t.Fatal("the wrong checksum is the right one")
	}
	got := captureUDP(t, b, 5301, 2)
	time.Sleep(100 * time.Millisecond)
	for _, f := range [][]byte{good, bad} {
		if err := a.InNS(func() error { return afxdptest.SendFrame(a.Iface, b.MAC, f) }); err != nil {
			t.Fatal(err)
		}
	}
	frames := <-got
	rs.stop(t)
	if len(frames) != 2 || !bytes.Equal(frames[0], good) || !bytes.Equal(frames[1], bad) {
		t.Fatalf("received %d frames\n% x\n% x\nwant\n% x\n% x", len(frames), at(frames, 0), at(frames, 1), good, bad)
	}
}

func at(fs [][]byte, i int) []byte {
	if i < len(fs) {
		return fs[i]
	}
	return nil
}

// udpFrame is an IPv4/UDP frame to port 5301 from src to dst with a
// correct checksum, or with csum if it is not 0.
func udpFrame(src, dst net.HardwareAddr, csum uint16) []byte {
	f := make([]byte, 14+20+8+18)
	copy(f, dst)
	copy(f[6:], src)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	copy(ip[12:], []byte{198, 18, 0, 1, 198, 18, 0, 2})
	binary.BigEndian.PutUint16(ip[10:], ^onesSum(ip[:20], 0))
	udp := ip[20:]
	binary.BigEndian.PutUint16(udp, 40000)
	binary.BigEndian.PutUint16(udp[2:], 5301)
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	copy(udp[8:], "not laundered here")
	pseudo := onesSum(ip[12:20], 17+uint32(len(udp)))
	c := ^onesSum(udp, uint32(pseudo))
	if csum != 0 {
		c = csum
	}
	binary.BigEndian.PutUint16(udp[6:], c)
	return f
}

func onesSum(b []byte, s uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// captureUDP returns the first n IPv4 frames to UDP port on h's interface,
// or what arrived within 5 s.
func captureUDP(t *testing.T, h *afxdp.Host, port uint16, n int) <-chan [][]byte {
	t.Helper()
	out := make(chan [][]byte, 1)
	ready := make(chan error, 1)
	go h.InNS(func() error {
		ifc, err := net.InterfaceByName(h.Iface)
		if err != nil {
			ready <- err
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(afxdp.Htons(0x0800)))
		if err == nil {
			err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: afxdp.Htons(0x0800), Ifindex: ifc.Index})
		}
		ready <- err
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 50000})
		var frames [][]byte
		buf := make([]byte, 4096)
		for end := time.Now().Add(5 * time.Second); len(frames) < n && time.Now().Before(end); {
			k, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil || k < 42 || buf[23] != 17 || binary.BigEndian.Uint16(buf[36:]) != port {
				continue
			}
			frames = append(frames, bytes.Clone(buf[:k]))
		}
		out <- frames
		return nil
	})
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	return out
}

// A port whose MTU its UMEM frames cannot carry is refused at start, with
// the interface, the MTU and the fix, when multi-buffer is off; with
// frames that carry it, TCP at that MTU runs.
func TestRunMTU(t *testing.T) {
	hs := afxdptest.Hosts(t, 2, 3500)
	out, err := exec.Command(buildCLI(t), "run", "--config", hostsConfig(t, hs, "frame_size: 2048\n  multi_buffer: off"), "--duration", "1s").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(string(out), hs.Hosts[0].Port+": MTU 3500 needs frames of 3518 bytes") ||
		!strings.Contains(string(out), "set switch.frame_size: 4096") || !strings.Contains(string(out), "multi-buffer is off") {
		t.Fatalf("run with MTU 3500 over 2048-byte frames: %v\n%s", err, out)
	}
	rs := startSwitch(t, hostsConfig(t, hs, "frame_size: 4096\n  multi_buffer: off"))
	echoServer(t, &hs.Hosts[1])
	for _, addr := range []string{hs.Hosts[1].IPv4.String(), hs.Hosts[1].IPv6.String()} {
		transfer(t, &hs.Hosts[0], addr, 4<<20)
	}
	m := rs.stop(t)
	if num(t, m, "accounting", "leaked") != 0 {
		t.Fatalf("leaked: %v", m["accounting"])
	}
}

// Jumbo frames: at MTU 9000 the switch turns AF_XDP multi-buffer on by
// itself (switch.multi_buffer: auto); each frame arrives as several UMEM
// frames, goes through the switch as one list with a chain of buffers
// (absorbed and reinjected whole) and leaves as several descriptors. TCP
// over IPv4 and IPv6 runs, checksums finished over the whole chain,
// nothing leaked.
func TestRunJumboFrames(t *testing.T) {
	hs := afxdptest.Hosts(t, 2, 9000)
	rs := startSwitch(t, hostsConfig(t, hs, ""))
	a, b := &hs.Hosts[0], &hs.Hosts[1]
	echoServer(t, b)
	for _, addr := range []string{b.IPv4.String(), b.IPv6.String()} {
		transfer(t, a, addr, 16<<20)
	}
	udpEcho(t, a, b, b.IPv4.String())
	m := rs.stop(t)
	if num(t, m, "accounting", "leaked") != 0 {
		t.Fatalf("leaked: %v", m["accounting"])
	}
	ports, _ := m["ports"].([]any)
	completed, biggest := 0.0, 0.0
	for _, p := range ports {
		pm := p.(map[string]any)
		completed += pm["checksums_completed"].(float64)
		if pm["multi_buffer"] != true || pm["mtu"].(float64) != 9000 || pm["max_frame"].(float64) < 9018 {
			t.Errorf("port report: %v", pm)
		}
		if x, _ := pm["xdp"].(map[string]any); x == nil || x["tx_invalid_descs"].(float64) != 0 {
			t.Errorf("kernel counters: %v", pm["xdp"])
		}
		if rx := pm["rx_packets"].(float64); rx > 0 {
			biggest = max(biggest, pm["rx_bytes"].(float64)/rx)
		}
	}
	if biggest < 4000 { // the data direction's frames average near the MTU
		t.Errorf("at most %.0f bytes a frame on average: no jumbo frames went through", biggest)
	}
	if completed == 0 {
		t.Errorf("no checksum completed: %v", ports)
	}
}

// bench tcp moves bulk TCP through the switch and through a Linux bridge
// on the same veth pairs and reports both, with nothing leaked.
func TestBenchTCP(t *testing.T) {
	afxdptest.SkipUnlessPrivileged(t)
	m, _, err := runCLI(t, "bench", "tcp", "--duration", "1s", "--runs", "1", "--mtu", "1500", "--json")
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := m["rows"].([]any)
	if len(rows) != 1 {
		t.Fatalf("rows: %v", m["rows"])
	}
	r := rows[0].(map[string]any)
	if num(t, r, "switch_gbps") <= 0 || num(t, r, "bridge_gbps") <= 0 || num(t, r, "ratio") <= 0 ||
		num(t, r, "leaked") != 0 || num(t, r, "checksums_completed") == 0 {
		t.Fatalf("%v", r)
	}
}

// The AF_XDP scenarios spread the load over flows (the live-frames
// generator's program rewrites each frame) and replay a capture through
// the paced AF_XDP generator.
func TestBenchAFXDPFlowsAndReplay(t *testing.T) {
	afxdptest.SkipUnlessPrivileged(t)
	m, _, err := runCLI(t, "bench", "afxdp-vswitch", "--flows", "1024", "--flow-order", "random", "--duration", "1s", "--probe-rate", "0", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if num(t, m, "mpps") <= 0 || num(t, m, "flows") != 1024 || num(t, m, "accounting", "leaked") != 0 {
		t.Fatalf("flows: %v", m)
	}
	m, _, err = runCLI(t, "bench", "afxdp-vswitch", "--replay", "../../bench/testdata/mixed.pcap", "--rate", "20000", "--duration", "1s", "--probe-rate", "0", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if off, got := num(t, m, "offered_mpps"), num(t, m, "mpps"); got < 0.9*off || off < 0.015 || num(t, m, "accounting", "leaked") != 0 {
		t.Fatalf("replay: offered %v delivered %v: %v", off, got, m)
	}
	if _, _, err := runCLI(t, "bench", "afxdp-vswitch", "--replay", "../../bench/testdata/mixed.pcap"); err == nil {
		t.Fatal("replay over AF_XDP without --rate accepted")
	}
}
