// Package fault wraps kernel interfaces to make a share of write operations
// fail, and named reads fail while asked to, for tests of retry, backoff,
// convergence and of keeping live state through a failed read (and, behind
// hidden flags, for the fault scenarios in the VM).
package fault

import (
	"errors"
	"math/rand"
	"net/netip"
	"sync"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// ErrInjected is the error injected writes fail with.
var ErrInjected = errors.New("injected fault")

// Injector decides which writes and reads fail. Its rate and failing reads
// can change while in use.
type Injector struct {
	mu       sync.Mutex
	rate     float64
	rnd      *rand.Rand
	injected int
	reads    map[string]bool
}

// The reads an Injector can make fail.
const (
	// ReadNodeAddresses is kernel.Link.NodeAddresses.
	ReadNodeAddresses = "node-addresses"
)

// Reads lists the names SetFailingReads accepts.
var Reads = []string{ReadNodeAddresses}

// SetFailingReads makes the named reads fail until called again (no names: none fail).
func (i *Injector) SetFailingReads(names ...string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.reads = map[string]bool{}
	for _, n := range names {
		i.reads[n] = true
	}
}

// readErr returns ErrInjected while the named read is made to fail.
func (i *Injector) readErr(name string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.reads[name] {
		i.injected++
		return ErrInjected
	}
	return nil
}

// NewInjector fails the given share (0..1) of writes, deterministically for a seed.
func NewInjector(rate float64, seed int64) *Injector {
	return &Injector{rate: rate, rnd: rand.New(rand.NewSource(seed))}
}

// SetRate changes the share of failing writes (0 stops failures).
func (i *Injector) SetRate(rate float64) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.rate = rate
}

// Rate returns the current failure rate.
func (i *Injector) Rate() float64 {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.rate
}

// Injected returns how many writes were made to fail.
func (i *Injector) Injected() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.injected
}

func (i *Injector) fail() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.rate > 0 && i.rnd.Float64() < i.rate {
		i.injected++
		return true
	}
	return false
}

func (i *Injector) err() error {
	if i.fail() {
		return ErrInjected
	}
	return nil
}

// Wrap returns k with every write interface wrapped; reads pass through
// unless SetFailingReads names them.
func Wrap(k kernel.Kernel, i *Injector) kernel.Kernel {
	return kernel.Kernel{
		IPVS: &ipvs{k.IPVS, i}, Link: &link{k.Link, i}, IPSet: &ipset{k.IPSet, i},
		IPTables: &iptables{k.IPTables, i}, Sysctl: &sysctl{k.Sysctl, i}, Conntrack: &conntrack{k.Conntrack, i},
		NFTables: wrapNFTables(k.NFTables, i),
	}
}

// batch runs the ops that are not failed through exec, keeping their order.
func batch[T any](i *Injector, ops []T, exec func([]T) []error) []error {
	errs := make([]error, len(ops))
	var pass []T
	var idx []int
	for n, op := range ops {
		if i.fail() {
			errs[n] = ErrInjected
			continue
		}
		pass, idx = append(pass, op), append(idx, n)
	}
	if len(pass) > 0 {
		for n, err := range exec(pass) {
			errs[idx[n]] = err
		}
	}
	return errs
}

type ipvs struct {
	kernel.IPVS
	i *Injector
}

func (w *ipvs) Exec(ops []kernel.IPVSOp) []error { return batch(w.i, ops, w.IPVS.Exec) }
func (w *ipvs) SetTimeouts(t state.Timeouts) error {
	if err := w.i.err(); err != nil {
		return err
	}
	return w.IPVS.SetTimeouts(t)
}

type link struct {
	kernel.Link
	i *Injector
}

func (w *link) Exec(ops []kernel.AddrOp) []error { return batch(w.i, ops, w.Link.Exec) }
func (w *link) EnsureLink() error {
	if err := w.i.err(); err != nil {
		return err
	}
	return w.Link.EnsureLink()
}
func (w *link) NodeAddresses() ([]netip.Addr, error) {
	if err := w.i.readErr(ReadNodeAddresses); err != nil {
		return nil, err
	}
	return w.Link.NodeAddresses()
}

type ipset struct {
	kernel.IPSet
	i *Injector
}

func (w *ipset) Exec(ops []kernel.SetOp) []error { return batch(w.i, ops, w.IPSet.Exec) }
func (w *ipset) Create(spec state.SetSpec) error {
	if err := w.i.err(); err != nil {
		return err
	}
	return w.IPSet.Create(spec)
}

type iptables struct {
	kernel.IPTables
	i *Injector
}

func (w *iptables) Restore(f state.Family, input string) error {
	if err := w.i.err(); err != nil {
		return err
	}
	return w.IPTables.Restore(f, input)
}

type sysctl struct {
	kernel.Sysctl
	i *Injector
}

func (w *sysctl) Set(key, value string) error {
	if err := w.i.err(); err != nil {
		return err
	}
	return w.Sysctl.Set(key, value)
}

type conntrack struct {
	kernel.Conntrack
	i *Injector
}

func (w *conntrack) Flush(f []kernel.ConntrackFilter) error {
	if err := w.i.err(); err != nil {
		return err
	}
	return w.Conntrack.Flush(f)
}

type nftables struct {
	kernel.NFTables
	i *Injector
}

// wrapNFTables fails whole transactions: nft applies all of one or none.
func wrapNFTables(n kernel.NFTables, i *Injector) kernel.NFTables {
	if n == nil {
		return nil
	}
	return &nftables{n, i}
}

func (w *nftables) Run(f state.Family, ops []kernel.NFTOp) error {
	if err := w.i.err(); err != nil {
		return err
	}
	return w.NFTables.Run(f, ops)
}
