package dataplane

import (
	"encoding/binary"
	"sort"
	"testing"
)

// FuzzParseEthernet: any bytes parse or fail cleanly, never read past the
// end, and agree with a plain reading of the header.
func FuzzParseEthernet(f *testing.F) {
	f.Add(ethFrame(Broadcast, 0x020000000001))
	f.Add([]byte{1, 2, 3})
	f.Add(append(ethFrame(1, 2)[:12], 0x81, 0x00, 0x00, 0x07, 0x08, 0x00))
	f.Add(append(ethFrame(1, 2)[:12], 0x88, 0xa8, 0x00, 0x07, 0x81, 0x00, 0x00, 0x09, 0x86, 0xdd))
	f.Add(append(ethFrame(1, 2)[:12], 0x81, 0x00, 0x00))
	f.Fuzz(func(t *testing.T, data []byte) {
		var in Incoming
		st, tags := parseEthernetTags(data, &in)
		if len(data) < 14 {
			if st != parseRunt {
				t.Fatalf("%d bytes: status %v, want runt", len(data), st)
			}
			return
		}
		// model: walk up to two tags
		off, et, vlan := 14, binary.BigEndian.Uint16(data[12:]), uint16(0)
		for i := 0; i < 2 && (et == EtherTypeVLAN || et == EtherTypeQinQ); i++ {
			if len(data) < off+4 {
				if st != parseTruncated {
					t.Fatalf("truncated tag: status %v", st)
				}
				return
			}
			vlan = binary.BigEndian.Uint16(data[off:]) & 0xfff
			et = binary.BigEndian.Uint16(data[off+2:])
			off += 4
		}
		if st != parseOK || in.EtherType != et || in.VLANID != vlan || in.HeaderLen != off ||
			tags != uint32(et)|uint32(vlan)<<16 ||
			in.MACDestination != macAt(data) || in.MACSource != macAt(data[6:]) {
			t.Fatalf("parse %x: %v %+v; model et %#x vlan %d off %d", data, st, in, et, vlan, off)
		}
		// the ingress stage's in-line path for untagged frames (untagged,
		// setAddrs, setAddrTypes) agrees with the full parse
		uet, ok := untagged(data)
		if ok != (off == 14) || ok && uet != in.EtherType {
			t.Fatalf("untagged(%x) = %#x, %v; parse %+v", data, uet, ok, in)
		}
		var fast Incoming
		setAddrs(&fast, data)
		setAddrTypes(&fast)
		if fast.MACDestination != in.MACDestination || fast.MACSource != in.MACSource ||
			fast.MACDestType != in.MACDestType || fast.MACSourceType != in.MACSourceType {
			t.Fatalf("in-line addresses %+v, parse %+v", fast, in)
		}
	})
}

// FuzzClassify compiles random filter sets and checks the indexed
// evaluation against a plain linear one over every filter in weight order.
func FuzzClassify(f *testing.F) {
	f.Add([]byte{3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, []byte{0, 1, 2, 3})
	f.Add([]byte{200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, []byte{9, 9, 9, 9, 9, 9})
	f.Fuzz(func(t *testing.T, spec []byte, pkts []byte) {
		at := func(b []byte, i int) byte {
			if len(b) == 0 {
				return 0
			}
			return b[i%len(b)]
		}
		// callouts decide from the packet, deterministically
		block := &calloutEntry{c: &Callout{Name: "block-odd-vlan", Classify: func(c *Call, out *ClassifyOut) {
			if c.In.VLANID%2 == 1 {
				out.ActionType = ActionBlock
			}
		}}}
		absorb := &calloutEntry{id: 1, c: &Callout{Name: "absorb-ipv6", Classify: func(c *Call, out *ClassifyOut) {
			if c.In.EtherType == EtherTypeIPv6 {
				out.ActionType, out.Flags = ActionBlock, ClassifyFlagAbsorb
			}
		}}}
		callouts := map[string]*calloutEntry{"b": block, "a": absorb}
		macs := []MAC{1, 2, 3, Broadcast}
		ets := []uint16{EtherTypeIPv4, EtherTypeIPv6, 0x0806}
		nf := int(at(spec, 0)) % 64
		layer := Layer(at(spec, 1) >> 7) // both layers: egress adds the destination port
		srcs := []MAC{0x0a, 0x0b}
		var filters []Filter
		for i := 0; i < nf; i++ {
			b := at(spec, i+1)
			fl := Filter{Layer: layer, Weight: uint64(at(spec, i+2) % 8)}
			switch b % 4 {
			case 0:
				fl.Action = FilterPermit
			case 1:
				fl.Action = FilterBlock
			case 2:
				fl.Action, fl.Callout = FilterCallout, "b"
			case 3:
				fl.Action, fl.Callout = FilterCallout, "a"
			}
			if b&4 != 0 {
				fl.Conditions = append(fl.Conditions, Condition{Field: FieldMACDestination, Value: uint64(macs[(b>>3)%4])})
			}
			if b&32 != 0 {
				fl.Conditions = append(fl.Conditions, Condition{Field: FieldEtherType, Value: uint64(ets[(b>>6)%3])})
			}
			if b&64 != 0 && b&128 != 0 {
				fl.Conditions = append(fl.Conditions, Condition{Field: FieldVLANID, Value: uint64(b % 5)})
			}
			if c := at(spec, i+3); c&1 != 0 {
				fl.Conditions = append(fl.Conditions, Condition{Field: FieldMACSource, Value: uint64(srcs[(c>>1)%2])})
			} else if c&2 != 0 && layer == LayerEgress {
				fl.Conditions = append(fl.Conditions, Condition{Field: FieldDestinationPortID, Value: uint64(c>>2) % 3})
			}
			filters = append(filters, fl)
		}
		fs, err := compileFilters(filters, callouts)
		if err != nil {
			t.Fatal(err)
		}
		// the model: every filter, stable weight order
		model := append([]Filter(nil), filters...)
		sort.SliceStable(model, func(i, j int) bool { return model[i].Weight > model[j].Weight })
		for i := 0; i < len(pkts); i++ {
			p := pkts[i]
			in := Incoming{MACDestination: macs[p%4], EtherType: ets[(p>>2)%3], VLANID: uint16(p>>4) % 5,
				MACSource: srcs[(p>>7)%2]}
			if layer == LayerEgress {
				in.DestPortID = uint32(p>>6) % 3
			}
			var want verdict = verdictPermit
		eval:
			for _, fl := range model {
				cf, _ := compileFilter(fl, callouts)
				if !cf.matches(&in) {
					continue
				}
				switch fl.Action {
				case FilterBlock:
					want = verdictBlock
					break eval
				case FilterCallout:
					out := ClassifyOut{ActionType: ActionContinue, Rights: RightActionWrite}
					callouts[fl.Callout].c.Classify(&Call{In: &in}, &out)
					if out.ActionType == ActionBlock {
						want = verdictBlock
						if out.Flags&ClassifyFlagAbsorb != 0 {
							want = verdictAbsorb
						}
						break eval
					}
				}
			}
			var out ClassifyOut
			got, _, _ := fs.layers[layer].classify(&Call{In: &in}, &out, false)
			if got != want {
				t.Fatalf("packet %+v: verdict %d, model %d (filters %+v)", in, got, want, filters)
			}
		}
	})
}
