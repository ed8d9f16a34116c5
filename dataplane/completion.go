package dataplane

import (
	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/nbl"
)

// completionStage ends every list's journey through the switch: lists the
// ports have finished sending, and lists dropped or discarded anywhere
// (the retire link). Flood copies are freed, and a list with copies still
// in flight is held until the last one is done; then an injected list is
// completed through the inject Completer (R18: once each) and an original
// goes back to the frame pool.
type completionStage struct {
	q          *queue
	frames     *nbl.Cache // returns frames to the pool; only this stage uses it
	reserve    *nbl.Cache // frees flood copies
	completer  *inject.Completer
	batch      []*nbl.NBL
	reap       []*nbl.NBL // port reaps: twice a batch, since a driver may return two lists per sent one (a copy and its original)
	done       []*nbl.NBL // injected lists to complete
	spare      []*nbl.NBL // the other half of done's double buffer
	completing bool       // inside completer.Complete: finishCopy may add to done
	free       []*nbl.NBL // originals to return
	held       []*nbl.NBL // lists waiting for their flood copies
	polls      uint32
}

func newCompletion(q *queue) *completionStage {
	b := q.pl.cfg.Batch
	c := &completionStage{q: q, frames: q.txCaches.frames, reserve: q.txCaches.reserve,
		batch: make([]*nbl.NBL, b), reap: make([]*nbl.NBL, 2*b), done: make([]*nbl.NBL, 0, 2*b), spare: make([]*nbl.NBL, 0, 2*b),
		free: make([]*nbl.NBL, 0, 2*b),
		held: make([]*nbl.NBL, 0, 64)}
	c.completer = q.pl.eng.NewCompleter(func(lists []*nbl.NBL) { c.putFrames(lists) })
	return c
}

// Poll runs one round of the completion stage.
func (c *completionStage) Poll() int {
	q, pl := c.q, c.q.pl
	work := 0
	if c.polls++; c.polls&1023 == 0 {
		pl.checkDrivers()
	}
	for _, p := range pl.ports.active() {
		if p.state.Load() == portDraining {
			work += c.drainPort(p)
			continue
		}
		// Reap up to a few batches: falling behind the egress stage
		// fills the driver's TX queue, and then egress waits on us.
		d := p.queues[q.idx]
		for range 4 {
			n := d.Reap(c.reap)
			if n == 0 {
				break
			}
			c.retireBatch(c.reap[:n])
			work += n
			if n < len(c.reap)/2 {
				break
			}
		}
	}
	for {
		n := q.retireL.DequeueBurst(c.batch)
		if n == 0 {
			break
		}
		c.retireBatch(c.batch[:n])
		work += n
		if n < len(c.batch) {
			break
		}
	}
	if len(c.held) > 0 {
		c.checkHeld()
	}
	if work > 0 && q.txCaches != q.rxCaches {
		// Pipelined: this lcore only returns frames; hand them to the
		// pool at once (one lock per round) so the ingress lcore finds them.
		c.frames.Flush()
	}
	return work
}

// retireBatch ends the lists of batch; see completionStage.
func (c *completionStage) retireBatch(batch []*nbl.NBL) {
	for _, l := range batch {
		switch {
		case l.FloodCopy && !l.InFlight:
			c.freeCopy(l)
		case l.ChildRefCount() > 0:
			l.HeldForCopies = true
			c.held = append(c.held, l)
		default:
			c.finish(l)
		}
	}
	c.flush()
}

// freeCopy frees a flood copy and finishes its parent if it was only
// waiting for this copy.
func (c *completionStage) freeCopy(l *nbl.NBL) {
	parent := l.Parent
	one := [1]*nbl.NBL{l}
	if c.reserve.Put(one[:]) != nil {
		c.q.txCnt.misuse.add(1)
		return
	}
	if parent.HeldForCopies && parent.ChildRefCount() == 0 {
		c.unhold(parent)
		c.finish(parent)
	}
}

func (c *completionStage) unhold(l *nbl.NBL) {
	l.HeldForCopies = false
	for i, h := range c.held {
		if h == l {
			c.held = append(c.held[:i], c.held[i+1:]...)
			return
		}
	}
}

// checkHeld finishes held lists whose copies were freed elsewhere (say by
// a callout that absorbed one).
func (c *completionStage) checkHeld() {
	kept := c.held[:0]
	for _, l := range c.held {
		if l.ChildRefCount() == 0 {
			l.HeldForCopies = false
			c.finish(l)
			continue
		}
		kept = append(kept, l)
	}
	c.held = kept
	c.flush()
}

// finish queues a list whose journey ended: injected ones for completion,
// originals for the pool.
func (c *completionStage) finish(l *nbl.NBL) {
	switch {
	case l.InFlight:
		c.done = append(c.done, l)
	case l.OwnsFrame():
		c.free = append(c.free, l)
	default:
		// a clone or allocated list that was never injected cannot reach
		// the switch; count it and give it back to the reserve
		c.q.txCnt.misuse.add(1)
		one := [1]*nbl.NBL{l}
		c.reserve.Put(one[:])
	}
	if len(c.done) == cap(c.done) || len(c.free) == cap(c.free) {
		c.flush()
	}
}

func (c *completionStage) flush() {
	// Completion functions (finishCopy) may finish more lists while we
	// complete: they land in the other buffer and go in the next round.
	for len(c.done) > 0 && !c.completing {
		batch := c.done
		c.done, c.spare = c.spare[:0], batch
		c.q.txCnt.completions.add(len(batch))
		c.completing = true
		c.completer.Complete(batch)
		c.completing = false
	}
	if len(c.free) > 0 {
		c.putFrames(c.free)
		c.free = c.free[:0]
	}
}

func (c *completionStage) putFrames(lists []*nbl.NBL) {
	if err := c.frames.Put(lists); err != nil {
		c.q.txCnt.misuse.add(1)
	}
}

// drainPort reaps a detached port once the ingress stage has closed its
// driver for this queue (the ingress stage owns the receive side), until
// the driver holds nothing; then the port is gone for this queue.
func (c *completionStage) drainPort(p *Port) int {
	bit := uint64(1) << uint(c.q.idx)
	if p.rxClosed.Load()&bit == 0 || p.drained.Load()&bit != 0 {
		return 0
	}
	d := p.queues[c.q.idx]
	work := 0
	for d.Held() > 0 {
		n := d.Reap(c.reap)
		if n == 0 {
			return work
		}
		c.retireBatch(c.reap[:n])
		work += n
	}
	if p.drained.Or(bit)&bit == 0 {
		c.q.pl.ports.drained(p, c.q.idx)
	}
	return work
}
