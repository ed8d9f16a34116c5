package afxdp

import (
	"encoding/binary"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// Flows spread a generator's frames over many flows: frame k of a run is
// rewritten as flow i = k mod n (sequential) or a hash of k mod n
// (random), i written big-endian into the last two bytes of the
// destination and source MAC, the last two bytes of the IPv4 source and
// destination address, and the UDP source port (an IPv4/UDP frame without
// options; the generator's own). The live-frames generator does it in its
// XDP program from a per-CPU counter, the paced one in Go, alike.
type Flows struct {
	N      int  // flows, 1..65536
	Random bool // hashed order instead of sequential
}

// Flow offsets in an untagged IPv4/UDP frame.
const (
	flowDstMAC  = 4
	flowSrcMAC  = 10
	flowIPSrc   = 28
	flowIPDst   = 32
	flowUDPSrc  = 34
	flowMinSize = 36
	// flowHash scrambles the counter for the random order (Knuth's
	// multiplicative hash, in 32 bits).
	flowHash = 2654435761
)

// Index is frame k's flow.
func (f Flows) Index(k uint64) uint16 {
	if f.Random {
		k = uint64(uint32(k) * flowHash)
	}
	return uint16(k % uint64(f.N))
}

// Write rewrites frame as flow i.
func (f Flows) Write(frame []byte, i uint16) {
	if len(frame) < flowMinSize {
		return
	}
	for _, off := range []int{flowDstMAC, flowSrcMAC, flowIPSrc, flowIPDst, flowUDPSrc} {
		binary.BigEndian.PutUint16(frame[off:], i)
	}
}

// MAC returns flow i's variant of a 6-byte address.
func (Flows) MAC(mac []byte, i uint16) []byte {
	m := append([]byte(nil), mac...)
	binary.BigEndian.PutUint16(m[4:], i)
	return m
}

// NewLiveGeneratorFlows is NewLiveGenerator whose program rewrites each
// frame it sends as the next flow of f (Flows).
func NewLiveGeneratorFlows(f Flows) (*LiveGenerator, error) {
	if f.N < 1 || f.N > 1<<16 {
		return nil, fmt.Errorf("afxdp: %d flows: want 1..65536", f.N)
	}
	ctr, err := ebpf.NewMap(&ebpf.MapSpec{Name: "wfpxdp_flow", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return nil, permErr("create flow counter", err)
	}
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		// r0 = &counter[0]
		asm.Mov.Imm(asm.R1, 0),
		asm.StoreMem(asm.RFP, -4, asm.R1, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, ctr.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "tx"),
		// r7 = counter++
		asm.LoadMem(asm.R7, asm.R0, 0, asm.DWord),
		asm.Mov.Reg(asm.R8, asm.R7),
		asm.Add.Imm(asm.R8, 1),
		asm.StoreMem(asm.R0, 0, asm.R8, asm.DWord),
	}
	if f.Random {
		// the immediate is the same 32 bits, read as signed; the 32-bit
		// multiply keeps the low 32 bits, as Index's uint32 product does
		h := uint32(flowHash)
		insns = append(insns, asm.Mul.Imm32(asm.R7, int32(h)))
	}
	insns = append(insns,
		asm.Mod.Imm(asm.R7, int32(f.N)),
		asm.HostTo(asm.BE, asm.R7, asm.Half),
		// bounds for the verifier: data + flowMinSize <= data_end
		asm.LoadMem(asm.R2, asm.R6, 0, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, 4, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, flowMinSize),
		asm.JGT.Reg(asm.R4, asm.R3, "tx"),
	)
	for _, off := range []int16{flowDstMAC, flowSrcMAC, flowIPSrc, flowIPDst, flowUDPSrc} {
		insns = append(insns, asm.StoreMem(asm.R2, off, asm.R7, asm.Half))
	}
	insns = append(insns, asm.Mov.Imm(asm.R0, 3).WithSymbol("tx"), asm.Return()) // XDP_TX
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "wfpxdp_genflow", Type: ebpf.XDP, License: "Dual MIT/GPL", Instructions: insns})
	if err != nil {
		ctr.Close()
		return nil, permErr("load flow generator program", err)
	}
	return &LiveGenerator{prog: prog, flowCtr: ctr}, nil
}
