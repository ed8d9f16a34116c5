package dataplane

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/nbl"
)

// plane is the data plane of one Start: the queues with their stages, and
// everything those stages read of the switch. Start builds a new one each
// time, with new queues, workers for the callouts registered then and
// links sized by the configuration; the stages hold the plane, never the
// Switch, so the configuration methods cannot reach into a running stage.
//
// What may change while traffic flows is reached through the structures
// that publish it atomically from one batch to the next: the filter set
// (an atomic pointer to an immutable compiled set), the port table (an
// atomic pointer to an immutable list of ports, with a generation number)
// and the forwarding table (atomic slots). Everything else is fixed for
// the plane's life: the configuration, the switch's id, the callout
// table, the stop and unload flags of this run and the completion hook for
// flood copies.
type plane struct {
	cfg      Config
	id       inject.GUID
	arena    *nbl.Arena
	eng      *inject.Engine
	fdb      *macTable
	ports    *portTable
	filters  *atomic.Pointer[filterSet]
	callouts []*calloutEntry // by id, as registered before Start
	queues   []*queue

	unloading atomic.Bool   // R7: classify permits instead of calling callouts
	stopRX    atomic.Bool   // drain: no more receiving
	stop      chan struct{} // closed to stop the lcores

	// finishCopyFn is finishCopy as a func value, made once: a method
	// value taken per reinjection would allocate.
	finishCopyFn nbl.CompleteFunc

	// base is the counters of the planes before this one, so that Stats
	// counts from New, not from the last Start.
	base Stats
}

// newPlane builds the data plane for the switch's configuration, ports,
// filters and callouts as they are now; mu must be held.
func (sw *Switch) newPlane() (*plane, error) {
	pl := &plane{cfg: sw.cfg, id: sw.id, arena: sw.arena, eng: sw.eng, fdb: sw.fdb, ports: &sw.ports,
		filters: &sw.filters, callouts: append([]*calloutEntry(nil), sw.calloutList...),
		stop: make(chan struct{})}
	pl.finishCopyFn = pl.finishCopy
	for i := 0; i < sw.cfg.Queues; i++ {
		q, err := newQueue(pl, i)
		if err != nil {
			pl.release()
			return nil, err
		}
		pl.queues = append(pl.queues, q)
	}
	return pl, nil
}

// release gives back what the plane registered elsewhere: its descriptor
// caches (emptied into the pools) and its completers. Only once its
// stages have stopped and drained.
func (pl *plane) release() {
	for _, q := range pl.queues {
		q.rxCaches.release()
		if q.txCaches != q.rxCaches {
			q.txCaches.release()
		}
		q.completion.completer.Release()
	}
}

// finishCopy is the completion function for flood copies a callout
// reinjected (Worker.Reinject): it runs on the completion stage.
func (pl *plane) finishCopy(_ any, l *nbl.NBL, _ bool) {
	q := pl.queues[int(l.Queue)%len(pl.queues)]
	q.completion.freeCopy(l)
}

// quiesce polls every stage on the calling goroutine until a long run of
// rounds moves nothing and every link is empty, or ctx ends.
func (pl *plane) quiesce(ctx context.Context) {
	for quiet := 0; quiet < 64 && ctx.Err() == nil; {
		work := 0
		for _, q := range pl.queues {
			work += q.ingress.Poll()
			if q.reinj != nil {
				work += q.reinj.pollInjected()
			}
			for _, w := range q.workers {
				work += w.poll()
			}
			work += q.egress.Poll()
			work += q.completion.Poll()
			work += q.inFlight()
		}
		if work == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
}

// inFlight counts the lists in the plane's links and held by its stages.
func (pl *plane) inFlight() int {
	n := 0
	for _, q := range pl.queues {
		n += q.inFlight()
	}
	return n
}

func (pl *plane) flushCaches() {
	for _, q := range pl.queues {
		q.rxCaches.flush()
		q.txCaches.flush()
	}
}

// checkDrivers detaches ports whose driver reports a failure; the
// completion stages then drain them like a RemovePort.
func (pl *plane) checkDrivers() {
	for i := range pl.ports.slots {
		p := pl.ports.slots[i].Load()
		if p == nil || !p.attached() {
			continue
		}
		for _, d := range p.queues {
			f, ok := d.(Failer)
			if !ok {
				continue
			}
			if err := f.Err(); err != nil && p.state.CompareAndSwap(portAttached, portDraining) {
				failure := err // a copy: taking err's address would heap-allocate it on every check
				p.failure.Store(&failure)
				pl.ports.fail(p.ID, err)
				pl.fdb.forget(p.slot)
				pl.ports.changed()
				break
			}
		}
	}
}

// portTable is the switch's ports: slots by index (the forwarding table's
// values) and the list of ports in use, both published atomically so the
// stages read them without a lock.
type portTable struct {
	slots [maxPorts]atomic.Pointer[Port]
	gen   atomic.Uint64 // bumped on every port add and remove
	// list is a snapshot of the non-nil slots, rebuilt on every change,
	// so the stages loop over the ports there are, not 64 slots.
	list atomic.Pointer[[]*Port]

	mu     sync.Mutex       // serialises changed; protects failed
	failed map[uint32]error // ports detached because their driver failed
}

// active returns the ports in use (attached or draining).
func (t *portTable) active() []*Port {
	if a := t.list.Load(); a != nil {
		return *a
	}
	return nil
}

// byID returns the port in use with id, or nil.
func (t *portTable) byID(id uint32) *Port {
	for _, p := range t.active() {
		if p.ID == id {
			return p
		}
	}
	return nil
}

// changed rebuilds the list of ports in use and invalidates the stages'
// port caches.
func (t *portTable) changed() {
	t.mu.Lock()
	defer t.mu.Unlock()
	var act []*Port
	for i := range t.slots {
		if p := t.slots[i].Load(); p != nil {
			act = append(act, p)
		}
	}
	t.list.Store(&act)
	t.gen.Add(1)
}

// fail records why the switch detached port id itself.
func (t *portTable) fail(id uint32, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.failed == nil {
		t.failed = map[uint32]error{}
	}
	t.failed[id] = err
}

// failure returns what fail recorded for id.
func (t *portTable) failure(id uint32) (error, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	err, ok := t.failed[id]
	return err, ok
}

// gone removes a port whose drivers hold nothing any more.
func (t *portTable) gone(p *Port) {
	p.state.Store(portGone)
	t.slots[p.slot].CompareAndSwap(p, nil)
	t.changed()
	close(p.closed)
}

// drained records that queue qi has finished draining detached port p;
// after the last queue the port is gone.
func (t *portTable) drained(p *Port, qi int) {
	if p.drainedQueues.Add(1) == int32(len(p.queues)) {
		t.gone(p)
	}
}
