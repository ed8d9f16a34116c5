package afxdp

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// AttachMode is how the XDP program is attached.
type AttachMode uint8

// Attach modes: Auto tries native (driver) mode, then generic (SKB) mode.
const (
	AttachAuto AttachMode = iota
	AttachNative
	AttachGeneric
)

// Program is the XDP program of one interface: it redirects each frame to
// the AF_XDP socket registered for its RX queue in an XSKMAP, and passes it
// to the kernel stack (XDP_PASS) when no socket is registered. It is
// assembled in Go (no clang). Counters: a per-CPU array of packets seen.
type Program struct {
	prog    *ebpf.Program
	xsks    *ebpf.Map
	seen    *ebpf.Map
	lnk     link.Link
	ifindex int
	Mode    string // "native" or "generic"
	// Fallback says why native mode was refused when auto mode fell back
	// to generic; empty otherwise.
	Fallback string
}

// ErrAttach wraps a refused attach.
var ErrAttach = errors.New("attach XDP program")

// AttachProgram loads the program with an XSKMAP of queues entries and
// attaches it to ifindex.
func AttachProgram(ifindex, queues int, mode AttachMode) (*Program, error) {
	return AttachProgramFrags(ifindex, queues, mode, false)
}

// AttachProgramFrags is AttachProgram; with frags the program is loaded
// frags-aware (BPF_F_XDP_HAS_FRAGS), as multi-buffer sockets need: the
// kernel then lets the interface carry frames larger than a page (a veth
// with a program that is not frags-aware caps its peer's MTU at 3506).
func AttachProgramFrags(ifindex, queues int, mode AttachMode, frags bool) (*Program, error) {
	_ = rlimit.RemoveMemlock() // kernels before 5.11 account BPF maps to RLIMIT_MEMLOCK
	xsks, err := ebpf.NewMap(&ebpf.MapSpec{Name: "wfpxdp_xsks", Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: uint32(max(queues, 1))})
	if err != nil {
		return nil, permErr("create XSKMAP", err)
	}
	seen, err := ebpf.NewMap(&ebpf.MapSpec{Name: "wfpxdp_seen", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		xsks.Close()
		return nil, permErr("create counters map", err)
	}
	insns := append(asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}, // r6 = ctx
		countInsns(seen.FD(), "redirect")...)
	insns = append(insns,
		// return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS)
		asm.LoadMem(asm.R2, asm.R6, 16, asm.Word).WithSymbol("redirect"),
		asm.LoadMapPtr(asm.R1, xsks.FD()),
		asm.Mov.Imm(asm.R3, 2), // XDP_PASS when the queue has no socket
		asm.FnRedirectMap.Call(),
		asm.Return(),
	)
	spec := &ebpf.ProgramSpec{Name: "wfpxdp_redirect", Type: ebpf.XDP, License: "Dual MIT/GPL", Instructions: insns}
	if frags {
		spec.Flags = unix.BPF_F_XDP_HAS_FRAGS
	}
	prog, err := ebpf.NewProgram(spec)
	if err != nil {
		xsks.Close()
		seen.Close()
		return nil, permErr("load XDP program", err)
	}
	p := &Program{prog: prog, xsks: xsks, seen: seen, ifindex: ifindex}
	try := []struct {
		flags link.XDPAttachFlags
		name  string
	}{{link.XDPDriverMode, "native"}, {link.XDPGenericMode, "generic"}}
	switch mode {
	case AttachNative:
		try = try[:1]
	case AttachGeneric:
		try = try[1:]
	}
	var errs []error
	for _, t := range try {
		l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: t.flags})
		if err == nil {
			p.lnk, p.Mode = l, t.name
			if len(errs) > 0 {
				p.Fallback = errs[0].Error()
			}
			return p, nil
		}
		errs = append(errs, fmt.Errorf("%s mode: %w", t.name, err))
	}
	p.Close()
	return nil, fmt.Errorf("%w to ifindex %d: %w", ErrAttach, ifindex, errors.Join(errs...))
}

func permErr(what string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, ebpf.ErrNotSupported) {
		return fmt.Errorf("%s: %w (needs CAP_BPF and CAP_NET_ADMIN: run as root)", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Register puts the socket fd in the XSKMAP at queue.
func (p *Program) Register(queue, fd int) error {
	if err := p.xsks.Put(uint32(queue), uint32(fd)); err != nil {
		return fmt.Errorf("register socket for queue %d: %w", queue, err)
	}
	return nil
}

// Unregister removes the socket at queue; that queue's frames go to the
// kernel stack again.
func (p *Program) Unregister(queue int) {
	_ = p.xsks.Delete(uint32(queue))
}

// Seen returns the packets the program has run on, summed over CPUs.
func (p *Program) Seen() uint64 { return sumPerCPU(p.seen) }

// countInsns increments slot 0 of the per-CPU array counter (no atomics
// needed per CPU), then jumps to next. Clobbers r0-r5.
func countInsns(counter int, next string) asm.Instructions {
	return asm.Instructions{
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, counter),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, next),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
	}
}

// sumPerCPU returns slot 0 of a per-CPU array counter summed over CPUs.
func sumPerCPU(m *ebpf.Map) uint64 {
	var per []uint64
	if err := m.Lookup(uint32(0), &per); err != nil {
		return 0
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n
}

// Close detaches the program and frees its maps.
func (p *Program) Close() error {
	var err error
	if p.lnk != nil {
		err = p.lnk.Close()
	}
	p.prog.Close()
	p.xsks.Close()
	p.seen.Close()
	return err
}
