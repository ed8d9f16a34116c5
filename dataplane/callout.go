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
// handles what it absorbs with worker (nil: absorbed lists are
// discarded). It permits the packets it injected itself before c sees
// them (INJECTED_BY_SELF and PREVIOUSLY_INJECTED_BY_SELF, R21, R25): the
// check every absorbing callout must make, or it would inspect its own
// reinjections for ever. A callout that must see them is built as a
// Callout literal instead.
func NewCallout(name string, c Classifier, worker WorkerFunc) *Callout {
	return &Callout{Name: name, Worker: worker, permitsOwn: true, Classify: func(call *Call, out *ClassifyOut) {
		if call.InjectedBySelf() {
			out.Permit()
			return
		}
		c.Classify(call, out)
	}}
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
	// permitsOwn says Classify permits, and does nothing else for, the
	// packets the callout injected itself (R21, R25): set for the
	// callouts NewCallout and NewInspector make, whose classify starts
	// with that check, so the switch may take the PERMIT without the
	// call. A callout built as a literal is called for every packet its
	// filters match, its own injections included, as in WFP.
	permitsOwn bool
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
