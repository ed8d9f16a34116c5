package dataplane_test

import (
	"encoding/binary"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/dataplane/memport"
	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/nbl"
)

var modes = []struct {
	name string
	mode dataplane.Mode
	link dataplane.LinkKind
}{
	{"rtc", dataplane.ModeRTC, dataplane.LinkRing},
	{"pipeline", dataplane.ModePipeline, dataplane.LinkRing},
	{"pipeline-chan", dataplane.ModePipeline, dataplane.LinkChan},
}

// Permit and forward: every packet generated on port 1 reaches port 2 by
// its learned/static MAC, and every frame is back at the end.
func TestForward(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			const n = 20000
			r := newRig(t, rigOpts{cfg: dataplane.Config{Mode: m.mode, Link: m.link}, limit: n})
			r.run(func() bool { return r.received(2) == n })
			st := r.sw.Stats()
			if got := r.received(2); got != n || st.RX != n || st.TX != n || st.TotalDrops != 0 {
				t.Fatalf("received %d, stats %+v", got, st)
			}
		})
	}
}

// Block: a BLOCK filter on the ingress layer drops (and counts) what it
// matches; the rest is forwarded.
func TestBlockCounted(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			const n = 10000
			r := newRig(t, rigOpts{
				cfg:       dataplane.Config{Mode: m.mode, Link: m.link},
				limit:     n,
				templates: []memport.Template{{Dst: macB, Src: macA}, {Dst: macB, Src: macA, VLAN: 7}},
				filters: []dataplane.Filter{{Name: "no-vlan-7", Layer: dataplane.LayerIngress, Weight: 10,
					Conditions: []dataplane.Condition{{Field: dataplane.FieldVLANID, Value: 7}}, Action: dataplane.FilterBlock}},
			})
			r.run(func() bool { return r.received(2)+r.sw.Stats().TotalDrops == n })
			st := r.sw.Stats()
			if r.received(2) != n/2 || st.Drops["blocked"] != n/2 {
				t.Fatalf("received %d, drops %v", r.received(2), st.Drops)
			}
		})
	}
}

// R21, R25, R27, R29: an inspector absorbs every packet at ingress and
// reinjects it from its worker; each packet is inspected exactly once and
// forwarded exactly once — no loop, no loss — and the absorbed lists come
// back to the pool.
func TestAbsorbReinjectEveryPacket(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			const n = 20000
			var inspected atomic.Uint64
			seen := make(map[uint32]int) // probe seq -> inspections; worker goroutine only
			var dup atomic.Uint64
			insp := dataplane.NewInspector("inspect", func(batch []*nbl.NBL) {
				inspected.Add(uint64(len(batch)))
				for _, l := range batch {
					seq := binary.BigEndian.Uint32(l.Data()[14+28+2:])
					if seen[seq]++; seen[seq] > 1 {
						dup.Add(1)
					}
				}
			})
			r := newRig(t, rigOpts{
				cfg:      dataplane.Config{Mode: m.mode, Link: m.link},
				limit:    n,
				callouts: []*dataplane.Callout{insp},
				filters: []dataplane.Filter{{Name: "inspect-all", Layer: dataplane.LayerIngress, Weight: 100,
					Action: dataplane.FilterCallout, Callout: "inspect"}},
			})
			r.run(func() bool { return r.received(2) == n })
			st := r.sw.Stats()
			if r.received(2) != n || inspected.Load() != n || dup.Load() != 0 || st.Absorbed != n || st.Reinjected != n {
				t.Fatalf("received %d inspected %d dup %d stats %+v", r.received(2), inspected.Load(), dup.Load(), st)
			}
			if st.Classified != 3*n { // ingress twice (RX, reinjected) + egress once
				t.Fatalf("classified %d times, want %d", st.Classified, 3*n)
			}
		})
	}
}

// Malformed frames (runts, truncated VLAN tags) are counted and dropped,
// never a panic.
func TestMalformedDropped(t *testing.T) {
	r := newRig(t, rigOpts{limit: 3000, templates: []memport.Template{{Dst: macB, Src: macA}}})
	r.gen.Mangle = func(i uint64, frame []byte) []byte {
		switch i % 3 {
		case 1:
			return frame[:10] // runt
		case 2:
			binary.BigEndian.PutUint16(frame[12:], dataplane.EtherTypeVLAN)
			return frame[:15] // tag cut short
		}
		return frame
	}
	r.run(func() bool { return r.received(2)+r.sw.Stats().TotalDrops == 3000 })
	if st := r.sw.Stats(); st.Drops["malformed"] != 2000 || r.received(2) != 1000 {
		t.Fatalf("drops %v received %d", st.Drops, r.received(2))
	}
}

// R26: a broadcast is classified once per destination at egress; the
// copies after the first carry RECLASSIFY_MULTI_DESTINATION, and every
// copy and the original come back.
func TestFloodMultiDestination(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			const n = 5000
			var egress [2]atomic.Uint64 // without / with the flag
			counter := &dataplane.Counter{SampleEvery: 1, Sample: func(layer dataplane.Layer, c *dataplane.Call) {
				if layer != dataplane.LayerEgress {
					return
				}
				if c.In.L2Flags&nbl.L2ReclassifyMultiDestination != 0 {
					egress[1].Add(1)
				} else {
					egress[0].Add(1)
				}
			}}
			r := newRig(t, rigOpts{
				cfg:       dataplane.Config{Mode: m.mode, Link: m.link},
				limit:     n,
				ports:     2,
				templates: []memport.Template{{Dst: dataplane.Broadcast, Src: macA}},
				callouts:  []*dataplane.Callout{counter.Callout("count")},
				filters: []dataplane.Filter{{Name: "count-egress", Layer: dataplane.LayerEgress, Weight: 1,
					Action: dataplane.FilterCallout, Callout: "count"}},
			})
			r.run(func() bool { return r.received(2) == n && r.received(3) == n })
			st := r.sw.Stats()
			if r.received(2) != n || r.received(3) != n || st.Flooded != n {
				t.Fatalf("received %d/%d flooded %d", r.received(2), r.received(3), st.Flooded)
			}
			if egress[0].Load() != n || egress[1].Load() != n {
				t.Fatalf("egress classifications without/with the flag: %d/%d, want %d each", egress[0].Load(), egress[1].Load(), n)
			}
		})
	}
}

// R9: packets absorbed at the egress layer are reinjected through the
// ingress call and switched, so classified, again: each is inspected once
// and delivered once.
func TestEgressAbsorbReinjectedAtIngress(t *testing.T) {
	const n = 5000
	r := newRig(t, rigOpts{
		limit:    n,
		callouts: []*dataplane.Callout{dataplane.NewInspector("inspect", nil)},
		filters: []dataplane.Filter{{Name: "inspect-egress", Layer: dataplane.LayerEgress, Weight: 1,
			Action: dataplane.FilterCallout, Callout: "inspect"}},
	})
	r.run(func() bool { return r.received(2) == n })
	st := r.sw.Stats()
	if r.received(2) != n || st.Absorbed != n || st.Reinjected != n || st.Classified != 4*n {
		t.Fatalf("received %d absorbed %d reinjected %d classified %d (want %d, %d, %d, %d)",
			r.received(2), st.Absorbed, st.Reinjected, st.Classified, n, n, n, 4*n)
	}
}

// A TX path that takes fewer lists than the switch has for it holds them
// and pushes back through the forward link to the ingress admission:
// nothing is dropped inside the switch.
func TestTXBackpressure(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			const n = 30000
			r := newRig(t, rigOpts{cfg: dataplane.Config{Mode: m.mode, Link: m.link}, limit: n, sinkTXQ: 8})
			r.run(func() bool { return r.received(2) == n })
			if st := r.sw.Stats(); r.received(2) != n || st.TotalDrops != 0 {
				t.Fatalf("received %d of %d, drops %v", r.received(2), n, st.Drops)
			}
		})
	}
}

// Several ports receiving in one round share the forward link's room: with
// a forward ring of 32 and two busy generators nothing is dropped inside
// the switch.
func TestAdmissionSharedByPorts(t *testing.T) {
	const n = 20000
	goros := runtime.NumGoroutine()
	sw, err := dataplane.New(inject.NewEngine(), dataplane.Config{ID: testSwitchID, Frames: 1024, Reserve: 256, RingSize: 32, NoPin: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, src := range []dataplane.MAC{macA, macB} {
		g, _ := memport.New(memport.Config{Name: "gen", Limit: n, Templates: []memport.Template{{Dst: macC, Src: src}}})
		if _, err := sw.AddPort(uint32(i+1), 0, src, g); err != nil {
			t.Fatal(err)
		}
	}
	sink, _ := memport.New(memport.Config{Name: "sink"})
	sw.AddPort(3, 0, macC, sink)
	r := &rig{t: t, sw: sw, sinks: map[uint32]*memport.Port{3: sink}, goros: goros}
	r.run(func() bool { return r.received(3) == 2*n })
	if st := sw.Stats(); r.received(3) != 2*n || st.TotalDrops != 0 {
		t.Fatalf("received %d of %d, drops %v", r.received(3), 2*n, st.Drops)
	}
}

// Egress conditions see the packet's own values: a filter on the source
// MAC at the egress layer blocks exactly the packets from that MAC (the
// egress stage once left the source MAC of an earlier packet in place).
func TestEgressFilterOnSourceMAC(t *testing.T) {
	const n = 3000
	r := newRig(t, rigOpts{limit: n,
		templates: []memport.Template{{Dst: macB, Src: macA}, {Dst: macB, Src: 0x02_00_00_00_00_0D}, {Dst: macB, Src: 0x02_00_00_00_00_0E}},
		filters: []dataplane.Filter{{Name: "block-d-out", Layer: dataplane.LayerEgress, Action: dataplane.FilterBlock,
			Conditions: []dataplane.Condition{{Field: dataplane.FieldMACSource, Value: 0x02_00_00_00_00_0D}}}}})
	r.run(func() bool { return r.received(2)+r.sw.Stats().TotalDrops == n })
	if st := r.sw.Stats(); r.received(2) != 2*n/3 || st.Drops["egress_blocked"] != n/3 {
		t.Fatalf("received %d, drops %v: want %d and %d egress_blocked", r.received(2), st.Drops, 2*n/3, n/3)
	}
}

// A burst to several destinations, alternating packet by packet, reaches
// each exactly (the egress stage reuses a lookup only for the same MAC).
func TestForwardMixedDestinations(t *testing.T) {
	const n = 9000
	r := newRig(t, rigOpts{limit: n, ports: 2,
		templates: []memport.Template{{Dst: macB, Src: macA}, {Dst: macC, Src: macA}, {Dst: macC, Src: macA}}})
	r.run(func() bool { return r.received(2)+r.received(3) == n })
	if r.received(2) != n/3 || r.received(3) != 2*n/3 {
		t.Fatalf("port 2 got %d (want %d), port 3 got %d (want %d)", r.received(2), n/3, r.received(3), 2*n/3)
	}
}
