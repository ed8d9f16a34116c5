// Package config reads the YAML file behind "dataplane run --config": the
// switch (sizes, mode, cores), its ports (AF_XDP on real interfaces, or
// in-memory generator/sink ports), static forwarding entries, callouts and
// filters, and builds a ready-to-start switch from it.
//
// Errors name the file, the line and the field, and say what was expected:
//
//	vswitch.yaml:14: ports[1].mac: "02:00:00:zz" is not a 48-bit MAC address (want 02:00:00:00:00:01)
//
// The format is documented by the example in testdata/example.yaml, which
// the tests load.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// File is a parsed configuration. Parse fills it and checks every field;
// Build turns it into a switch.
type File struct {
	Switch     SwitchSection `yaml:"switch"`
	Ports      []PortSection `yaml:"ports"`
	StaticMACs []StaticMAC   `yaml:"static_macs"`
	Callouts   []Callout     `yaml:"callouts"`
	Filters    []Filter      `yaml:"filters"`

	name string
	root *yaml.Node
}

// SwitchSection sizes and places the switch (dataplane.Config).
type SwitchSection struct {
	ID        string `yaml:"id"`         // GUID; default: a fixed one
	Mode      string `yaml:"mode"`       // rtc | pipeline; rtc
	Cores     []int  `yaml:"cores"`      // CPUs for the lcores, in order; default: all
	Queues    int    `yaml:"queues"`     // RX queues used on every port; 1
	Frames    int    `yaml:"frames"`     // UMEM frames / descriptors; 8192
	FrameSize int    `yaml:"frame_size"` // 2048 or 4096; 2048
	Reserve   int    `yaml:"reserve"`    // descriptors for clones; 2048
	Batch     int    `yaml:"batch"`      // packets per burst, 1..256; 32
	RingSize  int    `yaml:"ring_size"`  // stage ring size, a power of two; 1024
	IdleSleep string `yaml:"idle_sleep"` // longest idle backoff sleep, e.g. 50us; none
	LcoreNice int    `yaml:"lcore_nice"` // nice value of the lcore threads, -20..19 (negative: CAP_SYS_NICE); 0 leaves it
	// MultiBuffer: on binds the AF_XDP sockets with XDP_USE_SG, so frames
	// larger than a UMEM frame (jumbo frames) are carried as chains of
	// frames; auto turns it on when an AF_XDP port's MTU needs it.
	MultiBuffer string `yaml:"multi_buffer"` // auto | on | off; auto
}

// PortSection is one switch port.
type PortSection struct {
	Name   string `yaml:"name"`
	ID     uint32 `yaml:"id"`      // NDIS_SWITCH_PORT_ID; 0 is the trusted default port
	MaxNIC uint16 `yaml:"max_nic"` // NIC indexes 0..max_nic are valid
	MAC    string `yaml:"mac"`     // a static forwarding entry to this port; optional
	Kind   string `yaml:"kind"`    // afxdp | memory; afxdp
	// Checksum: auto finishes partial TCP/UDP checksums on the frames the
	// port transmits (dataplane.ChecksumMode); off sends them as they are.
	Checksum string `yaml:"checksum"` // auto | off; auto

	// afxdp
	Interface  string `yaml:"interface"`
	XDPMode    string `yaml:"xdp_mode"`    // auto | native | generic; auto
	Bind       string `yaml:"bind"`        // auto | copy | zerocopy; auto
	NeedWakeup *bool  `yaml:"need_wakeup"` // true
	RingSize   uint32 `yaml:"ring_size"`   // AF_XDP ring entries, a power of two; 2048

	// memory: a generator on the receive side (optional) and a sink
	Generate *Generate `yaml:"generate"`
}

// Generate is what an in-memory port sends.
type Generate struct {
	Dst       string  `yaml:"dst"`
	Src       string  `yaml:"src"`
	VLAN      uint16  `yaml:"vlan"`
	EtherType string  `yaml:"ether_type"` // e.g. 0x0800; IPv4
	Size      int     `yaml:"size"`       // 60..frame_size; 64
	Rate      float64 `yaml:"rate"`       // packets per second; 0: as fast as taken
	Count     uint64  `yaml:"count"`      // packets in all; 0: no limit
}

// StaticMAC is a static forwarding entry.
type StaticMAC struct {
	MAC  string `yaml:"mac"`
	Port uint32 `yaml:"port"`
}

// Callout is a ready callout by kind.
type Callout struct {
	Name string `yaml:"name"`
	Kind string `yaml:"kind"` // inspector (absorb, reinject from the worker) | counter (count, permit)
}

// Filter is one filter of a vSwitch layer.
type Filter struct {
	Name       string      `yaml:"name"`
	Layer      string      `yaml:"layer"`  // ingress | egress
	Weight     uint64      `yaml:"weight"` // higher first
	Action     string      `yaml:"action"` // permit | block | callout
	Callout    string      `yaml:"callout"`
	HardPermit bool        `yaml:"hard_permit"` // permit clears the WRITE right of later callouts (R28)
	Conditions []Condition `yaml:"conditions"`
}

// Condition tests one field: (field & mask) == (value & mask).
type Condition struct {
	Field string `yaml:"field"`
	Value string `yaml:"value"`
	Mask  string `yaml:"mask"`
}

// Error is a configuration error at a line of a file.
type Error struct {
	File  string
	Line  int    // 0 when unknown
	Field string // e.g. ports[1].mac
	Msg   string
	Err   error // the error behind Msg, if any (errors.Is sees it)
}

// Unwrap returns the error behind the message, if any.
func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(strings.ReplaceAll(e.Msg, "\n", `\n`)) // one line, whatever the file held
	return b.String()
}

// Load reads and parses the file at path.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse parses and checks a configuration; name is used in errors.
func Parse(name string, data []byte) (*File, error) {
	f := &File{name: name}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(name, err)
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, &Error{File: name, Msg: "empty configuration (want at least a ports list)"}
	}
	f.root = root.Content[0]
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil {
		return nil, yamlError(name, err)
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	return f, nil
}

// yamlError turns the parser's error into one line naming the file.
func yamlError(name string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg := te.Errors[0]
		if n := len(te.Errors) - 1; n > 0 {
			msg += fmt.Sprintf(" (and %d more)", n)
		}
		return lineError(name, msg)
	}
	return lineError(name, strings.TrimPrefix(err.Error(), "yaml: "))
}

// lineError moves a "line N: " prefix of msg into the file:line position.
func lineError(name, msg string) error {
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.Index(rest, ": "); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				return &Error{File: name, Line: n, Msg: rest[i+2:]}
			}
		}
	}
	return &Error{File: name, Msg: msg}
}

// errAt is an error about the field at path (keys and indexes), with the
// line of that field, or of the nearest enclosing node the file has.
func (f *File) errAt(msg string, path ...any) error {
	return &Error{File: f.name, Line: f.line(path...), Field: pathString(path), Msg: msg}
}

// wrapAt is errAt for an error from below, which errors.Is still sees.
func (f *File) wrapAt(err error, path ...any) error {
	return &Error{File: f.name, Line: f.line(path...), Field: pathString(path), Msg: err.Error(), Err: err}
}

func (f *File) line(path ...any) int {
	n := f.root
	line := 0
	if n != nil {
		line = n.Line
	}
	for _, p := range path {
		if n == nil {
			break
		}
		var next *yaml.Node
		switch k := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						next = n.Content[i+1]
						line = n.Content[i].Line
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k < len(n.Content) {
				next = n.Content[k]
				line = next.Line
			}
		}
		n = next
	}
	return line
}

func pathString(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch k := p.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(k)
		case int:
			fmt.Fprintf(&b, "[%d]", k)
		}
	}
	return b.String()
}

// IdleSleep returns switch.idle_sleep as a duration (0 when unset).
func (s SwitchSection) idleSleep() (time.Duration, error) {
	if s.IdleSleep == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s.IdleSleep)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration (want e.g. 50us)", s.IdleSleep)
	}
	return d, nil
}
