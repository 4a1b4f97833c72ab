package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// The netlink monitor counts, from outside the daemon, the netlink requests
// every program in a namespace sends to the kernel: an nlmon link in the
// namespace copies each netlink message to packet sockets, and a packet
// socket on it sees every message with its protocol. Every copy arrives as
// an outgoing packet whichever way it went; requests are the messages with
// NLM_F_REQUEST (the kernel's answers and notifications have none). It is how "one change
// costs its minimal operations" and "an idle resync writes nothing" are
// checked without trusting the daemon's own count. Capturing costs the
// kernel a copy per message, so no timed run has a monitor.

// Counts are netlink requests by subsystem and direction ("ipvs write").
type Counts map[string]int

// Sub returns c - o.
func (c Counts) Sub(o Counts) Counts {
	out := Counts{}
	for k, v := range c {
		if d := v - o[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// Writes sums the write requests of the subsystems ipvs-proxy counts as
// messages (IPVS, addresses and the link, ipset); rules are counted apart.
func (c Counts) Writes() int {
	return c["ipvs write"] + c["address write"] + c["link write"] + c["ipset write"]
}

// String lists the non-zero counts, sorted.
func (c Counts) String() string {
	var parts []string
	for k, v := range c {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// monitor captures one namespace's netlink requests.
type monitor struct {
	ns         string
	fd         int
	ipvsFamily uint16
	mu         sync.Mutex
	counts     Counts
	marks      chan uint32
	done       chan struct{}
	stopping   atomic.Bool
	markSeq    uint32
}

const (
	nlmonLink     = "nlmon0"
	monitorMarker = 0x6d6f6e00
)

// startMonitor adds an nlmon link to namespace ns and starts counting.
func startMonitor(ns string) (*monitor, error) {
	fam, err := netlink.GenlFamilyGet("IPVS")
	if err != nil {
		return nil, err
	}
	if _, err := run(ns, framework.IPBin, "link", "add", nlmonLink, "type", "nlmon"); err != nil {
		return nil, err
	}
	if _, err := run(ns, framework.IPBin, "link", "set", nlmonLink, "up"); err != nil {
		return nil, err
	}
	m := &monitor{ns: ns, ipvsFamily: fam.ID, counts: Counts{}, marks: make(chan uint32, 1), done: make(chan struct{})}
	err = framework.InNamespace(ns, func() error {
		iface, err := net.InterfaceByName(nlmonLink)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		m.fd = fd
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 256<<20); err != nil {
			return err
		}
		// a blocked read does not see close: it wakes up to look at stopping
		tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: iface.Index})
	})
	if err != nil {
		return nil, fmt.Errorf("netlink monitor in %s: %w", ns, err)
	}
	go m.read()
	return m, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// read counts what arrives until the socket is closed.
func (m *monitor) read() {
	defer close(m.done)
	buf := make([]byte, 8<<20)
	for {
		if m.stopping.Load() {
			return
		}
		n, from, err := unix.Recvfrom(m.fd, buf, 0)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok {
			m.count(int(htons(ll.Protocol)), buf[:n])
		}
	}
}

// count classifies the requests of one captured datagram.
func (m *monitor) count(proto int, b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return
		}
		typ, seq := binary.NativeEndian.Uint16(b[4:6]), binary.NativeEndian.Uint32(b[8:12])
		request := binary.NativeEndian.Uint16(b[6:8])&unix.NLM_F_REQUEST != 0
		switch {
		case !request:
		case proto == unix.NETLINK_ROUTE && typ == unix.NLMSG_NOOP && seq&^0xff == monitorMarker:
			select {
			case m.marks <- seq:
			default:
			}
		default:
			if k := m.classify(proto, typ, b[unix.NLMSG_HDRLEN:l]); k != "" {
				m.counts[k]++
			}
		}
		b = b[(l+3)&^3:]
	}
}

// classify names a request: its subsystem and whether it writes.
func (m *monitor) classify(proto int, typ uint16, data []byte) string {
	switch proto {
	case unix.NETLINK_ROUTE:
		switch typ {
		case unix.RTM_NEWADDR, unix.RTM_DELADDR:
			return "address write"
		case unix.RTM_NEWLINK, unix.RTM_DELLINK, unix.RTM_SETLINK:
			return "link write"
		}
		return "route read"
	case unix.NETLINK_GENERIC:
		if typ != m.ipvsFamily || len(data) == 0 {
			return "genl other"
		}
		switch data[0] { // IPVS_CMD_*: the NEW/SET/DEL ones, SET_CONFIG, ZERO, FLUSH
		case 1, 2, 3, 5, 6, 7, 9, 10, 12, 14, 16, 17:
			return "ipvs write"
		}
		return "ipvs read"
	case unix.NETLINK_NETFILTER:
		subsys, cmd := typ>>8, typ&0xff
		switch subsys {
		case unix.NFNL_SUBSYS_IPSET:
			switch cmd { // CREATE DESTROY FLUSH RENAME SWAP ADD DEL
			case 2, 3, 4, 5, 6, 9, 10:
				return "ipset write"
			}
			return "ipset read"
		case unix.NFNL_SUBSYS_NFTABLES:
			switch cmd { // the NFT_MSG_GET* and GETGEN
			case 1, 4, 7, 10, 13, 16, 19, 21, 23, 25:
				return "nftables read"
			}
			return "nftables write"
		case 0: // batch begin and end
			return ""
		}
		return "netfilter other"
	}
	return "other"
}

// Counts returns the counts so far: every request sent before the call is
// in them (a marker request is sent and waited for).
func (m *monitor) Counts() Counts {
	m.markSeq++
	seq := monitorMarker | m.markSeq&0xff
	_ = framework.InNamespace(m.ns, func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		msg := make([]byte, unix.NLMSG_HDRLEN)
		binary.NativeEndian.PutUint32(msg[0:4], unix.NLMSG_HDRLEN)
		binary.NativeEndian.PutUint16(msg[4:6], unix.NLMSG_NOOP)
		binary.NativeEndian.PutUint16(msg[6:8], unix.NLM_F_REQUEST)
		binary.NativeEndian.PutUint32(msg[8:12], seq)
		return unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	})
	deadline := time.After(10 * time.Second)
wait:
	for {
		select {
		case got := <-m.marks:
			if got == seq {
				break wait
			}
		case <-deadline:
			break wait
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := Counts{}
	for k, v := range m.counts {
		out[k] = v
	}
	return out
}

// stop closes the socket and removes the link.
func (m *monitor) stop() {
	m.stopping.Store(true)
	<-m.done
	_ = unix.Close(m.fd)
	_, _ = run(m.ns, framework.IPBin, "link", "del", nlmonLink)
}
