// Package conntrack deletes netfilter conntrack entries over netlink: the
// real implementation of kernel.Conntrack, built on vishvananda/netlink's
// ConntrackDeleteFilters (one table walk matching every filter).
package conntrack

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// errNotOpen is returned by Flush before Open.
var errNotOpen = errors.New("conntrack: used before Open")

var _ kernel.Conntrack = (*Conntrack)(nil)

// Config says whose conntrack table to work on.
type Config struct {
	// NetNSPath, when set, is the network namespace whose table to change;
	// otherwise the caller's at Open.
	NetNSPath string
}

// Conntrack deletes entries of one network namespace's table. It is safe for
// concurrent use.
type Conntrack struct {
	nsPath string
	mu     sync.Mutex
	h      *netlink.Handle
}

// New returns a Conntrack for cfg; it does no I/O until Open.
func New(cfg Config) *Conntrack { return &Conntrack{nsPath: cfg.NetNSPath} }

// Open opens the netfilter netlink socket.
func (c *Conntrack) Open() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h != nil {
		return nil
	}
	var h *netlink.Handle
	var err error
	if c.nsPath == "" {
		h, err = netlink.NewHandle(unix.NETLINK_NETFILTER)
	} else {
		var ns netns.NsHandle
		if ns, err = netns.GetFromPath(c.nsPath); err != nil {
			return fmt.Errorf("open network namespace %s: %w", c.nsPath, err)
		}
		defer ns.Close()
		h, err = netlink.NewHandleAt(ns, unix.NETLINK_NETFILTER)
	}
	if err != nil {
		return fmt.Errorf("open netfilter netlink socket: %w", err)
	}
	c.h = h
	return nil
}

// Close closes the socket; the Conntrack can be opened again.
func (c *Conntrack) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h != nil {
		c.h.Close()
		c.h = nil
	}
	return nil
}

// Flush deletes the entries that match any filter: protocol, original
// destination address and port (any port if 0), and the reply source (the
// real server) when the filter names one. One walk of the table per address family among the
// filters. Entries that expire meanwhile are not an error. An interrupted walk
// deletes what it saw and returns an error wrapping
// netlink.ErrDumpInterrupted, for the caller to retry.
//
// Equivalent to, per filter: conntrack -D -p udp --orig-dst VIP --orig-port-dst PORT [--reply-src RS]
func (c *Conntrack) Flush(filters []kernel.ConntrackFilter) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h == nil {
		return errNotOpen
	}
	byFamily := map[netlink.InetFamily][]netlink.CustomConntrackFilter{}
	for _, f := range filters {
		nf, family, err := toNetlink(f)
		if err != nil {
			return err
		}
		byFamily[family] = append(byFamily[family], nf)
	}
	var errs []error
	for _, family := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		if len(byFamily[family]) == 0 {
			continue
		}
		if _, err := c.h.ConntrackDeleteFilters(netlink.ConntrackTable, family, byFamily[family]...); err != nil {
			errs = append(errs, fmt.Errorf("delete conntrack entries (%s): %w", familyName(family), err))
		}
	}
	return errors.Join(errs...)
}

func familyName(f netlink.InetFamily) string {
	if f == unix.AF_INET6 {
		return "IPv6"
	}
	return "IPv4"
}

// toNetlink translates a filter; a filter without a virtual server address
// would match far too much and is refused.
func toNetlink(f kernel.ConntrackFilter) (*netlink.ConntrackFilter, netlink.InetFamily, error) {
	vip := f.VIP.Unmap()
	if !vip.IsValid() || f.Proto == 0 {
		return nil, 0, fmt.Errorf("conntrack filter %+v: a protocol and a virtual server address are required", f)
	}
	family := netlink.InetFamily(unix.AF_INET)
	if vip.Is6() {
		family = unix.AF_INET6
	}
	nf := &netlink.ConntrackFilter{}
	err := errors.Join(
		nf.AddProtocol(uint8(f.Proto)),
		nf.AddIP(netlink.ConntrackOrigDstIP, net.IP(vip.AsSlice())),
	)
	if f.Port != 0 {
		err = errors.Join(err, nf.AddPort(netlink.ConntrackOrigDstPort, f.Port))
	}
	if rs := f.RS.Unmap(); rs.IsValid() {
		err = errors.Join(err, nf.AddIP(netlink.ConntrackReplySrcIP, net.IP(rs.AsSlice())))
	}
	if err != nil {
		return nil, 0, fmt.Errorf("conntrack filter %+v: %w", f, err)
	}
	return nf, family, nil
}
