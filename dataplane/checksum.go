package dataplane

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/wfpxdp/wfpxdp/nbl"
)

// ChecksumMode says whether a port finishes partial L4 checksums on the
// frames it transmits, as a NIC with TX checksum offload does.
//
// Linux leaves the TCP or UDP checksum of an outgoing packet partial when
// its device offers checksum offload (CHECKSUM_PARTIAL): the field holds
// only the folded pseudo-header sum, and the device is trusted to finish
// it. A veth peer offers that offload, and copy-mode AF_XDP hands the
// frame over as it is, so without completion the receiving stack drops
// every such segment. A partial checksum is recognised by its value alone:
// the field equals the folded pseudo-header sum. Completing a frame whose
// checksum is already correct leaves it unchanged (the arithmetic below
// shows why), and a wrong checksum of any other value stays wrong: the
// switch does not launder corruption.
type ChecksumMode uint8

// Checksum modes.
const (
	ChecksumAuto ChecksumMode = iota // finish partial checksums (the default)
	ChecksumOff                      // transmit frames as they are
)

func (m ChecksumMode) String() string {
	if m == ChecksumOff {
		return "off"
	}
	return "auto"
}

// ParseChecksumMode parses "auto" or "off".
func ParseChecksumMode(s string) (ChecksumMode, error) {
	switch s {
	case "", "auto":
		return ChecksumAuto, nil
	case "off":
		return ChecksumOff, nil
	}
	return 0, fmt.Errorf("checksum %q: want auto or off", s)
}

const (
	protoTCP = 6
	protoUDP = 17
)

// completeChecksum finishes the L4 checksum of frame if it is partial and
// reports whether it did. It reads the Ethernet header (one 802.1Q or
// 802.1ad tag allowed), an IPv4 header (unfragmented) or a fixed IPv6
// header, and a TCP or UDP header that follows directly; anything else,
// and anything shorter than its headers say, is left alone. It does not
// allocate.
//
// With the field holding the folded pseudo-header sum P, the complete
// checksum is the complement of the one's-complement sum S of the L4
// segment as it stands (field included), since S = data + P. For a frame
// whose checksum C is already correct and happens to equal P, S = data + C
// = ~P, so the result is ~~P = C: the frame is unchanged.
func completeChecksum(frame []byte) bool {
	return completeChecksumChain(frame, nil)
}

// completeChecksumList is completeChecksum for a list, whose packet may
// span several buffers (multi-buffer): the headers are in the first, the
// L4 segment runs on into the others.
func completeChecksumList(l *nbl.NBL) bool {
	return completeChecksumChain(l.Data(), l.NB().Next)
}

// completeChecksumChain is completeChecksum over frame followed by the
// buffers from more on.
func completeChecksumChain(frame []byte, more *nbl.NB) bool {
	if len(frame) < 14+20+8 { // the shortest frame with an L4 header
		return false
	}
	total := len(frame) // the packet's bytes, over every buffer
	for b := more; b != nil; b = b.Next {
		total += int(b.DataLength)
	}
	off := 12
	et := binary.BigEndian.Uint16(frame[12:14])
	if et == EtherTypeVLAN || et == EtherTypeQinQ {
		off = 16
		et = binary.BigEndian.Uint16(frame[16:18])
	}
	off += 2
	var pseudo uint64
	var proto uint8
	var l4len int
	switch et {
	case EtherTypeIPv4:
		if len(frame) < off+20 {
			return false
		}
		ip := frame[off : off+20]
		ihl := int(ip[0]&0xf) * 4
		iplen := int(binary.BigEndian.Uint16(ip[2:4]))
		// version 4, a header of 20..60 bytes inside the frame, no
		// fragment (MF set or an offset)
		if ip[0]>>4 != 4 || ihl < 20 || iplen < ihl || off+iplen > total || binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 {
			return false
		}
		proto = ip[9]
		l4len = iplen - ihl
		pseudo = uint64(binary.BigEndian.Uint32(ip[12:16])) + uint64(binary.BigEndian.Uint32(ip[16:20]))
		off += ihl
	case EtherTypeIPv6:
		if len(frame) < off+40 {
			return false
		}
		ip := frame[off : off+40]
		l4len = int(binary.BigEndian.Uint16(ip[4:6]))
		if ip[0]>>4 != 6 || off+40+l4len > total {
			return false
		}
		proto = ip[6]
		pseudo = uint64(fold(sum64(ip[8:40], 0)))
		off += 40
	default:
		return false
	}
	var field int
	switch {
	case proto == protoTCP && l4len >= 20:
		field = off + 16
	case proto == protoUDP && l4len >= 8:
		field = off + 6
	default:
		return false
	}
	if field+2 > len(frame) { // the L4 header must be in the first buffer
		return false
	}
	c := binary.BigEndian.Uint16(frame[field : field+2])
	if c == 0 || c != fold(pseudo+uint64(proto)+uint64(l4len)) {
		return false // 0: a UDP datagram without a checksum; a folded sum is never 0
	}
	var s uint16
	if off+l4len <= len(frame) {
		s = ^fold(sum64(frame[off:off+l4len], 0))
	} else {
		s = ^sumChain(frame[off:], more, l4len)
	}
	if s == 0 && proto == protoUDP {
		s = 0xffff // 0 means "no checksum" in UDP (RFC 768)
	}
	binary.BigEndian.PutUint16(frame[field:field+2], s)
	return true
}

// sumChain is the folded one's-complement sum of the first n bytes of
// first followed by the buffers from more on. A buffer that starts at an
// odd offset of the segment has its sum's bytes swapped (RFC 1071's byte
// order independence).
func sumChain(first []byte, more *nbl.NB, n int) uint16 {
	seg := first[:min(len(first), n)]
	s := fold(sum64(seg, 0))
	pos := len(seg)
	for b := more; b != nil && pos < n; b = b.Next {
		d := b.Data()
		d = d[:min(len(d), n-pos)]
		part := fold(sum64(d, 0))
		if pos%2 == 1 {
			part = part>>8 | part<<8
		}
		s = fold(uint64(s) + uint64(part))
		pos += len(d)
	}
	return s
}

// fold reduces a one's-complement sum to 16 bits.
func fold(s uint64) uint16 {
	s = s>>32 + s&0xffffffff // at most 33 bits
	s = s>>16 + s&0xffff     // at most 18 bits
	s = s>>16 + s&0xffff     // at most 17 bits, and then 0x10000 only when the rest is 0
	s = s>>16 + s&0xffff
	return uint16(s)
}

// sum64 adds b to the one's-complement sum s, reading big-endian 64-bit
// words with the carry folded back in (RFC 1071: the sum of wider words
// folds to the sum of the 16-bit ones). An odd last byte is the high byte
// of a last word.
func sum64(b []byte, s uint64) uint64 {
	var c uint64
	for len(b) >= 32 {
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b), c)
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b[8:]), c)
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b[16:]), c)
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b[24:]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		s, c = bits.Add64(s, binary.BigEndian.Uint64(b), c)
		b = b[8:]
	}
	var tail uint64
	for i, v := range b { // at most 7 bytes, placed as in a big-endian word
		tail |= uint64(v) << (56 - 8*i)
	}
	s, c = bits.Add64(s, tail, c)
	s, c = bits.Add64(s, 0, c)
	return s + c
}
