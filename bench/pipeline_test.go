package bench

import (
	"testing"

	"github.com/wfpxdp/wfpxdp/dataplane"
)

// BenchmarkPipelineMem pushes b.N 64-byte packets through the switch over
// the in-memory port, for each path, mode and link kind. Read Mpps (whole
// switch) and ns/pkt; the chan rows are the same stages wired with Go
// channels of 32-packet batches, pinned the same way.
func BenchmarkPipelineMem(b *testing.B) {
	for _, path := range []Path{PathForward, PathAbsorbReinject} {
		for _, mode := range []dataplane.Mode{dataplane.ModeRTC, dataplane.ModePipeline} {
			for _, link := range []dataplane.LinkKind{dataplane.LinkRing, dataplane.LinkChan} {
				name := string(path) + "/" + mode.String() + "/" + link.String()
				b.Run(name, func(b *testing.B) {
					b.ReportAllocs()
					r, err := RunPipeline(PipelineOptions{Path: path, Mode: mode, Link: link, Packets: uint64(max(b.N, 1000))})
					if err != nil {
						b.Fatal(err)
					}
					if r.Packets < uint64(b.N) {
						b.Fatalf("delivered %d of %d (drops %v)", r.Packets, b.N, r.Stats.Drops)
					}
					b.ReportMetric(r.Mpps, "Mpps")
					b.ReportMetric(float64(r.Elapsed.Nanoseconds())/float64(r.Packets), "ns/pkt")
					b.ReportMetric(float64(r.Mallocs)/float64(r.Packets), "mallocs/pkt")
				})
			}
		}
	}
}
