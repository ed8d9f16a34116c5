package afxdp

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/wfpxdp/wfpxdp/nbl"
)

// TXGenerator sends copies of one frame out of an interface through an
// AF_XDP socket's TX ring, paced: the generator for latency under a fixed
// load. It offers a few Mpps at most into a veth (each kick sends a small
// batch), against tens for LiveGenerator, but its pacing is fine-grained:
// LiveGenerator's BPF_PROG_RUN calls cost ~24 ms each here, so paced in
// small steps it cannot reach even 0.1 Mpps.
//
// It has a UMEM of its own; every frame holds the template, so sending is
// writing descriptors. Threading contract: one goroutine uses it.
type TXGenerator struct {
	region []byte
	sock   *Socket
	free   []uint64 // UMEM addresses not on the TX or completion ring
	lens   []uint32 // frame length by UMEM frame index
	// Flows, if N > 0, rewrites each frame as the next flow before it goes
	// (as NewLiveGeneratorFlows's program does); set before Run.
	Flows Flows
	seq   uint64 // frames sent
}

// NewTXGenerator opens a TX socket on queue 0 of ifindex (an interface of
// the calling thread's network namespace) with frames copies of frame.
func NewTXGenerator(ifindex int, frame []byte, frames int) (_ *TXGenerator, err error) {
	return NewTXGeneratorFrames(ifindex, [][]byte{frame}, frames)
}

// NewTXGeneratorFrames is NewTXGenerator sending several frames (a
// replayed capture): the UMEM's frames hold them in turn, so all of them
// go, in about their share, whatever order the completions come back in.
func NewTXGeneratorFrames(ifindex int, templates [][]byte, frames int) (_ *TXGenerator, err error) {
	for _, frame := range templates {
		if len(frame) < 14 || len(frame) > MaxFrameLen(2048) {
			return nil, fmt.Errorf("afxdp: generator frame of %d bytes (want 14..%d)", len(frame), MaxFrameLen(2048))
		}
	}
	if len(templates) == 0 {
		return nil, errors.New("afxdp: generator without a frame")
	}
	region, err := NewRegion(frames, 2048)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			FreeRegion(region)
		}
	}()
	arena, err := nbl.NewArena(nbl.Config{Frames: frames, FrameSize: 2048, Region: region})
	if err != nil {
		return nil, err
	}
	s, err := Open(arena, SocketOptions{Ifindex: ifindex, RingSize: 2048, NeedWakeup: true})
	if err != nil {
		return nil, err
	}
	g := &TXGenerator{region: region, sock: s, lens: make([]uint32, frames)}
	for i := 0; i < frames; i++ {
		t := templates[i%len(templates)]
		copy(region[i*2048:], t)
		g.lens[i] = uint32(len(t))
		g.free = append(g.free, uint64(i*2048))
	}
	return g, nil
}

// reap takes finished transmissions off the completion ring.
func (g *TXGenerator) reap() {
	c := g.sock.comp
	n := c.consAvail(uint32(cap(g.free) - len(g.free)))
	idx := c.cachedCons
	for i := uint32(0); i < n; i++ {
		g.free = append(g.free, *c.addr(idx + i))
	}
	if n > 0 {
		c.release(n)
	}
}

// Send puts up to n copies of the frame on the TX ring, kicks the kernel
// and returns how many it put there (fewer when the ring or the UMEM is
// full).
func (g *TXGenerator) Send(n int) (int, error) {
	g.reap()
	s := g.sock
	n = min(n, len(g.free), int(s.tx.prodFree(uint32(n))))
	if n == 0 {
		return 0, nil
	}
	idx := s.tx.cachedProd
	for i := 0; i < n; i++ {
		addr := g.free[len(g.free)-1-i]
		length := g.lens[addr/2048]
		if g.Flows.N > 0 {
			g.Flows.Write(g.region[addr:addr+uint64(length)], g.Flows.Index(g.seq))
			g.seq++
		}
		d := s.tx.desc(idx + uint32(i))
		d.Addr, d.Len, d.Options = addr, length, 0
	}
	g.free = g.free[:len(g.free)-n]
	s.tx.submit(uint32(n))
	s.flushTX()
	return n, nil
}

// Run offers rate frames per second until stop is closed, adding what it
// sent to sent. It sends what is due every ~20 µs (spinning with yields in
// between, so it keeps its CPU busy: pin it).
func (g *TXGenerator) Run(rate float64, stop <-chan struct{}, sent *atomic.Uint64) error {
	if rate <= 0 {
		return errors.New("afxdp: generator rate must be > 0")
	}
	start := time.Now()
	var done uint64
	for i := 0; ; i++ {
		if i&63 == 0 {
			select {
			case <-stop:
				return nil
			default:
			}
		}
		due := uint64(rate * time.Since(start).Seconds())
		if due <= done {
			time.Sleep(20 * time.Microsecond)
			continue
		}
		k, err := g.Send(int(min(due-done, 256)))
		if err != nil {
			return err
		}
		done += uint64(k)
		sent.Add(uint64(k))
		if k == 0 {
			// the TX path is full: the offered rate is above what the
			// interface takes; what is behind is not sent later in a burst
			done = due
		}
	}
}

// Close closes the socket and frees the UMEM.
func (g *TXGenerator) Close() error {
	g.sock.close()
	return FreeRegion(g.region)
}
