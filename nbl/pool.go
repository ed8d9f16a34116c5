package nbl

import (
	"sync"
	"sync/atomic"
)

// Pool is a fixed free list of descriptors, a contiguous range of an arena.
//
// Threading contract: Get, Put and NewCache are safe from any goroutine;
// the mutex is taken once per call, so callers move batches (a Cache moves
// half its size at a time). No method allocates.
type Pool struct {
	arena  *Arena
	name   string
	lo, hi uint32 // descriptor index range [lo, hi); read-only

	mu     sync.Mutex
	free   []*NBL   // mu protects free: the free stack
	caches []*Cache // mu protects caches: every cache made by NewCache

	doubleReturns atomic.Uint64 // descriptors returned while already free
	foreign       atomic.Uint64 // descriptors returned to the wrong pool
	busyReturns   atomic.Uint64 // descriptors returned with live clones/references
}

func newPool(a *Arena, name string, lo, hi int) *Pool {
	p := &Pool{arena: a, name: name, lo: uint32(lo), hi: uint32(hi), free: make([]*NBL, 0, hi-lo)}
	for i := hi - 1; i >= lo; i-- { // lowest index on top of the stack
		p.free = append(p.free, &a.descs[i])
	}
	return p
}

// Size returns the number of descriptors the pool owns in all.
func (p *Pool) Size() int { return int(p.hi - p.lo) }

// Name returns "frames" or "reserve".
func (p *Pool) Name() string { return p.name }

// Available returns the number of free descriptors, in the shared list and
// in every cache. Exact only when no cache is in use (a quiescent point).
func (p *Pool) Available() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.free)
	for _, c := range p.caches {
		n += int(c.count.Load())
	}
	return n
}

// Errors returns the misuse counters: descriptors returned twice, returned
// to the wrong pool, and returned while busy (live clones or references).
func (p *Pool) Errors() (doubleReturns, foreign, busy uint64) {
	return p.doubleReturns.Load(), p.foreign.Load(), p.busyReturns.Load()
}

// Get takes up to len(dst) free descriptors into dst and returns how many;
// fewer than asked means the pool is exhausted (callers map that to
// INSUFFICIENT_RESOURCES). The caller owns what it got.
func (p *Pool) Get(dst []*NBL) int {
	p.mu.Lock()
	n := min(len(dst), len(p.free))
	top := len(p.free) - n
	copy(dst, p.free[top:])
	p.free = p.free[:top]
	p.mu.Unlock()
	for _, l := range dst[:n] {
		l.state = stateLive
	}
	return n
}

// Put returns the descriptors of src to the pool; the caller gives up
// ownership. A descriptor that is already free, belongs to another pool, or
// still has live clones or references is skipped and counted, and Put
// returns the first such error; the others are returned normally.
func (p *Pool) Put(src []*NBL) error {
	var err error
	p.mu.Lock()
	for _, l := range src {
		next := l.nb.Next // a frame descriptor's other buffers go with it
		if e := p.release(l); e != nil {
			if err == nil {
				err = e
			}
			continue
		}
		p.free = append(p.free, l)
		for next != nil && l.keepFrame {
			cont := next.List()
			next = cont.nb.Next
			if cont.pool != p || cont.state != stateLive || !cont.keepFrame {
				p.misuse(cont)
				continue
			}
			cont.state = stateFree
			cont.reset()
			p.free = append(p.free, cont)
		}
	}
	p.mu.Unlock()
	return err
}

// releasable reports whether l can go back to p as it is: p's, live, with
// no clones or references outstanding, and not a clone itself (releasing a
// clone also releases its parent's count: release does that). Inlined, it
// lets Cache.Put free the common descriptor without a call.
func (p *Pool) releasable(l *NBL) bool {
	return l.pool == p && l.state == stateLive && l.childRefs.Load()|l.refs.Load() == 0 && l.Parent == nil
}

// release checks that l may be freed into p, resets it, and drops its hold
// on a parent. It does not put l anywhere. Misuse goes to the out-of-line
// misuse.
func (p *Pool) release(l *NBL) error {
	if l.pool != p || l.state != stateLive || l.childRefs.Load()|l.refs.Load() != 0 {
		return p.misuse(l)
	}
	if l.Parent != nil {
		l.Parent.childRefs.Add(-1) // R34: freeing a clone releases its parent
	}
	l.state = stateFree
	l.reset()
	return nil
}

// misuse counts and names why l cannot be released into p.
//
//go:noinline
func (p *Pool) misuse(l *NBL) error {
	switch {
	case l.pool != p:
		p.foreign.Add(1)
		return ErrForeign
	case l.state != stateLive:
		p.doubleReturns.Add(1)
		return ErrDoubleReturn
	default:
		p.busyReturns.Add(1)
		return ErrBusy
	}
}
