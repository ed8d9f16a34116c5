// Package injecttest provides a small virtual switch implementing
// inject.Switch, for testing callouts and the injection model without the
// dataplane: it takes injections off a multi-producer ring, tags them, runs
// an optional classify hook on each list (the "classified again" of R21),
// sets each list's Status and completes it.
//
// In Strict mode an inject call returns only after its whole chain has been
// completed on the completion goroutine, so a caller that touches a list
// after STATUS_SUCCESS finds it already completed (originals are back in
// their pool with every field reset), and the race detector sees the
// conflicting access (R22a).
package injecttest

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/nbl"
	"github.com/wfpxdp/wfpxdp/ring"
)

// ClassifyFunc sees each injected list after tagging, on the completion
// goroutine, and returns the Status to complete it with.
type ClassifyFunc func(l *nbl.NBL) inject.Status

// Switch is a test switch. Build it with New; drive completions either with
// Run on one goroutine or with Drain on one goroutine, not both.
type Switch struct {
	id        inject.GUID
	eng       *inject.Engine
	ring      *ring.MPSC[inject.Injection]
	completer *inject.Completer

	ports    atomic.Pointer[map[uint32]uint16] // port -> highest valid NIC index
	callout  atomic.Bool                       // HasCallouts
	detached atomic.Bool                       // complete everything with INVALID_DEVICE_STATE (G2)
	classify ClassifyFunc                      // set before use; may be nil

	strict   bool
	strictMu sync.Mutex            // serialises strict injections
	strictCh chan inject.Injection // strict: Inject -> Run
	strictOK chan struct{}         // strict: Run -> Inject, chain completed

	scratch []*nbl.NBL // only the completion goroutine uses it

	Injections atomic.Uint64 // injections accepted
	Completed  atomic.Uint64 // lists completed
}

// Options configure a test switch.
type Options struct {
	ID       inject.GUID
	RingSize int // injection ring size (power of two); default 256
	// Strict completes each chain before Inject returns; it needs Run, and
	// a classify hook or completion function must not inject again.
	Strict   bool
	Classify ClassifyFunc // optional hook per injected list
	// Release takes back originals injected without a completion (G4).
	// Default: return them to their frame pool.
	Release func([]*nbl.NBL)
}

// New builds a switch with port 0 only, an ingress callout registered, and
// attaches it to eng.
func New(eng *inject.Engine, opt Options) *Switch {
	size := opt.RingSize
	if size == 0 {
		size = 256
	}
	r, err := ring.NewMPSC[inject.Injection](size)
	if err != nil {
		panic(err) // a test's own bad option
	}
	release := opt.Release
	if release == nil {
		release = func(b []*nbl.NBL) {
			for _, l := range b {
				one := [1]*nbl.NBL{l}
				l.Pool().Put(one[:])
			}
		}
	}
	s := &Switch{
		id: opt.ID, eng: eng, ring: r, classify: opt.Classify, strict: opt.Strict,
		completer: eng.NewCompleter(release),
		strictCh:  make(chan inject.Injection), strictOK: make(chan struct{}),
		scratch: make([]*nbl.NBL, 0, 64),
	}
	s.ports.Store(&map[uint32]uint16{0: 0})
	s.callout.Store(true)
	eng.Attach(s)
	return s
}

// ID implements inject.Switch.
func (s *Switch) ID() inject.GUID { return s.id }

// PortValid implements inject.Switch: port 0 always (R13), others once added.
func (s *Switch) PortValid(port uint32, nic uint16) bool {
	if port == 0 {
		return true
	}
	max, ok := (*s.ports.Load())[port]
	return ok && nic <= max
}

// HasCallouts implements inject.Switch: whatever SetCallouts said, for
// every handle.
func (s *Switch) HasCallouts(uint32) bool { return s.callout.Load() }

// SetCallouts sets what HasCallouts reports (R22).
func (s *Switch) SetCallouts(on bool) { s.callout.Store(on) }

// AddPort makes port valid with NIC indexes 0..maxNIC.
func (s *Switch) AddPort(port uint32, maxNIC uint16) {
	s.editPorts(func(m map[uint32]uint16) { m[port] = maxNIC })
}

// RemovePort removes a port; lists from it still in flight complete with
// STATUS_INVALID_DEVICE_STATE (G2).
func (s *Switch) RemovePort(port uint32) {
	s.editPorts(func(m map[uint32]uint16) { delete(m, port) })
}

func (s *Switch) editPorts(f func(map[uint32]uint16)) {
	old := *s.ports.Load()
	next := make(map[uint32]uint16, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	f(next)
	s.ports.Store(&next)
}

// Detach detaches the switch from its engine; everything still in flight
// completes with STATUS_INVALID_DEVICE_STATE (G2).
func (s *Switch) Detach() {
	s.detached.Store(true)
	s.eng.Detach(s)
}

// Inject implements inject.Switch.
func (s *Switch) Inject(inj inject.Injection) inject.Status {
	if s.strict {
		s.strictMu.Lock()
		defer s.strictMu.Unlock()
		s.Injections.Add(1)
		s.strictCh <- inj
		<-s.strictOK
		return inject.StatusSuccess
	}
	if s.ring.EnqueueBulk([]inject.Injection{inj}) == 0 {
		return inject.StatusInsufficientResources
	}
	s.Injections.Add(1)
	return inject.StatusSuccess
}

// Pending returns the injections queued and not yet taken.
func (s *Switch) Pending() int { return s.ring.Len() }

// Run completes injections until ctx ends, then drains what is queued.
func (s *Switch) Run(ctx context.Context) {
	var batch [16]inject.Injection
	for {
		select {
		case <-ctx.Done():
			s.Drain()
			return
		case inj := <-s.strictCh:
			s.process(&inj)
			s.strictOK <- struct{}{}
			continue
		default:
		}
		n := s.ring.DequeueBurst(batch[:])
		for i := range batch[:n] {
			s.process(&batch[i])
		}
		if n == 0 {
			select {
			case <-ctx.Done():
			case inj := <-s.strictCh:
				s.process(&inj)
				s.strictOK <- struct{}{}
			default:
			}
		}
	}
}

// Drain completes every queued injection on the calling goroutine and
// returns how many injections it took.
func (s *Switch) Drain() int {
	var batch [16]inject.Injection
	total := 0
	for {
		n := s.ring.DequeueBurst(batch[:])
		if n == 0 {
			return total
		}
		for i := range batch[:n] {
			s.process(&batch[i])
		}
		total += n
	}
}

// process tags one injection, classifies and completes its lists.
func (s *Switch) process(inj *inject.Injection) {
	inj.Tag()
	rest := inj.Lists
	for rest != nil {
		s.scratch, rest = nbl.Split(rest, s.scratch[:0])
		for _, l := range s.scratch {
			st := inject.StatusSuccess
			switch {
			case s.detached.Load() || !s.PortValid(l.VSwitch.SourcePortID, l.VSwitch.SourceNICIndex):
				st = inject.StatusInvalidDeviceState // G2
			case s.classify != nil:
				st = s.classify(l)
			}
			l.Status = int32(st)
		}
		s.Completed.Add(uint64(len(s.scratch)))
		s.completer.Complete(s.scratch)
	}
}

// Completer returns the switch's completer (for its counters).
func (s *Switch) Completer() *inject.Completer { return s.completer }
