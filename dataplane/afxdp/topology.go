package afxdp

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Veth is one veth pair of a topology: Host stays in the caller's network
// namespace (the switch binds AF_XDP sockets there), Peer is moved into the
// topology's namespace, where traffic is sent and received.
type Veth struct {
	Host, Peer       string
	HostIndex        int
	PeerMAC, HostMAC net.HardwareAddr
}

// Topology is a set of veth pairs and one network namespace, all created
// with unique names by NewTopology and removed by Close. It touches nothing
// it did not create.
type Topology struct {
	NS    string
	Pairs []Veth
}

// Htons swaps a 16-bit value to network byte order (AF_PACKET protocols).
func Htons(v uint16) uint16 { return v<<8 | v>>8 }

// ErrNoIP reports that the ip tool (iproute2) is missing.
var ErrNoIP = errors.New("the ip command (iproute2) is not installed")

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return ErrNoIP
		}
		msg := strings.TrimSpace(string(out))
		if strings.Contains(msg, "Operation not permitted") {
			return fmt.Errorf("ip %s: %s (needs CAP_NET_ADMIN and CAP_SYS_ADMIN: run as root)", strings.Join(args, " "), msg)
		}
		return fmt.Errorf("ip %s: %s: %w", strings.Join(args, " "), msg, err)
	}
	return nil
}

// NewTopology creates a namespace and pairs veth pairs with queues RX/TX
// queues each. On error everything created so far is removed.
func NewTopology(pairs, queues int) (t *Topology, err error) {
	var tag [3]byte
	rand.Read(tag[:])
	id := hex.EncodeToString(tag[:])
	t = &Topology{NS: "wfpxdp-" + id}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	if err := ip("netns", "add", t.NS); err != nil {
		t.NS = ""
		return nil, fmt.Errorf("topology: %w", err)
	}
	if err := ip("-n", t.NS, "link", "set", "lo", "up"); err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	for i := 0; i < pairs; i++ {
		v := Veth{Host: fmt.Sprintf("wx%sh%d", id, i), Peer: fmt.Sprintf("wx%sp%d", id, i)}
		args := []string{"link", "add", v.Host}
		if queues > 1 {
			args = append(args, "numtxqueues", fmt.Sprint(queues), "numrxqueues", fmt.Sprint(queues))
		}
		args = append(args, "type", "veth", "peer", "name", v.Peer)
		if queues > 1 {
			args = append(args, "numtxqueues", fmt.Sprint(queues), "numrxqueues", fmt.Sprint(queues))
		}
		if err := ip(args...); err != nil {
			return nil, fmt.Errorf("topology: %w", err)
		}
		t.Pairs = append(t.Pairs, v)
		// No IPv6 on either end: the kernel would send router and
		// neighbour solicitations of its own into the benchmark's and the
		// tests' counts. Off before the links come up.
		noIPv6(v.Host)
		if err := ip("link", "set", v.Peer, "netns", t.NS); err != nil {
			return nil, fmt.Errorf("topology: %w", err)
		}
		// /proc/sys/net is the namespace of the thread reading it
		t.InNS(func() error { noIPv6(v.Peer); return nil })
		for _, c := range [][]string{
			{"link", "set", v.Host, "up"},
			{"-n", t.NS, "link", "set", v.Peer, "up"},
		} {
			if err := ip(c...); err != nil {
				return nil, fmt.Errorf("topology: %w", err)
			}
		}
		ifc, err := net.InterfaceByName(v.Host)
		if err != nil {
			return nil, fmt.Errorf("topology: %w", err)
		}
		t.Pairs[i].HostIndex, t.Pairs[i].HostMAC = ifc.Index, ifc.HardwareAddr
		err = t.InNS(func() error {
			pi, err := net.InterfaceByName(v.Peer)
			if err == nil {
				t.Pairs[i].PeerMAC = pi.HardwareAddr
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("topology: %w", err)
		}
	}
	return t, nil
}

// noIPv6 turns IPv6 off on ifname in the calling thread's namespace (best
// effort: a kernel without IPv6 has nothing to turn off).
func noIPv6(ifname string) {
	os.WriteFile("/proc/sys/net/ipv6/conf/"+ifname+"/disable_ipv6", []byte("1"), 0)
}

// InNS runs f on an OS thread moved into the topology's namespace; the
// thread is discarded afterwards, so no other goroutine runs in the
// namespace.
func (t *Topology) InNS(f func() error) error { return InNetns(t.NS, f) }

// InNetns runs f on an OS thread moved into the named network namespace
// (/run/netns/ns); the thread is discarded afterwards, so no other
// goroutine runs in the namespace.
func InNetns(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", ns, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// AddIdle creates a veth pair inside the namespace, both ends left down,
// and returns one end's ifindex there: an interface that receives nothing,
// to hold an XDP program that must stay attached but never run
// (LiveGenerator.Park). It goes with the namespace.
func (t *Topology) AddIdle() (int, error) {
	id := strings.TrimPrefix(t.NS, "wfpxdp-")
	a, b := "wx"+id+"i0", "wx"+id+"i1"
	if err := ip("-n", t.NS, "link", "add", a, "type", "veth", "peer", "name", b); err != nil {
		return 0, fmt.Errorf("topology: %w", err)
	}
	idx := 0
	err := t.InNS(func() error {
		ifc, err := net.InterfaceByName(a)
		if err == nil {
			idx = ifc.Index
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("topology: %w", err)
	}
	return idx, nil
}

// DeletePair removes veth pair i now (to test a link vanishing under the
// switch); Close skips it.
func (t *Topology) DeletePair(i int) error { return ip("link", "del", t.Pairs[i].Host) }

// Close removes the veth pairs and the namespace.
func (t *Topology) Close() error {
	var errs []error
	for _, v := range t.Pairs {
		if err := ip("link", "del", v.Host); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
			errs = append(errs, err)
		}
	}
	if t.NS != "" {
		if err := ip("netns", "del", t.NS); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
