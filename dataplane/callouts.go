package dataplane

import (
	"sync/atomic"

	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/nbl"
	"golang.org/x/sys/cpu"
)

// NewInspector returns a deferred-inspection callout modelled on
// Microsoft's "inspect" sample: classify PERMITs the packets the callout
// injected itself (R21, R25) and absorbs every other one (BLOCK + ABSORB,
// R27, R29); the worker inspects them out of band (Inspect, if set, sees
// each batch) and reinjects them unmodified (R8). At the egress layer a
// packet switched to several ports is classified once per destination
// (R26): the first copy is reinjected, and the later ones, which carry
// RECLASSIFY_MULTI_DESTINATION, are absorbed and discarded, since the
// reinjected first copy is switched to every destination again. Register
// it, then add a FilterCallout filter naming it at the layer(s) to
// inspect.
func NewInspector(name string, inspect func(batch []*nbl.NBL)) *Callout {
	return &Callout{
		Name:       name,
		permitsOwn: true, // its classify starts with the self check
		Classify: func(c *Call, out *ClassifyOut) {
			switch st, _ := inject.QueryInjectionState(c.Handle, c.List); st {
			case inject.InjectedBySelf, inject.PreviouslyInjectedBySelf:
				out.ActionType = ActionPermit
				return
			}
			if out.Rights&RightActionWrite == 0 {
				return // may not take the packet; let it be (R28)
			}
			out.ActionType = ActionBlock
			out.Flags |= ClassifyFlagAbsorb
		},
		Worker: func(w *Worker, absorbed []*nbl.NBL) {
			if inspect != nil {
				inspect(absorbed)
			}
			w.Reinject(w.DiscardLaterCopies(absorbed))
		},
	}
}

// Counter is a counting and sampling callout for experiments: it PERMITs
// everything, counts packets and bytes per layer, and offers one packet in
// every SampleEvery to Sample (on the classify stage; it must not keep the
// list).
type Counter struct {
	SampleEvery uint64
	Sample      func(layer Layer, c *Call)
	perLayer    [numLayers]struct {
		packets, bytes atomic.Uint64
		_              cpu.CacheLinePad
	}
}

// Callout returns the callout to register for c under name.
func (c *Counter) Callout(name string) *Callout {
	return &Callout{
		Name: name,
		Classify: func(call *Call, out *ClassifyOut) {
			pl := &c.perLayer[call.Layer]
			n := pl.packets.Add(1)
			pl.bytes.Add(uint64(call.List.NB().DataLength))
			if c.Sample != nil && c.SampleEvery > 0 && n%c.SampleEvery == 0 {
				c.Sample(call.Layer, call)
			}
			out.ActionType = ActionContinue
		},
	}
}

// Counts returns packets and bytes seen at layer.
func (c *Counter) Counts(layer Layer) (packets, bytes uint64) {
	pl := &c.perLayer[layer]
	return pl.packets.Load(), pl.bytes.Load()
}
