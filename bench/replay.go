package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// pcapng files start with a section header block of this type.
var pcapngMagic = []byte{0x0a, 0x0d, 0x0d, 0x0a}

// LoadCapture reads the Ethernet frames of a pcap or pcapng file (told
// apart by their first bytes), for replay. Frames cut short by the
// capture's snap length are refused, as are frames over maxLen bytes and
// link types other than Ethernet.
func LoadCapture(path string, maxLen int) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	head, _ := br.Peek(4)
	var src interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	var link layers.LinkType
	if bytes.Equal(head, pcapngMagic) {
		r, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, fmt.Errorf("replay %s: pcapng: %w", path, err)
		}
		src, link = r, r.LinkType()
	} else {
		r, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("replay %s: not a pcap or pcapng file: %w", path, err)
		}
		src, link = r, r.LinkType()
	}
	if link != layers.LinkTypeEthernet {
		return nil, fmt.Errorf("replay %s: link type %v (want Ethernet)", path, link)
	}
	var frames [][]byte
	for i := 0; ; i++ {
		data, ci, err := src.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("replay %s: frame %d: %w", path, i, err)
		}
		switch {
		case ci.CaptureLength < ci.Length:
			return nil, fmt.Errorf("replay %s: frame %d is cut to %d of its %d bytes (capture with a larger snap length)", path, i, ci.CaptureLength, ci.Length)
		case len(data) < 14 || len(data) > maxLen:
			return nil, fmt.Errorf("replay %s: frame %d is %d bytes (want 14..%d)", path, i, len(data), maxLen)
		}
		frames = append(frames, append([]byte(nil), data...))
	}
	if len(frames) == 0 {
		return nil, fmt.Errorf("replay %s: no frames", path)
	}
	return frames, nil
}

// SizeClass is a count of frames in a range of sizes.
type SizeClass struct {
	Min    int `json:"min"` // bytes, inclusive
	Max    int `json:"max"`
	Frames int `json:"frames"`
}

// SizeDistribution counts frames by size, in the classes of RFC 2544's
// sizes (..127, 128..255, ..., 1024..1518, 1519..).
func SizeDistribution(frames [][]byte) []SizeClass {
	classes := []SizeClass{{0, 127, 0}, {128, 255, 0}, {256, 511, 0}, {512, 1023, 0}, {1024, 1518, 0}, {1519, 1 << 16, 0}}
	for _, f := range frames {
		for i := range classes {
			if len(f) <= classes[i].Max {
				classes[i].Frames++
				break
			}
		}
	}
	out := classes[:0]
	for _, c := range classes {
		if c.Frames > 0 {
			out = append(out, c)
		}
	}
	return out
}
