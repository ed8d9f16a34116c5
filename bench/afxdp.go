package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/asavie/xdp"
	"golang.org/x/sys/unix"

	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/dataplane/afxdp"
	"github.com/wfpxdp/wfpxdp/dataplane/metrics"
	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/nbl"
	"github.com/wfpxdp/wfpxdp/ring/pin"
)

// AF_XDP scenarios.
const (
	ScenarioVSwitch = "afxdp-vswitch" // gen -> veth -> AF_XDP -> whole vSwitch path (absorb + reinject) -> AF_XDP -> veth -> counter
	ScenarioRXDrop  = "afxdp-rxdrop"  // gen -> veth -> AF_XDP -> classify -> drop
	ScenarioL2Fwd   = "afxdp-l2fwd"   // gen -> veth -> AF_XDP -> swap MACs -> AF_XDP -> veth -> counter, no switch
)

// ErrNeedRoot says the AF_XDP scenarios cannot run here, and why.
var ErrNeedRoot = errors.New("AF_XDP scenarios need root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF) to build a veth pair, a namespace and XDP programs")

// CanRunAFXDP reports whether the AF_XDP scenarios can run, or why not.
func CanRunAFXDP() error {
	if os.Geteuid() != 0 {
		return ErrNeedRoot
	}
	return nil
}

// AFXDPOptions configures an AF_XDP scenario.
type AFXDPOptions struct {
	Scenario  string
	Mode      dataplane.Mode
	Batch     int
	FrameSize int
	Duration  time.Duration
	GenCPU    int // the generator's CPU (the kernel also runs the veth RX path there)
	CPUs      []int
	Progress  func(Progress)
	Stop      <-chan struct{}
	// ProbeRate is the latency probes sent per second next to the load
	// (afxdp-vswitch, afxdp-l2fwd); 0 sends none.
	ProbeRate int
	// Rate paces the load, in frames per second (0: as fast as the
	// live-frames generator goes, ~10+ Mpps here).
	Rate float64
	// Flows spreads the load over that many flows (afxdp.Flows); 0 sends
	// one frame as it is.
	Flows afxdp.Flows
	// Replay, with Rate, is the frames the paced generator sends in turn.
	Replay [][]byte
	Observe
}

// afxdpRig is the topology, generator and far-end counter shared by the
// subject's and the baseline's runs of one command.
type afxdpRig struct {
	topo    *afxdp.Topology
	gen     *afxdp.LiveGenerator
	counter *afxdp.DropCounter
	frame   []byte
	peerIdx int // the generator's ifindex in the namespace

	probeIdx, sinkIdx int     // probe sender's and receiver's ifindex in the namespace
	rate              float64 // offered frames per second; 0: unpaced
	flows             afxdp.Flows
	replay            [][]byte // paced generator: these frames instead of r.frame
}

// probeEtherType marks latency probes: the far end's counter passes them
// to an AF_PACKET receiver instead of dropping them.
const probeEtherType = 0x88B5

var probeEpoch = time.Now()

// probe sends timestamped probe frames from the generator's veth, paced at
// about rate per second, until stop is closed. A probe crosses the same
// path as the load (veth, XDP, AF_XDP, the switch, AF_XDP, veth) and ends
// in the far end's kernel stack.
func (r *afxdpRig) probe(rate int, stop <-chan struct{}) error {
	return r.topo.InNS(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		dst := r.topo.Pairs[1].PeerMAC
		f := make([]byte, 64)
		copy(f, dst)
		copy(f[6:], r.topo.Pairs[0].PeerMAC)
		binary.BigEndian.PutUint16(f[12:], probeEtherType)
		// bound to the interface, so write(2) sends without a per-call
		// address (sendto's would allocate)
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: r.probeIdx}); err != nil {
			return err
		}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		per := max(rate/1000, 1)
		for {
			select {
			case <-stop:
				return nil
			case <-tick.C:
			}
			for i := 0; i < per; i++ {
				binary.BigEndian.PutUint64(f[14:], uint64(time.Since(probeEpoch)))
				unix.Write(fd, f) // a probe the kernel drops is a lost probe
			}
		}
	})
}

// receiveProbes records (now - sent) of each probe arriving at the far end
// into h until stop is closed.
func (r *afxdpRig) receiveProbes(h *hdrhistogram.Histogram, stop <-chan struct{}, ready chan<- error) error {
	return r.topo.InNS(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(afxdp.Htons(probeEtherType)))
		if err == nil {
			err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: afxdp.Htons(probeEtherType), Ifindex: r.sinkIdx})
		}
		ready <- err
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 20000})
		buf := make([]byte, 2048)
		for {
			select {
			case <-stop:
				return nil
			default:
			}
			n, err := unix.Read(fd, buf) // read(2): no source address to allocate
			if err != nil || n < 22 || binary.BigEndian.Uint16(buf[12:]) != probeEtherType {
				continue
			}
			sent := int64(binary.BigEndian.Uint64(buf[14:]))
			if d := int64(time.Since(probeEpoch)) - sent; d >= 0 {
				h.RecordValue(d)
			}
		}
	})
}

func newAFXDPRig(frameSize int, flows afxdp.Flows) (*afxdpRig, error) {
	if err := CanRunAFXDP(); err != nil {
		return nil, err
	}
	topo, err := afxdp.NewTopology(2, 1)
	if err != nil {
		return nil, err
	}
	r := &afxdpRig{topo: topo, flows: flows}
	if flows.N > 0 {
		r.gen, err = afxdp.NewLiveGeneratorFlows(flows)
	} else {
		r.gen, err = afxdp.NewLiveGenerator()
	}
	if err != nil {
		r.close()
		return nil, err
	}
	// Keep the generator's program in the XDP dispatcher, so that a run
	// does not wait for two RCU grace periods (see LiveGenerator.Park).
	idle, err := topo.AddIdle()
	if err == nil {
		err = topo.InNS(func() error { return r.gen.Park(idle) })
	}
	if err != nil {
		r.close()
		return nil, err
	}
	err = topo.InNS(func() error {
		i0, err := net.InterfaceByName(topo.Pairs[0].Peer)
		if err != nil {
			return err
		}
		r.peerIdx = i0.Index
		i1, err := net.InterfaceByName(topo.Pairs[1].Peer)
		if err != nil {
			return err
		}
		r.probeIdx, r.sinkIdx = i0.Index, i1.Index
		// At TC ingress where the kernel has tcx (6.6+): cheaper per frame
		// on veth (see AttachTCDropCounter); XDP otherwise.
		if r.counter, err = afxdp.AttachTCDropCounter(i1.Index, probeEtherType); err != nil {
			r.counter, err = afxdp.AttachDropCounter(i1.Index, probeEtherType)
		}
		return err
	})
	if err != nil {
		r.close()
		return nil, err
	}
	f := make([]byte, max(frameSize, 60))
	copy(f[0:], topo.Pairs[1].PeerMAC)
	copy(f[6:], topo.Pairs[0].PeerMAC)
	binary.BigEndian.PutUint16(f[12:], dataplane.EtherTypeIPv4)
	f[14], f[22], f[23] = 0x45, 64, 17
	binary.BigEndian.PutUint16(f[16:], uint16(len(f)-14))
	r.frame = f
	return r, nil
}

func (r *afxdpRig) close() error {
	var errs []error
	if r.counter != nil {
		errs = append(errs, r.counter.Close())
	}
	if r.gen != nil {
		errs = append(errs, r.gen.Close())
	}
	errs = append(errs, r.topo.Close())
	return errors.Join(errs...)
}

// generate runs the live-frames generator on cpu inside the namespace until
// stop is closed, adding what it sent to sent.
func (r *afxdpRig) generate(cpu int, stop <-chan struct{}, sent *atomic.Uint64) error {
	return r.topo.InNS(func() error {
		if _, err := pin.Thread(cpu); err != nil {
			return err
		}
		if r.rate > 0 {
			return r.generatePaced(stop, sent)
		}
		const chunk = 1 << 20 // few runs per second: the harness allocates a little per run
		for {
			select {
			case <-stop:
				return nil
			default:
			}
			if err := r.gen.Send(r.peerIdx, r.frame, chunk, 64); err != nil {
				return err
			}
			sent.Add(chunk)
		}
	})
}

// generatePaced offers r.rate frames per second from an AF_XDP TX socket
// on the generator's veth end (the live-frames generator cannot be paced
// finely: each of its runs costs ~24 ms here). The socket is opened per
// run, in the namespace, on the generator's pinned thread.
func (r *afxdpRig) generatePaced(stop <-chan struct{}, sent *atomic.Uint64) error {
	frames := r.replay
	if frames == nil {
		frames = [][]byte{r.frame}
	}
	g, err := afxdp.NewTXGeneratorFrames(r.peerIdx, frames, 4096)
	if err != nil {
		return fmt.Errorf("paced generator: %w", err)
	}
	defer g.Close()
	g.Flows = r.flows
	return g.Run(r.rate, stop, sent)
}

// subject is one run of the project's switch on the rig.
func (r *afxdpRig) runSubject(o AFXDPOptions) (*Result, error) {
	if o.Scenario == ScenarioL2Fwd {
		return r.runL2Fwd(o)
	}
	const frames = 8192
	region, err := afxdp.NewRegion(frames, 2048)
	if err != nil {
		return nil, err
	}
	defer afxdp.FreeRegion(region)
	fdb := 4096 // room for every flow's source and destination, 4 slots each
	for fdb < 8*r.flows.N {
		fdb <<= 1
	}
	sw, err := dataplane.New(inject.NewEngine(), dataplane.Config{ID: inject.GUID{0xaf, 0x5}, Frames: frames, FrameSize: 2048,
		Region: region, Mode: o.Mode, Batch: o.Batch, CPUs: switchCPUs(o), Capture: o.Capture, LcoreNice: LcoreNice, FDBSize: fdb})
	if err != nil {
		return nil, err
	}
	ports, closeProgs, err := r.openPorts(sw.Arena())
	defer closeProgs()
	if err != nil {
		return nil, err
	}
	for i, p := range ports {
		if _, err := sw.AddPort(uint32(i+1), 0, dataplane.HardwareMAC(r.topo.Pairs[i].PeerMAC), p); err != nil {
			return nil, err
		}
	}
	for i := 0; i < r.flows.N; i++ { // the far end's addresses, one per flow, as if it had sent from each
		if err := sw.AddStaticMAC(2, dataplane.HardwareMAC(r.flows.MAC(r.topo.Pairs[1].PeerMAC, uint16(i)))); err != nil {
			return nil, err
		}
	}
	switch o.Scenario {
	case ScenarioVSwitch:
		if err := sw.RegisterCallout(dataplane.NewInspector("inspect", nil)); err != nil {
			return nil, err
		}
		err = sw.SetFilters([]dataplane.Filter{{Name: "inspect-all", Layer: dataplane.LayerIngress, Weight: 10,
			Action: dataplane.FilterCallout, Callout: "inspect"}})
	case ScenarioRXDrop:
		err = sw.SetFilters([]dataplane.Filter{{Name: "drop-all", Layer: dataplane.LayerIngress, Action: dataplane.FilterBlock}})
	}
	if err != nil {
		return nil, err
	}
	res := &Result{}
	delivered := func() uint64 {
		if o.Scenario == ScenarioRXDrop {
			return sw.Stats().RX
		}
		return r.counter.Count()
	}
	if err := sw.Start(context.Background()); err != nil {
		return nil, err
	}
	res.Plan = sw.Plan() + fmt.Sprintf(" gen:cpu%d", o.GenCPU)
	if o.OnStart != nil {
		o.OnStart(metrics.Source{Switch: sw, XDP: ports, Capture: o.Capture})
	}
	err = r.drive(o, res, delivered, func() dataplane.Stats { return sw.Stats() }, sw.BusyNS)
	if cerr := sw.Close(); err == nil {
		err = cerr
	}
	res.Stats = sw.Stats()
	res.Accounting = sw.Accounting()
	return res, err
}

// drive runs the generator for the duration and fills res from delivered
// (the cumulative count of packets delivered: forwarded to the far end, or
// for rxdrop received), stats and busy (cumulative busy ns, or nil).
func (r *afxdpRig) drive(o AFXDPOptions, res *Result, delivered func() uint64, stats func() dataplane.Stats, busy func() uint64) error {
	var sent atomic.Uint64
	var msStart runtime.MemStats // before the warm-up: GCCycles counts the whole run
	runtime.ReadMemStats(&msStart)
	stop := make(chan struct{})
	var genErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); genErr = r.generate(o.GenCPU, stop, &sent) }()
	time.Sleep(200 * time.Millisecond) // warm up: rings filled, caches hot
	if o.Scenario != ScenarioRXDrop && o.ProbeRate > 0 {
		// latency probes alongside the load, on the same path
		h := hdrhistogram.New(1, int64(10*time.Second), 3)
		pstop := make(chan struct{})
		ready := make(chan error, 1)
		var pwg sync.WaitGroup
		pwg.Add(2)
		go func() { defer pwg.Done(); r.receiveProbes(h, pstop, ready) }()
		if err := <-ready; err != nil {
			close(pstop)
			pwg.Done()
			pwg.Wait()
			close(stop)
			wg.Wait()
			return fmt.Errorf("probe receiver: %w", err)
		}
		go func() { defer pwg.Done(); r.probe(o.ProbeRate, pstop) }()
		defer func() {
			close(pstop)
			pwg.Wait()
			res.Latency = h
		}()
	}
	out0 := delivered()
	rxStart := stats().RX // for the progress line's rate
	sent0 := sent.Load()
	res.RSSStartKB = rssKB()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	var busy0 uint64
	if busy != nil {
		busy0 = busy()
	}
	start := time.Now()
	tick := start
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	for time.Since(start) < o.Duration {
		select {
		case <-o.Stop:
			o.Duration = 0
			continue
		case <-ticker.C:
		}
		if o.Progress != nil && time.Since(tick) >= time.Second {
			tick = time.Now()
			st := stats()
			out := delivered()
			o.Progress(Progress{Elapsed: time.Since(start), Offered: sent.Load() - sent0, RX: st.RX - rxStart, TX: out - out0,
				Drops: st.TotalDrops, DropsBy: st.Drops, Absorbed: st.Absorbed, Reinj: st.Reinjected, Completions: st.Completions})
		}
	}
	out1 := delivered()
	elapsed := time.Since(start)
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	res.RSSEndKB, res.GCAfterWarmup, res.GCCycles = rssKB(), ms1.NumGC-ms0.NumGC, ms1.NumGC-msStart.NumGC
	res.Mallocs = ms1.Mallocs - ms0.Mallocs
	// per packet delivered (forwarded; for rxdrop, received): a loop that
	// receives more than it can send, and drops the rest, would otherwise
	// look cheap per packet
	if busy != nil && out1 > out0 {
		res.BusyNSPerPacket = float64(busy()-busy0) / float64(out1-out0)
	}
	offered := sent.Load() - sent0
	close(stop)
	wg.Wait()
	res.Elapsed = elapsed
	res.Packets = out1 - out0
	res.Offered = offered
	res.Mpps = float64(res.Packets) / elapsed.Seconds() / 1e6
	res.OfferedMpps = float64(offered) / elapsed.Seconds() / 1e6
	res.Gbps = float64(res.Packets) * float64(len(r.frame)+24) * 8 / elapsed.Seconds() / 1e9
	return genErr
}

// runAsavie is the baseline: the asavie/xdp loop, written as fast as that
// library allows (busy polling, rings of 2048, no poll syscall on RX). For
// afxdp-vswitch it is an l2fwd between the two host ends (asavie ties one
// UMEM to one socket, so it copies each frame into the other socket's
// UMEM); for afxdp-rxdrop a receive-and-drop loop.
func (r *afxdpRig) runAsavie(o AFXDPOptions) (*Result, error) {
	opts := &xdp.SocketOptions{NumFrames: 8192, FrameSize: 2048, FillRingNumDescs: 2048,
		CompletionRingNumDescs: 2048, RxRingNumDescs: 2048, TxRingNumDescs: 2048}
	in := r.topo.Pairs[0]
	prog, err := xdp.NewProgram(1)
	if err != nil {
		return nil, fmt.Errorf("asavie: %w", err)
	}
	defer prog.Close()
	if err := prog.Attach(in.HostIndex); err != nil {
		return nil, fmt.Errorf("asavie: attach: %w", err)
	}
	defer prog.Detach(in.HostIndex)
	inX, err := retryBusy(func() (*xdp.Socket, error) { return xdp.NewSocket(in.HostIndex, 0, opts) })
	if err != nil {
		return nil, fmt.Errorf("asavie: socket: %w", err)
	}
	defer inX.Close()
	if err := prog.Register(0, inX.FD()); err != nil {
		return nil, fmt.Errorf("asavie: register: %w", err)
	}
	var outX *xdp.Socket
	if o.Scenario != ScenarioRXDrop {
		if outX, err = retryBusy(func() (*xdp.Socket, error) { return xdp.NewSocket(r.topo.Pairs[1].HostIndex, 0, opts) }); err != nil {
			return nil, fmt.Errorf("asavie: socket: %w", err)
		}
		defer outX.Close()
	}
	cpu := o.CPUs[len(o.CPUs)-1]
	var rx atomic.Uint64
	var busy dataplane.BusyMeter
	// The fill ring is stocked once; after that each received frame goes
	// straight back to it (once its bytes are copied out, when
	// forwarding). asavie's GetDescs scans its whole frame table for free
	// frames, which at a few packets a round costs ~700 ns a round here.
	inX.Fill(inX.GetDescs(inX.NumFreeFillSlots()))
	stop, done := pollLoop(cpu, &rx, &busy, func() int {
		k := inX.NumReceived()
		if k == 0 {
			if outX != nil && outX.NumCompleted() > 0 {
				outX.Complete(outX.NumCompleted())
			}
			return 0
		}
		descs := inX.Receive(k)
		if outX != nil {
			if c := outX.NumCompleted(); c > 0 {
				outX.Complete(c)
			}
			// outX's frames only carry TX, a few in flight at a time:
			// its free ones are found at the start of the table
			tx := outX.GetDescs(min(len(descs), outX.NumFreeTxSlots()))
			for j := range tx {
				tx[j].Len = uint32(copy(outX.GetFrame(tx[j]), inX.GetFrame(descs[j])))
			}
			outX.Transmit(tx)
		}
		inX.Fill(descs)
		return len(descs)
	})
	res := &Result{Plan: fmt.Sprintf("asavie/xdp loop cpu%d gen:cpu%d", cpu, o.GenCPU)}
	delivered := func() uint64 {
		if o.Scenario == ScenarioRXDrop {
			return rx.Load()
		}
		return r.counter.Count()
	}
	err = r.drive(o, res, delivered, func() dataplane.Stats { return dataplane.Stats{RX: rx.Load()} }, busy.NS)
	close(stop)
	<-done
	return res, err
}

// retryBusy retries f while the kernel still holds the queue of a socket
// closed a moment ago (EBUSY: the previous socket's release is deferred).
func retryBusy[T any](f func() (T, error)) (T, error) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		v, err := f()
		if err == nil || !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return v, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runL2Fwd is the project's AF_XDP layer without the switch: frames come
// off one port's RX ring as NBLs, get their MACs swapped in place, go out
// on the other port's TX ring (same UMEM, no copy), and come back through
// its completion ring to the pool — one pinned loop.
func (r *afxdpRig) runL2Fwd(o AFXDPOptions) (*Result, error) {
	const frames = 8192
	region, err := afxdp.NewRegion(frames, 2048)
	if err != nil {
		return nil, err
	}
	defer afxdp.FreeRegion(region)
	arena, err := nbl.NewArena(nbl.Config{Frames: frames, FrameSize: 2048, Region: region})
	if err != nil {
		return nil, err
	}
	ports, closeProgs, err := r.openPorts(arena)
	defer closeProgs()
	if err != nil {
		return nil, err
	}
	in, out := ports[0], ports[1]
	cpu := o.CPUs[len(o.CPUs)-1]
	cache := arena.Frames().NewCache(256)
	batch := make([]*nbl.NBL, max(o.Batch, 32))
	reap := make([]*nbl.NBL, 2*len(batch))
	var rx atomic.Uint64
	var busy dataplane.BusyMeter
	stop, done := pollLoop(cpu, &rx, &busy, func() int {
		if m := out.Reap(reap); m > 0 {
			cache.Put(reap[:m])
		}
		k := in.Receive(batch, cache)
		for _, l := range batch[:k] {
			d := l.Data()
			var tmp [6]byte
			copy(tmp[:], d[0:6])
			copy(d[0:6], d[6:12])
			copy(d[6:12], tmp[:])
		}
		if sent := out.Transmit(batch[:k]); sent < k {
			cache.Put(batch[sent:k]) // TX full: dropped
		}
		return k
	})
	res := &Result{Plan: fmt.Sprintf("l2fwd loop cpu%d gen:cpu%d", cpu, o.GenCPU)}
	err = r.drive(o, res, r.counter.Count,
		func() dataplane.Stats { return dataplane.Stats{RX: rx.Load()} }, busy.NS)
	close(stop)
	<-done
	// drain: every frame back, from the ports and the loop's cache
	for _, p := range ports {
		if rerr := dataplane.ReleaseDriver(p, arena); err == nil {
			err = rerr
		}
	}
	cache.Flush()
	res.Accounting = dataplane.Accounting{FramesTotal: frames, FramesFree: arena.Frames().Available()}
	res.Accounting.Leaked = res.Accounting.FramesTotal - res.Accounting.FramesFree
	return res, err
}

// pollLoop runs poll on a goroutine pinned to cpu until stop is closed,
// publishing the packets it reports in rx every 1024 rounds and its busy
// time in meter; done is closed when it has returned.
func pollLoop(cpu int, rx *atomic.Uint64, meter *dataplane.BusyMeter, poll func() int) (stop, done chan struct{}) {
	stop, done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		if unpin, err := pin.Thread(cpu); err == nil {
			defer unpin()
			if restore, err := pin.Nice(LcoreNice); err == nil { // as the switch's lcores
				defer restore()
			}
		}
		var n uint64
		for i := 0; ; i++ {
			if i&1023 == 0 {
				select {
				case <-stop:
					rx.Store(n)
					return
				default:
				}
				rx.Store(n)
			}
			k := poll()
			meter.Round(k) // busy time measured as the switch's lcores do
			n += uint64(k)
		}
	}()
	return stop, done
}

// LcoreNice is the nice value the harness gives every polling thread under
// test — the switch's lcores (dataplane.Config.LcoreNice) and the bare
// loops alike — so that the other threads waking on their CPUs preempt
// them less (pin.Nice). Without CAP_SYS_NICE they run at the default.
const LcoreNice = -10

// openPorts attaches the redirect program to each host end and opens one
// AF_XDP port on it over arena's region, every port after the first
// sharing the first one's UMEM. closeProgs detaches the programs.
func (r *afxdpRig) openPorts(arena *nbl.Arena) (ports []*afxdp.Port, closeProgs func(), err error) {
	var progs []*afxdp.Program
	closeProgs = func() {
		for _, p := range progs {
			p.Close()
		}
	}
	for _, v := range r.topo.Pairs {
		prog, err := afxdp.AttachProgram(v.HostIndex, 1, afxdp.AttachAuto)
		if err != nil {
			return ports, closeProgs, err
		}
		progs = append(progs, prog)
		so := afxdp.SocketOptions{Ifindex: v.HostIndex, NeedWakeup: true}
		if len(ports) > 0 {
			so.Shared = ports[0].Socket()
		}
		p, err := retryBusy(func() (*afxdp.Port, error) {
			return afxdp.NewPort(arena, afxdp.PortOptions{Name: v.Host, Program: prog, Socket: so})
		})
		if err != nil {
			return ports, closeProgs, err
		}
		ports = append(ports, p)
	}
	return ports, closeProgs, nil
}

// switchCPUs are the CPUs the switch's lcores get: all but the
// generator's, when there are others.
func switchCPUs(o AFXDPOptions) []int {
	var cs []int
	for _, c := range o.CPUs {
		if c != o.GenCPU {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return o.CPUs
	}
	return cs
}
