package bench

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/dataplane/memport"
	"github.com/wfpxdp/wfpxdp/dataplane/metrics"
	"github.com/wfpxdp/wfpxdp/inject"
)

// Path is what the switch does with each packet.
type Path string

// Paths of the pipeline scenarios.
const (
	PathForward        Path = "forward"         // permit and forward
	PathAbsorbReinject Path = "absorb-reinject" // every packet absorbed by an inspector and reinjected
)

// PipelineOptions configures one in-memory pipeline run.
type PipelineOptions struct {
	Path      Path
	Mode      dataplane.Mode
	Link      dataplane.LinkKind
	Batch     int
	FrameSize int
	// FrameSizes, if set, is the sizes the generator sends in turn (IMIX
	// or a list); FrameSize is then their mean, for the report.
	FrameSizes []int
	// Replay, if set, is the frames the generator sends, in turn, as they
	// are (a capture; LoadCapture); they carry no latency probes.
	Replay   [][]byte
	Rate     float64       // offered pps; 0: as fast as the switch takes them
	Packets  uint64        // stop after this many (0: use Duration)
	Duration time.Duration // run time when Packets is 0
	CPUs     []int
	Filters  int // extra non-matching filters installed, to show the index at work
	Queues   int // switch queues (pipelines), each with its own generator and sink queue; 1
	// Flows spreads the load over that many flows (source and
	// destination MAC, IPv4 addresses, UDP port; memport.Config.Flows); the
	// sink's addresses are static entries. 0 and 1: one flow.
	Flows     int
	FlowOrder memport.FlowOrder
	// ExtraFilters are added to the harness's own (tests: what the switch
	// must block).
	ExtraFilters []dataplane.Filter
	// RXRing is the generator port's RX ring, in frames, when paced
	// (memport.Config.RXRing; 2048 when 0).
	RXRing int
	// Keep keeps a copy of the first Keep frames the sink receives
	// (Result.Kept); one queue.
	Keep int
	// Stages stamps lists at each stage (dataplane.Config.StageStamps) and
	// reports the latency between stages (Result.Stages).
	Stages   bool
	Progress func(Progress)
	Stop     <-chan struct{} // closed: end the run early (Ctrl-C)
	Observe
}

// Observe is what a harness user can watch a run through: a packet
// capture the switch copies into, and a callback given each switch's
// metrics source when it starts (to point a metrics server at it).
type Observe struct {
	Capture *dataplane.Capture
	OnStart func(metrics.Source)
}

// Progress is one live line of a running scenario.
type Progress struct {
	Elapsed                time.Duration
	Offered, RX, TX        uint64
	Drops, Absorbed, Reinj uint64
	DropsBy                map[string]uint64 // by reason, the non-zero ones
	Completions            uint64
}

// Result is the outcome of one run.
type Result struct {
	Options     PipelineOptions
	Plan        string
	Packets     uint64 // delivered to the sink
	Offered     uint64 // generated
	Elapsed     time.Duration
	Mpps        float64
	OfferedMpps float64
	Gbps        float64
	Latency     *hdrhistogram.Histogram
	Stages      map[string]*hdrhistogram.Histogram // by memport.StageNames, with Options.Stages
	Stats       dataplane.Stats
	Accounting  dataplane.Accounting
	GCCycles    uint32
	Mallocs     uint64
	Reordered   uint64
	// BusyNSPerPacket is the switch's user-space time in rounds that moved
	// packets, per packet delivered (0 where not measured).
	BusyNSPerPacket float64
	// RSS of the process after warm-up and at the end, KiB.
	RSSStartKB, RSSEndKB int64
	// GC cycles after warm-up (the first second) to the end.
	GCAfterWarmup uint32
	// Lost is what the generator sent that neither reached the sink nor was
	// counted as dropped or discarded, after the switch drained.
	Lost uint64
	// Missed is, at a paced rate, the frames that arrived at the
	// generator port's full RX ring and never entered the switch (a NIC's
	// missed count; memport.Port.Missed). Offered counts them.
	Missed uint64
	// Kept is the first Options.Keep frames the sink received, in order.
	Kept [][]byte
	// Drained says the loss counts (Lost, Missed, Stats.TotalDrops) were
	// taken after the switch drained, so frames in flight at the end are
	// not counted as lost; Packets and Offered are rates' counts, taken
	// at the end of the measured time.
	Drained bool
}

// ProbeEvery is how often the in-memory generator makes a frame a latency
// probe: one in 8 (over a million samples a second at saturation; the
// sink's histogram would otherwise be a sizeable share of what the port,
// standing in for a NIC, costs the lcore).
const ProbeEvery = 8

const (
	macGen  dataplane.MAC = 0x02_00_00_00_01_01
	macSink dataplane.MAC = 0x02_00_00_00_01_02
)

// IMIX is the simple IMIX, 7:4:1 of 64, 570 and 1518 bytes, interleaved
// as a generator sends it (not in blocks).
var IMIX = []int{64, 570, 64, 570, 64, 1518, 64, 570, 64, 570, 64, 64}

// ParseFrameSizes parses a frame size flag: a size, "imix", or a
// comma-separated list of sizes sent in turn, each within lo..hi.
func ParseFrameSizes(s string, lo, hi int) ([]int, error) {
	if s == "imix" {
		return IMIX, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < lo || n > hi {
			return nil, fmt.Errorf("%s: want %d..%d bytes, imix, or a comma-separated list of sizes", s, lo, hi)
		}
		out = append(out, n)
	}
	return out, nil
}

// MeanSize is the mean of sizes.
func MeanSize(sizes []int) int {
	t := 0
	for _, n := range sizes {
		t += n
	}
	return t / max(len(sizes), 1)
}

// templates is the generator's frames: one per size, in turn.
func (o PipelineOptions) templates() []memport.Template {
	if len(o.Replay) > 0 {
		ts := make([]memport.Template, len(o.Replay))
		for i, f := range o.Replay {
			ts[i] = memport.Template{Raw: f}
		}
		return ts
	}
	if len(o.FrameSizes) == 0 {
		return []memport.Template{{Dst: macSink, Src: macGen, Size: o.FrameSize}}
	}
	ts := make([]memport.Template, len(o.FrameSizes))
	for i, n := range o.FrameSizes {
		ts[i] = memport.Template{Dst: macSink, Src: macGen, Size: n}
	}
	return ts
}

// RunPipeline builds a switch with a generator port and a sink port over
// memport, runs it and returns the result. Every frame must be back when
// it stops; a leak is an error.
func RunPipeline(o PipelineOptions) (*Result, error) {
	if o.FrameSize == 0 {
		o.FrameSize = 64
	}
	flows := max(o.Flows, 1)
	fdb := 4096 // room for every flow's source and destination, 4 slots each
	for fdb < 8*flows {
		fdb <<= 1
	}
	sw, err := dataplane.New(inject.NewEngine(), dataplane.Config{
		ID: inject.GUID{0xbe, 0x9c}, Mode: o.Mode, Link: o.Link, Batch: o.Batch, CPUs: o.CPUs, Queues: max(o.Queues, 1),
		Frames: 8192, Reserve: 1024, Capture: o.Capture, StageStamps: o.Stages, LcoreNice: LcoreNice, FDBSize: fdb,
	})
	if err != nil {
		return nil, err
	}
	queues := max(o.Queues, 1)
	genFlows := flows
	if len(o.Replay) > 0 {
		genFlows = 0 // frames as captured
	}
	var gen, sink portGroup
	var gens, sinks []dataplane.Driver
	for q := 0; q < queues; q++ { // one generator and one sink queue per switch queue
		limit := memport.Share(o.Packets, queues, q)
		g, err := memport.New(memport.Config{Name: fmt.Sprintf("gen/%d", q),
			Templates: o.templates(),
			Rate:      o.Rate / float64(queues), Limit: limit, ProbeEvery: ProbeEvery,
			Flows: genFlows, FlowOrder: o.FlowOrder, RXRing: o.RXRing})
		if err != nil {
			return nil, err
		}
		if o.Packets > 0 && limit == 0 {
			g, _ = memport.New(memport.Config{Name: fmt.Sprintf("gen/%d", q)}) // nothing left for it
		}
		k, _ := memport.New(memport.Config{Name: fmt.Sprintf("sink/%d", q), Latency: true, Stages: o.Stages, Keep: o.Keep})
		gen, sink = append(gen, g), append(sink, k)
		gens, sinks = append(gens, g), append(sinks, k)
	}
	if _, err := sw.AddPort(1, 0, macGen, gens...); err != nil {
		return nil, err
	}
	if _, err := sw.AddPort(2, 0, macSink, sinks...); err != nil {
		return nil, err
	}
	for i := 1; i < flows; i++ { // the sink's addresses, as if it had sent from each
		if err := sw.AddStaticMAC(2, memport.FlowMAC(macSink, i)); err != nil {
			return nil, err
		}
	}
	var filters []dataplane.Filter
	for i := 0; i < o.Filters; i++ { // never match: other destinations
		filters = append(filters, dataplane.Filter{Name: fmt.Sprintf("block-%d", i), Layer: dataplane.LayerIngress,
			Weight: uint64(1000 + i), Action: dataplane.FilterBlock,
			Conditions: []dataplane.Condition{{Field: dataplane.FieldMACDestination, Value: uint64(0x02_00_00_F0_00_00 + i)}}})
	}
	switch o.Path {
	case PathForward, "":
		filters = append(filters, dataplane.Filter{Name: "permit-all", Layer: dataplane.LayerIngress, Weight: 1,
			Action: dataplane.FilterPermit})
	case PathAbsorbReinject:
		if err := sw.RegisterCallout(dataplane.NewInspector("inspect", nil)); err != nil {
			return nil, err
		}
		filters = append(filters, dataplane.Filter{Name: "inspect-all", Layer: dataplane.LayerIngress, Weight: 100,
			Action: dataplane.FilterCallout, Callout: "inspect"})
	default:
		return nil, fmt.Errorf("unknown path %q (want forward or absorb-reinject)", o.Path)
	}
	if err := sw.SetFilters(append(filters, o.ExtraFilters...)); err != nil {
		return nil, err
	}

	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	start := time.Now()
	if err := sw.Start(context.Background()); err != nil {
		return nil, err
	}
	plan := sw.Plan()
	if o.OnStart != nil {
		o.OnStart(metrics.Source{Switch: sw, Capture: o.Capture, Latency: sink.LatencySnapshot})
	}
	lastTick := start
	var rssStart int64
	var gcWarm uint32
	warmed := false
	for {
		time.Sleep(2 * time.Millisecond)
		select {
		case <-o.Stop:
			o.Packets, o.Duration = 0, 0 // end now
		default:
		}
		got, _ := sink.Received()
		now := time.Now()
		if o.Packets > 0 && got >= o.Packets {
			break
		}
		if o.Packets > 0 && gen.Sent() >= o.Packets {
			// all sent: done once each is delivered or counted as dropped
			if st := sw.Stats(); got+st.TotalDrops+st.Discarded >= o.Packets {
				break
			}
		}
		if o.Packets > 0 && now.Sub(start) > 60*time.Second {
			break // the switch lost packets; the counts will say so
		}
		if o.Packets == 0 && now.Sub(start) >= o.Duration {
			break
		}
		if !warmed && now.Sub(start) >= time.Second {
			warmed, rssStart = true, rssKB()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			gcWarm = ms.NumGC
		}
		if o.Progress != nil && now.Sub(lastTick) >= time.Second {
			lastTick = now
			st := sw.Stats()
			o.Progress(Progress{Elapsed: now.Sub(start), Offered: gen.Sent(), RX: st.RX, TX: st.TX,
				Drops: st.TotalDrops, DropsBy: st.Drops, Absorbed: st.Absorbed, Reinj: st.Reinjected, Completions: st.Completions})
		}
	}
	got, bytes := sink.Received()
	elapsed := time.Since(start)
	busy := sw.BusyNS()
	missed := gen.Missed()
	offered := gen.Sent() + missed
	runtime.ReadMemStats(&ms1)
	stopCtx, cancelStop := context.WithTimeout(context.Background(), dataplane.DefaultDrainTimeout)
	stopErr := sw.Stop(stopCtx)
	cancelStop()
	// Lost: neither delivered nor counted as dropped or discarded (R7:
	// what the callout still held at the stop is discarded, not lost).
	var lost uint64
	fst := sw.Stats()
	if final, _ := sink.Received(); gen.Sent() > final+fst.TotalDrops+fst.Discarded {
		lost = gen.Sent() - final - fst.TotalDrops - fst.Discarded
	}
	r := &Result{
		Options: o, Plan: plan, Packets: got, Offered: offered, Elapsed: elapsed,
		Mpps: float64(got) / elapsed.Seconds() / 1e6, OfferedMpps: float64(offered) / elapsed.Seconds() / 1e6,
		Gbps:    float64(bytes+24*got) * 8 / elapsed.Seconds() / 1e9, // + preamble, IFG and FCS on the wire
		Latency: sink.Histogram(), Stages: sink.Stages(), Stats: sw.Stats(), GCCycles: ms1.NumGC - ms0.NumGC,
		Mallocs: ms1.Mallocs - ms0.Mallocs, Reordered: sink.Reordered(),
	}
	if o.Keep > 0 {
		r.Kept = sink[0].Kept()
	}
	r.Drained = true
	if got > 0 {
		r.BusyNSPerPacket = float64(busy) / float64(got)
	}
	r.RSSEndKB = rssKB()
	r.Lost, r.Missed = lost, missed
	if warmed {
		r.RSSStartKB, r.GCAfterWarmup = rssStart, ms1.NumGC-gcWarm
	}
	cerr := sw.Close()
	r.Accounting = sw.Accounting()
	if stopErr != nil {
		return r, stopErr
	}
	return r, cerr
}

// portGroup is one in-memory port's queues, read as one.
type portGroup []*memport.Port

func (g portGroup) Sent() (n uint64) {
	for _, p := range g {
		n += p.Sent()
	}
	return n
}

func (g portGroup) Missed() (n uint64) {
	for _, p := range g {
		n += p.Missed()
	}
	return n
}

func (g portGroup) Received() (packets, bytes uint64) {
	for _, p := range g {
		k, b := p.Received()
		packets, bytes = packets+k, bytes+b
	}
	return packets, bytes
}

func (g portGroup) Reordered() (n uint64) {
	for _, p := range g {
		n += p.Reordered()
	}
	return n
}

// Histogram merges the queues' latency histograms (read after the stop).
func (g portGroup) Histogram() *hdrhistogram.Histogram {
	if len(g) == 1 {
		return g[0].Histogram()
	}
	return mergeHist(func(p *memport.Port) *hdrhistogram.Histogram { return p.Histogram() }, g)
}

// LatencySnapshot merges the queues' histograms as they are now.
func (g portGroup) LatencySnapshot() *hdrhistogram.Histogram {
	return mergeHist(func(p *memport.Port) *hdrhistogram.Histogram { return p.LatencySnapshot() }, g)
}

// Stages merges the queues' stage histograms (read after the stop).
func (g portGroup) Stages() map[string]*hdrhistogram.Histogram {
	if len(g) == 1 {
		return g[0].Stages()
	}
	var out map[string]*hdrhistogram.Histogram
	for _, p := range g {
		for name, h := range p.Stages() {
			if out == nil {
				out = map[string]*hdrhistogram.Histogram{}
			}
			if out[name] == nil {
				out[name] = hdrhistogram.New(1, int64(10*time.Second), 3)
			}
			out[name].Merge(h)
		}
	}
	return out
}

func mergeHist(get func(*memport.Port) *hdrhistogram.Histogram, g portGroup) *hdrhistogram.Histogram {
	var out *hdrhistogram.Histogram
	for _, p := range g {
		h := get(p)
		if h == nil {
			continue
		}
		if out == nil {
			out = hdrhistogram.New(1, int64(10*time.Second), 3)
		}
		out.Merge(h)
	}
	return out
}
