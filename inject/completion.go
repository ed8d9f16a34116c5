package inject

import (
	"slices"
	"sync/atomic"

	"github.com/wfpxdp/wfpxdp/nbl"
)

// Completer runs the completions of injected lists: the completion stage of
// the dataplane owns one.
//
// Threading contract: one goroutine calls Complete, always the same one
// (its id is recorded on first use to catch Destroy from inside a
// completion function, G5). Several Completers may run on different
// goroutines.
type Completer struct {
	eng        *Engine
	release    func([]*nbl.NBL) // takes back originals injected without a completion (G4)
	goid       atomic.Uint64    // the goroutine that calls Complete; set on first use
	inCallback atomic.Bool      // true while Complete runs completion functions
	originals  []*nbl.NBL       // scratch; only the owner goroutine touches it

	completed atomic.Uint64 // lists completed, with or without a function
	panics    atomic.Uint64 // completion functions that panicked
}

// NewCompleter returns a Completer for e. release takes ownership of the
// originals that were injected without a completion function and must
// return their frames to their owner (the pool, or the fill ring) without
// blocking (G4).
func (e *Engine) NewCompleter(release func([]*nbl.NBL)) *Completer {
	c := &Completer{eng: e, release: release, originals: make([]*nbl.NBL, 0, 64)}
	e.mu.Lock()
	e.completers = append(e.completers, c)
	e.mu.Unlock()
	return c
}

// Counts returns the lists completed and the completion functions that
// panicked (each such list still counts as completed).
func (c *Completer) Counts() (completed, panics uint64) {
	return c.completed.Load(), c.panics.Load()
}

// Complete finishes a batch of injected lists, each with its Status already
// set by whoever finished it (R19), and takes ownership of them. For each
// list, in order: Next is cut (G3), InFlight cleared, then either its
// completion function runs exactly once with its completion context and
// dispatchLevel false (R18, R37), or, for an original injected without one,
// the list goes back through release (G4). Then the handle's pending count
// drops, which lets a Destroy waiting on it return (R4). A completion
// function that panics is contained and counted; its list counts as
// completed and belongs to the callout as usual. Does not allocate.
func (c *Completer) Complete(batch []*nbl.NBL) {
	if c.goid.Load() == 0 {
		c.goid.Store(goid())
	}
	var h *Handle
	var run int64 // lists of h completed since the last release
	c.inCallback.Store(true)
	for _, l := range batch {
		id := l.InjectedBy
		if h == nil || h.id != id {
			if h != nil {
				h.release(run)
			}
			h, run = c.eng.handle(id), 0
		}
		fn, ctx := l.Complete, l.CompleteContext
		l.Next = nil // G3
		l.InFlight = false
		if fn == nil {
			c.originals = append(c.originals, l)
			if len(c.originals) == cap(c.originals) {
				c.flushOriginals()
			}
		} else {
			c.call(fn, ctx, l)
		}
		run++
	}
	c.inCallback.Store(false)
	if h != nil {
		h.release(run)
	}
	c.flushOriginals()
	c.completed.Add(uint64(len(batch)))
}

// call runs one completion function with panics contained.
func (c *Completer) call(fn nbl.CompleteFunc, ctx any, l *nbl.NBL) {
	defer func() {
		if r := recover(); r != nil {
			c.panics.Add(1)
			c.eng.misuse.completionPanics.Add(1)
		}
	}()
	fn(ctx, l, false)
}

func (c *Completer) flushOriginals() {
	if len(c.originals) > 0 {
		c.release(c.originals)
		c.originals = c.originals[:0]
	}
}

// Rebind forgets the goroutine recorded on first use, so the next Complete
// records its caller: for handing the completion stage to another
// goroutine (say, the one that drains a stopped switch). Call it only while
// no Complete runs.
func (c *Completer) Rebind() { c.goid.Store(0) }

// Release unregisters the Completer from its engine, for an owner that
// is done with it (a switch's data plane that a later Start replaces).
// Call it only while no Complete runs; the Completer must not be used
// after.
func (c *Completer) Release() {
	e := c.eng
	e.mu.Lock()
	defer e.mu.Unlock()
	if i := slices.Index(e.completers, c); i >= 0 {
		e.completers = slices.Delete(e.completers, i, i+1)
	}
}
