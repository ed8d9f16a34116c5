package dataplane

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/wfpxdp/wfpxdp/inject"
)

// Start builds the data plane (the queues' pipelines, with a worker for
// each callout registered by now), places its stages on lcores per the
// mode and starts them. It returns once every lcore has polled its stages
// once, so the ports are ready to receive when the caller sends. ctx
// bounds that start only: if it ends first, Start stops what it started
// and returns ctx's error; cancelling it later does not stop the switch.
// Every Start builds a new data plane; counters carry on from the last.
func (sw *Switch) Start(ctx context.Context) error {
	sw.life.Lock()
	defer sw.life.Unlock()
	if sw.closed.Load() {
		return ErrClosed
	}
	if sw.running.Load() {
		return ErrRunning
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	base, err := sw.retirePlane(ctx)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	sw.mu.Lock()
	pl, err := sw.newPlane()
	if err != nil {
		sw.mu.Unlock()
		return fmt.Errorf("start: %w", err)
	}
	pl.base = base
	sw.lcores = sw.buildLcores(pl)
	parts := make([]string, len(sw.lcores))
	for i, lc := range sw.lcores {
		parts[i] = lc.String()
	}
	sw.plan = fmt.Sprintf("%s, %s links: %s", sw.cfg.Mode, sw.cfg.Link, strings.Join(parts, " "))
	sw.cur.Store(pl)
	sw.running.Store(true)
	sw.started.Store(true)
	sw.accepting.Store(true)
	lcores := sw.lcores
	sw.mu.Unlock()
	var started sync.WaitGroup
	for _, lc := range lcores {
		sw.wg.Add(1)
		started.Add(1)
		go func() {
			defer sw.wg.Done()
			lc.Run(pl.stop, started.Done)
		}()
	}
	ready := make(chan struct{})
	go func() {
		started.Wait()
		close(ready)
	}()
	select {
	case <-ready:
	case <-ctx.Done():
		dctx, cancel := context.WithTimeout(context.Background(), DefaultDrainTimeout)
		defer cancel()
		if err := sw.stopLocked(dctx); err != nil {
			return fmt.Errorf("start: %w (stopping: %v)", ctx.Err(), err)
		}
		return fmt.Errorf("start: %w", ctx.Err())
	}
	if n := sw.cfg.LcoreNice; n != 0 && !sw.cfg.NoPin {
		note := fmt.Sprintf(" (lcores at nice %d)", n)
		for _, lc := range lcores {
			if e := lc.niceErr.Load(); e != nil {
				note = fmt.Sprintf(" (lcore nice %d refused: %v)", n, *e)
				break
			}
		}
		sw.mu.Lock()
		sw.plan += note
		sw.mu.Unlock()
	}
	return nil
}

// ErrInFlight is returned by Start when lists the last Stop could not
// drain are still in the old data plane: starting would lose them.
var ErrInFlight = errors.New("lists still in flight from the last stop")

// retirePlane gives back the caches of the last Start's data plane and
// returns its counters with those of the planes before it, for the next
// plane to count on from; it first drains what a Stop cut short left in
// it (bounded by ctx). life must be held and the switch stopped.
func (sw *Switch) retirePlane(ctx context.Context) (Stats, error) {
	old := sw.cur.Load()
	if old == nil {
		return Stats{Drops: map[string]uint64{}}, nil
	}
	if old.inFlight() > 0 {
		old.quiesce(ctx)
		old.flushCaches()
		if n := old.inFlight(); n > 0 {
			return Stats{}, fmt.Errorf("%w: %d (Stop again with a longer deadline)", ErrInFlight, n)
		}
	}
	base := old.base.plus(old.stats())
	old.release()
	return base, nil
}

// Plan returns the core plan in force, e.g.
// "rtc, ring links: cpu1[q0.ingress,q0.egress,q0.completion]".
func (sw *Switch) Plan() string {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.plan
}

// ErrLeak is returned by Stop when frames are missing after the drain.
var ErrLeak = errors.New("frames missing after drain")

// ErrClosed is returned by Start, AddPort and RegisterCallout after Close.
var ErrClosed = errors.New("switch is closed")

// DefaultDrainTimeout bounds how long Close waits for the stages to
// drain; Stop takes its bound from its context.
const DefaultDrainTimeout = 5 * time.Second

// Stop drains the switch and stops its lcores, in the order of R7: from now
// on classify permits instead of calling callouts, and workers discard
// instead of reinjecting; nothing more is received; the lcores stop; then
// the stages run on the calling goroutine until every ring is empty, every
// injection has completed and every frame not held by a port is back in
// the pool, or ctx ends: then whatever has not drained is reported
// (ErrLeak, wrapped, with the numbers) rather than waited for, and the
// next Start tries the drain again before it builds a new plane. The
// switch may be started again. Stop may be called from any goroutine,
// also while another Stop or Close runs (it then waits for that one); on
// a stopped switch it does nothing.
func (sw *Switch) Stop(ctx context.Context) error {
	sw.life.Lock()
	defer sw.life.Unlock()
	return sw.stopLocked(ctx)
}

// stopLocked is Stop; life must be held.
func (sw *Switch) stopLocked(ctx context.Context) error {
	if !sw.running.Load() {
		return nil
	}
	pl := sw.cur.Load()
	pl.unloading.Store(true)
	pl.stopRX.Store(true)
	close(pl.stop)
	sw.wg.Wait()
	for _, q := range pl.queues {
		q.completion.completer.Rebind()
	}
	pl.quiesce(ctx)
	for _, q := range pl.queues {
		for _, w := range q.workers {
			w.drainHeld()
		}
	}
	pl.quiesce(ctx)
	// No more injections: wait out the inject calls that saw accepting
	// set, then drain what they queued.
	sw.accepting.Store(false)
	for sw.injecting.Load() != 0 {
		runtime.Gosched()
	}
	pl.quiesce(ctx)
	sw.mu.Lock()
	sw.running.Store(false)
	sw.lcores = nil
	sw.mu.Unlock()
	pl.flushCaches()
	if a := sw.Accounting(); a.Leaked != 0 || a.InFlight != 0 {
		return fmt.Errorf("stop: %w: %+v", ErrLeak, a)
	}
	return nil
}

// inFlight counts what is still in the queue's links and held lists.
func (q *queue) inFlight() int {
	n := q.fwd.Len() + q.inj.Len() + q.retireL.Len() + len(q.completion.held) + q.egress.npending
	if q.fwdInj != nil {
		n += q.fwdInj.Len()
	}
	for _, w := range q.workers {
		for _, l := range w.absorbIn {
			n += l.Len()
		}
	}
	return n
}

// Close stops the switch if it runs, destroys the callouts' injection
// handles (R7: after their injections have completed), closes every port
// and detaches from the engine. The switch cannot be started again; a
// second Close does nothing. The drain is bounded by DefaultDrainTimeout.
func (sw *Switch) Close() error {
	sw.life.Lock()
	defer sw.life.Unlock()
	if sw.closed.Load() {
		return nil
	}
	sw.closed.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), DefaultDrainTimeout)
	defer cancel()
	err := sw.stopLocked(ctx)
	sw.mu.Lock()
	for _, ce := range sw.calloutList {
		if st := ce.handle.Destroy(); st != inject.StatusSuccess && err == nil {
			err = fmt.Errorf("close: destroy handle of %q: %w", ce.c.Name, st)
		}
	}
	sw.mu.Unlock()
	for i := range sw.ports.slots {
		if p := sw.ports.slots[i].Load(); p != nil {
			p.state.Store(portDraining)
			sw.finishPort(p)
		}
	}
	sw.eng.Detach(target{sw})
	if pl := sw.cur.Load(); pl != nil {
		pl.release()
	}
	if a := sw.Accounting(); a.Leaked != 0 && err == nil {
		err = fmt.Errorf("close: %w: %+v", ErrLeak, a)
	}
	return err
}

// BusyNS returns the estimated nanoseconds the lcores spent in rounds that
// moved packets (user space, not idle polling), summed over lcores, since
// Start. Divided by the packets moved it is the busy time per packet.
func (sw *Switch) BusyNS() uint64 {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	var n uint64
	for _, lc := range sw.lcores {
		n += lc.busy.NS()
	}
	return n
}

// Accounting says where the frames are. Exact at quiescent points (after
// Stop); a snapshot while running.
type Accounting struct {
	FramesTotal  int `json:"frames_total"`
	FramesFree   int `json:"frames_free"`     // in the pool and the stage caches
	FramesInPort int `json:"frames_in_ports"` // held by port drivers (fill/rx/tx/completion rings)
	InFlight     int `json:"in_flight"`       // lists in links or held for copies
	ReserveTotal int `json:"reserve_total"`
	ReserveFree  int `json:"reserve_free"`
	Leaked       int `json:"leaked"` // frames in none of the places above (after Stop: must be 0)
}

// Accounting returns where the frames are.
func (sw *Switch) Accounting() Accounting {
	a := Accounting{
		FramesTotal: sw.arena.Frames().Size(), FramesFree: sw.arena.Frames().Available(),
		ReserveTotal: sw.arena.Reserve().Size(), ReserveFree: sw.arena.Reserve().Available(),
	}
	for i := range sw.ports.slots {
		if p := sw.ports.slots[i].Load(); p != nil {
			for _, d := range p.queues {
				a.FramesInPort += d.Held()
			}
		}
	}
	if pl := sw.cur.Load(); pl != nil && !sw.running.Load() {
		a.InFlight = pl.inFlight()
	}
	if !sw.running.Load() {
		a.Leaked = a.FramesTotal - a.FramesFree - a.FramesInPort - a.InFlight
	}
	return a
}

// Stats sums the counters of every queue, since New: the data plane's of
// the last Start and those of the planes before it.
func (sw *Switch) Stats() Stats {
	pl := sw.cur.Load()
	if pl == nil {
		return Stats{Drops: map[string]uint64{}}
	}
	return pl.base.plus(pl.stats())
}

// stats sums the counters of the plane's queues.
func (pl *plane) stats() Stats {
	st := Stats{Drops: map[string]uint64{}}
	for _, q := range pl.queues {
		var qrx uint64
		for i, c := range []*stageCounters{q.rxCnt, q.txCnt} {
			if i == 1 && c == q.rxCnt {
				break // RTC: one set
			}
			qrx += c.rx.load()
			st.TX += c.tx.load()
			st.Classified += c.classified.load()
			st.Absorbed += c.absorbed.load()
			st.Reinjected += c.reinjected.load()
			st.Flooded += c.flooded.load()
			st.Completions += c.completions.load()
			st.MisusedDescriptorsPut += c.misuse.load()
			for r := DropReason(0); r < numDropReasons; r++ {
				if v := c.drops[r].load(); v > 0 {
					st.Drops[r.String()] += v
					st.TotalDrops += v
				}
			}
		}
		st.RX += qrx
		st.QueueRX = append(st.QueueRX, qrx)
		for _, w := range q.workers {
			st.Discarded += w.discarded.load()
			st.InjectRefused += w.injectFailed.load()
		}
		_, p := q.completion.completer.Counts()
		st.CompletionPanics += p
	}
	return st
}

// plus returns the sum of two sets of counters.
func (a Stats) plus(b Stats) Stats {
	s := Stats{RX: a.RX + b.RX, TX: a.TX + b.TX, Classified: a.Classified + b.Classified,
		Absorbed: a.Absorbed + b.Absorbed, Reinjected: a.Reinjected + b.Reinjected, Flooded: a.Flooded + b.Flooded,
		Completions: a.Completions + b.Completions, Discarded: a.Discarded + b.Discarded,
		TotalDrops: a.TotalDrops + b.TotalDrops, InjectRefused: a.InjectRefused + b.InjectRefused,
		CompletionPanics: a.CompletionPanics + b.CompletionPanics, MisusedDescriptorsPut: a.MisusedDescriptorsPut + b.MisusedDescriptorsPut,
		Drops: map[string]uint64{}}
	for _, d := range []map[string]uint64{a.Drops, b.Drops} {
		for k, v := range d {
			s.Drops[k] += v
		}
	}
	s.QueueRX = make([]uint64, max(len(a.QueueRX), len(b.QueueRX)))
	for i := range s.QueueRX {
		if i < len(a.QueueRX) {
			s.QueueRX[i] += a.QueueRX[i]
		}
		if i < len(b.QueueRX) {
			s.QueueRX[i] += b.QueueRX[i]
		}
	}
	return s
}
