package bench

import (
	"sync/atomic"
	"time"

	"golang.org/x/sys/cpu"

	"github.com/wfpxdp/wfpxdp/ring/pin"
)

// CoreRTT measures the round trip of a cache line between CPUs a and b:
// two pinned goroutines bounce a counter rounds times. How far apart the
// host has placed the two vCPUs decides how much a cross-core handoff
// costs, and it changes from run to run; the AF_XDP reports record it next
// to each result.
func CoreRTT(a, b, rounds int) time.Duration {
	var line struct {
		_ cpu.CacheLinePad
		v atomic.Uint64
		_ cpu.CacheLinePad
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if unpin, err := pin.Thread(b); err == nil {
			defer unpin()
		}
		for i := uint64(1); i <= uint64(2*rounds); i += 2 {
			for line.v.Load() != i {
			}
			line.v.Store(i + 1)
		}
	}()
	unpin, err := pin.Thread(a)
	if err == nil {
		defer unpin()
	}
	start := time.Now()
	for i := uint64(0); i < uint64(2*rounds); i += 2 {
		line.v.Store(i + 1)
		for line.v.Load() != i+2 {
		}
	}
	el := time.Since(start)
	<-done
	return el / time.Duration(rounds)
}
