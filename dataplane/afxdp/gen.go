package afxdp

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// LiveGenerator pushes frames into an interface at line rate the way
// xdp-trafficgen does: BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES on a
// one-instruction XDP_TX program, so each run of the program transmits the
// frame out of the interface it was "received" on. An AF_XDP TX socket
// offers only a few Mpps into a veth; this offers tens.
type LiveGenerator struct {
	prog    *ebpf.Program
	parked  link.Link // see Park
	flowCtr *ebpf.Map // NewLiveGeneratorFlows: the per-CPU frame counter
}

// xdpMD mirrors struct xdp_md, the context BPF_PROG_RUN takes.
type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// NewLiveGenerator loads the XDP_TX program.
func NewLiveGenerator() (*LiveGenerator, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "wfpxdp_gen", Type: ebpf.XDP, License: "Dual MIT/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 3), asm.Return()}}) // XDP_TX
	if err != nil {
		return nil, permErr("load generator program", err)
	}
	return &LiveGenerator{prog: prog}, nil
}

// Send transmits frame count times out of ifindex (an interface of the
// calling thread's network namespace), in kernel batches of batch. It
// returns when the kernel has run them all. Frames are sent as they are:
// every copy carries the same bytes.
func (g *LiveGenerator) Send(ifindex int, frame []byte, count, batch uint32) error {
	_, err := g.prog.Run(&ebpf.RunOptions{
		Data:      frame,
		Context:   xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ifindex)},
		Repeat:    count,
		Flags:     unix.BPF_F_TEST_XDP_LIVE_FRAMES,
		BatchSize: batch,
	})
	if err != nil {
		return fmt.Errorf("live-frames run on ifindex %d: %w", ifindex, err)
	}
	return nil
}

// Park attaches the generator's program to ifindex, an interface of the
// calling thread's namespace that never receives anything (see
// Topology.AddIdle), so that the program stays in the kernel's XDP
// dispatcher. Without it every Send adds the program to the dispatcher and
// removes it again, each change a synchronize_rcu: two waits of ~16 ms per
// Send here, during which nothing is sent — with 1 M-frame runs, a quarter
// of the time.
func (g *LiveGenerator) Park(ifindex int) error {
	if g.parked != nil {
		return nil
	}
	l, err := attachXDP(g.prog, ifindex)
	if err != nil {
		return fmt.Errorf("%w (generator, parked) to ifindex %d: %w", ErrAttach, ifindex, err)
	}
	g.parked = l
	return nil
}

// Close detaches (if parked) and unloads the program.
func (g *LiveGenerator) Close() error {
	var err error
	if g.parked != nil {
		err = g.parked.Close()
	}
	if g.flowCtr != nil {
		g.flowCtr.Close()
	}
	return errors.Join(err, g.prog.Close())
}

// DropCounter is a BPF program that counts and drops every frame: the far
// end of a benchmark, counting without a socket's overhead.
type DropCounter struct {
	prog  *ebpf.Program
	count *ebpf.Map
	lnk   link.Link
}

// counterHook is where a DropCounter runs: its program type, its verdicts,
// and how it reads a frame's ether type.
type counterHook struct {
	name       string
	typ        ebpf.ProgramType
	drop, pass int32
	// etherType loads the frame's ether type (network byte order) into r5,
	// or jumps to "count" when it cannot; r1 holds the context.
	etherType asm.Instructions
	attach    func(prog *ebpf.Program, ifindex int) (link.Link, error)
}

var (
	xdpHook = counterHook{name: "wfpxdp_count", typ: ebpf.XDP, drop: 1, pass: 2, // XDP_DROP, XDP_PASS
		etherType: asm.Instructions{ // after the bounds check the verifier wants
			asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), // data
			asm.LoadMem(asm.R3, asm.R1, 4, asm.Word), // data_end
			asm.Mov.Reg(asm.R4, asm.R2),
			asm.Add.Imm(asm.R4, 14),
			asm.JGT.Reg(asm.R4, asm.R3, "count"),
			asm.LoadMem(asm.R5, asm.R2, 12, asm.Half),
		},
		attach: attachXDP}
	tcHook = counterHook{name: "wfpxdp_tccount", typ: ebpf.SchedCLS, drop: 2, pass: 0, // TC_ACT_SHOT, TC_ACT_OK
		etherType: asm.Instructions{asm.LoadMem(asm.R5, asm.R1, 16, asm.Word)}, // __sk_buff.protocol
		attach: func(prog *ebpf.Program, ifindex int) (link.Link, error) {
			return link.AttachTCX(link.TCXOptions{Program: prog, Interface: ifindex, Attach: ebpf.AttachTCXIngress})
		}}
)

// attachXDP attaches prog to ifindex in native mode, or generic mode where
// native is refused.
func attachXDP(prog *ebpf.Program, ifindex int) (link.Link, error) {
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: link.XDPDriverMode})
	if err != nil {
		l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: link.XDPGenericMode})
	}
	return l, err
}

// AttachDropCounter attaches a counting XDP_DROP program to ifindex (of the
// calling thread's namespace). Frames of ether type pass (if non-zero) are
// counted and passed to the kernel stack instead, for latency probes.
func AttachDropCounter(ifindex int, pass uint16) (*DropCounter, error) {
	return attachCounter(xdpHook, ifindex, pass)
}

// AttachTCDropCounter is AttachDropCounter at the TC ingress hook (tcx,
// Linux 6.6+) instead of XDP. On a veth whose peer sends with skbs (an
// AF_XDP socket in copy mode, the kernel stack), an XDP program on the
// receiving end makes veth turn every skb into an XDP buffer, which costs a
// page allocation and a copy per frame, all charged to the sender's CPU;
// at TC ingress the skb is counted and freed as it is. Frames XDP_TX'd or
// redirected into a veth need an XDP program at the receiving end, so the
// live-frames generator's target cannot use this one.
func AttachTCDropCounter(ifindex int, pass uint16) (*DropCounter, error) {
	return attachCounter(tcHook, ifindex, pass)
}

func attachCounter(h counterHook, ifindex int, pass uint16) (*DropCounter, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "wfpxdp_cnt", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return nil, permErr("create counter map", err)
	}
	// r6 = drop, or pass for the pass ether type; count; return r6 (r6
	// survives the helper call).
	insns := asm.Instructions{asm.Mov.Imm(asm.R6, h.drop)}
	if pass != 0 {
		insns = append(insns, h.etherType...)
		insns = append(insns,
			asm.JNE.Imm(asm.R5, int32(pass>>8|pass<<8), "count"), // the loaded value is in network byte order
			asm.Mov.Imm(asm.R6, h.pass),
		)
	}
	count := countInsns(m.FD(), "done")
	count[0] = count[0].WithSymbol("count")
	insns = append(insns, count...)
	insns = append(insns, asm.Mov.Reg(asm.R0, asm.R6).WithSymbol("done"), asm.Return())
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: h.name, Type: h.typ, License: "Dual MIT/GPL", Instructions: insns})
	if err != nil {
		m.Close()
		return nil, permErr("load counter program", err)
	}
	l, err := h.attach(prog, ifindex)
	if err != nil {
		prog.Close()
		m.Close()
		return nil, fmt.Errorf("%w (%s) to ifindex %d: %w", ErrAttach, h.name, ifindex, err)
	}
	return &DropCounter{prog: prog, count: m, lnk: l}, nil
}

// Count returns the frames counted so far.
func (c *DropCounter) Count() uint64 { return sumPerCPU(c.count) }

// Close detaches and unloads.
func (c *DropCounter) Close() error {
	err := c.lnk.Close()
	c.prog.Close()
	c.count.Close()
	return err
}
