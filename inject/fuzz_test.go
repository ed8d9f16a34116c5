package inject_test

import (
	"testing"
	"time"

	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/inject/injecttest"
	"github.com/wfpxdp/wfpxdp/nbl"
)

// FuzzInject drives InjectVSwitchEthernetIngressAsync with random
// arguments, chains and handle states, checks the status against a model of
// the validation order (G1) and the ownership rules: on failure nothing is
// taken and no completion runs (R17); on success every list completes
// exactly once or, for originals without a completion, returns to its pool
// (R18, G4); nothing leaks.
func FuzzInject(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 3, 0x40, 0x40, 0x40})
	f.Add([]byte{1, 1, 1, 1, 1, 1, 1, 2, 0x41, 0x82})
	f.Add([]byte{2, 0, 0, 2, 1, 0, 0, 4, 0xc3, 0x40, 0x05, 0x40})
	f.Add([]byte{0, 0, 0, 0, 2, 1, 1, 2, 0x40, 0x60})
	f.Fuzz(func(t *testing.T, in []byte) {
		at := func(i int) byte {
			if i < len(in) {
				return in[i]
			}
			return 0
		}
		e := newEnv(t, injecttest.Options{RingSize: 4})
		e.sw.AddPort(3, 1)
		handleState, flags, reservedSet := at(0)%4, uint32(at(1)%2), at(2)%2 == 1
		idChoice, port, nic := at(3)%3, []uint32{0, 3, 9}[at(4)%3], uint16(at(5)%3)
		nilFn, noCallout := at(6)%2 == 1, at(6)%4 == 2
		n := int(at(7)%8) + 1

		// the handle
		h := e.h
		var destroyDone chan inject.Status
		var blocker *nbl.NBL // keeps a closing handle from finishing
		switch handleState {
		case 1: // not L2
			h, _ = e.eng.InjectionHandleCreate(0, inject.InjectionTypeNetwork)
		case 2: // destroyed
			h, _ = e.eng.InjectionHandleCreate(0, inject.InjectionTypeL2)
			h.Destroy()
		case 3: // closing: one injection outstanding while Destroy waits
			h, _ = e.eng.InjectionHandleCreate(0, inject.InjectionTypeL2)
			blocker, _ = inject.AllocateNetBufferAndNetBufferList(e.reserve, make([]byte, 64), 0, 64)
			if st := h.InjectVSwitchEthernetIngressAsync(nil, 0, nil, switchID[:], 0, 0, blocker, func(any, *nbl.NBL, bool) {}, nil); st != inject.StatusSuccess {
				t.Fatal(st)
			}
			destroyDone = make(chan inject.Status, 1)
			go func() { destroyDone <- h.Destroy() }()
			for h.Pending() == 1 && !closing(h, e) {
				time.Sleep(10 * time.Microsecond)
			}
		}

		e.sw.SetCallouts(!noCallout)

		// the chain: per list one byte: kind (2 bits), length, flags
		var lists []*nbl.NBL
		var parents []*nbl.NBL
		hasDerived, badList := false, false
		for i := 0; i < n; i++ {
			b := at(8 + i)
			var l *nbl.NBL
			fr := make([]*nbl.NBL, 1)
			e.frames.Get(fr)
			switch b % 3 {
			case 0:
				l = fr[0]
			case 1:
				parents = append(parents, fr[0])
				fr[0].NB().SetData(0, 64)
				l, _ = inject.AllocateCloneNetBufferList(e.reserve, fr[0], 0)
				hasDerived = true
			case 2:
				e.frames.Put(fr)
				l, _ = inject.AllocateNetBufferAndNetBufferList(e.reserve, make([]byte, 128), 0, 64)
				hasDerived = true
			}
			length := uint32(b>>2) * 2 // 0..126
			if b%3 != 2 {
				l.NB().SetData(0, length)
			} else {
				l.NB().SetData(0, max(length, 1))
			}
			if l.NB().DataLength < 14 {
				badList = true
			}
			if b&0x80 != 0 && i == n-1 {
				l.InFlight = true // R22b
				badList = true
			}
			lists = append(lists, l)
		}
		head := nbl.Link(lists)
		if n > 1 && at(8+n)%5 == 0 { // a list twice: a cycle
			lists[n-1].Next = lists[0]
			badList = true
		}

		var id []byte
		switch idChoice {
		case 0:
			id = switchID[:]
		case 1:
			id = nil
		case 2:
			id = []byte{1, 2, 3}
		}
		var reserved any
		if reservedSet {
			reserved = e
		}
		rec := newRecorder()
		fn := nbl.CompleteFunc(rec.complete)
		if nilFn {
			fn = nil
		}

		// the model (G1 order)
		want := inject.StatusSuccess
		switch {
		case handleState == 2:
			want = inject.StatusInvalidHandle
		case handleState == 3:
			want = inject.StatusFwpInjectHandleClosing
		case handleState == 1:
			want = inject.StatusFwpInjectHandleStale
		case flags != 0 || reservedSet:
			want = inject.StatusInvalidParameter
		case idChoice != 0 || port == 9 || (port == 3 && nic > 1):
			want = inject.StatusInvalidParameter
		case badList || (nilFn && hasDerived):
			want = inject.StatusInvalidParameter
		case noCallout:
			want = inject.StatusInvalidDeviceState
		}
		inflight := make([]bool, n)
		for i, l := range lists {
			inflight[i] = l.InFlight
		}
		st := h.InjectVSwitchEthernetIngressAsync("ctx", flags, reserved, id, port, nic, head, fn, "cctx")
		if st != want {
			t.Fatalf("status %v, model says %v", st, want)
		}
		e.sw.Drain()
		if destroyDone != nil {
			if ds := <-destroyDone; ds != inject.StatusSuccess {
				t.Fatalf("destroy: %v", ds)
			}
		}
		lists[n-1].Next = nil // undo a cycle
		if st != inject.StatusSuccess {
			if rec.total() != 0 {
				t.Fatal("completion after a failed inject")
			}
			for i, l := range lists {
				if l.InFlight != inflight[i] || l.InjectedBy != 0 {
					t.Fatalf("list %d changed by a failed inject", i)
				}
			}
		} else if !nilFn {
			for i, l := range lists {
				if rec.calls[l] != 1 {
					t.Fatalf("list %d completed %d times", i, rec.calls[l])
				}
			}
		}
		// free everything the caller owns now
		for _, l := range lists {
			l.InFlight = false
			switch {
			case st == inject.StatusSuccess && nilFn:
				// originals went back to their pool (G4)
			case l.IsClone():
				if s := inject.FreeCloneNetBufferList(e.reserve, l); s != inject.StatusSuccess {
					t.Fatalf("free clone: %v", s)
				}
			case !l.OwnsFrame():
				if s := inject.FreeNetBufferList(e.reserve, l); s != inject.StatusSuccess {
					t.Fatalf("free: %v", s)
				}
			default:
				if err := e.frames.Put([]*nbl.NBL{l}); err != nil {
					t.Fatal(err)
				}
			}
		}
		e.frames.Put(parents)
		if blocker != nil {
			inject.FreeNetBufferList(e.reserve, blocker)
		}
		e.checkAllFree()
	})
}

// closing reports whether h's Destroy has started (an inject is refused).
func closing(h *inject.Handle, e *env) bool {
	st := h.InjectVSwitchEthernetIngressAsync(nil, 0, nil, switchID[:], 0, 0, nil, nil, nil)
	return st == inject.StatusFwpInjectHandleClosing
}
