// Package metrics serves a switch's counters as Prometheus metrics
// (github.com/prometheus/client_golang). Everything is read at scrape
// time from the counters the stages keep anyway (per queue, added once
// per batch), so serving metrics adds nothing to the hot path.
//
// Metric names, all prefixed wfpxdp_:
//
//	rx_packets_total{queue}            received from ports
//	tx_packets_total                   sent to ports
//	port_rx_packets_total{port}        per switch port id
//	port_tx_packets_total{port}
//	port_tx_full_total{port}           lists a full TX path made wait
//	port_bytes_total{port,dir}         frame bytes received (rx) and sent (tx)
//	port_checksums_completed_total{port} partial TCP/UDP checksums finished on TX
//	drops_total{reason}                every drop reason, zeros included
//	classified_total, absorbed_total, reinjected_total, flooded_total,
//	completions_total, discarded_total, inject_refused_total,
//	completion_panics_total
//	frames{state}                      total, free, in_ports, in_flight, leaked
//	reserve_descriptors{state}         total, free
//	lcore_busy_seconds_total           lcore time in rounds that moved packets
//	xdp_*_total{socket}                AF_XDP ring statistics (XDP_STATISTICS)
//	xdp_tx_copies_total{socket}        frames copied on TX (not in the UMEM)
//	xdp_syscalls_total{socket,kind}    TX kicks and RX wakeups
//	capture_records_total{outcome}     captured, lost (ring full)
//	latency_ns{quantile}               a summary from the latency histogram
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/dataplane/afxdp"
)

// Source is what a collector reads. Only Switch is required.
type Source struct {
	Switch  *dataplane.Switch
	XDP     []*afxdp.Port      // AF_XDP sockets whose ring statistics to export
	Capture *dataplane.Capture // packet capture counters
	// Latency returns a snapshot of the latency histogram (safe to call
	// while the switch runs), or nil.
	Latency func() *hdrhistogram.Histogram
}

const ns = "wfpxdp"

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(ns+"_"+name, help, labels, nil)
}

var (
	dRX        = desc("rx_packets_total", "Packets received from ports, per switch queue.", "queue")
	dTX        = desc("tx_packets_total", "Packets sent to ports.")
	dPortRX    = desc("port_rx_packets_total", "Packets received from a switch port.", "port")
	dPortTX    = desc("port_tx_packets_total", "Packets sent to a switch port.", "port")
	dPortFull  = desc("port_tx_full_total", "Lists that could not go straight to a port's full TX path (they waited, or were dropped as tx_full).", "port")
	dDrops     = desc("drops_total", "Packets the switch dropped, by reason.", "reason")
	dFrames    = desc("frames", "UMEM frames / NBL descriptors by where they are.", "state")
	dReserve   = desc("reserve_descriptors", "Reserve descriptors (clones, allocated lists).", "state")
	dBusy      = desc("lcore_busy_seconds_total", "Lcore time spent in rounds that moved packets, summed over lcores.")
	dXDP       = desc("xdp_ring_events_total", "AF_XDP socket statistics (XDP_STATISTICS), per socket.", "socket", "event")
	dPortBytes = desc("port_bytes_total", "Frame bytes a port received (rx) and transmitted (tx), Ethernet header included.", "port", "dir")
	dPortCsum  = desc("port_checksums_completed_total", "Partial TCP/UDP checksums a port finished on the frames it transmitted.", "port")
	dXDPCopies = desc("xdp_tx_copies_total", "Frames an AF_XDP port copied on TX because they were not in the UMEM.", "socket")
	dXDPKicks  = desc("xdp_syscalls_total", "Wakeup syscalls an AF_XDP socket made: tx (sendto kicks) and rx (recvfrom wakeups).", "socket", "kind")
	dCapture   = desc("capture_records_total", "Packet capture records, captured or lost to a full capture ring.", "outcome")
	dLatency   = desc("latency_ns", "Latency of probe packets from generator to sink, in nanoseconds.")
	simple     = []struct {
		d *prometheus.Desc
		f func(*dataplane.Stats) uint64
	}{
		{desc("classified_total", "Classify passes (ingress and egress)."), func(s *dataplane.Stats) uint64 { return s.Classified }},
		{desc("absorbed_total", "Lists absorbed by callouts."), func(s *dataplane.Stats) uint64 { return s.Absorbed }},
		{desc("reinjected_total", "Lists injected back at ingress and classified again."), func(s *dataplane.Stats) uint64 { return s.Reinjected }},
		{desc("flooded_total", "Flood copies made."), func(s *dataplane.Stats) uint64 { return s.Flooded }},
		{desc("completions_total", "Injected lists completed."), func(s *dataplane.Stats) uint64 { return s.Completions }},
		{desc("discarded_total", "Absorbed lists a callout discarded."), func(s *dataplane.Stats) uint64 { return s.Discarded }},
		{desc("inject_refused_total", "Absorbed lists the engine refused to reinject."), func(s *dataplane.Stats) uint64 { return s.InjectRefused }},
		{desc("completion_panics_total", "Completion functions that panicked (contained)."), func(s *dataplane.Stats) uint64 { return s.CompletionPanics }},
	}
)

// Collector is a prometheus.Collector over a Source, which may be
// replaced (Set) while it is served: a harness runs several switches one
// after the other behind one endpoint.
type Collector struct{ src atomic.Pointer[Source] }

// NewCollector returns a collector for src (which may be the zero Source:
// nothing is collected until Set).
func NewCollector(src Source) *Collector {
	c := &Collector{}
	c.Set(src)
	return c
}

// Set makes the collector read src from the next scrape on.
func (c *Collector) Set(src Source) { c.src.Store(&src) }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dRX, dTX, dPortRX, dPortTX, dPortFull, dPortBytes, dPortCsum, dDrops, dFrames, dReserve, dBusy, dXDP, dXDPCopies, dXDPKicks, dCapture, dLatency} {
		ch <- d
	}
	for _, s := range simple {
		ch <- s.d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	src := *c.src.Load()
	sw := src.Switch
	if sw == nil {
		return
	}
	st := sw.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	for q, v := range st.QueueRX {
		counter(dRX, v, strconv.Itoa(q))
	}
	counter(dTX, st.TX)
	for _, s := range simple {
		counter(s.d, s.f(&st))
	}
	for _, r := range dataplane.DropReasons() {
		counter(dDrops, st.Drops[r.String()], r.String())
	}
	for _, p := range sw.Ports() {
		rx, tx, full := p.Counters()
		id := strconv.FormatUint(uint64(p.ID), 10)
		counter(dPortRX, rx, id)
		counter(dPortTX, tx, id)
		counter(dPortFull, full, id)
		pc := p.Snapshot()
		counter(dPortBytes, pc.RXBytes, id, "rx")
		counter(dPortBytes, pc.TXBytes, id, "tx")
		counter(dPortCsum, pc.ChecksumsCompleted, id)
	}
	a := sw.Accounting()
	gauge(dFrames, a.FramesTotal, "total")
	gauge(dFrames, a.FramesFree, "free")
	gauge(dFrames, a.FramesInPort, "in_ports")
	gauge(dFrames, a.InFlight, "in_flight")
	gauge(dFrames, a.Leaked, "leaked")
	gauge(dReserve, a.ReserveTotal, "total")
	gauge(dReserve, a.ReserveFree, "free")
	ch <- prometheus.MustNewConstMetric(dBusy, prometheus.CounterValue, float64(sw.BusyNS())/1e9)
	for _, p := range src.XDP {
		xs, err := p.XDPStats()
		if err != nil {
			continue // closed
		}
		for _, e := range []struct {
			name string
			v    uint64
		}{{"rx_dropped", xs.Rx_dropped}, {"rx_invalid_descs", xs.Rx_invalid_descs}, {"tx_invalid_descs", xs.Tx_invalid_descs},
			{"rx_ring_full", xs.Rx_ring_full}, {"rx_fill_ring_empty_descs", xs.Rx_fill_ring_empty_descs},
			{"tx_ring_empty_descs", xs.Tx_ring_empty_descs}} {
			counter(dXDP, e.v, p.Name(), e.name)
		}
		copies, _, _ := p.Counters()
		counter(dXDPCopies, copies, p.Name())
		tx, rx := p.Socket().Kicks()
		counter(dXDPKicks, tx, p.Name(), "tx")
		counter(dXDPKicks, rx, p.Name(), "rx")
	}
	if src.Capture != nil {
		captured, lost := src.Capture.Counts()
		counter(dCapture, captured, "captured")
		counter(dCapture, lost, "lost")
	}
	if src.Latency != nil {
		if h := src.Latency(); h != nil && h.TotalCount() > 0 {
			q := map[float64]float64{}
			for _, p := range []float64{50, 90, 99, 99.9, 99.99} {
				q[p/100] = float64(h.ValueAtQuantile(p))
			}
			sum := h.Mean() * float64(h.TotalCount())
			ch <- prometheus.MustNewConstSummary(dLatency, uint64(h.TotalCount()), sum, q)
		}
	}
}

// Server serves /metrics over HTTP.
type Server struct {
	*Collector
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// Serve registers a collector for src in a registry of its own (with the
// Go runtime and process collectors) and serves it at http://addr/metrics.
// addr may name port 0; Addr tells the port taken.
func Serve(addr string, src Source) (*Server, error) {
	reg := prometheus.NewRegistry()
	col := NewCollector(src)
	if err := reg.Register(col); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	s := &Server{Collector: col, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, ln: ln, done: make(chan error, 1)}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
