package nbl

import (
	"errors"
	"fmt"
	"math/bits"
)

// Errors of the arena, pools and caches.
var (
	ErrConfig        = errors.New("invalid nbl arena config")
	ErrDoubleReturn  = errors.New("nbl: descriptor returned while already free")
	ErrForeign       = errors.New("nbl: descriptor returned to a pool it does not belong to")
	ErrBusy          = errors.New("nbl: descriptor returned while it has live clones or references")
	ErrNotReferenced = errors.New("nbl: dereference without a matching reference")
	ErrExhausted     = errors.New("nbl: pool exhausted")
	ErrBounds        = errors.New("nbl: data window outside the buffer")
)

// Config sizes an Arena.
type Config struct {
	Frames    int    // frame descriptors, one per frame of Region
	FrameSize int    // bytes per frame; a power of two >= 256
	Reserve   int    // extra descriptors for clones and allocated lists
	Region    []byte // Frames*FrameSize bytes; allocated if nil
}

// Arena owns every descriptor of one switch: Frames frame descriptors over
// the region (descriptor i <-> frame i) and Reserve descriptors without a
// frame. It is built once and never grows.
type Arena struct {
	region     []byte
	frameSize  int
	frameShift uint // log2(frameSize): DescAt and Addr shift instead of divide
	descs      []NBL
	frames     *Pool // descriptors [0, Frames)
	reserve    *Pool // descriptors [Frames, Frames+Reserve)
}

// NewArena preallocates the descriptors and, unless cfg.Region is given, the
// region. All frame and reserve descriptors start free in their pools.
func NewArena(cfg Config) (*Arena, error) {
	fs := cfg.FrameSize
	switch {
	case cfg.Frames <= 0 || cfg.Frames >= 1<<31:
		return nil, fmt.Errorf("%w: frames = %d, want 1..2^31-1", ErrConfig, cfg.Frames)
	case fs < 256 || fs&(fs-1) != 0:
		return nil, fmt.Errorf("%w: frame size %d is not a power of two >= 256", ErrConfig, fs)
	case cfg.Reserve < 0 || cfg.Frames+cfg.Reserve >= 1<<31:
		return nil, fmt.Errorf("%w: reserve = %d", ErrConfig, cfg.Reserve)
	}
	region := cfg.Region
	if region == nil {
		region = make([]byte, cfg.Frames*fs)
	} else if len(region) < cfg.Frames*fs {
		return nil, fmt.Errorf("%w: region of %d bytes < %d frames of %d", ErrConfig, len(region), cfg.Frames, fs)
	}
	a := &Arena{region: region, frameSize: fs, frameShift: uint(bits.TrailingZeros(uint(fs))), descs: make([]NBL, cfg.Frames+cfg.Reserve)}
	a.frames = newPool(a, "frames", 0, cfg.Frames)
	a.reserve = newPool(a, "reserve", cfg.Frames, cfg.Frames+cfg.Reserve)
	for i := range a.descs {
		l := &a.descs[i]
		l.index = uint32(i)
		if i < cfg.Frames {
			l.pool = a.frames
			l.keepFrame = true
			l.nb.frame = region[i*fs : (i+1)*fs : (i+1)*fs]
		} else {
			l.pool = a.reserve
		}
		l.FirstNetBuffer = &l.nb
	}
	return a, nil
}

// Region returns the shared byte region the frame descriptors point into.
func (a *Arena) Region() []byte { return a.region }

// FrameSize returns the bytes per frame.
func (a *Arena) FrameSize() int { return a.frameSize }

// Frames returns the pool of frame descriptors.
func (a *Arena) Frames() *Pool { return a.frames }

// Reserve returns the pool of frameless descriptors for clones and
// allocated lists.
func (a *Arena) Reserve() *Pool { return a.reserve }

// NumFrames returns the number of frames (and frame descriptors).
func (a *Arena) NumFrames() int { return a.frames.Size() }

// Desc returns the descriptor with index i (frame i for i < NumFrames()).
// It does not change ownership. Panics if i is out of range.
func (a *Arena) Desc(i uint32) *NBL { return &a.descs[i] }

// DescAt returns the frame descriptor whose frame contains byte offset addr
// of the region, and false if addr is outside it.
func (a *Arena) DescAt(addr uint64) (*NBL, bool) {
	i := addr >> a.frameShift
	if i >= uint64(a.frames.Size()) {
		return nil, false
	}
	return &a.descs[i], true
}

// Received returns the frame descriptor for length bytes received at byte
// offset addr of the region, with its buffer set to them, and its index;
// false if they are not inside one frame. It works from the address alone:
// it reads nothing of the descriptor, whose line a receive path would
// otherwise wait on before it could store to it.
func (a *Arena) Received(addr uint64, length uint32) (*NBL, uint64, bool) {
	i := addr >> a.frameShift
	off := addr & (1<<a.frameShift - 1)
	if i >= uint64(a.frames.Size()) || off+uint64(length) > 1<<a.frameShift {
		return nil, 0, false
	}
	l := &a.descs[i]
	l.nb.DataOffset, l.nb.DataLength = uint32(off), length
	return l, i, true
}

// Addr returns the region offset of frame descriptor l's frame.
func (a *Arena) Addr(l *NBL) uint64 { return uint64(l.index) << a.frameShift }
