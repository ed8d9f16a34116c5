package inject_test

import (
	"testing"

	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/inject/injecttest"
	"github.com/wfpxdp/wfpxdp/nbl"
)

// R32: allocate over caller data; out of descriptors and bad sizes.
func TestAllocate(t *testing.T) {
	e := newEnv(t, injecttest.Options{})
	data := make([]byte, 128)
	for _, c := range []struct{ off, n uint32 }{{0, 0}, {100, 29}, {129, 1}} {
		if _, st := inject.AllocateNetBufferAndNetBufferList(e.reserve, data, c.off, c.n); st != inject.StatusInvalidParameter {
			t.Errorf("window %d+%d: %v", c.off, c.n, st)
		}
	}
	if _, st := inject.AllocateNetBufferAndNetBufferList(e.frames, data, 0, 64); st != inject.StatusInvalidParameter {
		t.Errorf("allocate from frame pool: %v", st)
	}
	var got []*nbl.NBL
	for {
		l, st := inject.AllocateNetBufferAndNetBufferList(e.reserve, data, 14, 64)
		if st == inject.StatusInsufficientResources {
			break
		}
		if st != inject.StatusSuccess {
			t.Fatal(st)
		}
		if &l.Data()[0] != &data[14] {
			t.Fatal("allocated list does not view the caller's data")
		}
		got = append(got, l)
	}
	if len(got) != e.arena.Reserve().Size() {
		t.Fatalf("allocated %d of %d", len(got), e.arena.Reserve().Size())
	}
	// R32: free only after the injection completes
	rec := newRecorder()
	if st := e.inject(got[0], rec.complete, nil); st != inject.StatusSuccess {
		t.Fatal(st)
	}
	if st := inject.FreeNetBufferList(e.reserve, got[0]); st != inject.StatusInvalidParameter {
		t.Fatalf("free while in flight: %v", st)
	}
	e.sw.Drain()
	for _, l := range got {
		if st := inject.FreeNetBufferList(e.reserve, l); st != inject.StatusSuccess {
			t.Fatal(st)
		}
	}
	if st := inject.FreeNetBufferList(e.reserve, got[0]); st != inject.StatusInvalidParameter {
		t.Fatalf("double free: %v", st)
	}
	e.checkAllFree()
}

// R33, R34, R31: clone shares data, links the parent, counts children;
// clone-free releases the parent; batch classify forbids cloning.
func TestCloneAndBatchClassify(t *testing.T) {
	e := newEnv(t, injecttest.Options{})
	_, b := e.packets(1)
	p := b[0]
	if _, st := inject.AllocateCloneNetBufferList(e.reserve, p, 1); st != inject.StatusInvalidParameter {
		t.Fatalf("clone flags: %v", st)
	}
	p.BatchClassify = true
	if _, st := inject.AllocateCloneNetBufferList(e.reserve, p, 0); st != inject.StatusInvalidParameter {
		t.Fatalf("clone in batch classify: %v (R31)", st)
	}
	p.BatchClassify = false
	cl, st := inject.AllocateCloneNetBufferList(e.reserve, p, 0)
	if st != inject.StatusSuccess || cl.Parent != p || p.ChildRefCount() != 1 || &cl.Data()[0] != &p.Data()[0] {
		t.Fatalf("clone: %v", st)
	}
	if e.frames.Put(b) == nil {
		t.Fatal("parent returned while it had a child (R34)")
	}
	if st := inject.FreeCloneNetBufferList(e.reserve, p); st != inject.StatusInvalidParameter {
		t.Fatal("clone-free of a non-clone accepted")
	}
	if st := inject.FreeNetBufferList(e.reserve, cl); st != inject.StatusInvalidParameter {
		t.Fatal("plain free of a clone accepted")
	}
	if st := inject.FreeCloneNetBufferList(e.reserve, cl); st != inject.StatusSuccess || p.ChildRefCount() != 0 {
		t.Fatalf("clone-free: %v children %d", st, p.ChildRefCount())
	}
	for i := 0; i < e.arena.Reserve().Size(); i++ {
		if _, st := inject.AllocateCloneNetBufferList(e.reserve, p, 0); st != inject.StatusSuccess {
			t.Fatal(st)
		}
	}
	if _, st := inject.AllocateCloneNetBufferList(e.reserve, p, 0); st != inject.StatusInsufficientResources {
		t.Fatalf("clone from empty reserve: %v", st)
	}
}

// R35: reference keeps the list from being returned; dereference without a
// reference is misuse.
func TestReferenceDereference(t *testing.T) {
	e := newEnv(t, injecttest.Options{})
	_, b := e.packets(1)
	if st := inject.DereferenceNetBufferList(b[0], false); st != inject.StatusInvalidParameter {
		t.Fatalf("unbalanced dereference: %v", st)
	}
	inject.ReferenceNetBufferList(b[0], false)
	if e.frames.Put(b) == nil {
		t.Fatal("referenced list returned")
	}
	if st := inject.DereferenceNetBufferList(b[0], false); st != inject.StatusSuccess {
		t.Fatal(st)
	}
	if err := e.frames.Put(b); err != nil {
		t.Fatal(err)
	}
	e.checkAllFree()
}
