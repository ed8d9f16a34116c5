package dataplane

import (
	"encoding/binary"
	"fmt"
	"net"

	"github.com/wfpxdp/wfpxdp/inject"
)

// MACType is the FWP_AF_LINK address type of a MAC address (R40).
type MACType uint8

// Address types, as FWP_DATA_LINK_ADDRESS_TYPE.
const (
	MACUnicast MACType = iota + 1
	MACMulticast
	MACBroadcast
)

// Ether types the parser knows.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeIPv6 = 0x86DD
	EtherTypeVLAN = 0x8100
	EtherTypeQinQ = 0x88A8
)

// MAC is a 48-bit address held in the low bits of a uint64, first octet
// most significant, so it can be compared, masked and hashed as a number.
type MAC uint64

// Broadcast is ff:ff:ff:ff:ff:ff.
const Broadcast MAC = 0xFFFF_FFFF_FFFF

func macAt(b []byte) MAC {
	_ = b[5]
	return MAC(uint64(binary.BigEndian.Uint16(b))<<32 | uint64(binary.BigEndian.Uint32(b[2:])))
}

// HardwareMAC returns hw, a 48-bit address, as a MAC (0 for any other
// length).
func HardwareMAC(hw net.HardwareAddr) MAC {
	if len(hw) != 6 {
		return 0
	}
	return macAt(hw)
}

// Put writes m into b[:6].
func (m MAC) Put(b []byte) {
	binary.BigEndian.PutUint16(b, uint16(m>>32))
	binary.BigEndian.PutUint32(b[2:], uint32(m))
}

// String formats m as 02:00:00:00:00:01.
func (m MAC) String() string {
	var b [6]byte
	m.Put(b[:])
	return net.HardwareAddr(b[:]).String()
}

// ParseMAC parses a 48-bit MAC address written as 02:00:00:00:00:01,
// 02-00-00-00-00-01 or 0200.0000.0001.
func ParseMAC(s string) (MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return 0, fmt.Errorf("%q is not a 48-bit MAC address (want 02:00:00:00:00:01)", s)
	}
	return macAt(hw), nil
}

// Type returns whether m is unicast, multicast or broadcast.
func (m MAC) Type() MACType {
	switch {
	case m == Broadcast:
		return MACBroadcast
	case m&(1<<40) != 0: // I/G bit of the first octet
		return MACMulticast
	}
	return MACUnicast
}

// FieldIndex is the index of an incoming value in WFP's
// FWPS_INCOMING_VALUES0 array for a vSwitch Ethernet layer (R40): the
// FWPS_FIELD_INGRESS_VSWITCH_ETHERNET_* and ..._EGRESS_... values. The
// ingress and egress layers share indexes 0..11.
type FieldIndex uint8

// Incoming value indexes of both layers (R40).
const (
	FieldIndexMACSource FieldIndex = iota
	FieldIndexMACSourceType
	FieldIndexMACDestination
	FieldIndexMACDestinationType
	FieldIndexEtherType
	FieldIndexVLANID
	FieldIndexTenantNetworkID
	FieldIndexVSwitchID
	FieldIndexVSwitchNetworkType
	FieldIndexVSwitchSourceInterfaceID
	FieldIndexVSwitchSourceInterfaceType
	FieldIndexVSwitchSourceVMID
)

// Ingress layer indexes after the shared ones (R40).
const (
	FieldIndexIngressL2Flags FieldIndex = iota + 12
	FieldIndexIngressCompartmentID
	NumIngressFields
)

// Egress layer indexes after the shared ones (R40).
const (
	FieldIndexEgressDestinationInterfaceID FieldIndex = iota + 12
	FieldIndexEgressDestinationInterfaceType
	FieldIndexEgressDestinationVMID
	FieldIndexEgressL2Flags
	FieldIndexEgressCompartmentID
	NumEgressFields
)

// Incoming holds the incoming values of the vSwitch Ethernet layers (R40)
// for one packet, parsed once per classify pass. The zero VLANID means
// untagged. TenantNetworkID (the virtual subset id of a Hyper-V network
// virtualization overlay) is 0: plain Ethernet ports carry none. The
// FieldIndex constants give each value's index in WFP's incoming values
// array.
type Incoming struct {
	MACSource       MAC
	MACDestination  MAC
	EtherType       uint16 // of the payload, after any VLAN tag
	VLANID          uint16
	MACSourceType   MACType
	MACDestType     MACType
	VSwitchID       *inject.GUID // the switch's GUID (R11: pass it to the inject call)
	SourcePortID    uint32       // source interface id
	DestPortID      uint32       // egress layer only
	SourceNICIndex  uint16
	L2Flags         uint32
	HeaderLen       int // bytes of Ethernet header including tags
	TenantNetworkID uint32
}

// parseStatus says why a frame could not be parsed.
type parseStatus uint8

const (
	parseOK        parseStatus = iota
	parseRunt                  // shorter than an Ethernet header
	parseTruncated             // a VLAN tag runs past the end
)

// untagged returns the ether type of a frame of at least 14 bytes without
// a VLAN tag; ok is false for anything else (parseEthernetTags's case).
func untagged(data []byte) (et uint16, ok bool) {
	if len(data) < 14 {
		return 0, false
	}
	et = binary.BigEndian.Uint16(data[12:14])
	return et, et != EtherTypeVLAN && et != EtherTypeQinQ
}

// setAddrs fills in's addresses from a frame of at least 12 bytes, and
// setAddrTypes their types (two functions so that each is inlined).
func setAddrs(in *Incoming, data []byte) {
	in.MACDestination, in.MACSource = macAt(data[0:6]), macAt(data[6:12])
}

func setAddrTypes(in *Incoming) {
	in.MACDestType, in.MACSourceType = in.MACDestination.Type(), in.MACSource.Type()
}

// parseEthernetTags fills the frame fields of in from data (Ethernet, up
// to two VLAN tags). It never reads past len(data) and never panics. It
// also returns EtherType | VLANID<<16, for callers that keep both: read
// back from in, the two 2-byte stores would feed one 4-byte load, which
// the CPU cannot forward from its store buffer and has to wait out (a
// tenth of the ingress stage's time in the forward benchmark).
func parseEthernetTags(data []byte, in *Incoming) (parseStatus, uint32) {
	if len(data) < 14 {
		return parseRunt, 0
	}
	setAddrs(in, data)
	setAddrTypes(in)
	et := binary.BigEndian.Uint16(data[12:14])
	off := 14
	var vlan uint16
	for (et == EtherTypeVLAN || et == EtherTypeQinQ) && off < 22 { // up to two tags
		if len(data) < off+4 {
			return parseTruncated, 0
		}
		// With two tags (QinQ) the inner one, the customer VLAN, wins.
		vlan = binary.BigEndian.Uint16(data[off:off+2]) & 0x0FFF
		et = binary.BigEndian.Uint16(data[off+2 : off+4])
		off += 4
	}
	in.EtherType, in.VLANID = et, vlan
	in.HeaderLen = off
	return parseOK, uint32(et) | uint32(vlan)<<16
}
