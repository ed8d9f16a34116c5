package config

import (
	"encoding/hex"
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/inject"
)

// DefaultID is the switch GUID when the file names none.
var DefaultID = inject.GUID{0x77, 0x66, 0x70, 0x78, 0x64, 0x70} // "wfpxdp"

// check validates every field, fills defaults, and returns the first
// problem, naming its line and field.
func (f *File) check() error {
	s := &f.Switch
	if s.Mode == "" {
		s.Mode = "rtc"
	}
	if s.Mode != "rtc" && s.Mode != "pipeline" {
		return f.errAt(fmt.Sprintf("%q: want rtc or pipeline", s.Mode), "switch", "mode")
	}
	if s.ID != "" {
		if _, err := ParseGUID(s.ID); err != nil {
			return f.errAt(err.Error(), "switch", "id")
		}
	}
	for i, c := range s.Cores {
		if c < 0 {
			return f.errAt(fmt.Sprintf("%d: want a CPU number >= 0", c), "switch", "cores", i)
		}
	}
	// the switch's own defaults, so the checks below see the sizes it will use
	d := dataplane.Config{Queues: s.Queues, Frames: s.Frames, FrameSize: s.FrameSize, Reserve: s.Reserve,
		Batch: s.Batch, RingSize: s.RingSize}.WithDefaults()
	s.Queues, s.Frames, s.FrameSize, s.Reserve, s.Batch, s.RingSize = d.Queues, d.Frames, d.FrameSize, d.Reserve, d.Batch, d.RingSize
	switch {
	case s.Queues < 1 || s.Queues > 64:
		return f.errAt(fmt.Sprintf("%d: want 1..64", s.Queues), "switch", "queues")
	case s.FrameSize != 2048 && s.FrameSize != 4096:
		what := "not 2048 or 4096"
		if !pow2(s.FrameSize) {
			what = "not a power of two"
		}
		return f.errAt(fmt.Sprintf("%d is %s (want 2048 or 4096: an AF_XDP UMEM frame)", s.FrameSize, what), "switch", "frame_size")
	case s.Frames < 64 || s.Frames > 1<<20:
		return f.errAt(fmt.Sprintf("%d: want 64..1048576", s.Frames), "switch", "frames")
	case s.Reserve < 0:
		return f.errAt(fmt.Sprintf("%d: want >= 0", s.Reserve), "switch", "reserve")
	case s.Batch < 1 || s.Batch > 256:
		return f.errAt(fmt.Sprintf("%d: want 1..256", s.Batch), "switch", "batch")
	case !pow2(s.RingSize) || s.RingSize < 2*s.Batch:
		return f.errAt(fmt.Sprintf("%d: want a power of two >= 2 x batch", s.RingSize), "switch", "ring_size")
	}
	if _, err := s.idleSleep(); err != nil {
		return f.errAt(err.Error(), "switch", "idle_sleep")
	}
	if s.MultiBuffer == "" {
		s.MultiBuffer = "auto"
	}
	if s.MultiBuffer != "auto" && s.MultiBuffer != "on" && s.MultiBuffer != "off" {
		return f.errAt(fmt.Sprintf("%q: want auto, on or off", s.MultiBuffer), "switch", "multi_buffer")
	}
	if s.LcoreNice < -20 || s.LcoreNice > 19 {
		return f.errAt(fmt.Sprintf("%d: want -20..19", s.LcoreNice), "switch", "lcore_nice")
	}

	if len(f.Ports) == 0 {
		return f.errAt("no ports (want at least one)", "ports")
	}
	ids := map[uint32]int{}
	names := map[string]int{}
	ifaces := map[string]int{}
	for i := range f.Ports {
		p := &f.Ports[i]
		at := func(field string) []any { return []any{"ports", i, field} }
		if p.Name == "" {
			p.Name = fmt.Sprintf("port%d", p.ID)
		}
		if j, ok := names[p.Name]; ok {
			return f.errAt(fmt.Sprintf("%q is also the name of ports[%d]", p.Name, j), at("name")...)
		}
		names[p.Name] = i
		if j, ok := ids[p.ID]; ok {
			return f.errAt(fmt.Sprintf("%d is also the id of ports[%d]", p.ID, j), at("id")...)
		}
		ids[p.ID] = i
		if p.MAC != "" {
			m, err := dataplane.ParseMAC(p.MAC)
			if err == nil && m.Type() != dataplane.MACUnicast {
				err = fmt.Errorf("%s is not a unicast address", p.MAC)
			}
			if err != nil {
				return f.errAt(err.Error(), at("mac")...)
			}
		}
		if p.Kind == "" {
			p.Kind = "afxdp"
		}
		if p.Checksum == "" {
			p.Checksum = "auto"
		}
		if _, err := dataplane.ParseChecksumMode(p.Checksum); err != nil {
			return f.errAt(fmt.Sprintf("%q: want auto or off", p.Checksum), at("checksum")...)
		}
		switch p.Kind {
		case "afxdp":
			if p.Interface == "" {
				return f.errAt("missing (want the interface an afxdp port binds to)", at("interface")...)
			}
			if j, ok := ifaces[p.Interface]; ok {
				return f.errAt(fmt.Sprintf("%s is also the interface of ports[%d]", p.Interface, j), at("interface")...)
			}
			ifaces[p.Interface] = i
			if p.Generate != nil {
				return f.errAt("only a memory port generates (remove it, or kind: memory)", at("generate")...)
			}
			if p.XDPMode == "" {
				p.XDPMode = "auto"
			}
			if p.XDPMode != "auto" && p.XDPMode != "native" && p.XDPMode != "generic" {
				return f.errAt(fmt.Sprintf("%q: want auto, native or generic", p.XDPMode), at("xdp_mode")...)
			}
			if p.Bind == "" {
				p.Bind = "auto"
			}
			if p.Bind != "auto" && p.Bind != "copy" && p.Bind != "zerocopy" {
				return f.errAt(fmt.Sprintf("%q: want auto, copy or zerocopy", p.Bind), at("bind")...)
			}
			if p.RingSize == 0 {
				p.RingSize = 2048
			}
			if !pow2(int(p.RingSize)) || p.RingSize < 64 {
				return f.errAt(fmt.Sprintf("%d: want a power of two >= 64", p.RingSize), at("ring_size")...)
			}
		case "memory":
			if p.Interface != "" {
				return f.errAt("a memory port has no interface (remove it, or kind: afxdp)", at("interface")...)
			}
			if g := p.Generate; g != nil {
				if err := f.checkGenerate(g, i); err != nil {
					return err
				}
			}
		default:
			return f.errAt(fmt.Sprintf("%q: want afxdp or memory", p.Kind), at("kind")...)
		}
	}
	for i, e := range f.StaticMACs {
		if _, err := dataplane.ParseMAC(e.MAC); err != nil {
			return f.errAt(err.Error(), "static_macs", i, "mac")
		}
		if _, ok := ids[e.Port]; !ok {
			return f.errAt(fmt.Sprintf("%d: no port has that id", e.Port), "static_macs", i, "port")
		}
	}

	callouts := map[string]bool{}
	for i := range f.Callouts {
		c := &f.Callouts[i]
		if c.Name == "" {
			return f.errAt("missing (want a name the filters refer to)", "callouts", i, "name")
		}
		if callouts[c.Name] {
			return f.errAt(fmt.Sprintf("%q is registered twice", c.Name), "callouts", i, "name")
		}
		callouts[c.Name] = true
		switch c.Kind {
		case "inspector", "counter":
		default:
			return f.errAt(fmt.Sprintf("%q: want inspector or counter", c.Kind), "callouts", i, "kind")
		}
	}
	for i := range f.Filters {
		if _, err := f.filter(i, callouts); err != nil {
			return err
		}
	}
	return nil
}

func (f *File) checkGenerate(g *Generate, i int) error {
	at := func(field string) []any { return []any{"ports", i, "generate", field} }
	if _, err := dataplane.ParseMAC(g.Dst); err != nil {
		return f.errAt(err.Error(), at("dst")...)
	}
	if _, err := dataplane.ParseMAC(g.Src); err != nil {
		return f.errAt(err.Error(), at("src")...)
	}
	if g.EtherType != "" {
		if v, err := parseUint(g.EtherType, 16); err != nil || v < 0x600 {
			return f.errAt(fmt.Sprintf("%q: want an ether type >= 0x0600, e.g. 0x0800", g.EtherType), at("ether_type")...)
		}
	}
	if g.VLAN > 4094 {
		return f.errAt(fmt.Sprintf("%d: want 0 (untagged) or 1..4094", g.VLAN), at("vlan")...)
	}
	if g.Size == 0 {
		g.Size = 64
	}
	if g.Size < 60 || g.Size > f.Switch.FrameSize-256 {
		return f.errAt(fmt.Sprintf("%d: want 60..%d (frame_size less 256 bytes of headroom)", g.Size, f.Switch.FrameSize-256), at("size")...)
	}
	if g.Rate < 0 {
		return f.errAt(fmt.Sprintf("%v: want >= 0 packets per second", g.Rate), at("rate")...)
	}
	return nil
}

var fieldNames = map[string]dataplane.Field{
	"mac_source":           dataplane.FieldMACSource,
	"mac_destination":      dataplane.FieldMACDestination,
	"mac_source_type":      dataplane.FieldMACSourceType,
	"mac_destination_type": dataplane.FieldMACDestinationType,
	"ether_type":           dataplane.FieldEtherType,
	"vlan_id":              dataplane.FieldVLANID,
	"source_port_id":       dataplane.FieldSourcePortID,
	"destination_port_id":  dataplane.FieldDestinationPortID,
	"source_nic_index":     dataplane.FieldSourceNICIndex,
	"l2_flags":             dataplane.FieldL2Flags,
}

// filter converts filters[i]; callouts are the names registered.
func (f *File) filter(i int, callouts map[string]bool) (dataplane.Filter, error) {
	c := f.Filters[i]
	at := func(field string) []any { return []any{"filters", i, field} }
	out := dataplane.Filter{Name: c.Name, Weight: c.Weight, ClearActionRight: c.HardPermit}
	if out.Name == "" {
		out.Name = fmt.Sprintf("filter%d", i)
	}
	switch c.Layer {
	case "ingress":
		out.Layer = dataplane.LayerIngress
	case "egress":
		out.Layer = dataplane.LayerEgress
	default:
		return out, f.errAt(fmt.Sprintf("%q: want ingress or egress", c.Layer), at("layer")...)
	}
	switch c.Action {
	case "permit":
		out.Action = dataplane.FilterPermit
	case "block":
		out.Action = dataplane.FilterBlock
	case "callout":
		out.Action = dataplane.FilterCallout
		out.Callout = c.Callout
		if !callouts[c.Callout] {
			return out, f.errAt(fmt.Sprintf("%q: no callout of that name in callouts", c.Callout), at("callout")...)
		}
	default:
		return out, f.errAt(fmt.Sprintf("%q: want permit, block or callout", c.Action), at("action")...)
	}
	if c.Action != "callout" && c.Callout != "" {
		return out, f.errAt("only a callout filter names a callout", at("callout")...)
	}
	if len(c.Conditions) > 8 {
		return out, f.errAt(fmt.Sprintf("%d conditions: want at most 8", len(c.Conditions)), at("conditions")...)
	}
	for j, cc := range c.Conditions {
		cat := func(field string) []any { return []any{"filters", i, "conditions", j, field} }
		fld, ok := fieldNames[cc.Field]
		if !ok {
			return out, f.errAt(fmt.Sprintf("%q: want one of %s", cc.Field, fieldList()), cat("field")...)
		}
		if fld == dataplane.FieldDestinationPortID && out.Layer != dataplane.LayerEgress {
			return out, f.errAt("destination_port_id is only known at the egress layer", cat("field")...)
		}
		v, err := conditionValue(fld, cc.Value)
		if err != nil {
			return out, f.errAt(err.Error(), cat("value")...)
		}
		var m uint64
		if cc.Mask != "" {
			if m, err = conditionValue(fld, cc.Mask); err != nil {
				return out, f.errAt(err.Error(), cat("mask")...)
			}
		}
		out.Conditions = append(out.Conditions, dataplane.Condition{Field: fld, Value: v, Mask: m})
	}
	return out, nil
}

func fieldList() string {
	return "mac_source, mac_destination, mac_source_type, mac_destination_type, ether_type, vlan_id, " +
		"source_port_id, destination_port_id, source_nic_index, l2_flags"
}

// conditionValue parses a value of field fld: a MAC for the MAC fields,
// unicast|multicast|broadcast for the address types, a number otherwise.
func conditionValue(fld dataplane.Field, s string) (uint64, error) {
	switch fld {
	case dataplane.FieldMACSource, dataplane.FieldMACDestination:
		m, err := dataplane.ParseMAC(s)
		return uint64(m), err
	case dataplane.FieldMACSourceType, dataplane.FieldMACDestinationType:
		switch s {
		case "unicast":
			return uint64(dataplane.MACUnicast), nil
		case "multicast":
			return uint64(dataplane.MACMulticast), nil
		case "broadcast":
			return uint64(dataplane.MACBroadcast), nil
		}
		return 0, fmt.Errorf("%q: want unicast, multicast or broadcast", s)
	case dataplane.FieldEtherType:
		return parseUint(s, 16)
	case dataplane.FieldVLANID:
		v, err := parseUint(s, 12)
		if err == nil && v == 0 {
			err = fmt.Errorf("%q: want a VLAN id 1..4095", s)
		}
		return v, err
	case dataplane.FieldSourceNICIndex:
		return parseUint(s, 16)
	}
	return parseUint(s, 32)
}

func parseUint(s string, bitsize int) (uint64, error) {
	v, err := strconv.ParseUint(s, 0, bitsize)
	if err != nil {
		return 0, fmt.Errorf("%q: want a %d-bit number (decimal, or 0x hex)", s, bitsize)
	}
	return v, nil
}

func pow2(n int) bool { return n > 0 && bits.OnesCount(uint(n)) == 1 }

// ParseGUID parses a GUID written as 8-4-4-4-12 hex digits, braces
// optional.
func ParseGUID(s string) (inject.GUID, error) {
	var g inject.GUID
	h := strings.ReplaceAll(strings.Trim(s, "{}"), "-", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 16 || len(strings.Trim(s, "{}")) != 36 {
		return g, fmt.Errorf("%q is not a GUID (want e.g. 6f1c2a9e-0000-4000-8000-000000000001)", s)
	}
	copy(g[:], b)
	return g, nil
}
