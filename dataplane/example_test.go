package dataplane_test

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/dataplane/memport"
	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/nbl"
)

// Embedding the switch: two in-memory ports, a deferred-inspection callout
// on the ingress layer, run until 10000 packets have gone through.
func Example() {
	sw, _ := dataplane.New(inject.NewEngine(), dataplane.Config{ID: inject.GUID{1}, NoPin: true})
	gen, _ := memport.New(memport.Config{Name: "gen", Limit: 10000,
		Templates: []memport.Template{{Dst: 0x02000000000b, Src: 0x02000000000a}}})
	sink, _ := memport.New(memport.Config{Name: "sink"})
	sw.AddPort(1, 0, 0x02000000000a, gen)
	sw.AddPort(2, 0, 0x02000000000b, sink)
	sw.RegisterCallout(dataplane.NewInspector("inspect", nil))
	sw.SetFilters([]dataplane.Filter{{Name: "inspect-all", Layer: dataplane.LayerIngress,
		Action: dataplane.FilterCallout, Callout: "inspect"}})

	sw.Start(context.Background())
	for n, _ := sink.Received(); n < 10000; n, _ = sink.Received() {
		time.Sleep(time.Millisecond)
	}
	if err := sw.Close(); err != nil { // drains (R7) and checks every frame is back
		panic(err)
	}
	st, acct := sw.Stats(), sw.Accounting()
	fmt.Println("rx", st.RX, "absorbed", st.Absorbed, "reinjected", st.Reinjected, "tx", st.TX)
	fmt.Println("leaked", acct.Leaked)
	// Output:
	// rx 10000 absorbed 10000 reinjected 10000 tx 10000
	// leaked 0
}

// A deep-packet-inspection callout: every IPv4 packet is absorbed; the
// worker looks into its payload out of band, discards those that carry a
// pattern and reinjects the rest unmodified. NewCallout permits the
// packets the callout reinjected itself before its classifier sees them
// (R21, R25), so the classifier needs no self-injection check.
func Example_deepPacketInspection() {
	sw, _ := dataplane.New(inject.NewEngine(), dataplane.Config{ID: inject.GUID{2}, NoPin: true})
	gen, _ := memport.New(memport.Config{Name: "gen", Limit: 1000,
		Templates: []memport.Template{{Dst: 0x02000000000b, Src: 0x02000000000a}}})
	gen.Mangle = func(seq uint64, frame []byte) []byte {
		if seq%4 == 0 { // every fourth frame carries the pattern, past the probe fields
			copy(frame[58:], "EVIL")
		}
		return frame
	}
	sink, _ := memport.New(memport.Config{Name: "sink"})
	sw.AddPort(1, 0, 0x02000000000a, gen)
	sw.AddPort(2, 0, 0x02000000000b, sink)

	dpi := dataplane.NewCallout("dpi",
		dataplane.ClassifyFunc(func(c *dataplane.Call, out *dataplane.ClassifyOut) {
			out.Absorb() // inspect out of band (R29)
		}),
		func(w *dataplane.Worker, absorbed []*nbl.NBL) {
			keep := absorbed[:0]
			for _, l := range absorbed {
				if in := w.Incoming(l); in.EtherType == dataplane.EtherTypeIPv4 && bytes.Contains(l.Data()[in.HeaderLen:], []byte("EVIL")) {
					w.Discard(l) // silently (R29)
					continue
				}
				keep = append(keep, l)
			}
			w.Reinject(keep) // unmodified (R8)
		})
	sw.RegisterCallout(dpi)
	sw.SetFilters([]dataplane.Filter{{Name: "inspect-ipv4", Layer: dataplane.LayerIngress, Action: dataplane.FilterCallout, Callout: "dpi",
		Conditions: []dataplane.Condition{{Field: dataplane.FieldEtherType, Value: dataplane.EtherTypeIPv4}}}})
	sw.Start(context.Background())
	for n, _ := sink.Received(); n < 750; n, _ = sink.Received() {
		time.Sleep(time.Millisecond)
	}
	err := sw.Close()
	delivered, _ := sink.Received()
	fmt.Println("delivered", delivered, "discarded", sw.Stats().Discarded, "leaked", sw.Accounting().Leaked, err)
	// Output: delivered 750 discarded 250 leaked 0 <nil>
}

// A rate-limiting callout with state of its own: a token bucket per source
// MAC, refilled per classify call from the packet clock; packets over the
// rate are blocked (and counted as drops) without being absorbed.
type rateLimiter struct {
	perSecond float64
	burst     float64
	buckets   map[dataplane.MAC]*bucket // one queue, RTC, no injections: classify runs on one lcore, so no lock
}

type bucket struct {
	tokens float64
	last   time.Time
}

func (r *rateLimiter) Classify(c *dataplane.Call, out *dataplane.ClassifyOut) {
	now := time.Now()
	b := r.buckets[c.In.MACSource]
	if b == nil {
		b = &bucket{tokens: r.burst, last: now}
		r.buckets[c.In.MACSource] = b
	}
	b.tokens = min(r.burst, b.tokens+now.Sub(b.last).Seconds()*r.perSecond)
	b.last = now
	if b.tokens < 1 {
		out.Block() // a veto needs no right (R28)
		return
	}
	b.tokens--
	out.Permit()
}

func Example_rateLimiter() {
	sw, _ := dataplane.New(inject.NewEngine(), dataplane.Config{ID: inject.GUID{3}, NoPin: true})
	gen, _ := memport.New(memport.Config{Name: "gen", Limit: 5000, // a burst far above the rate
		Templates: []memport.Template{{Dst: 0x02000000000b, Src: 0x02000000000a}}})
	sink, _ := memport.New(memport.Config{Name: "sink"})
	sw.AddPort(1, 0, 0x02000000000a, gen)
	sw.AddPort(2, 0, 0x02000000000b, sink)
	limiter := &rateLimiter{perSecond: 10, burst: 100, buckets: map[dataplane.MAC]*bucket{}}
	sw.RegisterCallout(dataplane.NewCallout("limit", limiter, nil))
	sw.SetFilters([]dataplane.Filter{{Name: "limit", Layer: dataplane.LayerIngress, Action: dataplane.FilterCallout, Callout: "limit"}})
	sw.Start(context.Background())
	for gen.Sent() < 5000 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond)
	err := sw.Close()
	delivered, _ := sink.Received()
	st := sw.Stats()
	fmt.Println("within the burst:", delivered >= 100 && delivered < 200, "blocked:", st.Drops["blocked"] == 5000-delivered, err)
	// Output: within the burst: true blocked: true <nil>
}
