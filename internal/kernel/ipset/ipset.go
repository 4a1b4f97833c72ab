// Package ipset is the kernel's ipsets over netfilter netlink: the real
// implementation of kernel.IPSet.
//
// Members are added and removed pipelined through nlbatch, thousands per
// sendmsg, with the messages the ipset tool sends (the attribute layout of
// vishvananda/netlink's Ipset* API, whose constants it uses). Listing parses
// the dump itself rather than calling netlink.IpsetListAll, which returns
// one result per netlink message instead of per set (a large set spans
// several), logs through the standard logger for every attribute it does not
// know (foreign sets with counters, skbinfo or nomatch members), and panics
// on an error that is not a bare errno.
package ipset

import (
	"errors"
	"fmt"
	"sync"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/nlbatch"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// errNotOpen is returned by every method before Open.
var errNotOpen = errors.New("ipset: used before Open")

// dumpAttempts bounds the retries of a dump the kernel flagged interrupted.
const dumpAttempts = 3

var _ kernel.IPSet = (*IPSet)(nil)

// Config says where and how to program ipsets.
type Config struct {
	// NetNSPath, when set, is the network namespace whose sets to program;
	// otherwise the caller's at Open.
	NetNSPath string
	// Window is the most requests per sendmsg (nlbatch.DefaultWindow if 0).
	Window int
}

// IPSet programs the ipsets of one network namespace. It is safe for
// concurrent use.
type IPSet struct {
	cfg  Config
	mu   sync.Mutex
	sock *nlbatch.Socket
}

// New returns an IPSet for cfg; it does no I/O until Open.
func New(cfg Config) *IPSet { return &IPSet{cfg: cfg} }

// Open opens the netfilter netlink socket.
func (s *IPSet) Open() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sock != nil {
		return nil
	}
	sock, err := nlbatch.Open(nlbatch.Config{Protocol: unix.NETLINK_NETFILTER, NetNSPath: s.cfg.NetNSPath, Window: s.cfg.Window})
	if err != nil {
		return fmt.Errorf("open netfilter netlink socket: %w", err)
	}
	s.sock = sock
	return nil
}

// Close closes the socket; the IPSet can be opened again.
func (s *IPSet) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sock == nil {
		return nil
	}
	err := s.sock.Close()
	s.sock = nil
	return err
}

func (s *IPSet) socket() (*nlbatch.Socket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sock == nil {
		return nil, errNotOpen
	}
	return s.sock, nil
}

// List returns every set in the namespace with its members, in one dump.
// Members are mapped for the five types ipvs-proxy uses; sets of other types
// are listed with their type and no members. bitmap:port sets have no family
// (Family 0). Set comments are not kept by the kernel and come back empty.
//
// Equivalent to: ipset list
func (s *IPSet) List() (map[string]*state.Set, error) {
	sock, err := s.socket()
	if err != nil {
		return nil, err
	}
	req := newRequest(nl.IPSET_CMD_LIST, unix.NLM_F_DUMP, unix.AF_INET).Bytes()
	var l lister
	for range dumpAttempts {
		l = lister{sets: map[string]*state.Set{}}
		err = sock.Query(req, func(m nlbatch.Msg) error { return l.add(m.Data) })
		if !errors.Is(err, nlbatch.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list ipsets: %w", kernelError(err))
	}
	return l.sets, nil
}

// Create creates an empty set: hash types with the spec's family, hash size
// 1024 and room for 1048576 members; bitmap:port for ports 0-65535. EEXIST if
// a set of that name exists. spec.Comment is not sent: the kernel has no set
// comments.
//
// Equivalent to: ipset create NAME hash:ip,port family inet hashsize 1024 maxelem 1048576;
// ipset create NAME bitmap:port range 0-65535
func (s *IPSet) Create(spec state.SetSpec) error {
	req, err := encodeCreate(spec)
	if err != nil {
		return err
	}
	return s.one(req)
}

// Destroy destroys a set. ENOENT if it does not exist; ErrBusy (which also
// matches unix.EBUSY) while a rule or another set references it.
//
// Equivalent to: ipset destroy NAME
func (s *IPSet) Destroy(name string) error {
	req, err := encodeDestroy(name)
	if err != nil {
		return err
	}
	return s.one(req)
}

func (s *IPSet) one(req []byte) error {
	sock, err := s.socket()
	if err != nil {
		return err
	}
	return kernelError(sock.Exec([][]byte{req})[0])
}

// Exec adds and removes members in order, pipelined, and returns one error
// per op: ErrExist for adding a member twice or deleting an absent one,
// ENOENT for a missing set, ErrIPAddrIPv4/ErrIPAddrIPv6 for a member of the
// wrong family.
//
// Equivalent to, per op: ipset add|del NAME MEMBER
func (s *IPSet) Exec(ops []kernel.SetOp) []error {
	errs := make([]error, len(ops))
	sock, err := s.socket()
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	reqs := make([][]byte, 0, len(ops))
	idx := make([]int, 0, len(ops))
	for i, op := range ops {
		req, err := encodeEntry(op.Add, op.Replace, op.Set, op.Entry)
		if err != nil {
			errs[i] = err
			continue
		}
		reqs = append(reqs, req)
		idx = append(idx, i)
	}
	for k, err := range sock.Exec(reqs) {
		errs[idx[k]] = kernelError(err)
	}
	return errs
}
