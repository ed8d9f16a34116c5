package memport

import (
	"testing"
	"time"

	"github.com/wfpxdp/wfpxdp/dataplane/drivertest"
	"github.com/wfpxdp/wfpxdp/nbl"
)

// The ring keeps arrivals in order as runs, merges contiguous ones, and a
// frame arriving at a full ring is missed (tail drop).
func TestRXRing(t *testing.T) {
	r := rxRing{runs: make([]rxRun, 4)}
	take := func(want ...uint64) {
		t.Helper()
		for _, w := range want {
			if got := r.take(); got != w {
				t.Fatalf("took %d, want %d", got, w)
			}
		}
	}
	if m := r.arrive(0, 3); m != 0 {
		t.Fatalf("missed %d of 3 into an empty ring of 4", m)
	}
	take(0)
	if m := r.arrive(3, 5); m != 3 || r.queued != 4 || r.n != 1 {
		t.Fatalf("missed %d, queued %d in %d runs; want 3, 4 in 1", m, r.queued, r.n)
	}
	take(1, 2, 3, 4) // 5, 6, 7 arrived at a full ring
	if r.arrive(8, 2); r.n != 1 {
		t.Fatalf("%d runs", r.n)
	}
	take(8)
	r.arrive(10, 1) // contiguous with 9
	r.arrive(12, 1) // 11 was missed elsewhere: a new run
	take(9, 10, 12)
	if r.queued != 0 || r.n != 0 {
		t.Fatalf("queued %d in %d runs after taking all", r.queued, r.n)
	}
}

// Paced, a frame's probe carries its arrival time: after the switch has
// not asked for 2 ms, the frames it gets waited about that long in the
// ring, only as many as the ring holds, and the rest are counted missed;
// every frame due is sent, missed or waiting.
func TestPacedArrivalStamps(t *testing.T) {
	const frames = 256
	arena, err := nbl.NewArena(nbl.Config{Frames: frames, FrameSize: 2048, Region: make([]byte, frames*2048)})
	if err != nil {
		t.Fatal(err)
	}
	cache := arena.Frames().NewCache(frames)
	p, err := New(Config{Name: "g", Templates: []Template{{Dst: 0x0200000000bb, Src: 0x0200000000aa}}, Rate: 1e6, RXRing: 16, Latency: true})
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]*nbl.NBL, 64)
	if n := p.Receive(dst, cache); n < 1 || n > 2 {
		t.Fatalf("first ask got %d frames, want the 1 or 2 due", n)
	}
	cache.Put(dst[:p.Sent()])
	time.Sleep(2 * time.Millisecond)
	n := p.Receive(dst, cache)
	if n != 16 {
		t.Fatalf("after 2 ms got %d frames, want the ring's 16", n)
	}
	if p.Transmit(dst[:n]) != n {
		t.Fatal("transmit refused")
	}
	if h := p.Histogram(); h.Min() < int64(1500*time.Microsecond) {
		t.Fatalf("frames that waited ~2 ms in the ring show latency from %d ns", h.Min())
	}
	if m := p.Missed(); m < 1500 || m > 100_000 {
		t.Fatalf("missed %d, want about 2000 - 16", m)
	}
	if got := p.Sent() + p.Missed() + p.rx.queued; got != p.arrived {
		t.Fatalf("sent %d + missed %d + waiting %d != arrived %d", p.Sent(), p.Missed(), p.rx.queued, p.arrived)
	}
}

// Transmit and Reap may run on different goroutines at once (the Driver
// contract): Transmit must be done with a list before Reap can have it.
// Under -race this caught Transmit reading probes after it had queued the
// lists.
func TestTransmitAndReapOnTwoGoroutines(t *testing.T) {
	const frames, n = 256, 200_000
	arena, err := nbl.NewArena(nbl.Config{Frames: frames, FrameSize: 2048, Region: make([]byte, frames*2048)})
	if err != nil {
		t.Fatal(err)
	}
	gen, err := New(Config{Name: "g", Templates: []Template{{Dst: 0x0200000000bb, Src: 0x0200000000aa}}})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := New(Config{Name: "s", Latency: true, Stages: true, TXQueue: 64})
	if err != nil {
		t.Fatal(err)
	}
	cache := arena.Frames().NewCache(frames)
	drivertest.TransmitAndReap(t, sink, n, func(dst []*nbl.NBL) int {
		k := gen.Receive(dst, cache)
		for _, l := range dst[:k] {
			l.Stamps[nbl.StampRX] = Now()
		}
		return k
	}, func(ls []*nbl.NBL) { cache.Put(ls) })
	if got, _ := sink.Received(); got != n {
		t.Fatalf("the sink counted %d of %d", got, n)
	}
}
