package fake

import (
	"net/netip"
	"sync"
	"syscall"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
)

// Sysctl is an in-memory /proc/sys.
type Sysctl struct {
	mu     sync.Mutex
	values map[string]string
	writes int
}

var _ kernel.Sysctl = (*Sysctl)(nil)

// NewSysctl returns a /proc/sys where every key reads "0".
func NewSysctl() *Sysctl { return &Sysctl{values: map[string]string{}} }

// Get implements kernel.Sysctl.
func (f *Sysctl) Get(key string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.values[key]; ok {
		return v, nil
	}
	return "0", nil
}

// Set implements kernel.Sysctl.
func (f *Sysctl) Set(key, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	if key == "" {
		return syscall.ENOENT
	}
	f.values[key] = value
	return nil
}

// Writes returns how many values were written.
func (f *Sysctl) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

// Conntrack records flushes.
type Conntrack struct {
	mu      sync.Mutex
	Flushed []kernel.ConntrackFilter
	calls   int
}

var _ kernel.Conntrack = (*Conntrack)(nil)

// Flush implements kernel.Conntrack.
func (f *Conntrack) Flush(filters []kernel.ConntrackFilter) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.Flushed = append(f.Flushed, filters...)
	return nil
}

// Writes returns how many flushes were run.
func (f *Conntrack) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Kernel is a complete fake kernel with its parts wired together.
type Kernel struct {
	IPVS      *IPVS
	Link      *Link
	IPSet     *IPSet
	IPTables  *IPTables
	Sysctl    *Sysctl
	Conntrack *Conntrack
	NFTables  *NFTables
}

// New returns a fake kernel for a node with the given addresses.
func New(node ...netip.Addr) *Kernel {
	k := &Kernel{IPVS: NewIPVS(), Link: NewLink(node...), IPSet: NewIPSet(), IPTables: NewIPTables(), Sysctl: NewSysctl(), Conntrack: &Conntrack{}, NFTables: NewNFTables()}
	k.IPSet.InUse = k.IPTables.UsesSet
	k.IPTables.SetExists = func(name string) bool {
		sets, _ := k.IPSet.List()
		_, ok := sets[name]
		return ok
	}
	return k
}

// Interfaces returns the fake as the kernel interfaces.
func (k *Kernel) Interfaces() kernel.Kernel {
	return kernel.Kernel{IPVS: k.IPVS, Link: k.Link, IPSet: k.IPSet, IPTables: k.IPTables, Sysctl: k.Sysctl, Conntrack: k.Conntrack, NFTables: k.NFTables}
}

// Writes returns the total number of write operations across subsystems.
func (k *Kernel) Writes() int {
	return k.IPVS.Writes() + k.Link.Writes() + k.IPSet.Writes() + k.IPTables.Writes() + k.Sysctl.Writes() + k.Conntrack.Writes() + k.NFTables.Writes()
}
