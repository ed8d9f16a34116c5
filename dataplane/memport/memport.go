// Package memport is an in-memory port for the dataplane: a traffic
// generator on its receive side and a sink on its transmit side, so the
// whole switch runs, and is tested and benchmarked, without privileges or
// a NIC.
//
// Receive plays the NIC: it takes free frames from the caller's cache
// (its fill ring) and writes frames from templates into them, in place,
// with a sequence number and a monotonic timestamp in the payload, at an
// optional paced rate. Transmit plays the wire: it reads the probe of each
// frame into a latency histogram and queues the lists for Reap, as a TX
// completion ring would.
//
// At a paced rate, frame k arrives at start + k/rate and waits in the
// port's RX ring (RXRing frames) until the switch asks for it; its probe
// carries its arrival time, not the time it was asked for, so latency
// includes that wait — what a tester on a NIC would see while the switch's
// core is busy elsewhere or the host takes the CPU away. A frame arriving
// at a full ring is missed, as a NIC's is (Missed; tail drop). Unpaced,
// the generator answers every ask at once and stamps the time of the ask.
package memport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/nbl"
	"github.com/wfpxdp/wfpxdp/ring"
)

// Template is one kind of frame the generator sends.
type Template struct {
	Dst, Src  dataplane.MAC
	VLAN      uint16 // 0: untagged
	EtherType uint16 // 0: IPv4
	Size      int    // frame bytes without FCS, >= 60; 0: 64
	// Raw, if set, is the whole frame, sent as it is (a replayed capture):
	// the fields above are ignored and it carries no latency probe.
	Raw []byte
}

// Config configures a port. The zero value sends nothing and sinks
// everything.
type Config struct {
	Name      string
	Templates []Template // frames to send, in turn; none: receive nothing
	Rate      float64    // offered packets per second; 0: as fast as asked
	RXRing    int        // paced: frames the RX ring holds; 2048 (an AF_XDP port's RX ring here)
	Limit     uint64     // packets to send in all; 0: no limit
	Headroom  uint32     // bytes before the frame in its buffer; 256
	TXQueue   int        // lists transmitted and not yet reaped, a power of two; 4096
	Latency   bool       // record (now - sent) of received probes
	// ProbeEvery makes only every n-th generated frame a latency probe
	// (0 or 1: every frame): recording is the costliest part of the
	// sink, and at millions of packets per second a sample is plenty.
	ProbeEvery int
	// Flows, if > 0, spreads the frames over that many flows: frame k of
	// flow i carries the template's MACs and IPv4 addresses plus i (in
	// their low 24 bits; see FlowMAC) and UDP source port 1024 + i%64512.
	// The rewrite costs the same for one flow as for many, so a
	// comparison across flow counts measures the switch, not the
	// generator. 0 sends the template as it is.
	Flows int
	// FlowOrder is the order frames take the flows in: sequential (flow
	// k mod Flows) or a random permutation, repeated.
	FlowOrder FlowOrder
	// Keep makes the port keep a copy of the first Keep frames it is given
	// to transmit (Kept), for tests that check frames one by one. The
	// copies are allocated up front.
	Keep int
	// Stages records, for lists stamped by the switch
	// (dataplane.Config.StageStamps), the time between its stamps: see
	// Stages.
	Stages bool
}

// FlowOrder is how the generator goes through its flows.
type FlowOrder uint8

// Flow orders.
const (
	FlowsSequential FlowOrder = iota
	FlowsRandom
)

// Share is queue i's share of total packets split over queues generator
// queues: the first total%queues queues send one more.
func Share(total uint64, queues, i int) uint64 {
	n := total / uint64(queues)
	if uint64(i) < total%uint64(queues) {
		n++
	}
	return n
}

// FlowMAC returns flow i's variant of address m: i added to its low 24
// bits (the OUI is kept).
func FlowMAC(m dataplane.MAC, i int) dataplane.MAC {
	return m&^0xFFFFFF | (m+dataplane.MAC(i))&0xFFFFFF
}

// Stage latency names, in path order: arrived at the port (paced; else
// asked for) to received by the switch (probes only), received to picked
// up by the absorb worker, worker to reinjected at ingress, reinjected (or
// received, when not absorbed) to handed to the port for TX, and TX to
// here.
var StageNames = [...]string{"arrival_to_rx", "rx_to_absorb_worker", "absorb_worker_to_reinject", "reinject_to_tx", "tx_to_sink"}

// Probe layout: after the L2 header, a 20-byte IPv4 and 8-byte UDP header,
// then a 16-bit magic, a 32-bit sequence number (wrapping) and the 64-bit
// send time: 14 bytes, so a 64-byte frame carries one even with a VLAN tag.
const (
	probeMagic  = 0x5750 // "WP"
	probeOffset = 28
	probeLen    = 14
	minFrame    = 60
)

// Now returns the clock probes are stamped with (monotonic ns): the
// switch's (dataplane.Now), so that a probe's time and the switch's stage
// stamps can be subtracted.
func Now() int64 { return dataplane.Now() }

type frameTemplate struct {
	bytes    []byte
	noProbe  []byte // bytes without the probe magic (ProbeEvery)
	probe    int    // offset of the probe in the frame
	dst, src dataplane.MAC
	ipv4     int // offset of the IPv4 header, 0 if none
}

// Port is an in-memory port driver. See the package doc for the threading
// contract (dataplane.Driver's).
type Port struct {
	cfg       Config
	templates []frameTemplate
	txq       *ring.SPSC[*nbl.NBL]
	closed    atomic.Bool

	rate      atomic.Uint64 // float64 bits: offered pps; set by New and SetRate
	rateEpoch atomic.Bool   // the rate changed: restart pacing

	keep [][]byte // Config.Keep's copies; Transmit fills, Kept reads after the switch stopped
	kept int

	// generator state: only Receive (the ingress stage) touches it
	perm    []uint32 // FlowsRandom: the order of the flows
	seq     uint64
	start   int64 // pacing (re)started, ns; -1: at the first Receive
	arrived uint64
	rx      rxRing // paced: the arrival indexes waiting
	sent    atomic.Uint64
	missed  atomic.Uint64
	next    int // template index

	// sink state: only Transmit (the egress stage) touches it, but for
	// hist, which LatencySnapshot reads under histMu
	histMu    sync.Mutex // taken once per Transmit burst; uncontended but for snapshots
	hist      *hdrhistogram.Histogram
	stages    [len(StageNames)]*hdrhistogram.Histogram // with Config.Stages
	maxSeq    uint32
	reordered atomic.Uint64
	received  atomic.Uint64
	bytes     atomic.Uint64

	starved atomic.Uint64 // Receive found no free frame (fill ring empty)

	// Mangle, if set before the port is used, may rewrite or cut each
	// generated frame (i is its sequence number) to inject bad input; it
	// returns the bytes to deliver, a prefix of frame.
	Mangle func(i uint64, frame []byte) []byte
}

// ErrTemplate reports a template that cannot be built.
var ErrTemplate = errors.New("memport: bad frame template")

// New builds a port.
func New(cfg Config) (*Port, error) {
	if cfg.Headroom == 0 {
		cfg.Headroom = 256
	}
	if cfg.TXQueue == 0 {
		cfg.TXQueue = 4096
	}
	if cfg.RXRing <= 0 {
		cfg.RXRing = 2048
	}
	q, err := ring.NewSPSC[*nbl.NBL](cfg.TXQueue)
	if err != nil {
		return nil, fmt.Errorf("memport %s: tx queue: %w", cfg.Name, err)
	}
	p := &Port{cfg: cfg, txq: q, start: -1, rx: rxRing{runs: make([]rxRun, cfg.RXRing)}}
	for i := 0; i < cfg.Keep; i++ {
		p.keep = append(p.keep, make([]byte, 0, 2048))
	}
	if cfg.Flows < 0 || cfg.Flows > 1<<24 {
		return nil, fmt.Errorf("memport %s: %d flows: want 0..%d", cfg.Name, cfg.Flows, 1<<24)
	}
	if cfg.Flows > 1 && cfg.FlowOrder == FlowsRandom {
		p.perm = make([]uint32, cfg.Flows)
		for i, j := range rand.New(rand.NewPCG(1, uint64(cfg.Flows))).Perm(cfg.Flows) {
			p.perm[i] = uint32(j)
		}
	}
	p.rate.Store(math.Float64bits(cfg.Rate))
	if cfg.Latency {
		p.hist = hdrhistogram.New(1, int64(10*time.Second), 3)
	}
	if cfg.Stages {
		for i := range p.stages {
			p.stages[i] = hdrhistogram.New(1, int64(10*time.Second), 3)
		}
	}
	for i, t := range cfg.Templates {
		ft, err := buildTemplate(t)
		if err != nil {
			return nil, fmt.Errorf("memport %s: template %d: %w", cfg.Name, i, err)
		}
		p.templates = append(p.templates, ft)
	}
	return p, nil
}

func buildTemplate(t Template) (frameTemplate, error) {
	if t.Raw != nil {
		if len(t.Raw) < 14 {
			return frameTemplate{}, fmt.Errorf("%w: a raw frame of %d bytes (want an Ethernet header at least)", ErrTemplate, len(t.Raw))
		}
		b := append([]byte(nil), t.Raw...)
		return frameTemplate{bytes: b, noProbe: b, probe: -1}, nil
	}
	size := t.Size
	if size == 0 {
		size = 64
	}
	hdr := 14
	if t.VLAN != 0 {
		hdr = 18
	}
	if size < minFrame || size < hdr+probeOffset+probeLen {
		return frameTemplate{}, fmt.Errorf("%w: size %d < %d", ErrTemplate, size, max(minFrame, hdr+probeOffset+probeLen))
	}
	if t.VLAN > 4095 {
		return frameTemplate{}, fmt.Errorf("%w: VLAN %d", ErrTemplate, t.VLAN)
	}
	et := t.EtherType
	if et == 0 {
		et = dataplane.EtherTypeIPv4
	}
	b := make([]byte, size)
	t.Dst.Put(b[0:6])
	t.Src.Put(b[6:12])
	if t.VLAN != 0 {
		binary.BigEndian.PutUint16(b[12:], dataplane.EtherTypeVLAN)
		binary.BigEndian.PutUint16(b[14:], t.VLAN)
	}
	binary.BigEndian.PutUint16(b[hdr-2:], et)
	if et == dataplane.EtherTypeIPv4 { // IPv4 + UDP header, addresses 10.0.0.1 -> 10.0.0.2
		ip := b[hdr:]
		ip[0], ip[8], ip[9] = 0x45, 64, 17
		binary.BigEndian.PutUint16(ip[2:], uint16(size-hdr))
		copy(ip[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
		binary.BigEndian.PutUint16(ip[20:], 9)
		binary.BigEndian.PutUint16(ip[22:], 9)
		binary.BigEndian.PutUint16(ip[24:], uint16(size-hdr-20))
	}
	nb := append([]byte(nil), b...)
	binary.BigEndian.PutUint16(b[hdr+probeOffset:], probeMagic)
	ft := frameTemplate{bytes: b, noProbe: nb, probe: hdr + probeOffset, dst: t.Dst, src: t.Src}
	if et == dataplane.EtherTypeIPv4 {
		ft.ipv4 = hdr
	}
	return ft, nil
}

// Kept returns the frames kept (Config.Keep), in the order they were
// given to transmit. Call it once the switch has stopped.
func (p *Port) Kept() [][]byte { return p.keep[:p.kept] }

// Name implements dataplane.Driver.
func (p *Port) Name() string { return p.cfg.Name }

// Receive implements dataplane.Driver: it generates up to len(dst) frames,
// fewer when paced or out of free frames.
func (p *Port) Receive(dst []*nbl.NBL, frames *nbl.Cache) int {
	if len(p.templates) == 0 || p.closed.Load() {
		return 0
	}
	want := len(dst)
	now := Now()
	sent := p.sent.Load()
	if p.rateEpoch.Load() {
		p.rateEpoch.Store(false)
		p.start, p.arrived = now, 0
		p.rx.clear() // what waited at the old rate is not sent
	}
	rate := math.Float64frombits(p.rate.Load())
	if rate < 0 {
		return 0
	} else if rate > 0 {
		if p.start < 0 {
			p.start = now
		}
		// frames 0..due-1 have arrived by now
		if due := uint64(float64(now-p.start)*rate/1e9) + 1; due > p.arrived {
			p.missed.Add(p.rx.arrive(p.arrived, due-p.arrived))
			p.arrived = due
		}
		want = min(want, int(p.rx.queued))
	}
	if p.cfg.Limit > 0 {
		want = int(min(uint64(want), p.cfg.Limit-sent))
	}
	if want <= 0 {
		return 0
	}
	n := frames.Get(dst[:want])
	if n < want {
		p.starved.Add(1)
	}
	hr := p.cfg.Headroom
	var nsPer float64 // paced: ns between arrivals
	if rate > 0 {
		nsPer = 1e9 / rate
	}
	for _, l := range dst[:n] {
		t := &p.templates[p.next]
		if p.next++; p.next == len(p.templates) {
			p.next = 0
		}
		f := l.NB().Frame()
		stamp := now
		if rate > 0 {
			stamp = min(now, p.start+int64(float64(p.rx.take())*nsPer)) // its arrival
		}
		if every := uint64(p.cfg.ProbeEvery); t.probe >= 0 && (every <= 1 || p.seq%every == 0) {
			copy(f[hr:], t.bytes)
			pr := f[int(hr)+t.probe+2:]
			binary.BigEndian.PutUint32(pr, uint32(p.seq))
			binary.BigEndian.PutUint64(pr[4:], uint64(stamp))
		} else {
			copy(f[hr:], t.noProbe)
		}
		if p.cfg.Flows > 0 {
			p.flow(t, f[hr:], p.seq)
		}
		size := uint32(len(t.bytes))
		if p.Mangle != nil {
			size = uint32(len(p.Mangle(p.seq, f[hr:hr+size])))
		}
		p.seq++
		l.NB().SetData(hr, size)
	}
	p.sent.Add(uint64(n))
	return n
}

// flow rewrites frame, built from t, as frame seq's flow (Config.Flows).
func (p *Port) flow(t *frameTemplate, frame []byte, seq uint64) {
	i := int(seq % uint64(p.cfg.Flows))
	if p.perm != nil {
		i = int(p.perm[i])
	}
	FlowMAC(t.dst, i).Put(frame[0:6])
	FlowMAC(t.src, i).Put(frame[6:12])
	if o := t.ipv4; o > 0 {
		ip := frame[o:]
		binary.BigEndian.PutUint32(ip[12:16], 10<<24|uint32(i+1)&0xFFFFFF)
		binary.BigEndian.PutUint32(ip[16:20], 11<<24|uint32(i+1)&0xFFFFFF)
		binary.BigEndian.PutUint16(ip[20:22], uint16(1024+i%64512))
	}
}

// rxRing is a paced port's RX ring, as the arrival indexes it holds: runs
// of consecutive ones, oldest first (a frame missed because the ring was
// full ends a run). It holds at most len(runs) frames, so it never needs
// more runs than that.
type rxRing struct {
	runs    []rxRun // a circular FIFO; as many as the ring holds frames
	head, n int     // first run, runs in use
	queued  uint64  // frames in the runs
}

type rxRun struct{ first, n uint64 }

// arrive adds frames first..first+n-1, in order, as far as there is room,
// and returns how many found the ring full.
func (r *rxRing) arrive(first, n uint64) (missed uint64) {
	fit := min(n, uint64(len(r.runs))-r.queued)
	if fit > 0 {
		if last := &r.runs[(r.head+r.n+len(r.runs)-1)%len(r.runs)]; r.n > 0 && last.first+last.n == first {
			last.n += fit
		} else {
			r.runs[(r.head+r.n)%len(r.runs)] = rxRun{first, fit}
			r.n++
		}
		r.queued += fit
	}
	return n - fit
}

// take removes the oldest frame and returns its index; the ring must not
// be empty.
func (r *rxRing) take() uint64 {
	h := &r.runs[r.head]
	k := h.first
	h.first++
	if h.n--; h.n == 0 {
		r.head = (r.head + 1) % len(r.runs)
		r.n--
	}
	r.queued--
	return k
}

func (r *rxRing) clear() { r.head, r.n, r.queued = 0, 0, 0 }

// Transmit implements dataplane.Driver: it records the probes and queues
// the lists for Reap; it takes as many as the TX queue has room for.
func (p *Port) Transmit(src []*nbl.NBL) int {
	// Read the lists before they are queued: Reap may run on another
	// lcore (the completion stage's) and free them at once. This is the
	// queue's only producer, so what is free now stays free.
	n := min(len(src), p.txq.Free())
	var bytes uint64
	now := Now()
	if p.hist != nil {
		p.histMu.Lock()
		defer p.histMu.Unlock()
	}
	if p.cfg.Stages {
		p.recordStages(src[:n])
	}
	for _, l := range src[:n] {
		d := l.Data()
		bytes += uint64(len(d))
		if k := p.kept; k < len(p.keep) {
			p.keep[k] = append(p.keep[k][:0], d...)
			p.kept++
		}
		if p.hist == nil {
			continue
		}
		off := 14 + probeOffset
		if len(d) >= 14 && binary.BigEndian.Uint16(d[12:]) == dataplane.EtherTypeVLAN {
			off += 4
		}
		if len(d) < off+probeLen || binary.BigEndian.Uint16(d[off:]) != probeMagic {
			continue
		}
		seq := binary.BigEndian.Uint32(d[off+2:])
		if int32(seq-p.maxSeq) < 0 {
			p.reordered.Add(1)
		} else {
			p.maxSeq = seq
		}
		sent := int64(binary.BigEndian.Uint64(d[off+6:]))
		if now >= sent {
			p.hist.RecordValue(now - sent)
		}
		if rx := l.Stamps[nbl.StampRX]; p.cfg.Stages && rx >= sent {
			p.stages[0].RecordValue(rx - sent)
		}
	}
	p.received.Add(uint64(n))
	p.bytes.Add(bytes)
	p.txq.EnqueueBurst(src[:n])
	return n
}

// recordStages records the gaps between the switch's stamps of lists.
func (p *Port) recordStages(lists []*nbl.NBL) {
	now := dataplane.Now()
	rec := func(i int, from, to int64) {
		if from > 0 && to >= from {
			p.stages[i].RecordValue(to - from)
		}
	}
	for _, l := range lists {
		st := &l.Stamps
		rx, abs, inj, tx := st[nbl.StampRX], st[nbl.StampAbsorb], st[nbl.StampInject], st[nbl.StampTX]
		if abs > 0 {
			rec(1, rx, abs)
			rec(2, abs, inj)
			rec(3, inj, tx)
		} else {
			rec(3, rx, tx)
		}
		rec(4, tx, now)
	}
}

// Stages returns the stage latency histograms by StageNames (nil without
// Config.Stages). Read them once the switch has stopped.
func (p *Port) Stages() map[string]*hdrhistogram.Histogram {
	if !p.cfg.Stages {
		return nil
	}
	m := map[string]*hdrhistogram.Histogram{}
	for i, name := range StageNames {
		m[name] = p.stages[i]
	}
	return m
}

// Reap implements dataplane.Driver.
func (p *Port) Reap(dst []*nbl.NBL) int { return p.txq.DequeueBurst(dst) }

// Held implements dataplane.Driver: lists transmitted and not yet reaped.
func (p *Port) Held() int { return p.txq.Len() }

// Close implements dataplane.Driver: the generator stops; lists still in
// the TX queue are reaped as usual.
func (p *Port) Close(*nbl.Cache) error {
	p.closed.Store(true)
	return nil
}

// SetRate changes the offered rate (packets per second) of a running
// generator: 0 = as fast as asked, negative = stop sending.
func (p *Port) SetRate(pps float64) {
	p.rate.Store(math.Float64bits(pps))
	p.rateEpoch.Store(true)
}

// Sent returns the packets generated so far.
func (p *Port) Sent() uint64 { return p.sent.Load() }

// Received returns the packets and bytes that reached this port's sink.
func (p *Port) Received() (packets, bytes uint64) { return p.received.Load(), p.bytes.Load() }

// Reordered returns the probes that arrived after a later one.
func (p *Port) Reordered() uint64 { return p.reordered.Load() }

// Missed returns the paced frames that arrived at a full RX ring and so
// never entered the switch (a NIC's missed count).
func (p *Port) Missed() uint64 { return p.missed.Load() }

// Starved returns how often Receive found no free frame.
func (p *Port) Starved() uint64 { return p.starved.Load() }

// Histogram returns the latency histogram (nil without Config.Latency).
// Read it only once the switch has stopped; LatencySnapshot may be called
// at any time.
func (p *Port) Histogram() *hdrhistogram.Histogram { return p.hist }

// LatencySnapshot returns a copy of the latency histogram as it is now
// (nil without Config.Latency); safe while the switch runs.
func (p *Port) LatencySnapshot() *hdrhistogram.Histogram {
	if p.hist == nil {
		return nil
	}
	p.histMu.Lock()
	defer p.histMu.Unlock()
	return hdrhistogram.Import(p.hist.Export())
}
