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

// Start builds the queues' pipelines, places their stages on lcores per
// the mode and starts them. Callouts must be registered before.
func (sw *Switch) Start() error {
	sw.life.Lock()
	defer sw.life.Unlock()
	if sw.closed.Load() {
		return ErrClosed
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.running.Load() {
		return ErrRunning
	}
	if err := sw.buildQueues(); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	sw.unloading.Store(false)
	sw.stopRX.Store(false)
	sw.lcores = sw.buildLcores()
	parts := make([]string, len(sw.lcores))
	for i, lc := range sw.lcores {
		parts[i] = lc.String()
	}
	sw.plan = fmt.Sprintf("%s, %s links: %s", sw.cfg.Mode, sw.cfg.Link, strings.Join(parts, " "))
	sw.stop = make(chan struct{})
	qs := sw.queues
	sw.queueSnap.Store(&qs)
	sw.running.Store(true)
	sw.started.Store(true)
	sw.accepting.Store(true)
	for _, q := range sw.queues {
		q.completion.completer.Rebind()
	}
	var started sync.WaitGroup
	for _, lc := range sw.lcores {
		sw.wg.Add(1)
		started.Add(1)
		go func() {
			defer sw.wg.Done()
			lc.Run(sw.stop, started.Done)
		}()
	}
	// Return once every lcore has polled its stages once, so the ports are
	// ready to receive (AF_XDP fill rings stocked) when the caller sends.
	started.Wait()
	if n := sw.cfg.LcoreNice; n != 0 && !sw.cfg.NoPin {
		note := fmt.Sprintf(" (lcores at nice %d)", n)
		for _, lc := range sw.lcores {
			if e := lc.niceErr.Load(); e != nil {
				note = fmt.Sprintf(" (lcore nice %d refused: %v)", n, *e)
				break
			}
		}
		sw.plan += note
	}
	return nil
}

// buildQueues builds the pipelines the first time, and gives them workers
// for the callouts registered since; mu must be held.
func (sw *Switch) buildQueues() error {
	if sw.queues != nil {
		for _, q := range sw.queues {
			if err := q.addWorkers(sw.calloutList[len(q.workers):]); err != nil {
				return fmt.Errorf("queue %d: %w", q.idx, err)
			}
		}
		return nil
	}
	for i := 0; i < sw.cfg.Queues; i++ {
		q, err := newQueue(sw, i, sw.calloutList)
		if err != nil {
			return fmt.Errorf("queue %d: %w", i, err)
		}
		sw.queues = append(sw.queues, q)
	}
	return nil
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

// ErrClosed is returned by Start after Close.
var ErrClosed = errors.New("switch is closed")

// Stop drains the switch and stops its lcores, in the order of R7: from now
// on classify permits instead of calling callouts, and workers discard
// instead of reinjecting; nothing more is received; the lcores stop; then
// the stages run on the calling goroutine until every ring is empty, every
// injection has completed and every frame not held by a port is back in
// the pool. It returns ErrLeak (wrapped, with the numbers) if frames are
// missing then. The switch may be started again. Stop may be called from
// any goroutine, also while another Stop or Close runs (it then waits for
// that one); on a stopped switch it does nothing.
func (sw *Switch) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultDrainTimeout)
	defer cancel()
	return sw.StopContext(ctx)
}

// DefaultDrainTimeout bounds how long Stop and Close wait for the stages
// to drain.
const DefaultDrainTimeout = 5 * time.Second

// StopContext is Stop with the drain bounded by ctx instead of
// DefaultDrainTimeout: when ctx ends first, the lcores are stopped and
// whatever has not drained by then is reported (ErrLeak, with the
// numbers) rather than waited for.
func (sw *Switch) StopContext(ctx context.Context) error {
	sw.life.Lock()
	defer sw.life.Unlock()
	return sw.stopLocked(ctx)
}

// stopLocked is StopContext; life must be held.
func (sw *Switch) stopLocked(ctx context.Context) error {
	if !sw.running.Load() {
		return nil
	}
	sw.unloading.Store(true)
	sw.stopRX.Store(true)
	close(sw.stop)
	sw.wg.Wait()
	for _, q := range sw.queues {
		q.completion.completer.Rebind()
	}
	sw.quiesce(ctx)
	for _, q := range sw.queues {
		for _, w := range q.workers {
			w.drainHeld()
		}
	}
	sw.quiesce(ctx)
	// No more injections: wait out the inject calls that saw accepting
	// set, then drain what they queued.
	sw.accepting.Store(false)
	for sw.injecting.Load() != 0 {
		runtime.Gosched()
	}
	sw.quiesce(ctx)
	sw.mu.Lock()
	sw.running.Store(false)
	sw.lcores = nil
	sw.mu.Unlock()
	sw.flushCaches()
	if a := sw.Accounting(); a.Leaked != 0 {
		return fmt.Errorf("stop: %w: %+v", ErrLeak, a)
	}
	return nil
}

// quiesce polls every stage on the calling goroutine until a long run of
// rounds moves nothing and every link is empty.
func (sw *Switch) quiesce(ctx context.Context) {
	for quiet := 0; quiet < 64 && ctx.Err() == nil; {
		work := 0
		for _, q := range sw.queues {
			work += q.ingress.Poll()
			if q.reinj != nil {
				work += q.reinj.pollInjected()
			}
			for _, w := range q.workers {
				work += w.Poll()
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

func (sw *Switch) flushCaches() {
	for _, q := range sw.queues {
		q.rxCaches.flush()
		q.txCaches.flush()
	}
}

// Close stops the switch if it runs, destroys the callouts' injection
// handles (R7: after their injections have completed), closes every port
// and detaches from the engine. The switch cannot be started again; a
// second Close does nothing.
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
	for i := range sw.ports {
		if p := sw.ports[i].Load(); p != nil {
			p.state.Store(portDraining)
			sw.finishPort(p)
		}
	}
	sw.eng.Detach(target{sw})
	if a := sw.Accounting(); a.Leaked != 0 && err == nil {
		err = fmt.Errorf("close: %w: %+v", ErrLeak, a)
	}
	return err
}

// portDrained records that queue qi has finished draining detached port p;
// after the last queue the port is gone.
func (sw *Switch) portDrained(p *Port, qi int) {
	if p.drainedQueues.Add(1) == int32(len(p.queues)) {
		p.state.Store(portGone)
		sw.ports[p.slot].CompareAndSwap(p, nil)
		sw.portsChanged()
		close(p.closed)
	}
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

// BusyMeasured reports whether BusyNS covers all the lcores' working
// rounds so far (see BusyMeter.Measured).
func (sw *Switch) BusyMeasured() bool {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	for _, lc := range sw.lcores {
		if !lc.busy.Measured() {
			return false
		}
	}
	return true
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
	for i := range sw.ports {
		if p := sw.ports[i].Load(); p != nil {
			for _, d := range p.queues {
				a.FramesInPort += d.Held()
			}
		}
	}
	if !sw.running.Load() {
		for _, q := range sw.queueList() {
			a.InFlight += q.inFlight()
		}
		a.Leaked = a.FramesTotal - a.FramesFree - a.FramesInPort - a.InFlight
	}
	return a
}

// queueList returns the queues as the last Start left them (nil before),
// for readers on any goroutine.
func (sw *Switch) queueList() []*queue {
	if qs := sw.queueSnap.Load(); qs != nil {
		return *qs
	}
	return nil
}

// Stats sums the counters of every queue.
func (sw *Switch) Stats() Stats {
	st := Stats{Drops: map[string]uint64{}}
	for _, q := range sw.queueList() {
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
