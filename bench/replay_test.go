package bench

import (
	"bytes"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/wfpxdp/wfpxdp/dataplane"
)

var updateCapture = flag.Bool("update-capture", false, "rewrite testdata/mixed.pcap and mixed.pcapng")

// mixedFrames is a small mix of traffic, made here so the capture in
// testdata is reproducible: ARP, IPv4 and IPv6 TCP, UDP and ICMP, of a few
// sizes, between two hosts, with correct checksums.
func mixedFrames(t testing.TB) [][]byte {
	a, b := net.HardwareAddr{2, 0, 0, 0, 0xa, 1}, net.HardwareAddr{2, 0, 0, 0, 0xb, 2}
	a4, b4 := net.IP{198, 18, 0, 1}, net.IP{198, 18, 0, 2}
	a6, b6 := net.ParseIP("fd00:5c::1"), net.ParseIP("fd00:5c::2")
	ser := func(ls ...gopacket.SerializableLayer) []byte {
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
			t.Fatal(err)
		}
		return append([]byte(nil), buf.Bytes()...)
	}
	payload := func(n int) gopacket.Payload {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i * 31)
		}
		return p
	}
	eth := func(et layers.EthernetType, dst net.HardwareAddr) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: a, DstMAC: dst, EthernetType: et}
	}
	var frames [][]byte
	frames = append(frames, ser(eth(layers.EthernetTypeARP, layers.EthernetBroadcast),
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: a, SourceProtAddress: a4, DstHwAddress: make([]byte, 6), DstProtAddress: b4}))
	for _, n := range []int{0, 6, 512, 1400} {
		ip4 := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: a4, DstIP: b4}
		tcp := &layers.TCP{SrcPort: 40000, DstPort: 5201, Seq: uint32(n), ACK: true, Window: 512}
		tcp.SetNetworkLayerForChecksum(ip4)
		frames = append(frames, ser(eth(layers.EthernetTypeIPv4, b), ip4, tcp, payload(n)))
		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: a6, DstIP: b6}
		udp := &layers.UDP{SrcPort: 40001, DstPort: 53}
		udp.SetNetworkLayerForChecksum(ip6)
		frames = append(frames, ser(eth(layers.EthernetTypeIPv6, b), ip6, udp, payload(n)))
	}
	ip4 := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: a4, DstIP: b4}
	frames = append(frames, ser(eth(layers.EthernetTypeIPv4, b), ip4,
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 1, Seq: 1}, payload(56)))
	ip6 := &layers.IPv6{Version: 6, HopLimit: 255, NextHeader: layers.IPProtocolICMPv6, SrcIP: a6, DstIP: b6}
	icmp6 := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
	icmp6.SetNetworkLayerForChecksum(ip6)
	frames = append(frames, ser(eth(layers.EthernetTypeIPv6, b), ip6, icmp6, &layers.ICMPv6Echo{Identifier: 1, SeqNumber: 1}, payload(56)))
	return frames
}

func writeCapture(t testing.TB, w io.Writer, frames [][]byte, ng bool) {
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var write func(gopacket.CaptureInfo, []byte) error
	if ng {
		nw, err := pcapgo.NewNgWriter(w, layers.LinkTypeEthernet)
		if err != nil {
			t.Fatal(err)
		}
		defer nw.Flush()
		write = nw.WritePacket
	} else {
		pw := pcapgo.NewWriter(w)
		if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
			t.Fatal(err)
		}
		write = pw.WritePacket
	}
	for i, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: ts.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(f), Length: len(f)}
		if err := write(ci, f); err != nil {
			t.Fatal(err)
		}
	}
}

// The captures in testdata are what mixedFrames makes ("go test -run
// TestCaptureIsCurrent ./bench/ -args -update-capture" rewrites them), and
// both formats read back as the same frames.
func TestCaptureIsCurrent(t *testing.T) {
	frames := mixedFrames(t)
	for _, name := range []string{"mixed.pcap", "mixed.pcapng"} {
		var want bytes.Buffer
		writeCapture(t, &want, frames, filepath.Ext(name) == ".pcapng")
		path := filepath.Join("testdata", name)
		if *updateCapture {
			if err := os.WriteFile(path, want.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := LoadCapture(path, 1792)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(frames) {
			t.Fatalf("%s: %d frames, want %d (go test -run TestCaptureIsCurrent ./bench/ -args -update-capture)", name, len(got), len(frames))
		}
		for i := range got {
			if !bytes.Equal(got[i], frames[i]) {
				t.Fatalf("%s: frame %d differs from what the test makes (go test -run TestCaptureIsCurrent ./bench/ -args -update-capture)", name, i)
			}
		}
	}
}

// Replaying the capture through the switch delivers every frame the
// filters permit, in order and byte for byte, and nothing else: here the
// ARP request is blocked, and every IP frame goes through the
// absorb-reinject path or the forward path.
func TestReplayDeliversPermitted(t *testing.T) {
	frames, err := LoadCapture("testdata/mixed.pcap", 1792)
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	for _, f := range frames {
		if f[12] != 0x08 || f[13] != 0x06 {
			want = append(want, f)
		}
	}
	for _, path := range []Path{PathForward, PathAbsorbReinject} {
		const loops = 3
		r, err := RunPipeline(PipelineOptions{Path: path, Replay: frames, Packets: loops * uint64(len(frames)), Keep: loops * len(want),
			ExtraFilters: []dataplane.Filter{{Name: "block-arp", Layer: dataplane.LayerIngress, Weight: 1 << 20, Action: dataplane.FilterBlock,
				Conditions: []dataplane.Condition{{Field: dataplane.FieldEtherType, Value: 0x0806}}}}})
		if err != nil {
			t.Fatal(err)
		}
		if r.Stats.Drops["blocked"] != loops || len(r.Kept) != loops*len(want) {
			t.Fatalf("%s: %d frames delivered, want %d; drops %v", path, len(r.Kept), loops*len(want), r.Stats.Drops)
		}
		for i, got := range r.Kept {
			if !bytes.Equal(got, want[i%len(want)]) {
				t.Fatalf("%s: frame %d delivered as\n% x\nwant\n% x", path, i, got, want[i%len(want)])
			}
		}
	}
}

func TestLoadCaptureErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pcap")
	os.WriteFile(junk, []byte("not a capture at all"), 0o644)
	if _, err := LoadCapture(junk, 1792); err == nil {
		t.Fatal("junk accepted")
	}
	if _, err := LoadCapture(filepath.Join(dir, "missing.pcap"), 1792); err == nil {
		t.Fatal("missing file accepted")
	}
	var big bytes.Buffer
	writeCapture(t, &big, [][]byte{make([]byte, 3000)}, false)
	p := filepath.Join(dir, "big.pcap")
	os.WriteFile(p, big.Bytes(), 0o644)
	if _, err := LoadCapture(p, 1792); err == nil {
		t.Fatal("a frame over the limit accepted")
	}
}
