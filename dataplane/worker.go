package dataplane

import (
	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/nbl"
)

// Worker is what a callout's worker code gets: the means to end the lists
// it absorbed. One goroutine (the absorb worker's lcore) uses it.
type Worker struct {
	q       *queue
	ce      *calloutEntry
	reserve *nbl.Cache // for clones and allocated lists; only this worker uses it
	scratch []*nbl.NBL
	reinj   []*nbl.NBL // Reinject's scratch (cloneInFlight)
	held    []*nbl.NBL // lists the worker code chose to keep (Hold)
	// heldSpare is the buffer TakeHeld handed out last; the next
	// TakeHeld makes it the held buffer again
	heldSpare []*nbl.NBL

	// absorbIn has one SPSC link per producer: the ingress and egress
	// classify stages, and (pipelined mode) the reinject stage, which
	// classifies injected lists at ingress on the other lcore.
	absorbIn [numAbsorbLinks]link[*nbl.NBL]

	reinjected, discarded, injectFailed counter
	switchID                            inject.GUID // the worker's own copy: SwitchID's slice must not reach the switch's
	discardBuf                          []*nbl.NBL  // Discard's scratch
}

// Handle returns the callout's injection handle.
func (w *Worker) Handle() *inject.Handle { return w.ce.handle }

// SwitchID returns the switch's GUID, for the inject call (R11): a slice
// of the worker's own copy, so writing to it changes nothing but this
// worker's later inject calls.
func (w *Worker) SwitchID() []byte { return w.switchID[:] }

// Incoming returns the incoming values (R40) of a list the worker
// absorbed, as classify saw them: addresses and their types, ether type,
// VLAN id, the switch's id, source port and NIC, L2 flags, and the
// destination port of a list absorbed at egress. It reads the frame's
// Ethernet header again; it does not allocate.
func (w *Worker) Incoming(l *nbl.NBL) Incoming {
	var in Incoming
	parseEthernetTags(l.Data(), &in)
	in.VSwitchID = &w.q.pl.id
	v := &l.VSwitch
	in.SourcePortID, in.SourceNICIndex, in.L2Flags = v.SourcePortID, v.SourceNICIndex, v.L2Flags
	if v.Flags&nbl.MetaDestinationPortID != 0 {
		in.DestPortID = v.DestinationPortID
	}
	return in
}

// Reserve returns the worker's cache of the reserve pool, for
// AllocateCloneNetBufferList and AllocateNetBufferAndNetBufferList.
func (w *Worker) Reserve() *nbl.Cache { return w.reserve }

// Discard ends lists the callout absorbed without reinjecting them
// (silently, R29). Takes ownership.
func (w *Worker) Discard(lists ...*nbl.NBL) {
	// through the worker's own buffer, so that lists does not escape and
	// a call with single lists allocates nothing
	if cap(w.discardBuf) == 0 {
		w.discardBuf = make([]*nbl.NBL, 0, 32)
	}
	for len(lists) > 0 {
		buf := w.discardBuf[:min(len(lists), cap(w.discardBuf))]
		copy(buf, lists)
		lists = lists[len(buf):]
		for _, l := range buf {
			l.Status = int32(inject.StatusSuccess)
		}
		w.q.retire(buf)
		w.discarded.add(len(buf))
	}
}

// DiscardLaterCopies discards the lists of absorbed that are later copies
// of a multi-destination packet (RECLASSIFY_MULTI_DESTINATION, R26) and
// returns the others, in order, in absorbed's storage. A callout that
// absorbs at the egress layer and reinjects the first copy calls it so the
// packet is not delivered once per copy it reinjected.
func (w *Worker) DiscardLaterCopies(absorbed []*nbl.NBL) []*nbl.NBL {
	keep := absorbed[:0]
	for _, l := range absorbed {
		if l.VSwitch.L2Flags&nbl.L2ReclassifyMultiDestination != 0 {
			w.Discard(l)
			continue
		}
		keep = append(keep, l)
	}
	return keep
}

// Reinject reinjects absorbed lists unmodified into the ingress path
// through the callout's handle, one chain per run of lists from the same
// source port and NIC (R8, R12), without a completion function for
// originals (G4) and with the switch's own for its flood copies. Lists the
// engine refuses are discarded and counted (fail closed). Takes ownership.
func (w *Worker) Reinject(lists []*nbl.NBL) {
	lists = w.cloneInFlight(lists)
	for len(lists) > 0 {
		first := lists[0]
		n := 1
		for n < len(lists) && sameSource(lists[n], first) && lists[n].OwnsFrame() == first.OwnsFrame() {
			n++
		}
		run := lists[:n]
		lists = lists[n:]
		var fn nbl.CompleteFunc
		if !first.OwnsFrame() || first.IsClone() {
			fn = w.q.pl.finishCopyFn
		}
		st := w.ce.handle.InjectVSwitchEthernetIngressAsync(nil, 0, nil, w.q.pl.id[:],
			first.VSwitch.SourcePortID, first.VSwitch.SourceNICIndex, nbl.Link(run), fn, nil)
		if st != inject.StatusSuccess {
			for _, l := range run {
				l.Next = nil
				if l.IsClone() && !l.FloodCopy {
					// a clone cloneInFlight made: freed as a copy, and its
					// original, held for it, completes with the refusal
					l.Parent.Status = int32(st)
					l.FloodCopy = true
				}
			}
			w.injectFailed.add(len(run))
			w.Discard(run...)
			continue
		}
		w.reinjected.add(len(run))
	}
}

// cloneInFlight returns lists with every list still in flight for another
// injector (absorbed after another callout reinjected it) replaced by a
// clone: such a list cannot be injected again until it completes (R22b).
// As in Microsoft's inspect sample, the clone is injected and the original
// ends here; the completion stage holds it until the clone is done with
// its data, then completes it to its injector (R34). A list that cannot be
// cloned (reserve exhausted) is discarded and counted.
func (w *Worker) cloneInFlight(lists []*nbl.NBL) []*nbl.NBL {
	inFlight := false
	for _, l := range lists {
		inFlight = inFlight || l.InFlight
	}
	if !inFlight {
		return lists
	}
	out := w.reinj[:0]
	for i, l := range lists {
		if !l.InFlight {
			out = append(out, l)
			continue
		}
		cl := w.reserve.Clone(l)
		if cl == nil {
			// the packet ends here: its injector learns it (R19)
			w.injectFailed.add(1)
			w.discarded.add(1)
			l.Status = int32(inject.StatusInsufficientResources)
		} else {
			cl.Context = l.Context
			out = append(out, cl)
			l.Status = int32(inject.StatusSuccess) // it goes on as the clone
		}
		w.q.retire(lists[i : i+1])
	}
	w.reinj = out[:0]
	return out
}

func sameSource(a, b *nbl.NBL) bool {
	return a.VSwitch.SourcePortID == b.VSwitch.SourcePortID && a.VSwitch.SourceNICIndex == b.VSwitch.SourceNICIndex
}

// Hold keeps a list the worker code wants to end later; it stays counted
// as held by the callout. Release it with Discard or Reinject after
// taking it back with TakeHeld.
func (w *Worker) Hold(l *nbl.NBL) { w.held = append(w.held, l) }

// TakeHeld returns the held lists and forgets them. The slice is the
// worker's: valid until the next TakeHeld (two buffers alternate, so
// holding and taking back allocates nothing once they have grown).
func (w *Worker) TakeHeld() []*nbl.NBL {
	h := w.held
	w.held, w.heldSpare = w.heldSpare[:0], h
	return h
}

// workerStage is a Worker as the lcore runs it: unexported, so that a
// callout's worker code cannot poll its own stage from inside it.
type workerStage struct{ w *Worker }

func (s workerStage) Poll() int { return s.w.poll() }

// poll is the absorb worker stage: it takes what the classify stages
// absorbed for this callout and hands it to the callout's Worker.
func (w *Worker) poll() int {
	total := 0
	for layer := range w.absorbIn {
		n := w.absorbIn[layer].DequeueBurst(w.scratch[:cap(w.scratch)])
		if n == 0 {
			continue
		}
		batch := w.scratch[:n]
		if w.q.pl.cfg.StageStamps {
			now := nowNS()
			for _, l := range batch {
				l.Stamps[nbl.StampAbsorb] = now
			}
		}
		if w.q.pl.unloading.Load() || w.ce.c.Worker == nil {
			w.Discard(batch...) // R7: workers free, not inject, while unloading
		} else {
			w.ce.c.Worker(w, batch)
		}
		total += n
	}
	if total == 0 && len(w.held) > 0 && w.ce.c.Worker != nil && !w.q.pl.unloading.Load() {
		before := len(w.held)
		w.ce.c.Worker(w, nil)
		total += max(0, before-len(w.held)) // lists it ended
	}
	return total
}

// drainHeld discards everything the worker still holds (R7).
func (w *Worker) drainHeld() {
	if len(w.held) > 0 {
		w.Discard(w.held...)
		w.held = w.held[:0]
	}
}
