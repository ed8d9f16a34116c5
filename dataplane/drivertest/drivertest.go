// Package drivertest checks a dataplane.Driver against the parts of its
// contract a port's own tests would not exercise.
package drivertest

import (
	"runtime"
	"testing"
	"time"

	"github.com/wfpxdp/wfpxdp/nbl"
)

// Sender is what TransmitAndReap needs of the port under test: its
// Transmit and Reap (a dataplane.Driver has both).
type Sender interface {
	Transmit(src []*nbl.NBL) int
	Reap(dst []*nbl.NBL) int
}

// TransmitAndReap sends n lists through d, calling Transmit on the calling
// goroutine while another goroutine calls Reap — as an egress stage and a
// completion stage on different lcores do; the contract allows it. next
// fills dst with lists ready to send and returns how many; done takes back
// lists, unsent or reaped, on the calling goroutine. The reaper writes to
// every list it gets (it empties its buffer), as a stage freeing it
// would, so under -race a driver that touches a list after handing it to
// Reap's side is caught. It fails t unless every list comes back within
// the timeout.
func TransmitAndReap(t testing.TB, d Sender, n int, next func(dst []*nbl.NBL) int, done func([]*nbl.NBL)) {
	t.Helper()
	back := make(chan []*nbl.NBL, 1024)
	reaped := make(chan int, 1)
	stop := make(chan struct{})
	go func() {
		total := 0
		buf := make([]*nbl.NBL, 64)
		for total < n {
			select {
			case <-stop:
				reaped <- total
				return
			default:
			}
			k := d.Reap(buf)
			if k == 0 {
				runtime.Gosched()
				continue
			}
			for _, l := range buf[:k] {
				l.NB().SetData(0, 0)
			}
			total += k
			select {
			case back <- append([]*nbl.NBL(nil), buf[:k]...):
			case <-stop:
				reaped <- total
				return
			}
		}
		reaped <- total
	}()
	batch := make([]*nbl.NBL, 32)
	deadline := time.Now().Add(20 * time.Second)
	for sent := 0; sent < n && time.Now().Before(deadline); {
		select {
		case ls := <-back:
			done(ls)
		default:
		}
		k := next(batch[:min(len(batch), n-sent)])
		m := d.Transmit(batch[:k])
		done(batch[m:k])
		sent += m
		if m == 0 {
			runtime.Gosched()
		}
	}
	timeout := time.After(time.Until(deadline) + time.Second)
	total := -1
	for total < 0 {
		select {
		case total = <-reaped:
		case ls := <-back:
			done(ls)
		case <-timeout:
			close(stop)
			total = <-reaped
		}
	}
	for len(back) > 0 {
		done(<-back)
	}
	if total != n {
		t.Fatalf("reaped %d of %d lists", total, n)
	}
}
