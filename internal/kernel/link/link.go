// Package link is the dummy link kube-ipvs0, which holds every address IPVS
// serves so that the kernel accepts packets to them as local, and the node's
// own addresses: the real implementation of kernel.Link.
//
// Links are read and created with vishvananda/netlink; addresses are added
// and removed pipelined through nlbatch (RTM_NEWADDR/RTM_DELADDR), thousands
// per sendmsg.
package link

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/nlbatch"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultName is the link kube-proxy's ipvs mode uses, and so ipvs-proxy.
const DefaultName = "kube-ipvs0"

// dumpAttempts bounds the retries of a dump the kernel flagged interrupted.
const dumpAttempts = 3

// errNotOpen is returned by every method before Open.
var errNotOpen = errors.New("link: used before Open")

var _ kernel.Link = (*Link)(nil)

// Config says which link to manage, and where.
type Config struct {
	// Name is the dummy link's name (DefaultName if empty).
	Name string
	// NetNSPath, when set, is the network namespace to work in; otherwise
	// the caller's at Open.
	NetNSPath string
	// Window is the most address changes per sendmsg (nlbatch.DefaultWindow if 0).
	Window int
}

// Link manages the dummy link and its addresses in one network namespace. It
// is safe for concurrent use.
type Link struct {
	name, nsPath string
	window       int
	mu           sync.Mutex
	h            *netlink.Handle
	sock         *nlbatch.Socket
}

// New returns a Link for cfg; it does no I/O until Open.
func New(cfg Config) *Link {
	name := cfg.Name
	if name == "" {
		name = DefaultName
	}
	return &Link{name: name, nsPath: cfg.NetNSPath, window: cfg.Window}
}

// Open opens the route netlink sockets.
func (l *Link) Open() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.h != nil {
		return nil
	}
	var h *netlink.Handle
	var err error
	if l.nsPath == "" {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	} else {
		var ns netns.NsHandle
		if ns, err = netns.GetFromPath(l.nsPath); err != nil {
			return fmt.Errorf("open network namespace %s: %w", l.nsPath, err)
		}
		defer ns.Close()
		h, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	}
	if err != nil {
		return fmt.Errorf("open route netlink socket: %w", err)
	}
	sock, err := nlbatch.Open(nlbatch.Config{Protocol: unix.NETLINK_ROUTE, NetNSPath: l.nsPath, Window: l.window})
	if err != nil {
		h.Close()
		return fmt.Errorf("open route netlink socket: %w", err)
	}
	l.h, l.sock = h, sock
	return nil
}

// Close closes the sockets; the Link can be opened again.
func (l *Link) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.h == nil {
		return nil
	}
	l.h.Close()
	err := l.sock.Close()
	l.h, l.sock = nil, nil
	return err
}

func (l *Link) handles() (*netlink.Handle, *nlbatch.Socket, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.h == nil {
		return nil, nil, errNotOpen
	}
	return l.h, l.sock, nil
}

// lookup returns the link, or nil if there is none of that name.
func (l *Link) lookup(h *netlink.Handle) (netlink.Link, error) {
	link, err := h.LinkByName(l.name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up link %s: %w", l.name, err)
	}
	return link, nil
}

// EnsureLink creates the dummy link, left down, unless it exists. A link of
// that name and another type is an error: it is not ours to change.
//
// Equivalent to: ip link add kube-ipvs0 type dummy
func (l *Link) EnsureLink() error {
	h, _, err := l.handles()
	if err != nil {
		return err
	}
	link, err := l.lookup(h)
	if err != nil || link != nil {
		return l.checkDummy(link, err)
	}
	err = h.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: l.name}})
	switch {
	case errors.Is(err, unix.EEXIST):
		// Created meanwhile, by us or someone else: is it a dummy?
		return l.checkDummy(l.lookup(h))
	case errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("create link %s: the kernel has no dummy link type: load it with `modprobe dummy`: %w", l.name, err)
	case err != nil:
		return fmt.Errorf("create link %s: %w", l.name, err)
	}
	return nil
}

func (l *Link) checkDummy(link netlink.Link, err error) error {
	if err != nil || link == nil {
		return err
	}
	if t := link.Type(); t != "dummy" {
		return fmt.Errorf("link %s exists with type %s, not dummy: it is not ipvs-proxy's; remove it (ip link del %s) or configure another name",
			l.name, t, l.name)
	}
	return nil
}

// DeleteLink removes the dummy link and with it its addresses. A missing link
// is success; a link of that name and another type is left alone, with an
// error.
//
// Equivalent to: ip link del kube-ipvs0
func (l *Link) DeleteLink() error {
	h, _, err := l.handles()
	if err != nil {
		return err
	}
	link, err := l.lookup(h)
	if err != nil || link == nil {
		return err
	}
	if err := l.checkDummy(link, nil); err != nil {
		return err
	}
	if err := h.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %s: %w", l.name, err)
	}
	return nil
}

// Addresses reports whether the link exists and lists its addresses, sorted.
//
// Equivalent to: ip -o addr show dev kube-ipvs0
func (l *Link) Addresses() (bool, []netip.Addr, error) {
	h, _, err := l.handles()
	if err != nil {
		return false, nil, err
	}
	link, err := l.lookup(h)
	if err != nil || link == nil {
		return false, nil, err
	}
	list, err := addrList(h, link)
	if err != nil {
		return true, nil, fmt.Errorf("list addresses of %s: %w", l.name, err)
	}
	out := make([]netip.Addr, 0, len(list))
	for _, a := range list {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return true, slices.Compact(out), nil
}

// NodeAddresses lists the node's own addresses, sorted: those of every link
// except the dummy one, without IPv6 link-local addresses and ::1. 127.0.0.1
// is kept: NodePorts are served on localhost.
//
// Equivalent to: ip -o addr show | grep -v kube-ipvs0 | grep -v 'fe80::\|::1/128'
func (l *Link) NodeAddresses() ([]netip.Addr, error) {
	h, _, err := l.handles()
	if err != nil {
		return nil, err
	}
	own := -1
	link, err := l.lookup(h)
	if err != nil {
		return nil, err
	}
	if link != nil {
		own = link.Attrs().Index
	}
	list, err := addrList(h, nil)
	if err != nil {
		return nil, fmt.Errorf("list the node's addresses: %w", err)
	}
	var out []netip.Addr
	for _, a := range list {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || a.LinkIndex == own {
			continue
		}
		ip = ip.Unmap()
		if ip.Is6() && (ip.IsLinkLocalUnicast() || ip.IsLoopback()) {
			continue
		}
		out = append(out, ip)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out), nil
}

// addrList dumps the addresses of link (all links if nil), retrying a dump
// the kernel flagged interrupted.
func addrList(h *netlink.Handle, link netlink.Link) ([]netlink.Addr, error) {
	var list []netlink.Addr
	var err error
	for range dumpAttempts {
		if list, err = h.AddrList(link, netlink.FAMILY_ALL); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return list, err
}
