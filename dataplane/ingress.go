package dataplane

import (
	"encoding/binary"

	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/nbl"
)

// The ingress stage: RX from the ports, the injected lists, and the
// ingress classify pass.

type ingressStage struct {
	q      *queue
	frames *nbl.Cache // frames to receive into; only this stage uses it
	batch  []*nbl.NBL
	good   []*nbl.NBL
	bad    []*nbl.NBL
	gone   []*nbl.NBL
	last   portCache
	ins    []Incoming
	rep    []bool // rep[i]: good[i]'s header repeats good[i-1]'s (see process)
	injBuf []inject.Injection
	cls    *classifier
	slow   []*nbl.NBL // drop scratch
	touch  byte       // keeps the header loads of Poll from being optimised away

	cnt    *stageCounters // this instance's lcore's counters
	fwd    link[*nbl.NBL] // where permitted lists go
	rxOnly bool           // injections are another instance's (pipelined mode)
}

func newIngress(q *queue, cnt *stageCounters, frames *nbl.Cache, fwd link[*nbl.NBL], absorbSlot int) *ingressStage {
	b := q.pl.cfg.Batch
	s := &ingressStage{q: q, cnt: cnt, fwd: fwd, frames: frames,
		batch: make([]*nbl.NBL, 0, b), good: make([]*nbl.NBL, 0, b), ins: make([]Incoming, b), rep: make([]bool, b),
		bad: make([]*nbl.NBL, 0, b), gone: make([]*nbl.NBL, 0, b),
		injBuf: make([]inject.Injection, 32), cls: newClassifier(q, LayerIngress, b, cnt, absorbSlot),
		slow: make([]*nbl.NBL, 0, b)}
	s.cls.drop = s.drop
	return s
}

// Poll runs one round of the ingress stage: injected chains first (they
// hold frames already), then one burst from each attached port.
func (s *ingressStage) Poll() int {
	q := s.q
	work := 0
	if !s.rxOnly {
		work = s.pollInjected()
	}
	// Close the receive side of ports being detached: this stage owns it.
	bit := uint64(1) << uint(q.idx)
	for _, p := range q.pl.ports.active() {
		if p.state.Load() == portDraining && p.rxClosed.Load()&bit == 0 {
			p.queues[q.idx].Close(s.frames)
			p.rxClosed.Or(bit)
			work++
		}
	}
	if q.pl.stopRX.Load() {
		return work
	}
	// Absorbed lists come back as injections: keep room for them too.
	budget := min(s.fwd.Free(), cap(s.batch))
	injRoom := q.inj.Free()
	for _, w := range q.workers {
		budget = min(budget, w.absorbIn[LayerIngress].Free())
		for _, l := range w.absorbIn {
			injRoom -= l.Len()
		}
	}
	if len(q.workers) > 0 {
		budget = min(budget, injRoom)
	}
	for _, p := range q.pl.ports.active() {
		if !p.attached() {
			continue
		}
		if budget <= 0 {
			break
		}
		k := p.queues[q.idx].Receive(s.batch[:budget], s.frames)
		if k == 0 {
			continue
		}
		batch := s.batch[:k]
		var touch byte
		bytes := 0
		for _, l := range batch {
			bytes += int(l.DataLen())
			l.VSwitch = nbl.VSwitchMeta{Flags: nbl.MetaSourcePortID | nbl.MetaSourceNICIndex, SourcePortID: p.ID}
			l.Queue = uint16(q.idx)
			// Load each frame's first byte now, all in a row: the header
			// lines (written by the kernel or a NIC, often on another
			// core) are fetched together, not one miss per packet later
			// in the parse.
			if d := l.Data(); len(d) > 0 {
				touch ^= d[0]
			}
		}
		s.touch = touch
		p.rx.add(k)
		p.rxBytes.add(bytes)
		s.cnt.rx.add(k)
		s.process(batch, false)
		work += k
		budget -= k // the links' room is shared by all ports
	}
	return work
}

// pollInjected takes injected chains off the injection link and classifies
// them, as much as the forward link has room for; it returns how many
// lists it moved. Poll starts with it; in RTC it also runs as its own
// stage right after the absorb workers (reinjectStage), so what they
// reinject is forwarded in the same round instead of waiting behind the
// round's TX syscalls.
func (s *ingressStage) pollInjected() int {
	q := s.q
	work := 0
	// Admission: take only what the next links can hold, so a slower stage
	// downstream pushes back to the ports (whose own rings then fill and
	// drop, counted by the port) instead of dropping inside the switch.
	budget := s.fwd.Free()
	for budget >= cap(s.batch) {
		n := q.inj.DequeueBurst(s.injBuf[:min(len(s.injBuf), budget/cap(s.batch))])
		if n == 0 {
			break
		}
		for i := range s.injBuf[:n] {
			inj := &s.injBuf[i]
			inj.Tag()
			rest := inj.Lists
			for rest != nil {
				var batch []*nbl.NBL
				batch, rest = nbl.Split(rest, s.batch[:0])
				s.process(batch, true)
				work += len(batch)
				budget -= len(batch)
			}
			*inj = inject.Injection{}
		}
	}
	return work
}

// reinjectStage is the ingress stage's injection half as a stage of its own.
type reinjectStage struct{ s *ingressStage }

func (r reinjectStage) Poll() int { return r.s.pollInjected() }

// drop ends lists dropped at ingress. Those nothing else can be waiting
// for (a port's original frame, not injected, without clones) go straight
// back to this stage's frame cache, to be received into again, skipping
// the retire link and the completion stage (and the status, which nobody
// reads); the others take that trip. It reorders lists.
func (s *ingressStage) drop(lists []*nbl.NBL, reason DropReason, status inject.Status) {
	q := s.q
	q.dropped(s.cnt, lists, reason)
	local, slow := 0, s.slow[:0]
	for _, l := range lists {
		if !l.InFlight && l.OwnsFrame() && !l.FloodCopy && l.ChildRefCount() == 0 {
			lists[local] = l // compacted in place: the caller is done with lists
			local++
		} else {
			l.Status = int32(status)
			slow = append(slow, l)
		}
	}
	if local > 0 {
		if err := s.frames.Put(lists[:local]); err != nil {
			s.cnt.misuse.add(1)
		}
	}
	if len(slow) > 0 {
		q.retire(slow)
	}
}

// process parses and classifies one batch at the ingress layer and passes
// the permitted lists to the forward link.
func (s *ingressStage) process(batch []*nbl.NBL, injected bool) {
	pl := s.q.pl
	var now int64
	stamps := pl.cfg.StageStamps
	if stamps {
		now = nowNS()
	}
	if injected {
		pl.cfg.Capture.record(batch, CaptureInjected, 0)
	}
	good, bad, gone := s.good[:0], s.bad[:0], s.gone[:0]
	var learned MAC
	learnedSlot := -1
	var src *Port
	if !injected && len(batch) > 0 {
		src = s.last.get(pl.ports, batch[0].VSwitch.SourcePortID) // a received batch comes from one port
	}
	// A received frame whose Ethernet header (both addresses and the
	// ether type, untagged) is the previous good frame's has that frame's
	// incoming values: Poll gave every list of the batch the same
	// metadata. Its values are not parsed again; rep marks it, and the
	// classify pass copies them over if a callout is to see them, or
	// takes the previous verdict (see classifier.pass).
	var prevA, prevB, prevCtx0, prevCtx1 uint64
	prevOK := false
	rep := s.rep
	for _, l := range batch {
		if injected {
			src = s.last.get(pl.ports, l.VSwitch.SourcePortID)
			if l.VSwitch.SourcePortID != 0 && (src == nil || l.VSwitch.SourceNICIndex > src.MaxNIC) {
				gone = append(gone, l) // G2: the port went away
				continue
			}
		}
		if stamps {
			if injected {
				l.Stamps[nbl.StampInject] = now
			} else {
				l.Stamps = [nbl.NumStamps]int64{nbl.StampRX: now} // none left from the frame's last trip
			}
			l.Stamps[nbl.StampClassify] = now
		}
		d := l.Data()
		var a, b uint64
		if len(d) >= 14 && !injected {
			a, b = binary.LittleEndian.Uint64(d[0:8]), binary.LittleEndian.Uint64(d[6:14])
			if prevOK && a == prevA && b == prevB {
				l.Context[0], l.Context[1] = prevCtx0, prevCtx1
				rep[len(good)] = true
				good = append(good, l)
				continue
			}
		}
		in := &s.ins[len(good)]
		rep[len(good)] = false
		var tags uint32
		if et, ok := untagged(d); ok {
			// the common frame parsed in line (parseEthernetTags is too
			// big to inline, and the call was a tenth of this stage)
			setAddrs(in, d)
			setAddrTypes(in)
			in.EtherType, in.VLANID, in.HeaderLen = et, 0, 14
			tags = uint32(et)
			prevA, prevB, prevOK = a, b, !injected
		} else {
			var st parseStatus
			if st, tags = parseEthernetTags(d, in); st != parseOK {
				bad = append(bad, l)
				continue
			}
			prevOK = false // the tag and the inner type are past the 14 bytes compared
		}
		in.VSwitchID = &pl.id
		in.SourcePortID = l.VSwitch.SourcePortID
		in.SourceNICIndex = l.VSwitch.SourceNICIndex
		in.DestPortID = 0
		in.L2Flags = l.VSwitch.L2Flags
		l.Context[0] = uint64(in.MACDestination)
		l.Context[1] = uint64(tags)
		prevCtx0, prevCtx1 = l.Context[0], l.Context[1]
		if in.MACSourceType == MACUnicast && src != nil && (in.MACSource != learned || src.slot != learnedSlot) {
			pl.fdb.learn(in.MACSource, src.slot)
			learned, learnedSlot = in.MACSource, src.slot // a burst mostly has one source
		}
		good = append(good, l)
	}
	if len(gone) > 0 {
		s.drop(gone, DropSourceGone, inject.StatusInvalidDeviceState)
	}
	if len(bad) > 0 {
		s.drop(bad, DropMalformed, inject.StatusInvalidParameter)
	}
	if injected {
		s.cnt.reinjected.add(len(good))
	}
	permitted := s.cls.pass(good, s.ins[:len(good)], rep[:len(good)])
	if n := s.fwd.EnqueueBurst(permitted); n < len(permitted) {
		s.drop(permitted[n:], DropForwardFull, inject.StatusInsufficientResources)
	}
}

// portCache remembers the last port looked up by id, valid for one
// generation of the port table: a batch mostly comes from one port, so the
// table is scanned about once per batch.
type portCache struct {
	id  uint32
	gen uint64
	p   *Port
	ok  bool
}

// get returns the attached port with id, or nil.
func (c *portCache) get(t *portTable, id uint32) *Port {
	gen := t.gen.Load()
	if !c.ok || c.id != id || c.gen != gen {
		c.id, c.gen, c.p, c.ok = id, gen, t.byID(id), true
	}
	if c.p != nil && !c.p.attached() {
		return nil
	}
	return c.p
}
