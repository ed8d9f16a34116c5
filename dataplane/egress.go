package dataplane

import (
	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/nbl"
)

// egressStage forwards: it looks the destination up in the forwarding
// database (or floods), classifies each copy at the egress layer (R26), and
// hands the permitted ones to their port's TX path.
type egressStage struct {
	q       *queue
	reserve *nbl.Cache // flood copies; only this stage takes from it
	batch   []*nbl.NBL
	copies  []*nbl.NBL // lists to classify at egress
	ins     []Incoming
	tx      [maxPorts][]*nbl.NBL // per destination slot
	txUsed  []int                // slots with something in tx
	cls     *classifier
	nodest  []*nbl.NBL
	// fastEgress: the egress layer permits everything (read per burst), so
	// no incoming values are built
	fastEgress bool
	// pending holds, per destination slot, lists the port's TX path could
	// not take yet, in order; while any is pending the stage takes nothing
	// new, so the forward link fills and ingress stops receiving
	// (backpressure to the ports instead of drops in the switch).
	pending  [maxPorts][]*nbl.NBL
	npending int
}

func newEgress(q *queue) *egressStage {
	b := q.pl.cfg.Batch
	s := &egressStage{q: q, reserve: q.txCaches.reserve,
		batch: make([]*nbl.NBL, b), copies: make([]*nbl.NBL, 0, 4*b), ins: make([]Incoming, 4*b),
		txUsed: make([]int, 0, maxPorts), cls: newClassifier(q, LayerEgress, 4*b, q.txCnt, int(LayerEgress)),
		nodest: make([]*nbl.NBL, 0, b)}
	for i := range s.tx {
		s.tx[i] = make([]*nbl.NBL, 0, cap(s.copies))
		s.pending[i] = make([]*nbl.NBL, 0, 2*cap(s.copies))
	}
	return s
}

// Poll runs one round of the egress stage.
func (s *egressStage) Poll() int {
	q, pl := s.q, s.q.pl
	if s.npending > 0 {
		sent := s.retryPending()
		if s.npending > 0 {
			return sent
		}
	}
	n := q.fwd.DequeueBurst(s.batch)
	if q.fwdInj != nil && n < len(s.batch) {
		n += q.fwdInj.DequeueBurst(s.batch[n:])
	}
	if n == 0 {
		return 0
	}
	copies, nodest, noclone := s.copies[:0], s.nodest[:0], 0
	s.fastEgress = pl.filters.Load().layers[LayerEgress].permitAll
	// the last unicast lookup: a burst mostly goes to one destination
	lastDst, lastSlot, haveLast := MAC(0), -1, false
	// and the port of the last slot, checked once per burst (transmit
	// checks again per destination before sending)
	var lastP *Port
	pSlot := -1
	for _, l := range s.batch[:n] {
		dst := MAC(l.Context[0])
		slot := -1
		if haveLast && dst == lastDst {
			slot = lastSlot
		} else if dst.Type() == MACUnicast {
			slot = pl.fdb.lookup(dst)
			lastDst, lastSlot, haveLast = dst, slot, true
		}
		src := l.VSwitch.SourcePortID
		if slot >= 0 { // known unicast destination
			if slot != pSlot {
				lastP, pSlot = pl.ports.slots[slot].Load(), slot
				if lastP != nil && !lastP.attached() {
					lastP = nil
				}
			}
			p := lastP
			if p == nil || p.ID == src {
				nodest = append(nodest, l)
				continue
			}
			if s.fastEgress && len(copies) < cap(copies) {
				// addCopy's common case in line (addCopy is too big to
				// inline): nobody reads the incoming values
				markDest(l, p, 0)
				copies = append(copies, l)
				continue
			}
			copies = s.addCopy(copies, l, p, 0)
			continue
		}
		// unknown unicast, multicast, broadcast: flood (R26)
		first := true
		for _, p := range pl.ports.active() {
			if !p.attached() || p.ID == src {
				continue
			}
			if first {
				copies = s.addCopy(copies, l, p, 0)
				first = false
				continue
			}
			cl := s.reserve.Clone(l)
			if cl == nil {
				noclone++ // this port misses the packet; counted
				continue
			}
			cl.FloodCopy = true
			cl.Context = l.Context
			// a copy of an injected packet is that injection's packet too
			// (R24, G6): the injector's callout must see it as its own
			cl.InjectedBy, cl.InjectContext = l.InjectedBy, l.InjectContext
			q.txCnt.flooded.add(1)
			copies = s.addCopy(copies, cl, p, nbl.L2ReclassifyMultiDestination)
		}
		if first {
			nodest = append(nodest, l)
		}
	}
	q.txCnt.drops[DropCloneExhausted].add(noclone)
	if len(nodest) > 0 {
		q.drop(q.txCnt, nodest, DropNoDestination, inject.StatusInvalidDeviceState)
	}
	permitted := s.cls.pass(copies, s.ins[:len(copies)], nil)
	s.transmit(permitted)
	return n
}

// markDest records destination port p (and L2 flags l2) on l, and p's
// slot for transmit.
func markDest(l *nbl.NBL, p *Port, l2 uint32) {
	l.VSwitch.L2Flags |= l2
	l.VSwitch.DestinationPortID = p.ID
	l.VSwitch.Flags |= nbl.MetaDestinationPortID
	l.Context[1] = l.Context[1]&0xFFFF_FFFF | uint64(p.slot)<<32
}

// addCopy prepares one list for egress classification toward port p.
func (s *egressStage) addCopy(copies []*nbl.NBL, l *nbl.NBL, p *Port, l2 uint32) []*nbl.NBL {
	if len(copies) == cap(copies) { // more copies than scratch: classify what we have
		permitted := s.cls.pass(copies, s.ins[:len(copies)], nil)
		s.transmit(permitted)
		copies = copies[:0]
	}
	markDest(l, p, l2)
	if s.fastEgress {
		return append(copies, l) // nobody looks at the incoming values
	}
	in := &s.ins[len(copies)]
	in.MACDestination = MAC(l.Context[0])
	in.MACDestType = in.MACDestination.Type()
	in.MACSource = macAt(l.Data()[6:]) // parsed at ingress: the frame holds a header
	in.MACSourceType = in.MACSource.Type()
	in.EtherType = uint16(l.Context[1])
	in.VLANID = uint16(l.Context[1] >> 16)
	in.VSwitchID = &s.q.pl.id
	in.SourcePortID = l.VSwitch.SourcePortID
	in.SourceNICIndex = l.VSwitch.SourceNICIndex
	in.DestPortID = p.ID
	in.L2Flags = l.VSwitch.L2Flags
	return append(copies, l)
}

// transmit hands permitted lists to their destination ports' TX paths.
func (s *egressStage) transmit(lists []*nbl.NBL) {
	q, pl := s.q, s.q.pl
	var now int64
	if pl.cfg.StageStamps {
		now = nowNS()
	}
	for _, l := range lists {
		slot := int(l.Context[1] >> 32)
		if len(s.tx[slot]) == 0 {
			s.txUsed = append(s.txUsed, slot)
		}
		if now != 0 {
			l.Stamps[nbl.StampTX] = now
		}
		l.Status = int32(inject.StatusSuccess)
		s.tx[slot] = append(s.tx[slot], l)
	}
	for _, slot := range s.txUsed {
		batch := s.tx[slot]
		s.tx[slot] = batch[:0]
		p := pl.ports.slots[slot].Load()
		if p == nil || !p.attached() {
			q.drop(q.txCnt, batch, DropNoDestination, inject.StatusInvalidDeviceState) // G2
			continue
		}
		s.send(p, slot, batch)
	}
	s.txUsed = s.txUsed[:0]
}

// send hands batch to port p's TX path behind whatever is pending for it;
// what the port cannot take waits in pending (in order), and only what
// does not fit there is dropped and counted.
func (s *egressStage) send(p *Port, slot int, batch []*nbl.NBL) {
	q := s.q
	if p.Checksum() == ChecksumAuto {
		done := 0
		for _, l := range batch {
			if completeChecksumList(l) {
				done++
			}
		}
		p.csumDone.add(done)
	}
	pend := s.pending[slot]
	if len(pend) > 0 {
		p.txFull.add(len(batch)) // behind lists the port refused: none goes straight out
		room := cap(pend) - len(pend)
		if len(batch) > room {
			q.drop(q.txCnt, batch[room:], DropTxFull, inject.StatusInsufficientResources)
			batch = batch[:room]
		}
		s.pending[slot] = append(pend, batch...)
		s.npending += len(batch)
		return
	}
	n := p.queues[q.idx].Transmit(batch)
	p.transmitted(batch[:n])
	q.txCnt.tx.add(n)
	if n < len(batch) {
		p.txFull.add(len(batch) - n)
		s.pending[slot] = append(pend, batch[n:]...)
		s.npending += len(batch) - n
	}
}

// retryPending offers the pending lists to their ports again and returns
// how many went out. Lists for a port that went away are dropped (G2).
func (s *egressStage) retryPending() int {
	q, pl := s.q, s.q.pl
	sent := 0
	for slot := range s.pending {
		pend := s.pending[slot]
		if len(pend) == 0 {
			continue
		}
		p := pl.ports.slots[slot].Load()
		if p == nil || !p.attached() {
			q.drop(q.txCnt, pend, DropNoDestination, inject.StatusInvalidDeviceState)
			s.npending -= len(pend)
			s.pending[slot] = pend[:0]
			continue
		}
		n := p.queues[q.idx].Transmit(pend)
		p.transmitted(pend[:n])
		q.txCnt.tx.add(n)
		sent += n
		s.npending -= n
		s.pending[slot] = pend[:copy(pend, pend[n:])]
	}
	return sent
}
