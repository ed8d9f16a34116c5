package afxdp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// NewRegion maps an anonymous, page-aligned region of frames*frameSize
// bytes to serve as the UMEM (pass it as dataplane.Config.Region). Release
// it with FreeRegion once every socket over it is closed.
func NewRegion(frames, frameSize int) ([]byte, error) {
	if frameSize != 2048 && frameSize != 4096 {
		return nil, fmt.Errorf("afxdp: frame size %d: AF_XDP aligned mode takes 2048 or 4096", frameSize)
	}
	b, err := unix.Mmap(-1, 0, frames*frameSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("afxdp: map %d-byte umem: %w", frames*frameSize, err)
	}
	return b, nil
}

// FreeRegion unmaps a region from NewRegion.
func FreeRegion(b []byte) error { return unix.Munmap(b) }
