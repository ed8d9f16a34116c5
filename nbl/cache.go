package nbl

import (
	"slices"
	"sync/atomic"
)

// Cache is a per-goroutine cache in front of a Pool, like the per-lcore
// cache of DPDK's mempool: Get and Put touch only the cache, which refills
// from or flushes to the pool half its size at a time.
//
// Threading contract: one goroutine (one pinned stage) uses a Cache; Flush
// must be called by that goroutine, or after it has stopped. No method
// allocates.
type Cache struct {
	pool  *Pool
	objs  []*NBL       // objs[:n] are free descriptors; only the owner touches it
	n     int          // free descriptors held; only the owner writes it
	count atomic.Int32 // mirror of n for Pool.Available; written by the owner
}

// NewCache returns an empty cache of up to size descriptors (at least 2).
func (p *Pool) NewCache(size int) *Cache {
	size = max(size, 2)
	c := &Cache{pool: p, objs: make([]*NBL, size)}
	p.mu.Lock()
	p.caches = append(p.caches, c)
	p.mu.Unlock()
	return c
}

// Release flushes the cache and forgets it: the pool no longer counts it
// (a cache made for one task, such as closing a port, is released after).
// The cache must not be used again.
func (c *Cache) Release() {
	c.Flush()
	p := c.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := slices.Index(p.caches, c); i >= 0 {
		p.caches = slices.Delete(p.caches, i, i+1)
	}
}

// Pool returns the pool behind the cache.
func (c *Cache) Pool() *Pool { return c.pool }

// Len returns the number of free descriptors held by the cache.
func (c *Cache) Len() int { return c.n }

// Get takes up to len(dst) descriptors, from the cache first and then from
// the pool, and returns how many; fewer than asked means exhaustion. The
// caller owns what it got.
func (c *Cache) Get(dst []*NBL) int {
	got := 0
	for got < len(dst) {
		if c.n == 0 {
			c.n = c.pool.Get(c.objs[:len(c.objs)/2+1])
			for _, l := range c.objs[:c.n] {
				l.state = stateFree // held free in the cache
			}
			if c.n == 0 {
				break
			}
		}
		k := min(c.n, len(dst)-got)
		top := c.n - k
		copy(dst[got:], c.objs[top:c.n])
		c.n = top
		got += k
	}
	for _, l := range dst[:got] {
		l.state = stateLive
	}
	c.count.Store(int32(c.n))
	return got
}

// Put returns descriptors to the cache, flushing half of it to the pool when
// it is full; the caller gives up ownership. Misuse is handled as in
// Pool.Put: the descriptor is skipped and counted, the first error returned.
func (c *Cache) Put(src []*NBL) error {
	var err error
	p := c.pool
	for _, l := range src {
		next := l.nb.Next    // a frame descriptor's other buffers go with it
		if p.releasable(l) { // the common case, in line (release is too big to inline)
			l.state = stateFree
			l.reset()
		} else if e := p.release(l); e != nil {
			if err == nil {
				err = e
			}
			continue
		}
		if c.n == len(c.objs) {
			c.flush(len(c.objs) / 2)
		}
		c.objs[c.n] = l
		c.n++
		if next != nil && l.keepFrame {
			c.putChain(next)
		}
	}
	c.count.Store(int32(c.n))
	return err
}

// putChain frees the frame descriptors of the buffers from b on: the rest
// of a multi-buffer packet whose first descriptor was freed.
//
//go:noinline
func (c *Cache) putChain(b *NB) {
	for b != nil {
		l := b.List()
		b = b.Next
		if l.pool != c.pool || l.state != stateLive || !l.keepFrame {
			c.pool.misuse(l)
			continue
		}
		l.state = stateFree
		l.reset()
		if c.n == len(c.objs) {
			c.flush(len(c.objs) / 2)
		}
		c.objs[c.n] = l
		c.n++
	}
}

// Flush returns every descriptor held by the cache to the pool.
func (c *Cache) Flush() {
	c.flush(c.n)
	c.count.Store(0)
}

// flush moves the k most recently cached descriptors to the pool.
func (c *Cache) flush(k int) {
	p := c.pool
	p.mu.Lock()
	p.free = append(p.free, c.objs[c.n-k:c.n]...)
	p.mu.Unlock()
	c.n -= k
}
