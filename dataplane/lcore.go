package dataplane

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wfpxdp/wfpxdp/ring/pin"
)

// stage is one pipeline stage: Poll does one round of work without
// blocking and returns how many packets it moved.
type stage interface {
	Poll() int
}

type namedStage struct {
	name string
	s    stage
}

// lcore is one pinned goroutine running a fixed list of stages in turn,
// like a DPDK lcore running several services.
type lcore struct {
	cpu    int
	pin    bool
	stages []namedStage
	sleep  time.Duration
	shared bool // another lcore is pinned to the same CPU
	nice   int  // Config.LcoreNice
	// niceErr is why the nice value could not be set (Plan reports it)
	niceErr atomic.Pointer[error]
	// busy estimates the time spent in rounds that moved packets:
	// user-space cost, without the idle polling a busy-poll loop also burns.
	busy BusyMeter
}

// Run polls the stages until stop is closed. Poll loops drain before they
// back off. An idle lcore checks stop every 256 empty rounds, yields its P
// only every 65536 (a locked thread's yield costs a futex handoff, several
// µs), and sleeps IdleSleep (if set) after a million.
func (lc *lcore) Run(stop <-chan struct{}, started func()) {
	if lc.pin {
		if unpin, err := pin.Thread(lc.cpu); err == nil {
			defer unpin()
			if lc.nice != 0 {
				if restore, err := pin.Nice(lc.nice); err == nil {
					defer restore()
				} else {
					lc.niceErr.Store(&err)
				}
			}
		}
	}
	idle := 0
	for round := 0; ; round++ {
		work := 0
		for _, s := range lc.stages {
			work += s.s.Poll()
		}
		lc.busy.Round(work)
		if round == 0 {
			started() // the ports' fill rings are stocked now
		}
		if work > 0 {
			idle = 0
			continue
		}
		idle++
		if idle&255 != 0 {
			continue
		}
		select {
		case <-stop:
			return
		default:
		}
		if idle&(1<<16-1) == 0 {
			runtime.Gosched()
			lc.busy.Skip()
		}
		if lc.shared && idle&1023 == 0 {
			// another lcore polls on this CPU: let it run now rather than
			// at the end of a scheduler time slice
			schedYield()
			lc.busy.Skip()
		}
		if lc.sleep > 0 && idle > 1<<20 {
			time.Sleep(lc.sleep)
			lc.busy.Skip()
		}
	}
}

func (lc *lcore) String() string {
	names := make([]string, len(lc.stages))
	for i, s := range lc.stages {
		names[i] = s.name
	}
	where := fmt.Sprintf("cpu%d", lc.cpu)
	if !lc.pin {
		where = "unpinned"
	}
	return where + "[" + strings.Join(names, ",") + "]"
}

// buildLcores places the queues' stages on lcores per the mode.
func (sw *Switch) buildLcores(pl *plane) []*lcore {
	cpus := sw.cfg.CPUs
	cpu := func(i int) int { return cpus[i%len(cpus)] }
	var out []*lcore
	for _, q := range pl.queues {
		ingress := namedStage{fmt.Sprintf("q%d.ingress", q.idx), q.ingress}
		rest := []namedStage{}
		for _, w := range q.workers {
			rest = append(rest, namedStage{fmt.Sprintf("q%d.absorb:%s", q.idx, w.ce.c.Name), workerStage{w}})
		}
		switch {
		case q.reinj != nil:
			// pipelined: injections are classified on this lcore (see queue.reinj)
			rest = append(rest, namedStage{fmt.Sprintf("q%d.reinject", q.idx), reinjectStage{q.reinj}})
		case len(q.workers) > 0:
			// RTC: what the workers reinjected is classified and forwarded
			// in this round (see pollInjected)
			rest = append(rest, namedStage{fmt.Sprintf("q%d.reinject", q.idx), reinjectStage{q.ingress}})
		}
		rest = append(rest, namedStage{fmt.Sprintf("q%d.egress", q.idx), q.egress},
			namedStage{fmt.Sprintf("q%d.completion", q.idx), q.completion})
		sleep := sw.cfg.IdleSleep
		if sw.cfg.Mode == ModeRTC {
			c := cpu(q.idx)
			if len(cpus) > 1 {
				c = cpu(q.idx + 1)
			}
			out = append(out, &lcore{cpu: c, pin: !sw.cfg.NoPin, stages: append([]namedStage{ingress}, rest...), sleep: sleep})
			continue
		}
		out = append(out,
			&lcore{cpu: cpu(2 * q.idx), pin: !sw.cfg.NoPin, stages: []namedStage{ingress}, sleep: sleep},
			&lcore{cpu: cpu(2*q.idx + 1), pin: !sw.cfg.NoPin, stages: rest, sleep: sleep})
	}
	perCPU := map[int]int{}
	for _, lc := range out {
		perCPU[lc.cpu]++
	}
	for _, lc := range out {
		lc.nice = sw.cfg.LcoreNice
		lc.shared = lc.pin && perCPU[lc.cpu] > 1
	}
	return out
}

// schedYield gives the CPU to another runnable thread (sched_yield(2)).
func schedYield() { unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }
