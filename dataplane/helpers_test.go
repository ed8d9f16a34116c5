package dataplane_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/dataplane/memport"
	"github.com/wfpxdp/wfpxdp/inject"
)

const (
	macA dataplane.MAC = 0x02_00_00_00_00_0A
	macB dataplane.MAC = 0x02_00_00_00_00_0B
	macC dataplane.MAC = 0x02_00_00_00_00_0C
)

var testSwitchID = inject.GUID{0x5a, 1}

// rig is a switch with in-memory ports: port 1 (MAC A) generates, ports
// 2 (MAC B) and 3 (MAC C) sink.
type rig struct {
	t     *testing.T
	sw    *dataplane.Switch
	gen   *memport.Port
	sinks map[uint32]*memport.Port
	goros int
}

type rigOpts struct {
	cfg       dataplane.Config
	templates []memport.Template
	limit     uint64
	ports     int // sinks: 1 or 2
	callouts  []*dataplane.Callout
	filters   []dataplane.Filter
	sinkTXQ   int // sinks' TX queue size (memport default when 0)
}

func newRig(t *testing.T, o rigOpts) *rig {
	t.Helper()
	r := &rig{t: t, sinks: map[uint32]*memport.Port{}, goros: runtime.NumGoroutine()}
	o.cfg.ID = testSwitchID
	if o.cfg.Frames == 0 {
		o.cfg.Frames = 1024
	}
	if o.cfg.Reserve == 0 {
		o.cfg.Reserve = 1024
	}
	o.cfg.NoPin = true
	sw, err := dataplane.New(inject.NewEngine(), o.cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.sw = sw
	if o.templates == nil {
		o.templates = []memport.Template{{Dst: macB, Src: macA}}
	}
	r.gen, err = memport.New(memport.Config{Name: "gen", Templates: o.templates, Limit: o.limit})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sw.AddPort(1, 0, macA, r.gen); err != nil {
		t.Fatal(err)
	}
	if o.ports == 0 {
		o.ports = 1
	}
	for i := 0; i < o.ports; i++ {
		id := uint32(2 + i)
		p, _ := memport.New(memport.Config{Name: "sink", Latency: true, TXQueue: o.sinkTXQ})
		if _, err := sw.AddPort(id, 1, []dataplane.MAC{macB, macC}[i], p); err != nil {
			t.Fatal(err)
		}
		r.sinks[id] = p
	}
	for _, c := range o.callouts {
		if err := sw.RegisterCallout(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.SetFilters(o.filters); err != nil {
		t.Fatal(err)
	}
	return r
}

// run starts the switch, waits until the generator has sent everything and
// the sinks' counts have settled, then stops it and checks accounting and
// goroutines.
func (r *rig) run(until func() bool) {
	r.t.Helper()
	if err := r.sw.Start(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !until() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	r.stop()
}

func (r *rig) stop() {
	r.t.Helper()
	if err := r.sw.Stop(context.Background()); err != nil {
		r.t.Fatalf("stop: %v", err)
	}
	r.checkAccounting()
	r.checkGoroutines()
}

func (r *rig) checkAccounting() {
	r.t.Helper()
	a := r.sw.Accounting()
	if a.Leaked != 0 || a.FramesFree+a.FramesInPort != a.FramesTotal || a.InFlight != 0 || a.ReserveFree != a.ReserveTotal {
		r.t.Fatalf("accounting after stop: %+v", a)
	}
}

func (r *rig) checkGoroutines() {
	r.t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > r.goros && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > r.goros {
		buf := make([]byte, 1<<16)
		r.t.Fatalf("%d goroutines left behind (had %d):\n%s", n-r.goros, r.goros, buf[:runtime.Stack(buf, true)])
	}
}

func (r *rig) received(id uint32) uint64 {
	n, _ := r.sinks[id].Received()
	return n
}
