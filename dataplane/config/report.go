package config

import (
	"fmt"
	"net"
	"strings"

	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/dataplane/afxdp"
)

// PortReport is what a port runs as and what it has carried: the start
// report's line for it and its part of the final summary.
type PortReport struct {
	Name      string `json:"name"`
	ID        uint32 `json:"id"`
	Kind      string `json:"kind"`                // afxdp | memory
	Interface string `json:"interface,omitempty"` // afxdp
	// XDPMode is native or generic; XDPFallback says why native mode was
	// refused when auto mode fell back to generic.
	XDPMode     string `json:"xdp_mode,omitempty"`
	XDPFallback string `json:"xdp_fallback,omitempty"`
	Bind        string `json:"bind,omitempty"` // zerocopy | copy
	Queues      int    `json:"queues"`
	MTU         int    `json:"mtu,omitempty"`
	// MaxFrame is the longest frame the port carries: one UMEM frame less
	// its headroom, or with multi-buffer the frames one may span.
	MaxFrame    int    `json:"max_frame"`
	MultiBuffer bool   `json:"multi_buffer"`
	Checksum    string `json:"checksum"` // auto | off

	dataplane.PortCounters
	// XDP is the kernel's XDP_STATISTICS summed over the port's sockets.
	XDP *XDPCounters `json:"xdp,omitempty"`
}

// XDPCounters are the kernel's AF_XDP socket statistics.
type XDPCounters struct {
	RXDropped            uint64 `json:"rx_dropped"`
	RXInvalidDescs       uint64 `json:"rx_invalid_descs"`
	RXRingFull           uint64 `json:"rx_ring_full"`
	RXFillRingEmptyDescs uint64 `json:"rx_fill_ring_empty_descs"`
	TXInvalidDescs       uint64 `json:"tx_invalid_descs"`
	TXRingEmptyDescs     uint64 `json:"tx_ring_empty_descs"`
}

// Reports returns a report per port, in the file's order, with the
// counters as they stand.
func (rt *Runtime) Reports() []PortReport {
	var out []PortReport
	for _, rp := range rt.Ports {
		r := PortReport{Name: rp.Name, ID: rp.ID, Kind: rp.Kind, Queues: max(len(rp.AFXDP), len(rp.Memory)),
			MaxFrame: afxdp.MaxFrameLen(rt.Switch.Config().FrameSize)}
		if rp.Port != nil {
			r.Checksum = rp.Port.Checksum().String()
			r.PortCounters = rp.Port.Snapshot()
		}
		if rp.Kind == "afxdp" {
			r.Interface = rp.Interface
			if rp.Program != nil {
				r.XDPMode, r.XDPFallback = rp.Program.Mode, rp.Program.Fallback
			}
			if ifi, err := net.InterfaceByName(rp.Interface); err == nil {
				r.MTU = ifi.MTU
			}
			r.Bind = "copy"
			if rt.multiBuffer {
				r.MultiBuffer = true
				r.MaxFrame = afxdp.MaxMultiBufferFrameLen(rt.Switch.Config().FrameSize)
			}
			x := &XDPCounters{}
			for _, p := range rp.AFXDP {
				if p.Socket().ZeroCopy() {
					r.Bind = "zerocopy"
				}
				if s, err := p.XDPStats(); err == nil {
					x.RXDropped += s.Rx_dropped
					x.RXInvalidDescs += s.Rx_invalid_descs
					x.RXRingFull += s.Rx_ring_full
					x.RXFillRingEmptyDescs += s.Rx_fill_ring_empty_descs
					x.TXInvalidDescs += s.Tx_invalid_descs
					x.TXRingEmptyDescs += s.Tx_ring_empty_descs
				}
			}
			r.XDP = x
		}
		out = append(out, r)
	}
	return out
}

// Setup is the start report's line for the port: how it runs.
func (r PortReport) Setup() string {
	var b strings.Builder
	fmt.Fprintf(&b, "port %d %-10s %s", r.ID, r.Name, r.Kind)
	if r.Kind == "afxdp" {
		fmt.Fprintf(&b, " on %s: xdp %s", r.Interface, r.XDPMode)
		if r.XDPFallback != "" {
			fmt.Fprintf(&b, " (native refused: %s)", r.XDPFallback)
		}
		fmt.Fprintf(&b, ", bind %s, mtu %d", r.Bind, r.MTU)
	}
	mb := "off"
	if r.MultiBuffer {
		mb = "on"
	}
	fmt.Fprintf(&b, ", queues %d, frames up to %d B, multi-buffer %s, checksum %s", r.Queues, r.MaxFrame, mb, r.Checksum)
	return b.String()
}

// Traffic is the summary's line for the port: what it carried.
func (r PortReport) Traffic() string {
	var b strings.Builder
	fmt.Fprintf(&b, "port %d %-10s rx %d pkts %d B  tx %d pkts %d B  tx_full %d  checksums completed %d",
		r.ID, r.Name, r.RXPackets, r.RXBytes, r.TXPackets, r.TXBytes, r.TXFull, r.ChecksumsCompleted)
	if x := r.XDP; x != nil {
		fmt.Fprintf(&b, "\n       kernel: rx_dropped %d  rx_invalid_descs %d  rx_ring_full %d  rx_fill_ring_empty_descs %d  tx_invalid_descs %d  tx_ring_empty_descs %d",
			x.RXDropped, x.RXInvalidDescs, x.RXRingFull, x.RXFillRingEmptyDescs, x.TXInvalidDescs, x.TXRingEmptyDescs)
	}
	return b.String()
}
