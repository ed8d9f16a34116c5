package dataplane

import "testing"

// TestBusyMeter drives the meter with a fake clock: it must charge a block
// that did work with its time less its idle rounds at the idle-round cost
// learnt from idle blocks, leave out blocks it is told to skip, and not
// let a preempted idle block lower what it charges later by much.
func TestBusyMeter(t *testing.T) {
	var clock int64 = 1000
	busyClock = func() int64 { return clock }
	t.Cleanup(func() { busyClock = nowNS })
	var m BusyMeter
	// before any idle block is seen, blocks with idle rounds wait to be
	// charged (what a round of nothing costs is not known yet)
	m.Round(0) // starts the clock at the end of this block
	for range busyBlock - 1 {
		m.Round(0)
	}
	clock += 500
	m.Round(8)
	for range busyBlock - 1 {
		clock += 10
		m.Round(0)
	}
	if m.NS() != 0 || m.Measured() {
		t.Fatalf("a block with idle rounds charged %d ns (measured %v) before the idle cost was known", m.NS(), m.Measured())
	}
	idleBlock := func(roundNS int64) {
		for range busyBlock {
			clock += roundNS
			m.Round(0)
		}
	}
	idleBlock(10) // 160 ns: now known, the waiting block is charged 650 - 15*10
	if got := m.NS(); got != 500 || !m.Measured() {
		t.Fatalf("busy %d ns (measured %v) once the idle cost is known, want 500", got, m.Measured())
	}
	for range 3 {
		idleBlock(10)
	}
	if got := m.NS(); got != 500 {
		t.Fatalf("idle blocks charged %d ns", got-500)
	}
	// one round moving 32 packets in 1000 ns, fifteen idle ones
	clock += 1000
	m.Round(32)
	for range busyBlock - 1 {
		clock += 10
		m.Round(0)
	}
	if got := m.NS(); got != 1500 {
		t.Fatalf("busy %d ns, want 500 + 1000", got)
	}
	// a block that slept is not charged, whatever it held
	clock += 1e6
	m.Round(1)
	m.Skip()
	for range busyBlock - 1 {
		m.Round(0)
	}
	if got := m.NS(); got != 1500 {
		t.Fatalf("busy %d ns after a skipped block, want 1500", got)
	}
	// a preempted idle block (1 ms) raises the idle estimate at most 2×/8
	idleBlock(10)
	clock += 1e6
	idleBlock(0)
	if m.idleBlock > 160+160/8 {
		t.Fatalf("idle block estimate %d ns after one preempted block, want ≤ 180", m.idleBlock)
	}
	// saturated: every round works, every nanosecond is busy
	before := m.NS()
	for range 4 * busyBlock {
		clock += 100
		m.Round(32)
	}
	if got := m.NS() - before; got != 4*busyBlock*100 {
		t.Fatalf("saturated: busy %d ns, want %d", got, 4*busyBlock*100)
	}
}

// A long first idle block (the loop paused in it) does not stay the idle
// estimate: the least of the first few idle blocks is taken.
func TestBusyMeterLongFirstIdleBlock(t *testing.T) {
	var clock int64 = 1000
	busyClock = func() int64 { return clock }
	t.Cleanup(func() { busyClock = nowNS })
	var m BusyMeter
	// a block whose first round takes first ns and moves n packets, the
	// others rest ns each and idle
	block := func(first, rest int64, n int) {
		clock += first
		m.Round(n)
		for range busyBlock - 1 {
			clock += rest
			m.Round(0)
		}
	}
	block(10, 10, 0)  // starts the clock
	block(1e6, 10, 0) // paused: 1 ms
	block(10, 10, 0)  // 160 ns
	block(500, 10, 8) // 500 ns of work and 15 idle rounds
	if got := m.NS(); got != 500 {
		t.Fatalf("busy %d ns, want 500 (idle estimate %d ns a block)", got, m.idleBlock)
	}
}
