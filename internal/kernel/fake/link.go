package fake

import (
	"net/netip"
	"slices"
	"sync"
	"syscall"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
)

// Link is an in-memory kube-ipvs0 plus the node's own addresses.
type Link struct {
	mu     sync.Mutex
	exists bool
	addrs  map[netip.Addr]bool
	// Node holds the node's own addresses (other links).
	Node   []netip.Addr
	writes int
}

var _ kernel.Link = (*Link)(nil)

// NewLink returns a node with the given addresses and no kube-ipvs0.
func NewLink(node ...netip.Addr) *Link { return &Link{addrs: map[netip.Addr]bool{}, Node: node} }

// Addresses implements kernel.Link.
func (f *Link) Addresses() (bool, []netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []netip.Addr
	for a := range f.addrs {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return f.exists, out, nil
}

// EnsureLink implements kernel.Link.
func (f *Link) EnsureLink() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	f.exists = true
	return nil
}

// DeleteLink implements kernel.Link.
func (f *Link) DeleteLink() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	f.exists = false
	f.addrs = map[netip.Addr]bool{}
	return nil
}

// Exec implements kernel.Link.
func (f *Link) Exec(ops []kernel.AddrOp) []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	errs := make([]error, len(ops))
	for i, op := range ops {
		f.writes++
		switch {
		case !f.exists:
			errs[i] = syscall.ENODEV
		case op.Add && f.addrs[op.Addr]:
			errs[i] = syscall.EEXIST
		case op.Add:
			f.addrs[op.Addr] = true
		case !f.addrs[op.Addr]:
			errs[i] = syscall.EADDRNOTAVAIL
		default:
			delete(f.addrs, op.Addr)
		}
	}
	return errs
}

// NodeAddresses implements kernel.Link.
func (f *Link) NodeAddresses() ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.Node), nil
}

// SetNodeAddresses changes the node's own addresses, as an interface change would.
func (f *Link) SetNodeAddresses(addrs ...netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Node = addrs
}

// Writes returns how many write operations were executed.
func (f *Link) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}
