package dataplane_test

import (
	"context"
	"testing"
	"time"

	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/dataplane/memport"
)

// A hundred changes while traffic flows — filter sets replaced, filters
// added and deleted by id, static MACs, a port added and removed — and the
// accounting is exact at the end: every frame sent was delivered, dropped
// (counted, by reason) or discarded; none is lost or leaked.
func TestReconfigureUnderLoad(t *testing.T) {
	const experimental = 0x88b5
	r := newRig(t, rigOpts{ports: 2, cfg: dataplane.Config{Frames: 2048},
		templates: []memport.Template{{Dst: macB, Src: macA}, {Dst: macB, Src: macA, EtherType: experimental}, {Dst: macC, Src: macA}},
		callouts:  []*dataplane.Callout{dataplane.NewInspector("inspect", nil)}})
	sets := [][]dataplane.Filter{
		nil,
		{{Name: "block-exp", Layer: dataplane.LayerIngress, Action: dataplane.FilterBlock,
			Conditions: []dataplane.Condition{{Field: dataplane.FieldEtherType, Value: experimental}}}},
		{{Name: "inspect", Layer: dataplane.LayerIngress, Action: dataplane.FilterCallout, Callout: "inspect"}},
		{{Name: "inspect-out", Layer: dataplane.LayerEgress, Action: dataplane.FilterCallout, Callout: "inspect"},
			{Name: "block-to-c", Layer: dataplane.LayerEgress, Weight: 5, Action: dataplane.FilterBlock,
				Conditions: []dataplane.Condition{{Field: dataplane.FieldDestinationPortID, Value: 3}}}},
	}
	if err := r.sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	extra, _ := memport.New(memport.Config{Name: "extra"})
	var ids []uint64
	for i := 0; i < 100; i++ {
		switch i % 5 {
		case 0, 1:
			if err := r.sw.SetFilters(sets[i%len(sets)]); err != nil {
				t.Fatal(err)
			}
			ids = ids[:0]
		case 2:
			id, err := r.sw.AddFilter(dataplane.Filter{Name: "block-exp", Layer: dataplane.LayerIngress, Weight: 9, Action: dataplane.FilterBlock,
				Conditions: []dataplane.Condition{{Field: dataplane.FieldEtherType, Value: experimental}}})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		case 3:
			if len(ids) > 0 {
				if err := r.sw.DeleteFilter(ids[0]); err != nil {
					t.Fatal(err)
				}
				ids = ids[1:]
			}
			if err := r.sw.DeleteFilter(1 << 60); err == nil {
				t.Fatal("deleting an unknown filter id succeeded")
			}
		case 4:
			if i%10 == 4 {
				if _, err := r.sw.AddPort(9, 0, 0x02_00_00_00_00_99, extra); err != nil {
					t.Fatal(err)
				}
				if err := r.sw.AddStaticMAC(9, 0x02_00_00_00_00_98); err != nil {
					t.Fatal(err)
				}
			} else if err := r.sw.RemovePort(9); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := r.sw.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.checkAccounting()
	st := r.sw.Stats()
	sent := r.gen.Sent()
	delivered := r.received(2) + r.received(3)
	if n, _ := extra.Received(); n > 0 {
		delivered += n
	}
	if sent == 0 || st.Absorbed == 0 || st.Drops["blocked"] == 0 || st.Drops["egress_blocked"] == 0 {
		t.Fatalf("the changes did not all take effect: sent %d, stats %+v", sent, st)
	}
	if sent != delivered+st.TotalDrops+st.Discarded {
		t.Fatalf("sent %d != delivered %d + dropped %d %v + discarded %d", sent, delivered, st.TotalDrops, st.Drops, st.Discarded)
	}
}
