package dataplane

import (
	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/nbl"
)

// verdict is the outcome of one classify pass for one packet.
type verdict uint8

const (
	verdictPermit verdict = iota
	verdictBlock
	verdictAbsorb
)

// classify evaluates the layer's filters for one packet in weight order;
// the destination-MAC list, the ether-type list and the wildcard list are
// merged on the fly (each is already in weight order). A BLOCK, from a
// filter or a callout, ends the evaluation: a veto needs no right (R28).
// A PERMIT does not end it, so a later callout can still veto; with
// ClearActionRight it takes the WRITE right from every callout after it,
// which may then only veto (R28). BLOCK with ABSORB hands the packet to the
// callout (R27). While unloading, callouts are not called and count as
// PERMIT (R7). Without a BLOCK the packet is permitted.
//
// called reports whether a callout's classify function ran: a verdict
// reached without one depends on the incoming values, the list's
// injection tag and the filters alone.
func (ls *layerSet) classify(c *Call, out *ClassifyOut, unloading bool) (v verdict, ce *calloutEntry, called bool) {
	if len(ls.filters) == 0 {
		return verdictPermit, nil, false
	}
	in := c.In
	a := ls.byDstMAC.get(uint64(in.MACDestination))
	b := ls.byEType.get(uint64(in.EtherType))
	w := ls.wildcard
	rights := RightActionWrite
	for {
		// the next filter is the lowest index (highest weight) at a head
		next := int32(len(ls.filters))
		if len(a) > 0 {
			next = a[0]
		}
		if len(b) > 0 && b[0] < next {
			next = b[0]
		}
		if len(w) > 0 && w[0] < next {
			next = w[0]
		}
		if next == int32(len(ls.filters)) {
			return verdictPermit, nil, called
		}
		switch {
		case len(a) > 0 && a[0] == next:
			a = a[1:]
		case len(b) > 0 && b[0] == next:
			b = b[1:]
		default:
			w = w[1:]
		}
		f := &ls.filters[next]
		if !f.matches(in) {
			continue
		}
		switch f.action {
		case FilterBlock:
			return verdictBlock, nil, called
		case FilterPermit:
			if f.clearRight {
				rights = 0
			}
		case FilterCallout:
			if unloading {
				continue
			}
			if f.permitsOwn && ownInjection(c.List, f.handle) {
				// the callout's own packet, which its classify would
				// permit and nothing else (R21, R25): the same, uncalled
				continue
			}
			*out = ClassifyOut{ActionType: ActionContinue, Rights: rights}
			c.Filter = f.name
			c.Handle = f.handle
			called = true
			if f.batch {
				// R31: in batch mode the callout may not clone or
				// reference; the clone call refuses while this is set
				c.List.BatchClassify = true
				f.classifyFn(c, out)
				c.List.BatchClassify = false
			} else {
				f.classifyFn(c, out)
			}
			if out.ActionType == ActionBlock {
				if out.Flags&ClassifyFlagAbsorb != 0 {
					return verdictAbsorb, f.callout, true
				}
				return verdictBlock, nil, true
			}
			if out.Rights&RightActionWrite == 0 {
				rights = 0 // the callout gave up its right (R30)
			}
		}
	}
}

// ownInjection reports whether l was injected through h, or is a clone of
// a list that was (R24's two self states). A list that came from a port,
// the common case, costs two loads.
func ownInjection(l *nbl.NBL, h *inject.Handle) bool {
	if l == nil || l.InjectedBy == 0 && l.Parent == nil {
		return false
	}
	st, _ := inject.QueryInjectionState(h, l)
	return st == inject.InjectedBySelf || st == inject.PreviouslyInjectedBySelf
}

// sameValues reports whether two packets have the same incoming values for
// every field a condition can test (the address types and the header
// length follow from the others; the switch id is the same).
func sameValues(a, b *Incoming) bool {
	return a.MACDestination == b.MACDestination && a.MACSource == b.MACSource &&
		a.EtherType == b.EtherType && a.VLANID == b.VLANID && a.SourcePortID == b.SourcePortID &&
		a.DestPortID == b.DestPortID && a.SourceNICIndex == b.SourceNICIndex && a.L2Flags == b.L2Flags
}

// classifier runs classify passes over batches and routes the results:
// permitted lists are returned, blocked ones retired with a drop reason,
// absorbed ones moved to their callout's absorb link. One per stage; its
// scratch is reused, nothing is allocated.
type classifier struct {
	q      *queue
	layer  Layer
	call   Call
	out    ClassifyOut // passed to callouts; reused so nothing escapes per packet
	permit []*nbl.NBL
	drops  []*nbl.NBL
	absorb [][]*nbl.NBL   // per callout id
	cnt    *stageCounters // the owning stage's
	// drop ends lists the pass drops: the owning stage's way (the ingress
	// stage returns originals to its frame cache itself)
	drop    func(lists []*nbl.NBL, reason DropReason, status inject.Status)
	absorbL []link[*nbl.NBL] // per callout id: the worker's absorbIn this classifier feeds
}

// newClassifier returns a classifier for layer counting into cnt and
// absorbing into each worker's absorbIn[slot] (the stage's own link).
func newClassifier(q *queue, layer Layer, batch int, cnt *stageCounters, slot int) *classifier {
	c := &classifier{q: q, layer: layer, cnt: cnt, drop: func(lists []*nbl.NBL, reason DropReason, status inject.Status) {
		q.drop(cnt, lists, reason, status)
	}, permit: make([]*nbl.NBL, 0, batch), drops: make([]*nbl.NBL, 0, batch)}
	for _, w := range q.workers {
		c.absorb = append(c.absorb, make([]*nbl.NBL, 0, batch))
		c.absorbL = append(c.absorbL, w.absorbIn[slot])
	}
	c.call.Layer = layer
	return c
}

// pass classifies batch (ins[i] are the incoming values of batch[i]) and
// returns the permitted lists, in order: in the classifier's scratch, or
// batch itself when the layer permits everything.
//
// rep, when not nil, marks lists whose incoming values were not filled in
// because they equal the previous list's: the pass copies them over when
// it classifies such a list, or takes the previous verdict.
func (c *classifier) pass(batch []*nbl.NBL, ins []Incoming, rep []bool) []*nbl.NBL {
	pl := c.q.pl
	ls := &pl.filters.Load().layers[c.layer]
	unloading := pl.unloading.Load()
	c.permit, c.drops = c.permit[:0], c.drops[:0]
	c.cnt.classified.add(len(batch))
	if ls.permitAll {
		return batch
	}
	absorbed := 0
	// Without callouts a verdict is a function of the incoming values
	// alone, so a packet with the same values as the one before (the
	// common case in a burst of one flow) takes its verdict as is. A
	// callout sees every packet; but where the last verdict was reached
	// without calling one (every callout that matched had injected the
	// list itself and permits its own packets: Callout.permitsOwn), it
	// depends on the values and the injection tag only, so a list with the
	// same values and tag takes it too: a run of reinjected lists is
	// classified once.
	memoAll := !ls.callouts
	var last verdict
	lastCalled, lastBy := true, uint32(0)
	ref := -1
	for i, l := range batch {
		var v verdict
		var ce *calloutEntry
		// ins[ref] holds the values last verdict was given for; a list
		// marked rep has the values of the one before it, which are
		// ins[ref]'s, whether or not they were copied.
		r := i < len(rep) && rep[i]
		memo := memoAll || !lastCalled && l.InjectedBy == lastBy && l.Parent == nil
		if memo && ref >= 0 && (r || sameValues(&ins[i], &ins[ref])) {
			v = last
		} else {
			if r {
				ins[i] = ins[ref]
			}
			ref = i
			c.call.In, c.call.Meta, c.call.List = &ins[i], &l.VSwitch, l
			var called bool
			v, ce, called = ls.classify(&c.call, &c.out, unloading)
			last = v
			// a clone's self-ness follows its parents: no memo from it
			lastCalled, lastBy = called || l.Parent != nil, l.InjectedBy
		}
		switch v {
		case verdictPermit:
			c.permit = append(c.permit, l)
		case verdictBlock:
			c.drops = append(c.drops, l) // c.drop sets the status where it is read
		case verdictAbsorb:
			c.absorb[ce.id] = append(c.absorb[ce.id], l)
			absorbed++
		}
	}
	c.call = Call{Layer: c.layer}
	cnt := c.cnt
	if len(c.drops) > 0 {
		reason := DropBlocked
		if c.layer == LayerEgress {
			reason = DropEgressBlocked
		}
		c.drop(c.drops, reason, inject.StatusFwpDropNoICMP)
	}
	if absorbed > 0 {
		for id, lists := range c.absorb {
			if len(lists) == 0 {
				continue
			}
			// copied before the worker can have them
			c.q.pl.cfg.Capture.record(lists, CaptureAbsorbed, 0)
			n := c.absorbL[id].EnqueueBurst(lists)
			cnt.absorbed.add(n)
			if n < len(lists) { // the worker is behind: fail closed (R29)
				c.drop(lists[n:], DropAbsorbFull, inject.StatusInsufficientResources)
			}
			c.absorb[id] = lists[:0]
		}
	}
	return c.permit
}
