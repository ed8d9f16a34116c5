package nbl

import (
	"errors"
	"testing"
	"unsafe"
)

func newTestArena(t testing.TB, frames, reserve int) *Arena {
	t.Helper()
	a, err := NewArena(Config{Frames: frames, FrameSize: 2048, Reserve: reserve})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestArenaConfig(t *testing.T) {
	bad := []Config{
		{Frames: 0, FrameSize: 2048},
		{Frames: 4, FrameSize: 1000},
		{Frames: 4, FrameSize: 128},
		{Frames: 4, FrameSize: 2048, Reserve: -1},
		{Frames: 4, FrameSize: 2048, Region: make([]byte, 3*2048)},
	}
	for _, cfg := range bad {
		if _, err := NewArena(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("NewArena(%+v) err = %v, want ErrConfig", cfg, err)
		}
	}
}

// TestZeroCopy: a frame descriptor's data is a window of its frame in the
// region, and descriptor index == frame index.
func TestZeroCopy(t *testing.T) {
	region := make([]byte, 8*2048)
	a, err := NewArena(Config{Frames: 8, FrameSize: 2048, Region: region})
	if err != nil {
		t.Fatal(err)
	}
	l, ok := a.DescAt(3*2048 + 100)
	if !ok || l.Index() != 3 || a.Addr(l) != 3*2048 {
		t.Fatalf("DescAt = %v %v", l.Index(), ok)
	}
	if !l.NB().SetData(256, 60) {
		t.Fatal("SetData refused a valid window")
	}
	l.Data()[0] = 0xAB
	if region[3*2048+256] != 0xAB {
		t.Fatal("NB.Data is not a view of the region")
	}
	if l.NB().SetData(2000, 100) {
		t.Fatal("SetData accepted a window past the frame")
	}
	if _, ok := a.DescAt(8 * 2048); ok {
		t.Fatal("DescAt accepted an address past the region")
	}
	if l.FirstNetBuffer != l.NB() {
		t.Fatal("FirstNetBuffer does not point at the list's buffer")
	}
	// Received: the same from the address alone
	r, i, ok := a.Received(5*2048+256, 60)
	if !ok || i != 5 || r != a.Desc(5) || len(r.Data()) != 60 || &r.Data()[0] != &region[5*2048+256] {
		t.Fatalf("Received = %v %d %v", r, i, ok)
	}
	for _, bad := range []struct {
		addr uint64
		n    uint32
	}{{8 * 2048, 60}, {7*2048 + 2000, 49}, {1<<63 + 1, 1}} {
		if _, _, ok := a.Received(bad.addr, bad.n); ok {
			t.Fatalf("Received(%d, %d) accepted bytes outside one frame", bad.addr, bad.n)
		}
	}
	if _, _, ok := a.Received(7*2048+2000, 48); !ok {
		t.Fatal("Received refused the last bytes of the last frame")
	}
}

func TestPoolExhaustionAndReturn(t *testing.T) {
	a := newTestArena(t, 16, 4)
	p := a.Frames()
	dst := make([]*NBL, 20)
	if n := p.Get(dst); n != 16 {
		t.Fatalf("Get 20 of 16 = %d", n)
	}
	if n := p.Get(dst[16:]); n != 0 || p.Available() != 0 {
		t.Fatalf("Get from empty pool = %d", n)
	}
	seen := map[uint32]bool{}
	for _, l := range dst[:16] {
		if seen[l.Index()] {
			t.Fatalf("descriptor %d handed out twice", l.Index())
		}
		seen[l.Index()] = true
	}
	if err := p.Put(dst[:16]); err != nil {
		t.Fatal(err)
	}
	if p.Available() != 16 {
		t.Fatalf("Available = %d after return", p.Available())
	}
}

func TestDoubleReturnDetected(t *testing.T) {
	a := newTestArena(t, 8, 2)
	for _, useCache := range []bool{false, true} {
		p := a.Frames()
		c := p.NewCache(4)
		put := p.Put
		get := p.Get
		if useCache {
			put, get = c.Put, c.Get
		}
		b := make([]*NBL, 2)
		get(b)
		if err := put(b); err != nil {
			t.Fatal(err)
		}
		before, _, _ := p.Errors()
		if err := put(b[:1]); !errors.Is(err, ErrDoubleReturn) {
			t.Fatalf("cache=%v: second return err = %v", useCache, err)
		}
		after, _, _ := p.Errors()
		if after != before+1 {
			t.Fatalf("double return not counted")
		}
		c.Flush()
		if p.Available() != 8 {
			t.Fatalf("cache=%v: Available = %d, want 8 (free list corrupted)", useCache, p.Available())
		}
		// the pool still hands out 8 distinct descriptors
		all := make([]*NBL, 9)
		if n := p.Get(all); n != 8 {
			t.Fatalf("Get after double return = %d", n)
		}
		seen := map[*NBL]bool{}
		for _, l := range all[:8] {
			if seen[l] {
				t.Fatal("duplicate descriptor after double return")
			}
			seen[l] = true
		}
		p.Put(all[:8])
	}
}

func TestForeignReturnDetected(t *testing.T) {
	a := newTestArena(t, 4, 4)
	b := make([]*NBL, 1)
	a.Reserve().Get(b)
	if err := a.Frames().Put(b); !errors.Is(err, ErrForeign) {
		t.Fatalf("err = %v, want ErrForeign", err)
	}
	other := newTestArena(t, 4, 0)
	if err := other.Frames().NewCache(4).Put(b); !errors.Is(err, ErrForeign) {
		t.Fatalf("other arena err = %v", err)
	}
	if err := a.Reserve().Put(b); err != nil {
		t.Fatal(err)
	}
}

func TestReturnResetsFields(t *testing.T) {
	a := newTestArena(t, 2, 0)
	c := a.Frames().NewCache(2)
	b := make([]*NBL, 1)
	c.Get(b)
	l := b[0]
	l.NB().SetData(10, 20)
	l.Status = -1
	l.Context[0] = 7
	l.VSwitch = VSwitchMeta{Flags: MetaSourcePortID, SourcePortID: 3}
	l.InjectedBy, l.InjectContext = 5, "ctx"
	l.Complete = func(any, *NBL, bool) {}
	l.CompleteContext, l.InFlight = 1, true
	l.Stamp(StampRX, 99)
	l.Next = l
	frame := l.NB().Frame()
	if err := c.Put(b); err != nil {
		t.Fatal(err)
	}
	if l.Next != nil || l.Status != 0 || l.Context[0] != 0 || l.VSwitch != (VSwitchMeta{}) ||
		l.InjectedBy != 0 || l.InjectContext != nil || l.Complete != nil || l.CompleteContext != nil ||
		l.InFlight || l.Stamps[StampRX] != 0 || l.NB().DataLength != 0 || l.NB().DataOffset != 0 {
		t.Fatalf("fields not reset: %+v", l)
	}
	if &l.NB().Frame()[0] != &frame[0] {
		t.Fatal("frame binding lost on reset")
	}
}

// TestCloneLifecycle covers R33 (shallow clone, parent link, child count)
// and R34 (freeing the clone releases the parent; the parent cannot go
// back while it has children).
func TestCloneLifecycle(t *testing.T) {
	a := newTestArena(t, 4, 2)
	frames := a.Frames().NewCache(4)
	reserve := a.Reserve().NewCache(2)
	b := make([]*NBL, 1)
	frames.Get(b)
	parent := b[0]
	parent.NB().SetData(0, 64)
	parent.VSwitch.SourcePortID = 9
	c1 := reserve.Clone(parent)
	c2 := reserve.Clone(c1)
	if c1 == nil || c2 == nil {
		t.Fatal("clone failed")
	}
	if reserve.Clone(parent) != nil {
		t.Fatal("clone from an exhausted reserve succeeded")
	}
	if frames.Clone(parent) != nil {
		t.Fatal("clone from the frame pool succeeded")
	}
	if c1.Parent != parent || c2.Parent != c1 || c2.Root() != parent || !c1.IsClone() {
		t.Fatal("parent links wrong")
	}
	if parent.ChildRefCount() != 1 || c1.ChildRefCount() != 1 {
		t.Fatalf("child counts %d %d", parent.ChildRefCount(), c1.ChildRefCount())
	}
	if &c2.Data()[0] != &parent.Data()[0] || c2.VSwitch.SourcePortID != 9 {
		t.Fatal("clone is not shallow")
	}
	if err := frames.Put(b); !errors.Is(err, ErrBusy) {
		t.Fatalf("parent with child returned: err = %v", err)
	}
	if err := reserve.Put([]*NBL{c1}); !errors.Is(err, ErrBusy) {
		t.Fatalf("clone with child returned: err = %v", err)
	}
	if err := reserve.Put([]*NBL{c2, c1}); err != nil {
		t.Fatal(err)
	}
	if parent.ChildRefCount() != 0 {
		t.Fatalf("parent child count %d after clones freed", parent.ChildRefCount())
	}
	if err := frames.Put(b); err != nil {
		t.Fatal(err)
	}
	reserve.Flush()
	frames.Flush()
	if a.Frames().Available() != 4 || a.Reserve().Available() != 2 {
		t.Fatal("descriptors missing after clone lifecycle")
	}
}

// TestReferences covers R35: a referenced list cannot be returned, and a
// dereference without a reference is misuse.
func TestReferences(t *testing.T) {
	a := newTestArena(t, 2, 0)
	b := make([]*NBL, 1)
	a.Frames().Get(b)
	l := b[0]
	if err := l.Dereference(); !errors.Is(err, ErrNotReferenced) {
		t.Fatalf("unbalanced dereference err = %v", err)
	}
	l.Reference()
	if err := a.Frames().Put(b); !errors.Is(err, ErrBusy) {
		t.Fatalf("referenced list returned: %v", err)
	}
	if err := l.Dereference(); err != nil {
		t.Fatal(err)
	}
	if err := a.Frames().Put(b); err != nil {
		t.Fatal(err)
	}
}

func TestAllocate(t *testing.T) {
	a := newTestArena(t, 2, 1)
	c := a.Reserve().NewCache(2)
	data := make([]byte, 100)
	if _, err := c.Allocate(data, 90, 20); !errors.Is(err, ErrBounds) {
		t.Fatalf("window past data: %v", err)
	}
	if _, err := c.Allocate(data, 0, 0); !errors.Is(err, ErrBounds) {
		t.Fatalf("empty window: %v", err)
	}
	if _, err := a.Frames().NewCache(2).Allocate(data, 0, 10); !errors.Is(err, ErrForeign) {
		t.Fatalf("allocate from frame pool: %v", err)
	}
	l, err := c.Allocate(data, 10, 60)
	if err != nil {
		t.Fatal(err)
	}
	if &l.Data()[0] != &data[10] || len(l.Data()) != 60 {
		t.Fatal("allocated list does not view the caller's data")
	}
	if _, err := c.Allocate(data, 0, 10); !errors.Is(err, ErrExhausted) {
		t.Fatalf("exhausted reserve: %v", err)
	}
	if err := c.Put([]*NBL{l}); err != nil {
		t.Fatal(err)
	}
	if l.NB().Frame() != nil {
		t.Fatal("reserve descriptor kept the caller's data after return")
	}
}

func TestChains(t *testing.T) {
	a := newTestArena(t, 8, 0)
	b := make([]*NBL, 5)
	a.Frames().Get(b)
	head := Link(b)
	if Count(head) != 5 || Link(nil) != nil || Count(nil) != 0 {
		t.Fatal("Link/Count wrong")
	}
	got, rest := Split(head, make([]*NBL, 0, 3))
	if len(got) != 3 || rest != b[3] || Count(rest) != 2 {
		t.Fatalf("Split: %d, rest %v", len(got), rest)
	}
	for i, l := range got {
		if l != b[i] || l.Next != nil {
			t.Fatal("Split did not cut Next in order")
		}
	}
}

func TestCacheRefillFlush(t *testing.T) {
	a := newTestArena(t, 100, 0)
	p := a.Frames()
	c1, c2 := p.NewCache(16), p.NewCache(16)
	b := make([]*NBL, 100)
	if n := c1.Get(b[:60]); n != 60 {
		t.Fatalf("cache get 60 = %d", n)
	}
	// c1 keeps what its last refill brought beyond the 60 it handed out.
	held := c1.Len()
	if n := c2.Get(b[60:]); n != 40-held {
		t.Fatalf("second cache got %d of the remaining %d", n, 40-held)
	}
	if p.Available() != held {
		t.Fatalf("Available %d, want %d held by c1", p.Available(), held)
	}
	if err := c2.Put(b[:100-held]); err != nil {
		t.Fatal(err)
	}
	if p.Available() != 100 {
		t.Fatalf("Available %d with descriptors in caches", p.Available())
	}
	c1.Flush()
	c2.Flush()
	if c1.Len() != 0 || c2.Len() != 0 || p.Available() != 100 {
		t.Fatal("flush lost descriptors")
	}
	if n := p.Get(b); n != 100 {
		t.Fatalf("shared list holds %d after flush", n)
	}
}

func TestZeroAllocs(t *testing.T) {
	a := newTestArena(t, 256, 64)
	frames := a.Frames().NewCache(128)
	reserve := a.Reserve().NewCache(32)
	b := make([]*NBL, 32)
	data := make([]byte, 64)
	tests := map[string]func(){
		"cache get/put": func() { frames.Get(b); frames.Put(b) },
		"pool get/put":  func() { a.Frames().Get(b); a.Frames().Put(b) },
		"clone/free": func() {
			frames.Get(b[:1])
			cl := reserve.Clone(b[0])
			reserve.Put([]*NBL{cl})
			frames.Put(b[:1])
		},
		"allocate/free": func() {
			l, _ := reserve.Allocate(data, 0, 64)
			b[1] = l
			reserve.Put(b[1:2])
		},
		"chain": func() { frames.Get(b); Split(Link(b), b[:0]); frames.Put(b) },
	}
	for name, f := range tests {
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("%s: %v allocs, want 0", name, n)
		}
	}
}

func BenchmarkPool(b *testing.B) {
	a := newTestArena(b, 4096, 0)
	for _, burst := range []int{1, 8, 32, 64, 256} {
		c := a.Frames().NewCache(512)
		batch := make([]*NBL, burst)
		b.Run("cache-getput"+itoa(burst), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				c.Get(batch)
				c.Put(batch)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*burst), "ns/desc")
		})
		c.Flush()
	}
	batch := make([]*NBL, 32)
	b.Run("shared-getput32", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			a.Frames().Get(batch)
			a.Frames().Put(batch)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*32), "ns/desc")
	})
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// R38, R39: the modelled fields exist and the metadata and l2 flag values
// are fwpsk.h's.
func TestFieldsAndConstants(t *testing.T) {
	if MetaSourcePortID != 0x4 || MetaSourceNICIndex != 0x8 || MetaPacketContext != 0x10 || MetaDestinationPortID != 0x20 {
		t.Error("metadata bits differ from R39")
	}
	if L2RawIPv4 != 0x1 || L2RawIPv6 != 0x2 || L2ReclassifyMultiDestination != 0x8 {
		t.Error("l2 flags differ from R39")
	}
	a := newTestArena(t, 1, 1)
	l := a.Desc(0)
	var status int32 = l.Status // R38: Status is an int32 NTSTATUS
	_ = status
	if l.FirstNetBuffer.Next != nil || l.Parent != nil || l.Next != nil || l.ChildRefCount() != 0 {
		t.Error("fresh descriptor not empty")
	}
}

// R36: the vSwitch packet context is opaque metadata that rides with the
// list and its clones.
func TestPacketContextCarried(t *testing.T) {
	a := newTestArena(t, 2, 2)
	b := make([]*NBL, 1)
	a.Frames().Get(b)
	b[0].VSwitch.PacketContext = 0xfeed
	b[0].VSwitch.Flags |= MetaPacketContext
	cl := a.Reserve().NewCache(2).Clone(b[0])
	if cl.VSwitch.PacketContext != 0xfeed || cl.VSwitch.Flags&MetaPacketContext == 0 {
		t.Fatal("packet context lost on clone")
	}
}

// The descriptor is four cache lines, the hot ones first (see NBL).
func TestLayout(t *testing.T) {
	var l NBL
	if s := unsafe.Sizeof(l); s != 256 {
		t.Fatalf("NBL is %d bytes, want 256", s)
	}
	if end := unsafe.Offsetof(l.nb) + unsafe.Sizeof(l.nb); end > 64 {
		t.Fatalf("the buffer ends at byte %d, past the first cache line", end)
	}
	if end := unsafe.Offsetof(l.Header) + unsafe.Offsetof(l.Header.VSwitch) + unsafe.Sizeof(l.Header.VSwitch); end > 128+8 {
		t.Fatalf("the vSwitch metadata ends at byte %d", end)
	}
}

// A multi-buffer packet is one list whose buffers chain the frames it
// arrived in: returning the list returns every frame, through a cache or
// the pool; a clone shares the chain and returning it frees no frame.
func TestChainReturnsEveryFrame(t *testing.T) {
	a := newTestArena(t, 16, 4)
	for _, viaCache := range []bool{true, false} {
		frames := a.Frames()
		before := frames.Available()
		got := make([]*NBL, 3)
		if frames.Get(got) != 3 {
			t.Fatal("no frames")
		}
		for i, l := range got {
			l.NB().SetData(256, 100)
			if i > 0 {
				got[i-1].NB().Next = l.NB()
			}
		}
		head := got[0]
		if !head.Chained() || head.DataLen() != 300 || got[2].NB().List() != got[2] {
			t.Fatalf("chain: %v %d", head.Chained(), head.DataLen())
		}
		rc := a.Reserve().NewCache(4)
		cl := rc.Clone(head)
		if cl.DataLen() != 300 {
			t.Fatalf("clone sees %d bytes", cl.DataLen())
		}
		rc.Put([]*NBL{cl})
		rc.Release()
		if frames.Available() != before-3 {
			t.Fatalf("freeing the clone freed frames: %d available, want %d", frames.Available(), before-3)
		}
		if viaCache {
			c := frames.NewCache(2) // smaller than the chain: flushes on the way
			if err := c.Put([]*NBL{head}); err != nil {
				t.Fatal(err)
			}
			c.Release()
		} else if err := frames.Put([]*NBL{head}); err != nil {
			t.Fatal(err)
		}
		if frames.Available() != before {
			t.Fatalf("after the chain's return %d available, want %d", frames.Available(), before)
		}
		for _, l := range got {
			if l.NB().Next != nil {
				t.Fatal("a returned frame keeps its chain")
			}
		}
	}
}
