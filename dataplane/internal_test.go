package dataplane

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/nbl"
)

// loopDriver generates one frame template and completes transmits at once;
// a minimal driver for tests inside the package (memport imports us).
type loopDriver struct {
	frame []byte
	sent  []*nbl.NBL
	tx    int
	burst int // frames per Receive at most; 0: as many as asked
}

func (d *loopDriver) Name() string { return "loop" }
func (d *loopDriver) Receive(dst []*nbl.NBL, frames *nbl.Cache) int {
	if d.frame == nil {
		return 0
	}
	if d.burst > 0 && len(dst) > d.burst {
		dst = dst[:d.burst]
	}
	n := frames.Get(dst)
	for _, l := range dst[:n] {
		copy(l.NB().Frame()[128:], d.frame)
		l.NB().SetData(128, uint32(len(d.frame)))
	}
	return n
}
func (d *loopDriver) Transmit(src []*nbl.NBL) int {
	d.sent = append(d.sent, src...)
	d.tx += len(src)
	return len(src)
}
func (d *loopDriver) Reap(dst []*nbl.NBL) int {
	n := copy(dst, d.sent)
	d.sent = append(d.sent[:0], d.sent[n:]...)
	return n
}
func (d *loopDriver) Held() int                     { return len(d.sent) }
func (d *loopDriver) Close(frames *nbl.Cache) error { d.frame = nil; return nil }

func ethFrame(dst, src MAC) []byte {
	f := make([]byte, 64)
	dst.Put(f[0:])
	src.Put(f[6:])
	binary.BigEndian.PutUint16(f[12:], EtherTypeIPv4)
	return f
}

// newStaged builds a switch whose queue stages the test polls by hand.
func newStaged(t testing.TB, callouts []*Callout, filters []Filter) (*Switch, *queue, *loopDriver, *loopDriver) {
	sw, err := New(inject.NewEngine(), Config{ID: inject.GUID{7}, Frames: 1024, Reserve: 256, NoPin: true})
	if err != nil {
		t.Fatal(err)
	}
	a := &loopDriver{frame: ethFrame(0x020000000002, 0x020000000001), sent: make([]*nbl.NBL, 0, 1024)}
	b := &loopDriver{sent: make([]*nbl.NBL, 0, 1024)}
	sw.AddPort(1, 0, 0x020000000001, a)
	sw.AddPort(2, 0, 0x020000000002, b)
	for _, c := range callouts {
		if err := sw.RegisterCallout(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.SetFilters(filters); err != nil {
		t.Fatal(err)
	}
	sw.mu.Lock()
	pl, err := sw.newPlane()
	if err == nil {
		sw.cur.Store(pl)
	}
	sw.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	// accept injections; no lcores: the test polls
	sw.running.Store(true)
	sw.started.Store(true)
	sw.accepting.Store(true)
	return sw, pl.queues[0], a, b
}

// Every stage moves packets without allocating: forward, and absorb +
// reinject through a callout worker, with an egress callout too.
func TestStagesZeroAllocs(t *testing.T) {
	counter := &Counter{}
	cases := map[string]struct {
		callouts []*Callout
		filters  []Filter
		capture  bool
	}{
		"forward": {nil, []Filter{{Name: "p", Layer: LayerIngress, Action: FilterPermit}}, false},
		"absorb-reinject+capture+stamps": {
			[]*Callout{NewInspector("inspect", nil)},
			[]Filter{{Name: "i", Layer: LayerIngress, Action: FilterCallout, Callout: "inspect"}},
			true},
		"absorb-reinject": {
			[]*Callout{NewInspector("inspect", nil), counter.Callout("count")},
			[]Filter{
				{Name: "i", Layer: LayerIngress, Weight: 2, Action: FilterCallout, Callout: "inspect"},
				{Name: "e", Layer: LayerEgress, Weight: 1, Action: FilterCallout, Callout: "count"},
				{Name: "b", Layer: LayerIngress, Weight: 3, Action: FilterBlock,
					Conditions: []Condition{{Field: FieldEtherType, Value: 0x86dd}}},
			}, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			sw, q, _, b := newStaged(t, tc.callouts, tc.filters)
			var capt *Capture
			if tc.capture {
				capt, _ = NewCapture(CaptureAll, 1024)
				q.pl.cfg.Capture = capt // the plane's copy: the stages read it
				q.pl.cfg.StageStamps = true
			}
			recs := make([]CaptureRecord, 64)
			round := func() {
				if capt != nil {
					for capt.Drain(recs) > 0 {
					}
				}
				q.ingress.Poll()
				for _, w := range q.workers {
					w.poll()
				}
				q.ingress.Poll() // the reinjected lists
				q.egress.Poll()
				q.completion.Poll()
			}
			for i := 0; i < 100; i++ { // warm up caches and scratch
				round()
			}
			before := b.tx
			stages := map[string]func(){
				"ingress": func() { q.ingress.Poll() },
				"egress":  func() { q.egress.Poll() },
				"completion": func() {
					q.completion.Poll()
				},
				"round": round,
			}
			for sname, f := range stages {
				if n := testing.AllocsPerRun(200, f); n != 0 {
					t.Errorf("%s: %v allocs per poll", sname, n)
				}
				for i := 0; i < 20; i++ { // keep the pipeline flowing between checks
					round()
				}
			}
			if b.tx == before {
				t.Fatal("nothing was transmitted: the test measured idle polls")
			}
			if capt != nil {
				if n, _ := capt.Counts(); n == 0 {
					t.Fatal("nothing was captured")
				}
			}
			sw.running.Store(false)
			_ = sw
		})
	}
}

// G2: lists accepted for injection whose source port is removed before they
// are classified, and lists on their way to a port that is removed, complete
// with STATUS_INVALID_DEVICE_STATE; everything is accounted for.
func TestG2Statuses(t *testing.T) {
	sw, q, a, _ := newStaged(t, []*Callout{NewInspector("i", nil)},
		// an ingress callout filter that matches nothing: injection needs
		// one at the layer (R22)
		[]Filter{{Name: "f", Layer: LayerIngress, Action: FilterCallout, Callout: "i",
			Conditions: []Condition{{Field: FieldEtherType, Value: 0x9999}}}})
	a.frame = nil // no RX: the test injects
	h := sw.Handle("i")
	reserve := sw.arena.Reserve().NewCache(16)
	statuses := map[inject.Status]int{}
	done := func(_ any, l *nbl.NBL, _ bool) {
		statuses[inject.Status(l.Status)]++
		inject.FreeNetBufferList(reserve, l)
	}
	mk := func(n int) *nbl.NBL {
		var ls []*nbl.NBL
		for i := 0; i < n; i++ {
			l, st := inject.AllocateNetBufferAndNetBufferList(reserve, ethFrame(0x020000000002, 0x020000000009), 0, 64)
			if st != inject.StatusSuccess {
				t.Fatal(st)
			}
			ls = append(ls, l)
		}
		return nbl.Link(ls)
	}
	// 1: source port 1 removed after acceptance
	if st := h.InjectVSwitchEthernetIngressAsync(nil, 0, nil, sw.id[:], 1, 0, mk(4), done, nil); st != inject.StatusSuccess {
		t.Fatal(st)
	}
	sw.running.Store(false) // RemovePort drains synchronously when stopped
	if err := sw.RemovePort(1); err != nil {
		t.Fatal(err)
	}
	sw.running.Store(true)
	// 2: lists already forwarded toward port 2 when it is removed
	if st := h.InjectVSwitchEthernetIngressAsync(nil, 0, nil, sw.id[:], 0, 0, mk(3), done, nil); st != inject.StatusSuccess {
		t.Fatal(st)
	}
	q.ingress.Poll() // 4 dropped (source gone), 3 classified and forwarded
	sw.running.Store(false)
	if err := sw.RemovePort(2); err != nil {
		t.Fatal(err)
	}
	sw.running.Store(true)
	for i := 0; i < 4; i++ {
		q.egress.Poll()
		q.completion.Poll()
	}
	if statuses[inject.StatusInvalidDeviceState] != 7 || len(statuses) != 1 {
		t.Fatalf("statuses %v, want 7 x INVALID_DEVICE_STATE", statuses)
	}
	st := sw.Stats()
	if st.Drops["source_port_gone"] != 4 || st.Drops["no_destination"] != 3 {
		t.Fatalf("drops %v", st.Drops)
	}
	sw.running.Store(false)
	reserve.Flush()
	sw.cur.Load().flushCaches()
	if a := sw.Accounting(); a.Leaked != 0 || a.ReserveFree != a.ReserveTotal {
		t.Fatalf("accounting %+v", a)
	}
}

// R28, R30: a hard PERMIT (ClearActionRight) takes the WRITE right from the
// callouts after it — the inspector then leaves the packet alone — but a
// later BLOCK still vetoes it; a callout that clears its own right (as it
// must after a failed clone or inject, R30) passes that on, and its BLOCK
// without ABSORB drops.
func TestRightsAndVeto(t *testing.T) {
	var seenRights []Rights
	spy := &calloutEntry{id: 1, c: &Callout{Name: "spy", Classify: func(c *Call, out *ClassifyOut) {
		seenRights = append(seenRights, out.Rights)
	}}}
	failer := &calloutEntry{id: 2, c: &Callout{Name: "failer", Classify: func(c *Call, out *ClassifyOut) {
		out.Rights &^= RightActionWrite // R30: clone failed: block, no absorb, right cleared
		if c.In.VLANID == 9 {
			out.ActionType = ActionBlock
		}
	}}}
	insp := &calloutEntry{id: 0, c: NewInspector("inspect", nil)}
	callouts := map[string]*calloutEntry{"inspect": insp, "spy": spy, "failer": failer}
	classify := func(filters []Filter, in Incoming) verdict {
		fs, err := compileFilters(filters, callouts)
		if err != nil {
			t.Fatal(err)
		}
		var out ClassifyOut
		l := &nbl.NBL{}
		v, _, _ := fs.layers[LayerIngress].classify(&Call{In: &in, List: l}, &out, false)
		return v
	}
	hard := Filter{Name: "hard", Weight: 10, Action: FilterPermit, ClearActionRight: true}
	inspect := Filter{Name: "i", Weight: 5, Action: FilterCallout, Callout: "inspect"}
	if v := classify([]Filter{inspect}, Incoming{}); v != verdictAbsorb {
		t.Fatalf("inspector with the right: %v, want absorb", v)
	}
	if v := classify([]Filter{hard, inspect}, Incoming{}); v != verdictPermit {
		t.Fatalf("inspector after a hard permit: %v, want permit (R28)", v)
	}
	veto := Filter{Name: "veto", Weight: 1, Action: FilterBlock}
	if v := classify([]Filter{hard, veto}, Incoming{}); v != verdictBlock {
		t.Fatalf("block after a hard permit: %v, want block (veto, R28)", v)
	}
	seenRights = nil
	chain := []Filter{{Name: "f", Weight: 9, Action: FilterCallout, Callout: "failer"},
		{Name: "s", Weight: 8, Action: FilterCallout, Callout: "spy"}}
	if v := classify(chain, Incoming{}); v != verdictPermit || len(seenRights) != 1 || seenRights[0] != 0 {
		t.Fatalf("after a callout cleared its right: %v, rights seen %v (R30)", v, seenRights)
	}
	if v := classify(chain, Incoming{VLANID: 9}); v != verdictBlock {
		t.Fatalf("BLOCK without ABSORB: %v, want block (R30)", v)
	}
}

// R40: the incoming values a callout sees at each layer, for a tagged
// frame; R13: port 0 is valid for injection without being added.
func TestIncomingValues(t *testing.T) {
	var got [numLayers]Incoming
	rec := &Callout{Name: "rec", Classify: func(c *Call, out *ClassifyOut) { got[c.Layer] = *c.In }}
	sw, q, a, _ := newStaged(t, []*Callout{rec}, []Filter{
		{Name: "in", Layer: LayerIngress, Action: FilterCallout, Callout: "rec"},
		{Name: "out", Layer: LayerEgress, Action: FilterCallout, Callout: "rec"}})
	f := ethFrame(0x020000000002, 0x020000000001)
	tagged := append(append(append([]byte{}, f[:12]...), 0x81, 0x00, 0x00, 0x2a), f[12:]...)
	a.frame = tagged[:64]
	q.ingress.Poll()
	q.egress.Poll()
	in, eg := got[LayerIngress], got[LayerEgress]
	if in.MACSource != 0x020000000001 || in.MACDestination != 0x020000000002 || in.MACDestType != MACUnicast ||
		in.EtherType != EtherTypeIPv4 || in.VLANID != 42 || *in.VSwitchID != sw.id || in.SourcePortID != 1 {
		t.Fatalf("ingress incoming values %+v", in)
	}
	if eg.DestPortID != 2 || eg.SourcePortID != 1 || eg.VLANID != 42 || eg.MACDestination != 0x020000000002 {
		t.Fatalf("egress incoming values %+v", eg)
	}
	if t2 := (target{sw}); !t2.PortValid(0, 0) || t2.PortValid(7, 0) || t2.PortValid(1, 1) {
		t.Fatal("PortValid: port 0 must be valid (R13), unknown ports and NIC indexes not (R12)")
	}
	sw.running.Store(false)
}

// checkDrivers runs every 1024 completion polls, also when idle: it must
// not allocate (it did: a taken address moved its error to the heap).
func TestCheckDriversZeroAllocs(t *testing.T) {
	sw, _, _, _ := newStaged(t, nil, nil)
	if n := testing.AllocsPerRun(1000, sw.cur.Load().checkDrivers); n != 0 {
		t.Fatalf("checkDrivers: %v allocs", n)
	}
	sw.running.Store(false)
}

// Flood copies absorbed at the egress layer and reinjected (they carry the
// switch's own completion function) cost no allocation either.
func TestFloodCopyReinjectZeroAllocs(t *testing.T) {
	sw, q, a, _ := newStaged(t, []*Callout{NewInspector("inspect", nil)},
		[]Filter{{Name: "e", Layer: LayerEgress, Action: FilterCallout, Callout: "inspect"}})
	c := &loopDriver{sent: make([]*nbl.NBL, 0, 1024)}
	sw.AddPort(3, 0, 0x020000000003, c)
	a.frame = ethFrame(Broadcast, 0x020000000001)
	round := func() {
		q.ingress.Poll()
		q.egress.Poll()
		q.workers[0].poll()
		q.ingress.Poll()
		q.egress.Poll()
		q.completion.Poll()
	}
	for i := 0; i < 100; i++ {
		round()
	}
	if n := testing.AllocsPerRun(200, round); n != 0 {
		t.Fatalf("%v allocs per round", n)
	}
	if sw.Stats().Flooded == 0 || sw.Stats().Reinjected == 0 {
		t.Fatalf("no flood copy was reinjected: %+v", sw.Stats())
	}
	sw.running.Store(false)
}

// A static entry (a port's MAC, AddStaticMAC) is not moved by learning;
// a learned one is; forget removes both.
func TestMACTableStatic(t *testing.T) {
	tb := newMACTable(64)
	const a, b MAC = 0x020000000001, 0x020000000002
	if !tb.pin(a, 3) {
		t.Fatal("pin refused")
	}
	tb.learn(a, 5)
	if got := tb.lookup(a); got != 3 {
		t.Fatalf("static entry moved by learning: slot %d, want 3", got)
	}
	tb.learn(b, 5)
	tb.learn(b, 6)
	if got := tb.lookup(b); got != 6 {
		t.Fatalf("learned entry: slot %d, want 6 (moved)", got)
	}
	tb.pin(b, 2) // a static entry replaces a learned one
	if got := tb.lookup(b); got != 2 {
		t.Fatalf("pinned over learned: slot %d, want 2", got)
	}
	tb.forget(3)
	if got := tb.lookup(a); got != -1 {
		t.Fatalf("forget left slot %d", got)
	}
	if _, err := ParseMAC("zz"); err == nil {
		t.Fatal("ParseMAC accepted zz")
	}
	if m, err := ParseMAC("02:00:00:00:00:0a"); err != nil || m != 0x02000000000a || m.String() != "02:00:00:00:00:0a" {
		t.Fatalf("ParseMAC: %v %v %s", m, err, m)
	}
}

// Without callouts, a packet with the same incoming values as the one
// before reuses its verdict; the result must be what classifying each
// packet gives, whatever the runs of equal and differing values.
func TestClassifyMemoMatchesPerPacket(t *testing.T) {
	const blocked MAC = 0x02000000000b
	filters := []Filter{
		{Name: "b", Layer: LayerIngress, Weight: 5, Action: FilterBlock, Conditions: []Condition{{Field: FieldMACDestination, Value: uint64(blocked)}}},
		{Name: "v", Layer: LayerIngress, Weight: 4, Action: FilterBlock, Conditions: []Condition{{Field: FieldVLANID, Value: 7}}},
		{Name: "p", Layer: LayerIngress, Weight: 1, Action: FilterPermit},
	}
	_, q, _, _ := newStaged(t, nil, filters)
	cls := q.ingress.cls
	cache := q.pl.arena.Frames().NewCache(64)
	batch := make([]*nbl.NBL, 32)
	ins := make([]Incoming, 32)
	for round := 0; round < 50; round++ {
		if cache.Get(batch) != 32 {
			t.Fatal("no frames")
		}
		for i := range ins {
			in := Incoming{MACDestination: 0x02000000000c, EtherType: EtherTypeIPv4}
			switch (i * (round + 1) / 3) % 4 { // runs of equal values, of varying lengths
			case 1:
				in.MACDestination = blocked
			case 2:
				in.VLANID = 7
			case 3:
				in.SourcePortID = 9
			}
			ins[i] = in
		}
		var want []*nbl.NBL
		for i := range ins {
			var out ClassifyOut
			if v, _, _ := q.pl.filters.Load().layers[LayerIngress].classify(&Call{In: &ins[i]}, &out, false); v == verdictPermit {
				want = append(want, batch[i])
			}
		}
		got := cls.pass(batch, ins, nil)
		if len(got) != len(want) {
			t.Fatalf("round %d: %d permitted, per-packet classify permits %d", round, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("round %d: permitted list %d differs", round, i)
			}
		}
		cache.Put(got)
		for q.retireL.Len() > 0 { // the blocked ones
			var r [32]*nbl.NBL
			cache.Put(r[:q.retireL.DequeueBurst(r[:])])
		}
	}
}

// Lists blocked at ingress go straight back to the ingress frame cache (no
// retire link, no completion stage), allocation-free, and are counted;
// injected ones still take the completion path (see TestG2Statuses).
func TestIngressDropFastPath(t *testing.T) {
	sw, q, _, _ := newStaged(t, nil, []Filter{{Name: "block-all", Layer: LayerIngress, Action: FilterBlock}})
	for i := 0; i < 10; i++ {
		q.ingress.Poll()
	}
	if n := testing.AllocsPerRun(200, func() { q.ingress.Poll() }); n != 0 {
		t.Fatalf("%v allocs per ingress poll", n)
	}
	if q.retireL.Len() != 0 {
		t.Fatalf("%d blocked originals went to the retire link", q.retireL.Len())
	}
	st := sw.Stats()
	if st.Drops["blocked"] == 0 || st.RX != st.Drops["blocked"] || st.Completions != 0 {
		t.Fatalf("stats %+v", st)
	}
	sw.running.Store(false)
	sw.cur.Load().flushCaches()
	if a := sw.Accounting(); a.Leaked != 0 || a.FramesFree+a.FramesInPort != a.FramesTotal {
		t.Fatalf("accounting %+v", a)
	}
}

// BenchmarkIngressDrop is afxdp-rxdrop's user-space work without the
// kernel: receive a burst (the test driver writes each frame), classify it
// against the benchmark's filter set (100 non-matching filters and a
// block-all), drop it back to the frame cache. ns/op is per packet.
func BenchmarkIngressDrop(b *testing.B) {
	filters := []Filter{{Name: "block-all", Layer: LayerIngress, Action: FilterBlock}}
	for i := 0; i < 100; i++ {
		filters = append(filters, Filter{Name: "other", Layer: LayerIngress, Weight: uint64(1000 + i), Action: FilterBlock,
			Conditions: []Condition{{Field: FieldMACDestination, Value: uint64(0x0200_0000_9000 + i)}}})
	}
	sw, q, _, _ := newStaged(b, nil, filters)
	for i := 0; i < 10; i++ {
		q.ingress.Poll()
	}
	b.ReportAllocs()
	b.ResetTimer()
	var n int
	for n < b.N {
		n += q.ingress.Poll()
	}
	b.StopTimer()
	sw.running.Store(false)
}

// seqDriver receives the frames of seq in order, as many as asked.
type seqDriver struct {
	seq  [][]byte
	next int
}

func (d *seqDriver) Name() string { return "seq" }
func (d *seqDriver) Receive(dst []*nbl.NBL, frames *nbl.Cache) int {
	n := frames.Get(dst[:min(len(dst), len(d.seq)-d.next)])
	for _, l := range dst[:n] {
		f := d.seq[d.next]
		d.next++
		copy(l.NB().Frame()[128:], f)
		l.NB().SetData(128, uint32(len(f)))
	}
	return n
}
func (d *seqDriver) Transmit(src []*nbl.NBL) int   { return 0 }
func (d *seqDriver) Reap(dst []*nbl.NBL) int       { return 0 }
func (d *seqDriver) Held() int                     { return 0 }
func (d *seqDriver) Close(frames *nbl.Cache) error { return nil }

// repeatFrames are the frames the repeat tests and FuzzIngressRepeats mix:
// two flows, a blocked destination, tagged frames (one VLAN blocked) whose
// first 14 bytes are alike, and a runt.
func repeatFrames() [][]byte {
	return [][]byte{
		ethFrame(0x02000000000c, 0x020000000001),
		ethFrame(repeatBlocked, 0x020000000001),
		ethFrame(0x02000000000c, 0x020000000003),
		tagged(ethFrame(0x02000000000c, 0x020000000001), 7),
		tagged(ethFrame(0x02000000000c, 0x020000000001), 8),
		ethFrame(0x02000000000c, 0x020000000001)[:10], // runt
	}
}

const repeatBlocked MAC = 0x02000000000b

// repeatRig is a staged switch whose ingress receives a given sequence of
// frames, with or without a callout that records the incoming values it
// is called with.
type repeatRig struct {
	sw   *Switch
	q    *queue
	d    *seqDriver
	seen []Incoming
}

func newRepeatRig(t testing.TB, withCallout bool) *repeatRig {
	r := &repeatRig{}
	filters := []Filter{
		{Name: "b", Layer: LayerIngress, Weight: 5, Action: FilterBlock, Conditions: []Condition{{Field: FieldMACDestination, Value: uint64(repeatBlocked)}}},
		{Name: "v", Layer: LayerIngress, Weight: 4, Action: FilterBlock, Conditions: []Condition{{Field: FieldVLANID, Value: 7}}},
		{Name: "p", Layer: LayerIngress, Weight: 1, Action: FilterPermit},
	}
	var callouts []*Callout
	if withCallout {
		callouts = []*Callout{{Name: "see", Classify: func(c *Call, out *ClassifyOut) {
			r.seen = append(r.seen, *c.In)
			out.ActionType = ActionContinue
		}}}
		filters = append(filters, Filter{Name: "c", Layer: LayerIngress, Weight: 9, Action: FilterCallout, Callout: "see"})
	}
	sw, q, a, _ := newStaged(t, callouts, filters)
	a.frame = nil
	r.sw, r.q, r.d = sw, q, &seqDriver{}
	sw.AddPort(3, 0, 0x020000000009, r.d)
	return r
}

// check receives seq and compares what ingress permitted (and what the
// callout saw) with parsing and classifying each frame on its own.
func (r *repeatRig) check(t testing.TB, seq [][]byte) {
	t.Helper()
	var want [][]byte // permitted frames, in order
	var wantSeen []Incoming
	for _, f := range seq {
		var in Incoming
		if st, _ := parseEthernetTags(f, &in); st != parseOK {
			continue
		}
		in.VSwitchID, in.SourcePortID = &r.q.pl.id, 3
		wantSeen = append(wantSeen, in)
		if v, _, _ := r.sw.filters.Load().layers[LayerIngress].classify(&Call{In: &in}, &ClassifyOut{}, false); v == verdictPermit {
			want = append(want, f)
		}
	}
	r.seen = r.seen[:0] // classifying want called the callout too
	r.d.seq, r.d.next = seq, 0
	var got [][]byte
	var out [32]*nbl.NBL
	for stuck := 0; r.d.next < len(seq); {
		if r.q.ingress.Poll() == 0 {
			if stuck++; stuck > 1000 {
				t.Fatalf("ingress took %d of %d frames and stopped; accounting %+v", r.d.next, len(seq), r.sw.Accounting())
			}
		}
		n := r.q.fwd.DequeueBurst(out[:])
		for _, l := range out[:n] {
			got = append(got, append([]byte(nil), l.Data()...))
		}
		r.q.ingress.frames.Put(out[:n])
	}
	if a := r.sw.Accounting(); a.FramesFree != a.FramesTotal || r.q.retireL.Len() != 0 {
		t.Fatalf("frames not all back after the sequence: %+v, %d on the retire link", a, r.q.retireL.Len())
	}
	if len(got) != len(want) {
		t.Fatalf("%d frames permitted, per-frame classify permits %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("permitted frame %d is % x, want % x", i, got[i], want[i])
		}
	}
	if r.sw.filters.Load().layers[LayerIngress].callouts {
		if len(r.seen) != len(wantSeen) {
			t.Fatalf("callout saw %d frames, want %d", len(r.seen), len(wantSeen))
		}
		for i := range r.seen {
			if r.seen[i] != wantSeen[i] {
				t.Fatalf("callout call %d saw %+v, want %+v", i, r.seen[i], wantSeen[i])
			}
		}
	}
}

// A received frame whose header repeats the previous one's is not parsed
// again (ingressStage.process); with or without a callout on the layer,
// every frame must get the verdict, and a callout the incoming values,
// that parsing and classifying it on its own gives — whatever the runs of
// repeats, tagged frames, runts and stale values left from earlier bursts.
func TestIngressRepeatsMatchPerFrame(t *testing.T) {
	frames := repeatFrames()
	var seq [][]byte
	rng := rand.New(rand.NewPCG(1, 2))
	for len(seq) < 32*200 {
		f := frames[rng.IntN(len(frames))]
		for k := rng.IntN(9); k >= 0; k-- { // runs of 1..9 equal frames
			seq = append(seq, f)
		}
	}
	for _, withCallout := range []bool{false, true} {
		t.Run(fmt.Sprintf("callout=%v", withCallout), func(t *testing.T) {
			newRepeatRig(t, withCallout).check(t, seq)
		})
	}
}

// FuzzIngressRepeats: any sequence of the repeat frames, and of prefixes
// of them (runts, tags cut short), through the ingress stage, with and
// without a callout, classifies as frame-by-frame parsing does.
func FuzzIngressRepeats(f *testing.F) {
	f.Add([]byte{0, 0, 1, 1, 0, 3, 3, 4, 0, 5, 0, 0})
	f.Add([]byte{3, 4, 3, 0, 0, 2, 2, 0x80 | 14, 0x80 | 16, 0})
	var rigs [2]*repeatRig // reused while inputs pass: building a switch per input is slow
	frames := repeatFrames()
	f.Fuzz(func(t *testing.T, picks []byte) {
		if rigs[0] == nil {
			rigs = [2]*repeatRig{newRepeatRig(t, false), newRepeatRig(t, true)}
		}
		passed := false
		defer func() {
			if !passed { // a failed check leaves a rig half-way: the next input gets new ones
				rigs = [2]*repeatRig{}
			}
		}()
		seq := make([][]byte, 0, len(picks))
		for _, b := range picks {
			fr := frames[int(b&0x7f)%len(frames)]
			if b&0x80 != 0 { // a prefix of a tagged frame: cut inside the tag, or not
				fr = frames[3][:min(len(frames[3]), int(b&0x7f)%24)]
			}
			seq = append(seq, fr)
		}
		for _, r := range rigs {
			r.check(t, seq)
		}
		passed = true
	})
}

// tagged inserts an 802.1Q tag with vid after f's addresses.
func tagged(f []byte, vid uint16) []byte {
	t := append(append([]byte(nil), f[:12]...), 0x81, 0x00, byte(vid>>8), byte(vid))
	return append(t, f[12:]...)
}

// The retire link must hold every descriptor there is however it is fed:
// in the channel baseline, lists retired one at a time fill a channel of
// batches after size/32 of them, so the baseline's retire link carries
// single lists (chanOneLink), in order.
func TestRetireLinkHoldsEveryDescriptor(t *testing.T) {
	const all = 1024
	for _, kind := range []LinkKind{LinkRing, LinkChan} {
		sw, err := New(inject.NewEngine(), Config{ID: inject.GUID{9}, Frames: all / 2, Reserve: all / 2, NoPin: true, Link: kind})
		if err != nil {
			t.Fatal(err)
		}
		sw.mu.Lock()
		pl, err := sw.newPlane()
		sw.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		q := pl.queues[0]
		if err != nil {
			t.Fatal(err)
		}
		ls := make([]*nbl.NBL, all)
		for i := range ls {
			ls[i] = sw.arena.Desc(uint32(i))
			if q.retireL.EnqueueBurst(ls[i:i+1]) != 1 {
				t.Fatalf("%v: the retire link refused list %d of %d sent one at a time", kind, i, all)
			}
		}
		out := make([]*nbl.NBL, all)
		if n := q.retireL.DequeueBurst(out); n != all || q.retireL.Len() != 0 {
			t.Fatalf("%v: took %d of %d back", kind, n, all)
		}
		for i := range out {
			if out[i] != ls[i] {
				t.Fatalf("%v: list %d out of order", kind, i)
			}
		}
	}
}

// BenchmarkAbsorbRound is one RTC round of absorb-reinject with bursts of
// b frames: what a round costs beyond its packets (at a moderate rate a
// round carries one or two).
func BenchmarkAbsorbRound(b *testing.B) {
	for _, burst := range []int{1, 32} {
		b.Run(fmt.Sprintf("burst=%d", burst), func(b *testing.B) {
			sw, q, a, _ := newStaged(b, []*Callout{NewInspector("inspect", nil)},
				[]Filter{{Name: "i", Layer: LayerIngress, Action: FilterCallout, Callout: "inspect"}})
			a.burst = burst
			round := func() int {
				n := q.ingress.Poll()
				for _, w := range q.workers {
					w.poll()
				}
				q.ingress.pollInjected()
				q.egress.Poll()
				q.completion.Poll()
				return n
			}
			for i := 0; i < 100; i++ {
				round()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for n := 0; n < b.N; {
				n += round()
			}
			b.StopTimer()
			sw.running.Store(false)
		})
	}
}
