package dataplane

import "sync/atomic"

// busyBlock is how many poll rounds a BusyMeter times at once.
const busyBlock = 16

// BusyMeter estimates how long a poll loop spends in rounds that do work
// — the user-space cost of the packets it moves, without the empty polls
// a busy-poll loop also burns — reading the clock once every busyBlock
// rounds instead of twice a round. A block of rounds that did work is
// charged its time less its idle rounds at the cost of an idle round,
// which it learns from blocks that did nothing.
//
// Timing one round in busyBlock and scaling (what the lcores did before)
// over-counts, by 1.3–1.4× on afxdp-rxdrop here: the timed round's clock
// read lengthens the gap since the previous poll, so more work has
// arrived by the time it polls (the inspection paradox). Blocks have no
// such bias: their total is the wall-clock time of the loop. Work done in
// an otherwise idle round (an AF_XDP fill-ring refill, say) is charged to
// its block; pauses inside a block that did work (preemption) are too, so
// the estimate errs high, never low.
//
// Threading contract: Round is called by the loop's goroutine only; NS
// may be called from anywhere.
type BusyMeter struct {
	rounds, idle int
	worked       bool
	start        int64 // the current block's start; 0: not counted (Skip)
	idleBlock    int64 // the time of a block of idle rounds; 0 until one is seen
	idleSeen     int   // idle blocks seen
	// blocks with idle rounds that ended before idleBlock was known: their
	// time and idle rounds, charged once it is (at a moderate rate every
	// block may do some work, and then they never are: NS stays 0, not
	// measured, rather than charging the idle rounds as busy)
	pendNS, pendIdle int64
	unknown          atomic.Bool // pendNS > 0: see Measured
	busy             atomic.Uint64
}

// busyClock is the clock BusyMeter reads (a test replaces it).
var busyClock = nowNS

// Round records the end of one poll round that moved n packets (0: idle).
// It is small enough to inline; the block's end is not.
func (m *BusyMeter) Round(n int) {
	if n > 0 {
		m.worked = true
	} else {
		m.idle++
	}
	if m.rounds++; m.rounds >= busyBlock {
		m.endBlock()
	}
}

// endBlock charges the block that ends now and starts the next.
func (m *BusyMeter) endBlock() {
	now := busyClock()
	if d := now - m.start; m.start != 0 {
		switch {
		case m.worked && m.idle > 0 && m.idleBlock == 0:
			m.pendNS += d
			m.pendIdle += int64(m.idle)
			m.unknown.Store(true)
		case m.worked:
			m.charge(d, int64(m.idle))
		case m.idleBlock == 0:
			m.idleBlock = d
			m.charge(m.pendNS, m.pendIdle)
			m.pendNS, m.pendIdle = 0, 0
			m.unknown.Store(false)
		case m.idleSeen < 8:
			// a pause (preemption, an interrupt) only ever lengthens a
			// block: the least of the first few, so that one long first
			// sample does not stay
			m.idleBlock = min(m.idleBlock, d)
		default:
			// then a moving average (the idle rounds inside working
			// blocks cost the mean, not the least), each sample capped at
			// twice it so that a preempted idle block moves it little
			m.idleBlock += (min(d, 2*m.idleBlock) - m.idleBlock) / 8
		}
		if !m.worked {
			m.idleSeen++
		}
	}
	m.start, m.rounds, m.idle, m.worked = now, 0, 0, false
}

// charge adds d ns of blocks with idle idle rounds, less those rounds.
func (m *BusyMeter) charge(d, idle int64) {
	if b := d - idle*m.idleBlock/busyBlock; b > 0 {
		m.busy.Add(uint64(b))
	}
}

// Skip leaves the current block out of the estimate: the loop has slept
// or yielded its CPU in it.
func (m *BusyMeter) Skip() { m.start = 0 }

// Measured reports whether NS covers every block so far: false while
// blocks that did some work wait for a block of idle rounds to say what an
// idle round costs. At a moderate rate (a few packets in every block)
// none may come; NS then says nothing useful.
func (m *BusyMeter) Measured() bool { return !m.unknown.Load() }

// NS returns the busy time so far, in nanoseconds.
func (m *BusyMeter) NS() uint64 { return m.busy.Load() }
