package dataplane

import (
	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/nbl"
)

// Action is a classify result, FWP_ACTION_TYPE (R39).
type Action uint32

// Classify actions (R39).
const (
	ActionBlock       Action = 0x1001
	ActionPermit      Action = 0x1002
	ActionContinue    Action = 0x2006
	ActionNone        Action = 0x7
	ActionNoneNoMatch Action = 0x8
)

// Rights are FWPS_CLASSIFY_OUT0's rights (R28).
type Rights uint32

// ClassifyFlags are FWPS_CLASSIFY_OUT0's flags (R27). A type of their own,
// so a right cannot be passed for a flag of the same value.
type ClassifyFlags uint32

// Classify-out rights and flags (R27, R28).
const (
	RightActionWrite   Rights        = 0x1 // FWPS_RIGHT_ACTION_WRITE
	ClassifyFlagAbsorb ClassifyFlags = 0x1 // FWPS_CLASSIFY_OUT_FLAG_ABSORB
)

// CalloutFlags are FWP_CALLOUT_FLAG_* values.
type CalloutFlags uint32

// CalloutAllowL2BatchClassify is FWP_CALLOUT_FLAG_ALLOW_L2_BATCH_CLASSIFY
// (R31): the engine may hand the callout several packets per call, and the
// callout may then neither clone nor reference them. This dataplane calls
// such a callout once per packet, as it does every callout, with
// List.BatchClassify set during the call, so the clone call refuses
// (STATUS_INVALID_PARAMETER) as it would for a chain.
const CalloutAllowL2BatchClassify CalloutFlags = 0x80

// ClassifyOut models FWPS_CLASSIFY_OUT0: the callout sets ActionType and
// Flags; Rights says whether it may set the action (R28).
type ClassifyOut struct {
	ActionType Action
	Rights     Rights
	Flags      ClassifyFlags
}

// Absorb sets BLOCK + ABSORB: the callout takes the packet (R27, R29).
// Without the WRITE right it changes nothing and reports false (R28).
func (o *ClassifyOut) Absorb() bool {
	if o.Rights&RightActionWrite == 0 {
		return false
	}
	o.ActionType, o.Flags = ActionBlock, o.Flags|ClassifyFlagAbsorb
	return true
}

// Permit sets PERMIT.
func (o *ClassifyOut) Permit() { o.ActionType = ActionPermit }

// Block sets BLOCK without ABSORB: the packet is dropped and counted. A
// veto needs no right (R28).
func (o *ClassifyOut) Block() { o.ActionType, o.Flags = ActionBlock, o.Flags&^ClassifyFlagAbsorb }

// Classifier is a callout's classify function as an interface, for callout
// types with state of their own (NewCallout takes one).
type Classifier interface {
	Classify(c *Call, out *ClassifyOut)
}

// ClassifyFunc is a classify function; it implements Classifier.
type ClassifyFunc func(c *Call, out *ClassifyOut)

// Classify calls f.
func (f ClassifyFunc) Classify(c *Call, out *ClassifyOut) { f(c, out) }

// WorkerFunc is a callout's worker: it gets the lists the callout absorbed
// (see Callout.Worker).
type WorkerFunc func(w *Worker, absorbed []*nbl.NBL)

// NewCallout returns a callout named name that classifies with c and
// handles what it absorbs with worker (nil: absorbed lists are discarded).
// Like every callout, it does not see the packets it injected itself
// unless SeeOwnInjections is set.
func NewCallout(name string, c Classifier, worker WorkerFunc) *Callout {
	return &Callout{Name: name, Classify: c.Classify, Worker: worker}
}

// InjectedBySelf reports whether the packet being classified was injected
// through the callout's own handle, or is a clone of one it injected
// (INJECTED_BY_SELF or PREVIOUSLY_INJECTED_BY_SELF, R24): a callout must
// permit such a packet and must not modify or pend it (R21, R25).
func (c *Call) InjectedBySelf() bool {
	st, _ := inject.QueryInjectionState(c.Handle, c.List)
	return st == inject.InjectedBySelf || st == inject.PreviouslyInjectedBySelf
}

// Call is one classify invocation: what classifyFn receives. Borrowed: valid
// only during the call; the callout must not keep it.
type Call struct {
	Layer  Layer
	In     *Incoming        // incoming values (R40)
	Meta   *nbl.VSwitchMeta // incoming metadata (R12, R39)
	List   *nbl.NBL         // the packet; owned by the engine unless absorbed
	Handle *inject.Handle   // the callout's injection handle
	Filter string           // the filter that called the callout
}

// Callout is a registered callout. Classify runs on the classify stage for
// every packet a callout filter matches (with CalloutAllowL2BatchClassify,
// with List.BatchClassify set during the call). Returning ActionBlock with ClassifyFlagAbsorb
// takes ownership of the list (R27): the switch moves it to the callout's
// absorb ring and Worker gets it later, out of band (R29).
type Callout struct {
	Name     string
	Flags    CalloutFlags
	Classify ClassifyFunc
	// SeeOwnInjections makes the switch call Classify for the packets the
	// callout injected itself. By default it does not: such a packet is
	// permitted by this callout without a call (R21, R25), which is what
	// every callout that absorbs and reinjects must do anyway, and without
	// which it would inspect its own packets for ever.
	SeeOwnInjections bool
	// Worker runs on the callout's absorb worker with lists the callout
	// absorbed; it owns them and must end each one: reinject it
	// (w.Reinject, or the inject API through w.Handle), discard it
	// (w.Discard), or keep it to end later (w.Hold). While it holds lists,
	// Worker is also called with none whenever nothing new arrived, so it
	// can end held lists on its own time even when no traffic comes (a
	// pool exhausted by held lists brings none). Must not block. A callout
	// that absorbs without a Worker has its absorbed lists discarded.
	Worker WorkerFunc
}

// calloutEntry is a registered callout with its handle and, per queue, the
// absorb links from each layer's classify stage to its worker.
type calloutEntry struct {
	c      *Callout
	id     int
	handle *inject.Handle
}

// absorbReinject indexes Worker.absorbIn after the layers: the link the
// pipelined reinject stage absorbs into.
const (
	absorbReinject = int(numLayers)
	numAbsorbLinks = absorbReinject + 1
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
	in.VSwitchID = &w.q.sw.id
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
			fn = w.q.sw.finishCopyFn
		}
		st := w.ce.handle.InjectVSwitchEthernetIngressAsync(nil, 0, nil, w.q.sw.id[:],
			first.VSwitch.SourcePortID, first.VSwitch.SourceNICIndex, nbl.Link(run), fn, nil)
		if st != inject.StatusSuccess {
			for _, l := range run {
				l.Next = nil
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
			w.injectFailed.add(1)
			w.discarded.add(1)
		} else {
			cl.Context = l.Context
			out = append(out, cl)
		}
		l.Status = int32(inject.StatusSuccess)
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

// Poll is the absorb worker stage: it takes what the classify stages
// absorbed for this callout and hands it to the callout's Worker.
func (w *Worker) Poll() int {
	total := 0
	for layer := range w.absorbIn {
		n := w.absorbIn[layer].DequeueBurst(w.scratch[:cap(w.scratch)])
		if n == 0 {
			continue
		}
		batch := w.scratch[:n]
		if w.q.sw.cfg.StageStamps {
			now := nowNS()
			for _, l := range batch {
				l.Stamps[nbl.StampAbsorb] = now
			}
		}
		if w.q.sw.unloading.Load() || w.ce.c.Worker == nil {
			w.Discard(batch...) // R7: workers free, not inject, while unloading
		} else {
			w.ce.c.Worker(w, batch)
		}
		total += n
	}
	if total == 0 && len(w.held) > 0 && w.ce.c.Worker != nil && !w.q.sw.unloading.Load() {
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
