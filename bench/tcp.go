package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/wfpxdp/wfpxdp/dataplane/afxdp"
	"github.com/wfpxdp/wfpxdp/dataplane/config"
	"github.com/wfpxdp/wfpxdp/ring/pin"
)

// ScenarioTCP is bulk TCP between two network namespaces, through the
// switch and through a Linux bridge on the same veth pairs, alternated.
const ScenarioTCP = "tcp"

// TCPOptions configure the tcp scenario.
type TCPOptions struct {
	Duration time.Duration // of each transfer
	Runs     int           // transfers through each of switch and bridge, alternated
	MTUs     []int         // the interfaces' MTU for each comparison; 1500 if none
	// SenderCPU runs the TCP sender and receiver threads (and so most of
	// the namespaces' stack work); the switch's lcore runs on the other
	// CPUs of CPUs (all this process may use if nil).
	SenderCPU int
	CPUs      []int
	Stop      <-chan struct{}
}

// TCPRow is one MTU's comparison.
type TCPRow struct {
	MTU         int       `json:"mtu"`
	FrameSize   int       `json:"frame_size"`   // the switch's UMEM frame size
	MultiBuffer bool      `json:"multi_buffer"` // frames span several UMEM frames
	SwitchGbps  float64   `json:"switch_gbps"`
	BridgeGbps  float64   `json:"bridge_gbps"`
	Ratio       float64   `json:"ratio"` // switch / bridge
	Switch      []float64 `json:"switch_runs_gbps"`
	Bridge      []float64 `json:"bridge_runs_gbps"`
	Leaked      int       `json:"leaked"`
	// Checksums is what the switch's ports finished in its last run.
	Checksums uint64 `json:"checksums_completed"`
}

// TCPReport is the tcp scenario's result.
type TCPReport struct {
	Envelope
	DurationS float64  `json:"duration_s"`
	Cores     string   `json:"cores"`
	Rows      []TCPRow `json:"rows"`
}

// RunTCP compares bulk TCP through the switch (the example configuration's
// WFP path: every IPv4/IPv6 frame absorbed and reinjected) with a Linux
// bridge, for each MTU, alternating A B B A. The namespaces keep their
// default offloads, as an experiment's containers would.
func RunTCP(o TCPOptions, progress io.Writer) (*TCPReport, error) {
	if len(o.MTUs) == 0 {
		o.MTUs = []int{1500}
	}
	o.Runs = max(o.Runs, 1)
	rep := &TCPReport{Envelope: NewEnvelope("bench", ScenarioTCP), DurationS: o.Duration.Seconds()}
	for _, mtu := range o.MTUs {
		row, cores, err := runTCPMTU(o, mtu, progress)
		if err != nil {
			return rep, fmt.Errorf("mtu %d: %w", mtu, err)
		}
		rep.Cores = cores
		rep.Rows = append(rep.Rows, row)
	}
	return rep, nil
}

func runTCPMTU(o TCPOptions, mtu int, progress io.Writer) (TCPRow, string, error) {
	row := TCPRow{MTU: mtu, FrameSize: 2048, MultiBuffer: mtu > afxdp.MaxMTU(2048, false)}
	if mtu > afxdp.MaxMTU(2048, true) {
		return row, "", fmt.Errorf("MTU %d is above what a multi-buffer frame carries (%d)", mtu, afxdp.MaxMTU(2048, true))
	}
	hs, err := afxdp.NewHosts(2, mtu)
	if err != nil {
		return row, "", err
	}
	defer hs.Close()
	sink, err := newTCPSink(&hs.Hosts[1], o.SenderCPU)
	if err != nil {
		return row, "", err
	}
	defer sink.close()
	cores := ""
	for i := 0; i < o.Runs; i++ {
		for _, viaSwitch := range [][]bool{{true, false}, {false, true}}[i%2] {
			var gbps float64
			if viaSwitch {
				var st tcpSwitchRun
				st, err = runTCPSwitch(o, hs, row.FrameSize, sink)
				gbps, cores = st.gbps, st.cores
				row.Leaked, row.Checksums = max(row.Leaked, st.leaked), st.checksums
				row.Switch = append(row.Switch, gbps)
			} else {
				gbps, err = runTCPBridge(o, hs, sink)
				row.Bridge = append(row.Bridge, gbps)
			}
			if err != nil {
				return row, cores, err
			}
			if progress != nil {
				what := "bridge"
				if viaSwitch {
					what = "switch"
				}
				fmt.Fprintf(progress, "mtu %d run %d/%d %-6s %7.2f Gb/s\n", mtu, i+1, o.Runs, what, gbps)
			}
		}
	}
	row.SwitchGbps, row.BridgeGbps = median(row.Switch), median(row.Bridge)
	if row.BridgeGbps > 0 {
		row.Ratio = row.SwitchGbps / row.BridgeGbps
	}
	if row.Leaked != 0 {
		return row, cores, fmt.Errorf("%w: %d frames", ErrLeaked, row.Leaked)
	}
	return row, cores, nil
}

type tcpSwitchRun struct {
	gbps      float64
	cores     string
	leaked    int
	checksums uint64
}

// tcpSwitchConfig is the example configuration's WFP path on the hosts'
// switch ends.
func tcpSwitchConfig(hs *afxdp.Hosts, frameSize int, cpus []int, senderCPU int) string {
	var cores []string
	for _, c := range cpus {
		if c != senderCPU || len(cpus) == 1 {
			cores = append(cores, fmt.Sprint(c))
		}
	}
	return fmt.Sprintf(`switch:
  mode: rtc
  cores: [%s]
  frame_size: %d
  lcore_nice: %d
ports:
  - {name: a, id: 1, interface: %s}
  - {name: b, id: 2, interface: %s}
callouts:
  - {name: inspect, kind: inspector}
filters:
  - {name: inspect-ipv4, layer: ingress, action: callout, callout: inspect, conditions: [{field: ether_type, value: "0x0800"}]}
  - {name: inspect-ipv6, layer: ingress, action: callout, callout: inspect, conditions: [{field: ether_type, value: "0x86dd"}]}
`, strings.Join(cores, ", "), frameSize, LcoreNice, hs.Hosts[0].Port, hs.Hosts[1].Port)
}

func runTCPSwitch(o TCPOptions, hs *afxdp.Hosts, frameSize int, sink *tcpSink) (tcpSwitchRun, error) {
	var res tcpSwitchRun
	var err error
	cpus := o.CPUs
	if len(cpus) == 0 {
		if cpus, err = pin.CPUs(); err != nil {
			return res, err
		}
	}
	f, err := config.Parse("tcp.yaml", []byte(tcpSwitchConfig(hs, frameSize, cpus, o.SenderCPU)))
	if err != nil {
		return res, err
	}
	// the last run's sockets on these interfaces may still be on their
	// way out of the kernel (EBUSY): as the AF_XDP scenarios, retry a while
	rt, err := retryBusy(func() (*config.Runtime, error) { return f.Build(config.BuildOptions{}) })
	if err != nil {
		return res, err
	}
	if err := rt.Switch.Start(context.Background()); err != nil {
		rt.Close()
		return res, err
	}
	res.cores = rt.Switch.Plan() + fmt.Sprintf(" tcp:cpu%d", o.SenderCPU)
	res.gbps, err = bulkTCP(o, &hs.Hosts[0], hs.Hosts[1].IPv4, sink)
	cerr := rt.Close()
	for _, r := range rt.Reports() {
		res.checksums += r.ChecksumsCompleted
	}
	res.leaked = rt.Switch.Accounting().Leaked
	return res, errors.Join(err, cerr)
}

func runTCPBridge(o TCPOptions, hs *afxdp.Hosts, sink *tcpSink) (float64, error) {
	remove, err := hs.Bridge()
	if err != nil {
		return 0, err
	}
	gbps, err := bulkTCP(o, &hs.Hosts[0], hs.Hosts[1].IPv4, sink)
	return gbps, errors.Join(err, remove())
}

// tcpSink is a TCP receiver inside a host: each connection is read to its
// end, and the bytes and the time from its first byte to its end are
// reported on done.
type tcpSink struct {
	ln   net.Listener
	done chan tcpResult
	wg   sync.WaitGroup
}

type tcpResult struct {
	bytes   int64
	elapsed time.Duration
}

func newTCPSink(h *afxdp.Host, cpu int) (*tcpSink, error) {
	s := &tcpSink{done: make(chan tcpResult, 1)}
	err := h.InNS(func() (err error) {
		s.ln, err = net.Listen("tcp", ":5201")
		return err
	})
	if err != nil {
		return nil, err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if unpin, err := pin.Thread(cpu); err == nil {
			defer unpin()
		}
		buf := make([]byte, 256<<10)
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			var n int64
			var start time.Time
			for {
				k, err := c.Read(buf)
				if n == 0 && k > 0 {
					start = time.Now()
				}
				n += int64(k)
				if err != nil {
					break
				}
			}
			c.Close()
			s.done <- tcpResult{bytes: n, elapsed: time.Since(start)}
		}
	}()
	return s, nil
}

func (s *tcpSink) close() {
	s.ln.Close()
	s.wg.Wait()
}

// bulkTCP sends from h to addr:5201 for o.Duration and returns the
// receiver's goodput in Gb/s.
func bulkTCP(o TCPOptions, h *afxdp.Host, addr interface{ String() string }, sink *tcpSink) (float64, error) {
	var c net.Conn
	err := h.InNS(func() (err error) {
		// the switch may still be learning: ARP goes first
		for try := 0; try < 50; try++ {
			if c, err = net.DialTimeout("tcp", net.JoinHostPort(addr.String(), "5201"), 200*time.Millisecond); err == nil {
				return nil
			}
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	errc := make(chan error, 1)
	go func() {
		if unpin, err := pin.Thread(o.SenderCPU); err == nil {
			defer unpin()
		}
		buf := make([]byte, 128<<10)
		end := time.Now().Add(o.Duration)
		var werr error
		for time.Now().Before(end) && werr == nil {
			select {
			case <-o.Stop:
				end = time.Now()
				continue
			default:
			}
			_, werr = c.Write(buf)
		}
		c.Close()
		errc <- werr
	}()
	if err := <-errc; err != nil {
		return 0, fmt.Errorf("send: %w", err)
	}
	select {
	case r := <-sink.done:
		if r.elapsed <= 0 {
			return 0, errors.New("nothing received")
		}
		return float64(r.bytes) * 8 / r.elapsed.Seconds() / 1e9, nil
	case <-time.After(10 * time.Second):
		return 0, errors.New("the receiver did not see the end of the transfer")
	}
}
