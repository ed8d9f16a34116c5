package inject_test

import (
	"sync"
	"testing"

	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/inject/injecttest"
	"github.com/wfpxdp/wfpxdp/nbl"
)

var switchID = inject.GUID{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}

// env is one engine, one test switch, an arena and an L2 handle.
type env struct {
	t       testing.TB
	eng     *inject.Engine
	sw      *injecttest.Switch
	arena   *nbl.Arena
	frames  *nbl.Cache
	reserve *nbl.Cache
	h       *inject.Handle
}

func newEnv(t testing.TB, opt injecttest.Options) *env {
	t.Helper()
	arena, err := nbl.NewArena(nbl.Config{Frames: 512, FrameSize: 2048, Reserve: 320})
	if err != nil {
		t.Fatal(err)
	}
	eng := inject.NewEngine()
	opt.ID = switchID
	sw := injecttest.New(eng, opt)
	h, st := eng.InjectionHandleCreate(inject.AFUnspec, inject.InjectionTypeL2)
	if st != inject.StatusSuccess {
		t.Fatalf("handle create: %v", st)
	}
	return &env{t: t, eng: eng, sw: sw, arena: arena,
		frames: arena.Frames().NewCache(32), reserve: arena.Reserve().NewCache(16), h: h}
}

// packets takes n frame descriptors with 64-byte Ethernet frames whose
// first byte is the packet's number, chained.
func (e *env) packets(n int) (*nbl.NBL, []*nbl.NBL) {
	e.t.Helper()
	b := make([]*nbl.NBL, n)
	if got := e.frames.Get(b); got != n {
		e.t.Fatalf("got %d of %d frames", got, n)
	}
	for i, l := range b {
		l.NB().SetData(256, 64)
		l.Data()[0] = byte(i)
	}
	return nbl.Link(b), b
}

// free returns the test's lists to their pools and checks nothing leaked.
func (e *env) checkAllFree() {
	e.t.Helper()
	e.frames.Flush()
	e.reserve.Flush()
	if got := e.arena.Frames().Available(); got != e.arena.Frames().Size() {
		e.t.Errorf("frames: %d of %d free at end", got, e.arena.Frames().Size())
	}
	if got := e.arena.Reserve().Available(); got != e.arena.Reserve().Size() {
		e.t.Errorf("reserve: %d of %d free at end", got, e.arena.Reserve().Size())
	}
}

func (e *env) inject(head *nbl.NBL, fn nbl.CompleteFunc, ctx any) inject.Status {
	return e.h.InjectVSwitchEthernetIngressAsync(nil, 0, nil, switchID[:], 0, 0, head, fn, ctx)
}

// recorder is a completion function that records each call.
type recorder struct {
	mu    sync.Mutex
	calls map[*nbl.NBL]int
	ctxs  []any
	order []*nbl.NBL
	stats []inject.Status
	dl    []bool
	// onCall, if set, runs inside the completion (owns l from then on)
	onCall func(l *nbl.NBL)
}

func newRecorder() *recorder { return &recorder{calls: map[*nbl.NBL]int{}} }

func (r *recorder) complete(ctx any, l *nbl.NBL, dispatchLevel bool) {
	r.mu.Lock()
	r.calls[l]++
	r.ctxs = append(r.ctxs, ctx)
	r.order = append(r.order, l)
	r.stats = append(r.stats, inject.Status(l.Status))
	r.dl = append(r.dl, dispatchLevel)
	f := r.onCall
	r.mu.Unlock()
	if f != nil {
		f(l)
	}
}

func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order)
}
