package dataplane

import (
	"sync/atomic"
	"time"
)

// BusyMeter measures how long a poll loop spends in rounds that move
// packets — the user-space cost of the packets it moves, without the empty
// polls a busy-poll loop also burns. It reads the CPU's time-stamp counter
// once a round (ticks: ~10 ns here, where the monotonic clock costs ~25):
// a round that moved packets is charged the ticks since the end of the
// round before it, which is exactly its own length, and an idle round
// nothing.
//
// Timing whole rounds matters at moderate rates. A meter that reads the
// clock once per block of rounds must charge a block that did some work
// its time less its idle rounds at an estimated idle-round cost; the
// estimate comes from blocks that did nothing, but an idle round right
// after work costs more (the rings' lines were just written by the kernel
// on another CPU), and at a few packets per block that error, times the
// idle rounds, dwarfs the work: such a meter swung from 0.86× to 1.9× the
// same baseline with the offered rate. Timing every round has no estimate
// to get wrong, and because every round reads the clock alike, the timed
// rounds are not longer than the others (which is what biased sampling
// one round in sixteen). A round preempted or interrupted while it works
// is charged the pause, so the figure errs high, never low.
//
// Threading contract: Round and Skip are called by the loop's goroutine
// only; NS may be called from anywhere.
type BusyMeter struct {
	last  int64 // ticks at the end of the previous round; 0: not timed (Skip)
	ticks atomic.Int64
}

// Round records the end of one poll round that moved n packets (0: idle).
func (m *BusyMeter) Round(n int) {
	now := busyTicks()
	if n > 0 && m.last != 0 && now > m.last { // (an unpinned loop may move to a CPU whose counter lags)
		m.ticks.Add(now - m.last)
	}
	m.last = now
}

// Skip leaves the next round out of the estimate: the loop has slept or
// yielded its CPU since the last round ended.
func (m *BusyMeter) Skip() { m.last = 0 }

// NS returns the busy time so far, in nanoseconds.
func (m *BusyMeter) NS() uint64 { return uint64(ticksToNS(m.ticks.Load())) }

// busyTicks is the counter BusyMeter reads (a test replaces it).
var busyTicks = ticks

// The ticks-to-nanoseconds rate is learnt against the monotonic clock from
// the process's start: by the time a busy figure is read the interval is
// long, and the rate exact to a few parts per million.
var tickEpoch, tickEpochNS = ticks(), nowNS()

// ticksToNS converts a count of busyTicks to nanoseconds.
func ticksToNS(t int64) int64 {
	if !haveTSC {
		return t // ticks are nanoseconds
	}
	dt, dn := ticks()-tickEpoch, nowNS()-tickEpochNS
	if dt <= 0 || dn < int64(time.Millisecond) {
		// too early to know the rate: wait for the clocks to diverge
		// measurably (NS is read at the end of a run, seconds later)
		time.Sleep(time.Millisecond)
		dt, dn = ticks()-tickEpoch, nowNS()-tickEpochNS
	}
	return int64(float64(t) * float64(dn) / float64(dt))
}
