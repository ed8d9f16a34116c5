package dataplane

import (
	"errors"
	"fmt"
	"sort"

	"github.com/wfpxdp/wfpxdp/inject"
)

// Layer is a vSwitch Ethernet filtering layer.
type Layer uint8

// The two layers (FWPS_LAYER_INGRESS_VSWITCH_ETHERNET and ..._EGRESS_...).
const (
	LayerIngress Layer = iota
	LayerEgress
	numLayers
)

func (l Layer) String() string {
	if l == LayerEgress {
		return "egress"
	}
	return "ingress"
}

// Field names an incoming value a condition tests (R40).
type Field uint8

// Condition fields.
const (
	FieldMACSource Field = iota + 1
	FieldMACDestination
	FieldMACSourceType
	FieldMACDestinationType
	FieldEtherType
	FieldVLANID
	FieldSourcePortID
	FieldDestinationPortID // egress only
	FieldSourceNICIndex
	FieldL2Flags // matches when every bit of Value is set
)

// Condition tests one field: (field & Mask) == (Value & Mask), with Mask 0
// meaning all bits; for FieldL2Flags, field & Value == Value.
type Condition struct {
	Field Field
	Value uint64
	Mask  uint64
}

// FilterAction is what a filter does when its conditions match.
type FilterAction uint8

// Filter actions: FWP_ACTION_PERMIT, FWP_ACTION_BLOCK and
// FWP_ACTION_CALLOUT_TERMINATING (the callout decides).
const (
	FilterPermit FilterAction = iota + 1
	FilterBlock
	FilterCallout
)

// Filter is one filter of a layer. Higher Weight is evaluated first.
type Filter struct {
	// ID is the switch's id for the filter (FwpmFilterAdd0's filterId),
	// set by SetFilters and AddFilter; ignored on input.
	ID         uint64
	Name       string
	Layer      Layer
	Weight     uint64
	Conditions []Condition
	Action     FilterAction
	Callout    string // with FilterCallout: a registered callout's name, or
	// CalloutRef, with FilterCallout: the registered callout itself (a
	// typed reference; the name need not be given then).
	CalloutRef *Callout
	// ClearActionRight makes a PERMIT hard: later (lower-weight) callouts
	// lose the WRITE right and may only veto it with BLOCK (R28).
	ClearActionRight bool
}

// ErrFilter is returned for an invalid filter.
var ErrFilter = errors.New("invalid filter")

const maxConditions = 8

type cond struct {
	field       Field
	value, mask uint64
}

// compiledFilter is a Filter in the form the classify loop evaluates.
type compiledFilter struct {
	weight  uint64
	conds   [maxConditions]cond
	n       int
	action  FilterAction
	callout *calloutEntry
	// classifyFn and handle are the callout's, copied here so the classify
	// loop reaches them without two pointer chases per packet
	classifyFn func(*Call, *ClassifyOut)
	handle     *inject.Handle
	clearRight bool
	batch      bool // the callout allows L2 batch classify (R31)
	permitsOwn bool // the callout permits its own injections without further ado (Callout.permitsOwn)
	name       string
}

// layerSet is the compiled filters of one layer: every filter is in exactly
// one of three lists, chosen by its most selective exact condition, and
// each list is in weight order. A packet is matched against the destination
// MAC list for its destination, the ether type list for its ether type, and
// the wildcard list: three short lists, whatever the number of filters.
type layerSet struct {
	filters  []compiledFilter // in weight order; lists hold indices into it
	byDstMAC keyIndex
	byEType  keyIndex
	wildcard []int32
	callouts bool // some filter of the layer calls a callout
	// permitAll: no filter of the layer can block or call out, so every
	// packet is permitted and the classify pass skips evaluation.
	permitAll bool
}

// filterSet is an immutable compiled filter set for both layers; the
// switch swaps it atomically when filters change.
type filterSet struct {
	layers [numLayers]layerSet
	// handles are the injection handle ids of the callouts some filter of
	// either layer calls: an injection through any other handle has no
	// filter of its owner to see it again (R22).
	handles []uint32
}

// hasHandle reports whether a filter calls the callout owning handle id.
func (fs *filterSet) hasHandle(id uint32) bool {
	for _, h := range fs.handles {
		if h == id {
			return true
		}
	}
	return false
}

func fullMask(f Field) uint64 {
	switch f {
	case FieldMACSource, FieldMACDestination:
		return 0xFFFF_FFFF_FFFF
	case FieldEtherType, FieldVLANID, FieldSourceNICIndex:
		return 0xFFFF
	}
	return 0xFFFF_FFFF
}

func compileFilters(filters []Filter, callouts map[string]*calloutEntry) (*filterSet, error) {
	fs := &filterSet{}
	for layer := Layer(0); layer < numLayers; layer++ {
		var in []Filter
		for _, f := range filters {
			if f.Layer == layer {
				in = append(in, f)
			}
		}
		sort.SliceStable(in, func(i, j int) bool { return in[i].Weight > in[j].Weight })
		ls := &fs.layers[layer]
		byDst := map[uint64][]int32{}
		byET := map[uint64][]int32{}
		for i, f := range in {
			cf, err := compileFilter(f, callouts)
			if err != nil {
				return nil, err
			}
			ls.filters = append(ls.filters, cf)
			ls.callouts = ls.callouts || cf.callout != nil
			if cf.callout != nil && cf.callout.handle != nil && !fs.hasHandle(cf.callout.handle.ID()) {
				fs.handles = append(fs.handles, cf.callout.handle.ID())
			}
			switch key, kind := indexKey(&cf); kind {
			case FieldMACDestination:
				byDst[key] = append(byDst[key], int32(i))
			case FieldEtherType:
				byET[key] = append(byET[key], int32(i))
			default:
				ls.wildcard = append(ls.wildcard, int32(i))
			}
		}
		ls.permitAll = true
		for _, cf := range ls.filters {
			ls.permitAll = ls.permitAll && cf.action == FilterPermit
		}
		ls.byDstMAC = newKeyIndex(byDst)
		ls.byEType = newKeyIndex(byET)
	}
	return fs, nil
}

func compileFilter(f Filter, callouts map[string]*calloutEntry) (compiledFilter, error) {
	cf := compiledFilter{weight: f.Weight, action: f.Action, clearRight: f.ClearActionRight, name: f.Name}
	if len(f.Conditions) > maxConditions {
		return cf, fmt.Errorf("%w %q: %d conditions, at most %d", ErrFilter, f.Name, len(f.Conditions), maxConditions)
	}
	if f.Layer >= numLayers {
		return cf, fmt.Errorf("%w %q: unknown layer %d", ErrFilter, f.Name, f.Layer)
	}
	for i, c := range f.Conditions {
		if c.Field < FieldMACSource || c.Field > FieldL2Flags {
			return cf, fmt.Errorf("%w %q: condition %d: unknown field %d", ErrFilter, f.Name, i, c.Field)
		}
		if c.Field == FieldDestinationPortID && f.Layer != LayerEgress {
			return cf, fmt.Errorf("%w %q: destination port condition on the ingress layer", ErrFilter, f.Name)
		}
		m := c.Mask
		if m == 0 || c.Field == FieldL2Flags {
			m = fullMask(c.Field)
		}
		cf.conds[i] = cond{field: c.Field, value: c.Value & m, mask: m}
	}
	cf.n = len(f.Conditions)
	switch f.Action {
	case FilterPermit, FilterBlock:
	case FilterCallout:
		name := f.Callout
		if f.CalloutRef != nil {
			name = f.CalloutRef.Name
		}
		ce := callouts[name]
		if ce == nil || f.CalloutRef != nil && ce.c != f.CalloutRef {
			return cf, fmt.Errorf("%w %q: callout %q is not registered", ErrFilter, f.Name, name)
		}
		if f.Callout != "" && f.CalloutRef != nil && f.Callout != f.CalloutRef.Name {
			return cf, fmt.Errorf("%w %q: Callout %q and CalloutRef %q name two callouts", ErrFilter, f.Name, f.Callout, f.CalloutRef.Name)
		}
		cf.callout, cf.classifyFn, cf.handle = ce, ce.c.Classify, ce.handle
		cf.batch = ce.c.Flags&CalloutAllowL2BatchClassify != 0
		cf.permitsOwn = ce.c.permitsOwn
	default:
		return cf, fmt.Errorf("%w %q: unknown action %d", ErrFilter, f.Name, f.Action)
	}
	return cf, nil
}

// indexKey picks the list a filter goes into: its exact destination MAC if
// it has one, else its exact ether type, else the wildcard list.
func indexKey(cf *compiledFilter) (uint64, Field) {
	et := -1
	for i := 0; i < cf.n; i++ {
		c := cf.conds[i]
		if c.mask != fullMask(c.field) {
			continue
		}
		if c.field == FieldMACDestination {
			return c.value, FieldMACDestination
		}
		if c.field == FieldEtherType && et < 0 {
			et = i
		}
	}
	if et >= 0 {
		return cf.conds[et].value, FieldEtherType
	}
	return 0, 0
}

// field returns the value of f for a packet.
func (in *Incoming) field(f Field) uint64 {
	switch f {
	case FieldMACSource:
		return uint64(in.MACSource)
	case FieldMACDestination:
		return uint64(in.MACDestination)
	case FieldMACSourceType:
		return uint64(in.MACSourceType)
	case FieldMACDestinationType:
		return uint64(in.MACDestType)
	case FieldEtherType:
		return uint64(in.EtherType)
	case FieldVLANID:
		return uint64(in.VLANID)
	case FieldSourcePortID:
		return uint64(in.SourcePortID)
	case FieldDestinationPortID:
		return uint64(in.DestPortID)
	case FieldSourceNICIndex:
		return uint64(in.SourceNICIndex)
	case FieldL2Flags:
		return uint64(in.L2Flags)
	}
	return 0
}

// matches reports whether every condition of cf holds for in.
func (cf *compiledFilter) matches(in *Incoming) bool {
	for i := 0; i < cf.n; i++ {
		c := &cf.conds[i]
		v := in.field(c.field)
		if c.field == FieldL2Flags {
			if v&c.value != c.value {
				return false
			}
		} else if v&c.mask != c.value {
			return false
		}
	}
	return true
}
