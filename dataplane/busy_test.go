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
	idleBlock := func(roundNS int64) {
		for range busyBlock {
			clock += roundNS
			m.Round(0)
		}
	}
	// the first block only starts the clock
	idleBlock(10)
	for range 3 {
		idleBlock(10) // 160 ns a block
	}
	if m.NS() != 0 {
		t.Fatalf("idle blocks charged %d ns", m.NS())
	}
	// one round moving 32 packets in 1000 ns, fifteen idle ones
	clock += 1000
	m.Round(32)
	for range busyBlock - 1 {
		clock += 10
		m.Round(0)
	}
	if got := m.NS(); got != 1000 {
		t.Fatalf("busy %d ns, want 1000", got)
	}
	// a block that slept is not charged, whatever it held
	clock += 1e6
	m.Round(1)
	m.Skip()
	for range busyBlock - 1 {
		m.Round(0)
	}
	if got := m.NS(); got != 1000 {
		t.Fatalf("busy %d ns after a skipped block, want 1000", got)
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
