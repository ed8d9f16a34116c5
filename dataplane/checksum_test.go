package dataplane

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/wfpxdp/wfpxdp/nbl"
)

// l4Frame builds an Ethernet frame carrying TCP or UDP over IPv4 or IPv6
// with a correct checksum (computed by gopacket), payload bytes long, and
// returns it with the offset of its checksum field and its pseudo-header
// sum folded, which is what a stack that leaves the checksum to the device
// writes there.
func l4Frame(t testing.TB, v6, tcp bool, vlan bool, payload int) (frame []byte, field int, partial uint16) {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
	var ls []gopacket.SerializableLayer
	ls = append(ls, eth)
	off := 14
	var ipl gopacket.NetworkLayer
	proto := layers.IPProtocolUDP
	if tcp {
		proto = layers.IPProtocolTCP
	}
	if vlan {
		eth.EthernetType = layers.EthernetTypeDot1Q
		et := layers.EthernetTypeIPv4
		if v6 {
			et = layers.EthernetTypeIPv6
		}
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: 7, Type: et})
		off += 4
	}
	src4, dst4 := net.IP{198, 18, 0, 1}, net.IP{198, 18, 0, 2}
	src6, dst6 := net.ParseIP("fd00:5c::1"), net.ParseIP("fd00:5c::2")
	if v6 {
		if !vlan {
			eth.EthernetType = layers.EthernetTypeIPv6
		}
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: src6, DstIP: dst6}
		ipl = ip
		ls = append(ls, ip)
		off += 40
	} else {
		if !vlan {
			eth.EthernetType = layers.EthernetTypeIPv4
		}
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: src4, DstIP: dst4, Flags: layers.IPv4DontFragment}
		ipl = ip
		ls = append(ls, ip)
		off += 20
	}
	body := make([]byte, payload)
	for i := range body {
		body[i] = byte(i*7 + 3)
	}
	if tcp {
		l := &layers.TCP{SrcPort: 40000, DstPort: 5201, Seq: 1, Ack: 2, ACK: true, Window: 512}
		l.SetNetworkLayerForChecksum(ipl)
		ls = append(ls, l)
		field = off + 16
	} else {
		l := &layers.UDP{SrcPort: 40000, DstPort: 5201}
		l.SetNetworkLayerForChecksum(ipl)
		ls = append(ls, l)
		field = off + 6
	}
	ls = append(ls, gopacket.Payload(body))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	frame = buf.Bytes()
	// the pseudo-header, summed 16 bits at a time (not the code under test)
	var s uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(binary.BigEndian.Uint16(b[i:]))
		}
	}
	l4len := len(frame) - off // the IP header's own length: the frame may be padded
	if v6 {
		l4len = int(binary.BigEndian.Uint16(frame[off-36:]))
	} else {
		l4len = int(binary.BigEndian.Uint16(frame[off-18:])) - 20
	}
	if v6 {
		add(frame[off-32 : off])
	} else {
		add(frame[off-8 : off])
	}
	s += uint32(proto) + uint32(l4len)
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return frame, field, uint16(s)
}

// verifies reports whether the L4 checksum of a frame built by l4Frame
// verifies: pseudo-header plus segment sums to 0xffff, word by word. The
// segment ends where the IP header says (the frame may be padded).
func verifies(frame []byte, field int, partial uint16, tcp bool) bool {
	start := field - 16
	if !tcp {
		start = field - 6
	}
	var l4len int
	if ip := start - 40; ip >= 14 && frame[ip]>>4 == 6 {
		l4len = int(binary.BigEndian.Uint16(frame[ip+4:]))
	} else {
		l4len = int(binary.BigEndian.Uint16(frame[start-20+2:])) - 20
	}
	s := uint32(partial)
	seg := frame[start : start+l4len]
	for i := 0; i < len(seg); i += 2 {
		w := uint32(seg[i]) << 8
		if i+1 < len(seg) {
			w |= uint32(seg[i+1])
		}
		s += w
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return s == 0xffff
}

func TestCompleteChecksum(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, tcp := range []bool{false, true} {
			for _, vlan := range []bool{false, true} {
				for _, payload := range []int{0, 1, 7, 18, 1000, 1401, 8900} {
					frame, field, partial := l4Frame(t, v6, tcp, vlan, payload)
					if !verifies(frame, field, partial, tcp) {
						t.Fatalf("v6 %v tcp %v: the reference frame does not verify", v6, tcp)
					}
					good := bytes.Clone(frame)
					// a correct checksum is never changed
					if completeChecksum(frame) && !bytes.Equal(frame, good) {
						t.Fatalf("v6 %v tcp %v vlan %v payload %d: a correct checksum was changed", v6, tcp, vlan, payload)
					}
					// a partial one is finished to the correct value
					binary.BigEndian.PutUint16(frame[field:], partial)
					if !completeChecksum(frame) || !bytes.Equal(frame, good) {
						t.Fatalf("v6 %v tcp %v vlan %v payload %d: partial %#04x completed to %#04x, want %#04x", v6, tcp, vlan, payload,
							partial, binary.BigEndian.Uint16(frame[field:]), binary.BigEndian.Uint16(good[field:]))
					}
					// a wrong one stays wrong
					bad := partial + 1
					if bad == binary.BigEndian.Uint16(good[field:]) {
						bad++
					}
					binary.BigEndian.PutUint16(frame[field:], bad)
					if completeChecksum(frame) || binary.BigEndian.Uint16(frame[field:]) != bad {
						t.Fatalf("v6 %v tcp %v: a wrong checksum was rewritten", v6, tcp)
					}
				}
			}
		}
	}
}

// Frames completeChecksum must leave alone: fragments, other protocols,
// headers that claim more than the frame holds.
func TestCompleteChecksumLeavesOthers(t *testing.T) {
	frame, field, partial := l4Frame(t, false, false, false, 100)
	binary.BigEndian.PutUint16(frame[field:], partial)
	cases := map[string]func(f []byte) []byte{
		"fragment":        func(f []byte) []byte { f[14+6] |= 0x20; return f },
		"fragment offset": func(f []byte) []byte { f[14+7] = 1; return f },
		"icmp":            func(f []byte) []byte { f[14+9] = 1; return f },
		"truncated":       func(f []byte) []byte { return f[:len(f)-1] },
		"arp":             func(f []byte) []byte { f[12], f[13] = 0x08, 0x06; return f },
		"ihl too small":   func(f []byte) []byte { f[14] = 0x44; return f },
	}
	for name, mod := range cases {
		f := mod(bytes.Clone(frame))
		before := bytes.Clone(f)
		if completeChecksum(f) || !bytes.Equal(f, before) {
			t.Errorf("%s: frame changed", name)
		}
	}
}

func TestCompleteChecksumAllocs(t *testing.T) {
	frame, field, partial := l4Frame(t, true, true, false, 1400)
	if n := testing.AllocsPerRun(100, func() {
		binary.BigEndian.PutUint16(frame[field:], partial)
		completeChecksum(frame)
	}); n != 0 {
		t.Fatalf("%v allocations per completion", n)
	}
}

// FuzzCompleteChecksum: on any frame, completion changes at most the two
// bytes of the checksum field, never a frame whose checksum verifies, and
// what it writes verifies.
func FuzzCompleteChecksum(f *testing.F) {
	for _, v6 := range []bool{false, true} {
		for _, tcp := range []bool{false, true} {
			frame, field, partial := l4Frame(f, v6, tcp, false, 40)
			f.Add(bytes.Clone(frame))
			binary.BigEndian.PutUint16(frame[field:], partial)
			f.Add(frame)
		}
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		before := bytes.Clone(frame)
		done := completeChecksum(frame)
		diff := 0
		for i := range frame {
			if frame[i] != before[i] {
				diff++
			}
		}
		if !done && diff != 0 || diff > 2 {
			t.Fatalf("done %v, %d bytes changed", done, diff)
		}
		if !done {
			return
		}
		// a second pass finds nothing partial left, or writes the same
		again := bytes.Clone(frame)
		completeChecksum(again)
		if !bytes.Equal(again, frame) {
			t.Fatalf("completion is not idempotent")
		}
	})
}

func BenchmarkCompleteChecksum(b *testing.B) {
	for _, size := range []int{64, 1500, 9000} {
		frame, field, partial := l4Frame(b, false, true, false, size-54)
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				binary.BigEndian.PutUint16(frame[field:], partial)
				completeChecksum(frame)
			}
		})
	}
}

// The common case on a switch: a frame whose checksum is already complete.
func BenchmarkCompleteChecksumNotPartial(b *testing.B) {
	frame, _, _ := l4Frame(b, false, false, false, 18)
	b.ReportAllocs()
	for b.Loop() {
		completeChecksum(frame)
	}
}

// A packet spread over several buffers (multi-buffer) is completed as if
// it were one: buffer boundaries at even and odd offsets.
func TestCompleteChecksumChain(t *testing.T) {
	arena, err := nbl.NewArena(nbl.Config{Frames: 16, FrameSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	for _, v6 := range []bool{false, true} {
		for _, tcp := range []bool{false, true} {
			for _, chunk := range []int{1792, 1791, 999} {
				frame, field, partial := l4Frame(t, v6, tcp, false, 8900)
				good := bytes.Clone(frame)
				binary.BigEndian.PutUint16(frame[field:], partial)
				// spread it over descriptors 0, 1, ... chunk bytes each
				var head *nbl.NBL
				var tail *nbl.NB
				for i, off := 0, 0; off < len(frame); i, off = i+1, off+chunk {
					l := arena.Desc(uint32(i))
					n := min(chunk, len(frame)-off)
					copy(l.NB().Frame()[256:], frame[off:off+n])
					l.NB().SetData(256, uint32(n))
					l.NB().Next = nil
					if head == nil {
						head = l
					} else {
						tail.Next = l.NB()
					}
					tail = l.NB()
				}
				if !completeChecksumList(head) {
					t.Fatalf("v6 %v tcp %v chunk %d: not completed", v6, tcp, chunk)
				}
				if got := binary.BigEndian.Uint16(head.Data()[field:]); got != binary.BigEndian.Uint16(good[field:]) {
					t.Fatalf("v6 %v tcp %v chunk %d: completed to %#04x, want %#04x", v6, tcp, chunk, got, binary.BigEndian.Uint16(good[field:]))
				}
				if completeChecksumList(head) { // now correct: left alone
					if got := binary.BigEndian.Uint16(head.Data()[field:]); got != binary.BigEndian.Uint16(good[field:]) {
						t.Fatal("a completed checksum changed again")
					}
				}
			}
		}
	}
}
