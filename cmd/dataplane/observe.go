package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/wfpxdp/wfpxdp/bench"
	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/dataplane/metrics"
	"github.com/wfpxdp/wfpxdp/dataplane/pcap"
)

// observeFlags are the flags bench and run share: a Prometheus endpoint
// and a packet capture.
type observeFlags struct {
	metrics, pcap, capture *string
	captureRing            *int
}

func addObserveFlags(fs *flag.FlagSet) observeFlags {
	return observeFlags{
		metrics:     fs.String("metrics", "", "serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9100) while running"),
		pcap:        fs.String("pcap", "", "write the packets at the --capture points to this pcap file (tcpdump -r reads it)"),
		capture:     fs.String("capture", "all", "with --pcap: absorbed, dropped, injected (comma-separated) or all"),
		captureRing: fs.Int("capture-ring", 8192, "with --pcap: capture ring records (a power of two); when full, captures are lost and counted, never traffic"),
	}
}

// observer is a running metrics server and pcap writer.
type observer struct {
	bench.Observe
	srv *metrics.Server
	pw  *pcap.Writer
}

// start opens what the flags ask for; close it with stop.
func (f observeFlags) start(stderr io.Writer, quiet bool) (*observer, error) {
	o := &observer{}
	if *f.pcap != "" {
		pts, err := dataplane.ParseCapturePoints(*f.capture)
		if err != nil {
			return nil, fmt.Errorf("--capture: %w", err)
		}
		c, err := dataplane.NewCapture(pts, *f.captureRing)
		if err != nil {
			return nil, fmt.Errorf("--capture-ring %d: %w", *f.captureRing, err)
		}
		if o.pw, err = pcap.Create(*f.pcap, c); err != nil {
			return nil, fmt.Errorf("--pcap: %w", err)
		}
		o.Capture = c
	}
	if *f.metrics != "" {
		srv, err := metrics.Serve(*f.metrics, metrics.Source{})
		if err != nil {
			o.stop(io.Discard, true)
			return nil, fmt.Errorf("--metrics: %w", err)
		}
		o.srv = srv
		o.OnStart = srv.Set
		if !quiet {
			fmt.Fprintf(stderr, "metrics: http://%s/metrics\n", srv.Addr())
		}
	}
	return o, nil
}

// stop closes the pcap file (after the switch stopped: it then holds
// everything captured) and the metrics server.
func (o *observer) stop(stderr io.Writer, quiet bool) error {
	var errs []error
	if o.pw != nil {
		errs = append(errs, o.pw.Close())
		_, lost := o.Capture.Counts()
		if !quiet {
			fmt.Fprintf(stderr, "pcap: %d packets written (%s), %d captures lost to a full capture ring\n",
				o.pw.Written(), o.Capture.Points(), lost)
		}
	}
	if o.srv != nil {
		errs = append(errs, o.srv.Close())
	}
	return errors.Join(errs...)
}

// writeJSON prints v as one indented JSON object.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
