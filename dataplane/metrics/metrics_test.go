package metrics_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/dataplane/memport"
	"github.com/wfpxdp/wfpxdp/dataplane/metrics"
	"github.com/wfpxdp/wfpxdp/inject"
)

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

// value returns the sample of the metric line that starts with series.
func value(t *testing.T, body, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in the scrape", series)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Scraped over loopback while the switch runs, the counters move and agree
// with the switch; the latency summary and the per-port series are there.
func TestScrapeDuringRun(t *testing.T) {
	sw, err := dataplane.New(inject.NewEngine(), dataplane.Config{ID: inject.GUID{9}, NoPin: true, Frames: 2048, IdleSleep: 50 * time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	gen, err := memport.New(memport.Config{Name: "gen", Rate: 200_000,
		Templates: []memport.Template{{Dst: 0x02000000000b, Src: 0x02000000000a}}})
	if err != nil {
		t.Fatal(err)
	}
	gen.Mangle = func(i uint64, frame []byte) []byte {
		if i%100 == 99 {
			return frame[:10] // a runt: dropped as malformed
		}
		return frame
	}
	sink, _ := memport.New(memport.Config{Name: "sink", Latency: true})
	sw.AddPort(1, 0, 0x02000000000a, gen)
	sw.AddPort(2, 0, 0x02000000000b, sink)
	sw.RegisterCallout(dataplane.NewInspector("inspect", nil))
	sw.SetFilters([]dataplane.Filter{{Name: "i", Layer: dataplane.LayerIngress, Action: dataplane.FilterCallout, Callout: "inspect"}})
	capt, _ := dataplane.NewCapture(dataplane.CaptureDropped, 64)
	srv, err := metrics.Serve("127.0.0.1:0", metrics.Source{Switch: sw, Capture: capt, Latency: sink.LatencySnapshot})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	url := "http://" + srv.Addr() + "/metrics"
	if err := sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	time.Sleep(100 * time.Millisecond)
	a := scrape(t, url)
	time.Sleep(200 * time.Millisecond)
	b := scrape(t, url)
	for _, series := range []string{`wfpxdp_rx_packets_total{queue="0"}`, `wfpxdp_absorbed_total`, `wfpxdp_reinjected_total`,
		`wfpxdp_port_tx_packets_total{port="2"}`, `wfpxdp_drops_total{reason="malformed"}`, `wfpxdp_latency_ns_count`} {
		va, vb := value(t, a, series), value(t, b, series)
		if !(vb > va) {
			t.Errorf("%s did not move: %v then %v", series, va, vb)
		}
	}
	if v := value(t, b, `wfpxdp_drops_total{reason="tx_full"}`); v != 0 {
		t.Errorf("tx_full drops %v", v)
	}
	if v := value(t, b, `wfpxdp_frames{state="total"}`); v != 2048 {
		t.Errorf("frames total %v", v)
	}
	if p99 := value(t, b, `wfpxdp_latency_ns{quantile="0.99"}`); p99 <= 0 {
		t.Errorf("p99 %v", p99)
	}
	if !strings.Contains(b, "go_goroutines") {
		t.Error("no Go runtime metrics")
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	// after the stop the scrape agrees with Stats exactly
	c := scrape(t, url)
	st := sw.Stats()
	if v := value(t, c, `wfpxdp_rx_packets_total{queue="0"}`); v != float64(st.RX) {
		t.Errorf("rx %v, Stats %d", v, st.RX)
	}
	if v := value(t, c, `wfpxdp_frames{state="leaked"}`); v != 0 {
		t.Errorf("leaked %v", v)
	}
}
