// Package afxdptest holds what tests of AF_XDP ports share: the privilege
// check that skips (saying why), and a paced sender and a counting
// receiver on the namespace side of a topology's veth pairs.
package afxdptest

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wfpxdp/wfpxdp/dataplane/afxdp"
)

// SkipUnlessPrivileged skips, saying exactly why, where AF_XDP over veth
// cannot run.
func SkipUnlessPrivileged(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF) to create veth pairs and AF_XDP sockets")
	}
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW, 0)
	if err != nil {
		t.Skipf("AF_XDP sockets unavailable: %v", err)
	}
	unix.Close(fd)
}

// rawSocket opens an AF_PACKET socket and the address that sends to dst
// out of ifname, of the calling thread's namespace.
func rawSocket(ifname string, dst net.HardwareAddr) (int, *unix.SockaddrLinklayer, error) {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return -1, nil, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return -1, nil, err
	}
	sa := &unix.SockaddrLinklayer{Ifindex: ifc.Index, Halen: 6}
	copy(sa.Addr[:], dst)
	return fd, sa, nil
}

// SendFrame writes frame, as it is, to dst out of ifname (of the calling
// thread's namespace).
func SendFrame(ifname string, dst net.HardwareAddr, frame []byte) error {
	fd, sa, err := rawSocket(ifname, dst)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Sendto(fd, frame, 0, sa)
}

// SendPaced writes n 64-byte frames, frame i built by build, to dst out of
// ifname inside the namespace, paced in bursts of 32 (~100k pps): a veth
// peer's backlog holds 1000 packets and drops the rest, which is the
// kernel's business, not ours.
func SendPaced(t *testing.T, topo *afxdp.Topology, ifname string, dst net.HardwareAddr, n int, build func(i int, frame []byte)) {
	t.Helper()
	err := topo.InNS(func() error {
		fd, sa, err := rawSocket(ifname, dst)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		frame := make([]byte, 64)
		for i := 0; i < n; i++ {
			if i%32 == 31 {
				time.Sleep(300 * time.Microsecond)
			}
			build(i, frame)
			for {
				err := unix.Sendto(fd, frame, 0, sa)
				if err == nil {
					break
				}
				if !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EAGAIN) {
					return err
				}
				time.Sleep(50 * time.Microsecond)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Receiver counts the frames of ether type proto on ifname for which
// match holds.
func Receiver(t *testing.T, topo *afxdp.Topology, ifname string, proto uint16, match func([]byte) bool, stop <-chan struct{}) <-chan int {
	t.Helper()
	out := make(chan int, 1)
	ready := make(chan error, 1)
	go topo.InNS(func() error {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			ready <- err
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(afxdp.Htons(proto)))
		if err == nil {
			if err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: afxdp.Htons(proto), Ifindex: ifc.Index}); err != nil {
				unix.Close(fd)
			}
		}
		ready <- err
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 20000})
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20)
		buf := make([]byte, 2048)
		n := 0
		for {
			select {
			case <-stop:
				out <- n
				return nil
			default:
			}
			k, _, err := unix.Recvfrom(fd, buf, 0)
			if err == nil && match(buf[:k]) {
				n++
			}
		}
	})
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	return out
}

// Topology builds a topology of pairs veth pairs with queues queues each,
// skipping the test (saying why) where AF_XDP over veth cannot run, and
// removes it (checking that it went) when the test ends.
func Topology(t *testing.T, pairs, queues int) *afxdp.Topology {
	t.Helper()
	SkipUnlessPrivileged(t)
	topo, err := afxdp.NewTopology(pairs, queues)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := topo.Close(); err != nil {
			t.Error(err)
		}
	})
	return topo
}

// ExampleConfig returns the AF_XDP example configuration at path with its
// interface names (wfpx-up, wfpx-vm) replaced by the host ends of topo's
// first two pairs and its core list emptied (whatever this machine has).
func ExampleConfig(t *testing.T, topo *afxdp.Topology, path string) []byte {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(src), "wfpx-up", topo.Pairs[0].Host)
	text = strings.ReplaceAll(text, "wfpx-vm", topo.Pairs[1].Host)
	return []byte(strings.Replace(text, "cores: [1]", "cores: []", 1))
}

// Hosts builds n hosts (afxdp.NewHosts) with interfaces of the given MTU
// (0: 1500), skipping the test (saying why) where AF_XDP over veth cannot
// run, and removes them (checking that they went) when the test ends.
func Hosts(t *testing.T, n, mtu int) *afxdp.Hosts {
	t.Helper()
	SkipUnlessPrivileged(t)
	hs, err := afxdp.NewHosts(n, mtu)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := hs.Close(); err != nil {
			t.Error(err)
		}
	})
	return hs
}
