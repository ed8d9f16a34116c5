package config

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"

	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/dataplane/afxdp"
	"github.com/wfpxdp/wfpxdp/dataplane/memport"
	"github.com/wfpxdp/wfpxdp/inject"
)

// Runtime is a switch built from a File, stopped, with its ports attached,
// callouts registered and filters set. Start it with Switch.Start; Close
// stops it (draining, R7) and releases what Build set up: XDP programs,
// sockets, the UMEM.
type Runtime struct {
	Switch   *dataplane.Switch
	Ports    []*RuntimePort
	Counters map[string]*dataplane.Counter // counter callouts by name

	file   *File         // what the switch was built (or last reloaded) from
	region []byte        // the UMEM, if any port is AF_XDP
	shared *afxdp.Socket // the socket that registered the UMEM: every other one shares it
	// multiBuffer: the AF_XDP sockets are multi-buffer (File.multiBuffer)
	multiBuffer bool
	closed      bool
}

// RuntimePort is a port as built.
type RuntimePort struct {
	Name      string
	ID        uint32
	Kind      string
	Interface string          // kind afxdp
	Port      *dataplane.Port // the switch's port (its counters outlive the switch)
	Memory    []*memport.Port // kind memory: one per queue
	AFXDP     []*afxdp.Port   // kind afxdp: one per queue
	Program   *afxdp.Program  // kind afxdp: the interface's XDP program
}

// XDPPorts returns every AF_XDP port queue, for metrics.
func (rt *Runtime) XDPPorts() []*afxdp.Port {
	var ps []*afxdp.Port
	for _, p := range rt.Ports {
		ps = append(ps, p.AFXDP...)
	}
	return ps
}

// Sinks returns the in-memory port queues, for their latency histograms.
func (rt *Runtime) Sinks() []*memport.Port {
	var ps []*memport.Port
	for _, p := range rt.Ports {
		ps = append(ps, p.Memory...)
	}
	return ps
}

// BuildOptions adds to what the file says.
type BuildOptions struct {
	Capture *dataplane.Capture // packet capture (dataplane.Config.Capture)
}

// Build creates the switch the file describes. On error everything it set
// up is released again: no XDP program, socket or mapping is left behind.
func (f *File) Build(o BuildOptions) (_ *Runtime, err error) {
	s := f.Switch
	id := DefaultID
	if s.ID != "" {
		id, _ = ParseGUID(s.ID) // checked by Parse
	}
	idle, _ := s.idleSleep()
	cfg := dataplane.Config{ID: id, Frames: s.Frames, FrameSize: s.FrameSize, Reserve: s.Reserve, Queues: s.Queues,
		Batch: s.Batch, RingSize: s.RingSize, CPUs: s.Cores, IdleSleep: idle, Capture: o.Capture,
		LcoreNice: s.LcoreNice}
	if s.Mode == "pipeline" {
		cfg.Mode = dataplane.ModePipeline
	}
	rt := &Runtime{Counters: map[string]*dataplane.Counter{}}
	defer func() {
		if err != nil {
			rt.release()
		}
	}()
	needUMEM := false
	rt.multiBuffer = f.multiBuffer()
	for i, p := range f.Ports {
		if p.Kind != "afxdp" {
			continue
		}
		needUMEM = true
		if err := f.checkInterface(i, rt.multiBuffer); err != nil {
			return nil, err
		}
	}
	if needUMEM {
		if rt.region, err = afxdp.NewRegion(s.Frames, s.FrameSize); err != nil {
			return nil, fmt.Errorf("%s: switch.frames: UMEM of %d frames: %w", f.name, s.Frames, err)
		}
		cfg.Region = rt.region
	}
	sw, err := dataplane.New(inject.NewEngine(), cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: switch: %w", f.name, err)
	}
	rt.Switch = sw

	for i := range f.Ports {
		if err := f.addPort(i, rt); err != nil {
			return nil, err
		}
	}
	for i, e := range f.StaticMACs {
		m, _ := dataplane.ParseMAC(e.MAC)
		if err := sw.AddStaticMAC(e.Port, m); err != nil {
			return nil, f.errAt(err.Error(), "static_macs", i)
		}
	}
	for i, c := range f.Callouts {
		var co *dataplane.Callout
		switch c.Kind {
		case "inspector":
			co = dataplane.NewInspector(c.Name, nil)
		case "counter":
			cnt := &dataplane.Counter{}
			rt.Counters[c.Name] = cnt
			co = cnt.Callout(c.Name)
		}
		if err := sw.RegisterCallout(co); err != nil {
			return nil, f.errAt(err.Error(), "callouts", i)
		}
	}
	if err := sw.SetFilters(f.switchFilters()); err != nil {
		return nil, f.errAt(err.Error(), "filters")
	}
	rt.file = f
	return rt, nil
}

// addPort builds ports[i]'s drivers and attaches the port to rt's switch.
// The first AF_XDP socket registers the UMEM and every other one shares it.
func (f *File) addPort(i int, rt *Runtime) (err error) {
	pc, sw := f.Ports[i], rt.Switch
	rp := &RuntimePort{Name: pc.Name, ID: pc.ID, Kind: pc.Kind, Interface: pc.Interface}
	rt.Ports = append(rt.Ports, rp) // release finds what was set up, on error too
	var drivers []dataplane.Driver
	switch pc.Kind {
	case "memory":
		for q := 0; q < f.Switch.Queues; q++ {
			mp, err := memport.New(f.memConfig(pc, q))
			if err != nil {
				return f.errAt(err.Error(), "ports", i)
			}
			rp.Memory = append(rp.Memory, mp)
			drivers = append(drivers, mp)
		}
	case "afxdp":
		if drivers, err = f.openAFXDP(i, rt, rp); err != nil {
			return err
		}
	}
	var mac dataplane.MAC
	if pc.MAC != "" {
		mac, _ = dataplane.ParseMAC(pc.MAC)
	}
	port, err := sw.AddPort(pc.ID, pc.MaxNIC, mac, drivers...)
	if err != nil {
		for _, d := range drivers { // not the switch's yet
			dataplane.ReleaseDriver(d, sw.Arena())
		}
		return f.errAt(err.Error(), "ports", i)
	}
	cm, _ := dataplane.ParseChecksumMode(pc.Checksum) // checked by Parse
	port.SetChecksum(cm)
	rp.Port = port
	return nil
}

// switchFilters returns the file's filters as the switch takes them.
func (f *File) switchFilters() []dataplane.Filter {
	names := map[string]bool{}
	for _, c := range f.Callouts {
		names[c.Name] = true
	}
	var filters []dataplane.Filter
	for i := range f.Filters {
		flt, _ := f.filter(i, names) // checked by Parse
		filters = append(filters, flt)
	}
	return filters
}

// multiBuffer says whether the AF_XDP sockets are to be multi-buffer:
// switch.multi_buffer on, or auto and some AF_XDP port's interface has an
// MTU its frames cannot carry one to a UMEM frame.
func (f *File) multiBuffer() bool {
	switch f.Switch.MultiBuffer {
	case "on":
		return true
	case "off":
		return false
	}
	for _, p := range f.Ports {
		if p.Kind != "afxdp" {
			continue
		}
		if ifi, err := net.InterfaceByName(p.Interface); err == nil && ifi.MTU > afxdp.MaxMTU(f.Switch.FrameSize, false) {
			return true
		}
	}
	return false
}

// checkInterface tells, before anything is set up, whether ports[i]'s
// interface exists and has the queues the switch will use.
func (f *File) checkInterface(i int, multiBuffer bool) error {
	p := f.Ports[i]
	ifi, err := net.InterfaceByName(p.Interface)
	if err != nil {
		return f.errAt(fmt.Sprintf("%s: no such network interface here (ip link show lists them)", p.Interface), "ports", i, "interface")
	}
	if ifi.Flags&net.FlagUp == 0 {
		return f.errAt(fmt.Sprintf("%s is down (ip link set %s up)", p.Interface, p.Interface), "ports", i, "interface")
	}
	rxq, _ := filepath.Glob(filepath.Join("/sys/class/net", p.Interface, "queues", "rx-*"))
	if len(rxq) > 0 && len(rxq) < f.Switch.Queues {
		return f.errAt(fmt.Sprintf("%s has %d RX queue(s); switch.queues is %d", p.Interface, len(rxq), f.Switch.Queues), "ports", i, "interface")
	}
	if err := afxdp.CheckMTU(p.Interface, ifi.MTU, f.Switch.FrameSize, multiBuffer); err != nil {
		return f.errAt(err.Error(), "ports", i, "interface")
	}
	return nil
}

// sockets is the number of AF_XDP sockets the switch opens (one per
// queue of each afxdp port); they share the UMEM's frames.
func (f *File) sockets() int {
	n := 0
	for _, p := range f.Ports {
		if p.Kind == "afxdp" { // Parse has filled in the default kind
			n += f.Switch.Queues
		}
	}
	return n
}

// openAFXDP attaches the XDP program to ports[i]'s interface and opens one
// socket per queue over arena's region; the first socket of the switch
// registers the UMEM and the others share it.
func (f *File) openAFXDP(i int, rt *Runtime, rp *RuntimePort) ([]dataplane.Driver, error) {
	arena, shared := rt.Switch.Arena(), &rt.shared
	pc := f.Ports[i]
	ifi, err := net.InterfaceByName(pc.Interface)
	if err != nil {
		return nil, f.errAt(fmt.Sprintf("%s: %v", pc.Interface, err), "ports", i, "interface")
	}
	mode := map[string]afxdp.AttachMode{"auto": afxdp.AttachAuto, "native": afxdp.AttachNative, "generic": afxdp.AttachGeneric}[pc.XDPMode]
	prog, err := afxdp.AttachProgramFrags(ifi.Index, f.Switch.Queues, mode, rt.multiBuffer)
	if err != nil {
		return nil, f.errAt(fmt.Sprintf("%s: %v", pc.Interface, err), "ports", i, "xdp_mode")
	}
	rp.Program = prog
	bind := map[string]afxdp.BindMode{"auto": afxdp.BindAuto, "copy": afxdp.BindCopy, "zerocopy": afxdp.BindZeroCopy}[pc.Bind]
	wake := pc.NeedWakeup == nil || *pc.NeedWakeup
	var drivers []dataplane.Driver
	for q := 0; q < f.Switch.Queues; q++ {
		so := afxdp.SocketOptions{Ifindex: ifi.Index, Queue: q, RingSize: pc.RingSize, Mode: bind, NeedWakeup: wake, Shared: *shared,
			MultiBuffer: rt.multiBuffer}
		p, err := afxdp.NewPort(arena, afxdp.PortOptions{Name: fmt.Sprintf("%s/%d", pc.Interface, q), Program: prog, Socket: so,
			Batch: f.Switch.Batch, FillTarget: afxdp.DefaultFillTarget(so.RingSize, arena.NumFrames(), f.sockets())})
		if err != nil {
			for _, d := range drivers {
				dataplane.ReleaseDriver(d, arena)
			}
			return nil, f.wrapAt(err, "ports", i)
		}
		if *shared == nil {
			*shared = p.Socket()
		}
		rp.AFXDP = append(rp.AFXDP, p)
		drivers = append(drivers, p)
	}
	return drivers, nil
}

// memConfig is the memport configuration of queue q of a memory port; a
// generator's rate and count are split over the queues.
func (f *File) memConfig(pc PortSection, q int) memport.Config {
	mc := memport.Config{Name: fmt.Sprintf("%s/%d", pc.Name, q), Latency: true}
	g := pc.Generate
	if g == nil {
		return mc
	}
	dst, _ := dataplane.ParseMAC(g.Dst)
	src, _ := dataplane.ParseMAC(g.Src)
	var et uint64
	if g.EtherType != "" {
		et, _ = parseUint(g.EtherType, 16)
	}
	mc.Templates = []memport.Template{{Dst: dst, Src: src, VLAN: g.VLAN, EtherType: uint16(et), Size: g.Size}}
	mc.Rate = g.Rate / float64(f.Switch.Queues)
	if g.Count > 0 {
		mc.Limit = memport.Share(g.Count, f.Switch.Queues, q)
		if mc.Limit == 0 {
			mc.Templates = nil // nothing for this queue to send
		}
	}
	return mc
}

// Close stops the switch (draining, R7), checks every frame came back, and
// releases the XDP programs and the UMEM. Safe to call twice.
func (rt *Runtime) Close() error { return rt.release() }

// release closes the switch and frees what Build set up around it.
func (rt *Runtime) release() error {
	if rt.closed {
		return nil
	}
	rt.closed = true
	var errs []error
	if rt.Switch != nil {
		errs = append(errs, rt.Switch.Close())
	}
	for _, p := range rt.Ports {
		if p.Program != nil {
			errs = append(errs, p.Program.Close())
		}
	}
	if rt.region != nil {
		errs = append(errs, afxdp.FreeRegion(rt.region))
	}
	return errors.Join(errs...)
}
