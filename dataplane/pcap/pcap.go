// Package pcap writes what a dataplane.Capture collects to a pcap file
// (nanosecond timestamps, Ethernet link type) that tcpdump and Wireshark
// read, through gopacket's pcapgo writer. The writing happens on its own
// goroutine; the switch's stages only copy frames into the capture ring.
package pcap

import (
	"bufio"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/wfpxdp/wfpxdp/dataplane"
)

// Writer drains a capture into a file.
type Writer struct {
	c       *dataplane.Capture
	f       *os.File
	bw      *bufio.Writer
	w       *pcapgo.Writer
	stop    chan struct{}
	done    chan struct{}
	written atomic.Uint64
	err     error // the first write error; set by the writer goroutine
}

// Create creates (or truncates) path, writes the pcap header and starts
// draining c into it.
func Create(path string, c *dataplane.Capture) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("pcap: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w := pcapgo.NewWriterNanos(bw)
	if err := w.WriteFileHeader(dataplane.CaptureSnap, layers.LinkTypeEthernet); err != nil {
		f.Close()
		return nil, fmt.Errorf("pcap: %s: %w", path, err)
	}
	pw := &Writer{c: c, f: f, bw: bw, w: w, stop: make(chan struct{}), done: make(chan struct{})}
	go pw.run()
	return pw, nil
}

func (pw *Writer) run() {
	defer close(pw.done)
	recs := make([]dataplane.CaptureRecord, 64)
	dirty := false
	for {
		n := pw.c.Drain(recs)
		for i := range recs[:n] {
			pw.write(&recs[i])
		}
		if n > 0 {
			dirty = true
			continue
		}
		select {
		case <-pw.stop:
			for n := pw.c.Drain(recs); n > 0; n = pw.c.Drain(recs) {
				for i := range recs[:n] {
					pw.write(&recs[i])
				}
			}
			return
		default:
		}
		if dirty {
			if err := pw.bw.Flush(); err != nil && pw.err == nil {
				pw.err = err
			}
			dirty = false
		}
		time.Sleep(time.Millisecond)
	}
}

func (pw *Writer) write(r *dataplane.CaptureRecord) {
	if pw.err != nil {
		return
	}
	data := r.Data()
	ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, r.Time), CaptureLength: len(data), Length: r.Len}
	if err := pw.w.WritePacket(ci, data); err != nil {
		pw.err = err
		return
	}
	pw.written.Add(1)
}

// Written returns the records written so far.
func (pw *Writer) Written() uint64 { return pw.written.Load() }

// Close writes what the capture still holds (stop the switch first to
// have everything), flushes and closes the file.
func (pw *Writer) Close() error {
	close(pw.stop)
	<-pw.done
	err := pw.err
	if ferr := pw.bw.Flush(); err == nil {
		err = ferr
	}
	if cerr := pw.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pcap: %s: %w", pw.f.Name(), err)
	}
	return nil
}
