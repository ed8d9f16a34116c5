package afxdp

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Host is one network namespace with one end of a veth pair, addressed
// like a machine on the switch's segment; the other end (Port) stays in
// the caller's namespace for the switch to bind.
type Host struct {
	NS    string
	Port  string // the veth end the switch binds, in the caller's namespace
	Iface string // the end inside NS
	MAC   net.HardwareAddr
	IPv4  netip.Addr
	IPv6  netip.Addr
}

// InNS runs f on an OS thread inside the host's namespace (InNetns).
func (h *Host) InNS(f func() error) error { return InNetns(h.NS, f) }

// Hosts is a set of namespaces, each a host with one veth pair into the
// switch: the topology of an NFV experiment, where real network stacks
// talk through the switch. The stacks keep their default offloads (TX
// checksum offload on, so they leave TCP and UDP checksums partial).
// Addresses come from the benchmarking ranges 198.18.0.0/15 (RFC 2544)
// and fd00:5c::/64 (unique local). NewHosts creates every name uniquely;
// Close removes all of it.
type Hosts struct {
	Hosts []Host
}

// NewHosts creates n hosts with interfaces of the given MTU (0: the
// default 1500) on both ends of each veth pair. On error everything
// created so far is removed.
func NewHosts(n, mtu int) (hs *Hosts, err error) {
	var tag [3]byte
	rand.Read(tag[:])
	id := hex.EncodeToString(tag[:])
	hs = &Hosts{}
	defer func() {
		if err != nil {
			hs.Close()
		}
	}()
	for i := 0; i < n; i++ {
		h := Host{NS: fmt.Sprintf("wfpxdp-%s-%d", id, i), Port: fmt.Sprintf("wx%sh%d", id, i), Iface: fmt.Sprintf("wx%sn%d", id, i),
			IPv4: netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)}),
			IPv6: netip.AddrFrom16([16]byte{0: 0xfd, 2: 0x00, 3: 0x5c, 15: byte(i + 1)})}
		if err := ip("netns", "add", h.NS); err != nil {
			return nil, fmt.Errorf("hosts: %w", err)
		}
		hs.Hosts = append(hs.Hosts, Host{NS: h.NS})
		if err := ip("link", "add", h.Port, "type", "veth", "peer", "name", h.Iface, "netns", h.NS); err != nil {
			return nil, fmt.Errorf("hosts: %w", err)
		}
		hs.Hosts[i] = h
		noIPv6(h.Port) // the switch's end is a switch port, not a host
		cmds := [][]string{
			{"-n", h.NS, "link", "set", "lo", "up"},
			{"-n", h.NS, "addr", "add", h.IPv4.String() + "/24", "dev", h.Iface},
			{"-n", h.NS, "addr", "add", h.IPv6.String() + "/64", "dev", h.Iface, "nodad"},
		}
		if mtu > 0 {
			cmds = append(cmds, []string{"link", "set", h.Port, "mtu", fmt.Sprint(mtu)},
				[]string{"-n", h.NS, "link", "set", h.Iface, "mtu", fmt.Sprint(mtu)})
		}
		cmds = append(cmds, []string{"link", "set", h.Port, "up"}, []string{"-n", h.NS, "link", "set", h.Iface, "up"})
		for _, c := range cmds {
			if err := ip(c...); err != nil {
				return nil, fmt.Errorf("hosts: %w", err)
			}
		}
		err := h.InNS(func() error {
			ifc, err := net.InterfaceByName(h.Iface)
			if err == nil {
				hs.Hosts[i].MAC = ifc.HardwareAddr
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("hosts: %w", err)
		}
	}
	return hs, nil
}

// Close removes the veth pairs and the namespaces.
func (hs *Hosts) Close() error {
	var errs []error
	for _, h := range hs.Hosts {
		if h.Port != "" {
			if err := ip("link", "del", h.Port); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
				errs = append(errs, err)
			}
		}
		if err := ip("netns", "del", h.NS); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Bridge joins the hosts' switch ends with a Linux bridge (the kernel's
// own switch, for comparison) and returns the function that removes it
// again, leaving the ends as they were. The ends must carry no XDP
// program of a switch meanwhile.
func (hs *Hosts) Bridge() (remove func() error, err error) {
	if len(hs.Hosts) == 0 {
		return nil, errors.New("bridge: no hosts")
	}
	name := "wx" + strings.TrimPrefix(strings.TrimSuffix(hs.Hosts[0].NS, "-0"), "wfpxdp-") + "br"
	if err := ip("link", "add", name, "type", "bridge"); err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	remove = func() error { return ip("link", "del", name) }
	for _, h := range hs.Hosts {
		if err := ip("link", "set", h.Port, "master", name); err != nil {
			remove()
			return nil, fmt.Errorf("bridge: %w", err)
		}
	}
	if err := ip("link", "set", name, "up"); err != nil {
		remove()
		return nil, fmt.Errorf("bridge: %w", err)
	}
	return remove, nil
}
