package dataplane

import (
	"testing"
	"time"
)

// TestBusyMeter drives the meter with a fake counter: a round that moved
// packets is charged its own length, from the end of the round before it;
// idle rounds, and the round after a Skip, are charged nothing.
func TestBusyMeter(t *testing.T) {
	var clock int64 = 1000
	busyTicks = func() int64 { return clock }
	t.Cleanup(func() { busyTicks = ticks })
	var m BusyMeter
	round := func(d int64, n int) {
		clock += d
		m.Round(n)
	}
	round(10, 5) // the first round has no start: not charged
	if got := m.ticks.Load(); got != 0 {
		t.Fatalf("the first round charged %d", got)
	}
	for range 15 {
		round(10, 0) // idle: nothing
	}
	round(500, 8) // work: its 500
	round(40, 0)  // an idle round right after work, however long
	round(300, 1) // work again
	if got := m.ticks.Load(); got != 800 {
		t.Fatalf("busy %d ticks, want 500 + 300", got)
	}
	// a round after the loop slept is not charged, whatever it held
	clock += 1e6
	m.Skip()
	round(100, 3)
	round(200, 3) // but the one after it is
	if got := m.ticks.Load(); got != 1000 {
		t.Fatalf("busy %d ticks after a skip, want 1000", got)
	}
	// saturated: every round works, every tick is busy
	for range 64 {
		round(100, 32)
	}
	if got := m.ticks.Load(); got != 1000+64*100 {
		t.Fatalf("saturated: busy %d ticks, want %d", got, 1000+64*100)
	}
}

// TestTicksToNS: the counter's ticks convert to the monotonic clock's
// nanoseconds within 1 % over 20 ms of work.
func TestTicksToNS(t *testing.T) {
	t0, n0 := ticks(), nowNS()
	for nowNS()-n0 < int64(20*time.Millisecond) {
	}
	t1, n1 := ticks(), nowNS()
	got, want := ticksToNS(t1-t0), n1-n0
	if d := float64(got-want) / float64(want); d > 0.01 || d < -0.01 {
		t.Fatalf("%d ticks convert to %d ns, the clock says %d (%.2f %%)", t1-t0, got, want, 100*d)
	}
}

// TestBusyMeterRealClock runs a loop at a moderate rate against the real
// clock: a working round every 20, spinning a known time, and after each
// the idle rounds that follow cost more than idle rounds elsewhere (as
// they do on AF_XDP rings whose lines the kernel just wrote on another
// CPU). The meter charges the working rounds and nothing else; a meter
// that estimated idle rounds from idle stretches charged those dearer
// idle rounds as work (1.45× here).
func TestBusyMeterRealClock(t *testing.T) {
	spin := func(d time.Duration) int64 {
		s := nowNS()
		for nowNS()-s < int64(d) {
		}
		return nowNS() - s
	}
	var m BusyMeter
	var spun int64
	for i := 0; i < 4000; i++ {
		n := 0
		switch {
		case i%20 == 0:
			d := spin(2 * time.Microsecond)
			if i > 0 { // the first round has no start and is not charged
				spun += d
			}
			n = 1
		case i%20 <= 5:
			spin(300 * time.Nanosecond) // dearer idle rounds after work
		}
		m.Round(n)
	}
	got := int64(m.NS())
	// the charged rounds hold the spin and one round's overhead; a
	// preempted round errs high (allow 1.3×), never low
	if got < spun*95/100 || got > spun*13/10 {
		t.Fatalf("busy %d ns for %d ns of work in working rounds (%.2f×)", got, spun, float64(got)/float64(spun))
	}
}
