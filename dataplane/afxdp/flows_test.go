package afxdp

import (
	"bytes"
	"os"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/wfpxdp/wfpxdp/ring/pin"
)

// The live-frames generator's program rewrites frames as Flows.Write
// does, flow after flow: run once per frame (BPF_PROG_RUN without live
// frames hands the frame back), each output equals the frame Go writes
// for the same flow, in both orders.
func TestFlowProgramMatchesGo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_BPF) to load the XDP program")
	}
	// the program's counter is per CPU: run it on one
	unpin, err := pin.Thread(0)
	if err != nil {
		t.Fatal(err)
	}
	defer unpin()
	for _, random := range []bool{false, true} {
		f := Flows{N: 5, Random: random}
		g, err := NewLiveGeneratorFlows(f)
		if err != nil {
			t.Fatal(err)
		}
		frame := make([]byte, 64)
		for i := range frame {
			frame[i] = byte(i)
		}
		out := make([]byte, 64)
		for k := uint64(0); k < 12; k++ {
			want := bytes.Clone(frame)
			f.Write(want, f.Index(k))
			ret, err := g.prog.Run(&ebpf.RunOptions{Data: frame, DataOut: out})
			if err != nil {
				t.Fatal(err)
			}
			// pinned, the per-CPU counter is k
			if ret != 3 || !bytes.Equal(out, want) {
				t.Fatalf("random %v frame %d: verdict %d\n% x\nwant\n% x", random, k, ret, out, want)
			}
		}
		g.Close()
	}
	if !bytes.Equal(Flows{}.MAC([]byte{2, 0, 0, 0, 0xaa, 0xbb}, 0x1234), []byte{2, 0, 0, 0, 0x12, 0x34}) {
		t.Fatal("Flows.MAC")
	}
}
