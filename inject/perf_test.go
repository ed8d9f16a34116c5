package inject_test

import (
	"testing"

	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/inject/injecttest"
	"github.com/wfpxdp/wfpxdp/nbl"
)

// benchEnv injects chains of allocated lists with a no-op completion, or
// originals without one that go back to the frame cache (G4).
func benchEnv(tb testing.TB, chain int) (e *env, lists []*nbl.NBL, noop nbl.CompleteFunc) {
	var frames *nbl.Cache
	e = newEnv(tb, injecttest.Options{RingSize: 64, Release: func(b []*nbl.NBL) { frames.Put(b) }})
	frames = e.frames
	data := make([]byte, 64)
	for i := 0; i < chain; i++ {
		l, st := inject.AllocateNetBufferAndNetBufferList(e.reserve, data, 0, 64)
		if st != inject.StatusSuccess {
			tb.Fatal(st)
		}
		lists = append(lists, l)
	}
	return e, lists, func(any, *nbl.NBL, bool) {}
}

// Inject of a 32-list chain and completion of its 32 lists allocate nothing.
func TestInjectCompleteZeroAllocs(t *testing.T) {
	e, lists, noop := benchEnv(t, 32)
	withFn := func() {
		if st := e.inject(nbl.Link(lists), noop, nil); st != inject.StatusSuccess {
			t.Fatal(st)
		}
		e.sw.Drain()
	}
	originals := make([]*nbl.NBL, 32)
	withoutFn := func() {
		e.frames.Get(originals)
		for _, l := range originals {
			l.NB().SetData(0, 64)
		}
		if st := e.inject(nbl.Link(originals), nil, nil); st != inject.StatusSuccess {
			t.Fatal(st)
		}
		e.sw.Drain()
	}
	for name, f := range map[string]func(){"completion fn": withFn, "originals (G4)": withoutFn} {
		if n := testing.AllocsPerRun(200, f); n != 0 {
			t.Errorf("%s: %v allocs per inject+complete of 32", name, n)
		}
	}
	query := func() {
		for _, l := range lists {
			inject.QueryInjectionState(e.h, l)
		}
	}
	if n := testing.AllocsPerRun(200, query); n != 0 {
		t.Errorf("QueryInjectionState: %v allocs", n)
	}
}

// BenchmarkInjectComplete: inject a chain and complete all of it, per
// packet, in batches of 1..256.
func BenchmarkInjectComplete(b *testing.B) {
	for _, n := range []int{1, 8, 32, 64, 256} {
		b.Run("chain"+strconvI(n), func(b *testing.B) {
			e, lists, noop := benchEnv(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				e.inject(nbl.Link(lists), noop, nil)
				e.sw.Drain()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/pkt")
		})
	}
	b.Run("originals-chain32", func(b *testing.B) {
		e, _, _ := benchEnv(b, 0)
		batch := make([]*nbl.NBL, 32)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			e.frames.Get(batch)
			for _, l := range batch {
				l.NB().SetData(0, 64)
			}
			e.inject(nbl.Link(batch), nil, nil)
			e.sw.Drain()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*32), "ns/pkt")
	})
}

func strconvI(n int) string {
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}
