package metrics_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/dataplane/metrics"
	"github.com/wfpxdp/wfpxdp/inject"
)

// Serving a switch's metrics to Prometheus: everything is read at scrape
// time from counters the stages keep anyway.
func ExampleServe() {
	sw, _ := dataplane.New(inject.NewEngine(), dataplane.Config{ID: inject.GUID{1}, NoPin: true, Frames: 1024})
	srv, err := metrics.Serve("127.0.0.1:0", metrics.Source{Switch: sw})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	resp, err := http.Get("http://" + srv.Addr() + "/metrics")
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "wfpxdp_frames{") {
			fmt.Println(line)
		}
	}
	// Output:
	// wfpxdp_frames{state="free"} 1024
	// wfpxdp_frames{state="in_flight"} 0
	// wfpxdp_frames{state="in_ports"} 0
	// wfpxdp_frames{state="leaked"} 0
	// wfpxdp_frames{state="total"} 1024
}
