package link

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/nlbatch"
	"golang.org/x/sys/unix"
)

// errEncode is wrapped by the error of an op that could not be encoded; it is
// never sent.
var errEncode = errors.New("cannot encode address request")

// Exec adds and removes addresses of the dummy link as /32 or /128, in order,
// pipelined, and returns one error per op: EEXIST for adding a present
// address, EADDRNOTAVAIL for removing an absent one, and ENODEV for every op
// when the link does not exist. IPv6 addresses are added without duplicate
// address detection (the link is down, and they are service addresses).
//
// Equivalent to, per op: ip addr add|del ADDR/32 dev kube-ipvs0
func (l *Link) Exec(ops []kernel.AddrOp) []error {
	errs := make([]error, len(ops))
	if len(ops) == 0 {
		return errs
	}
	fail := func(err error) []error {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	h, sock, err := l.handles()
	if err != nil {
		return fail(err)
	}
	link, err := l.lookup(h)
	if err != nil {
		return fail(err)
	}
	if link == nil {
		return fail(fmt.Errorf("link %s does not exist: %w", l.name, unix.ENODEV))
	}
	index := uint32(link.Attrs().Index)

	reqs := make([][]byte, 0, len(ops))
	idx := make([]int, 0, len(ops))
	for i, op := range ops {
		req, err := encodeAddr(op, index)
		if err != nil {
			errs[i] = err
			continue
		}
		reqs = append(reqs, req)
		idx = append(idx, i)
	}
	for k, err := range sock.Exec(reqs) {
		errs[idx[k]] = err
	}
	return errs
}

// EncodeAddr encodes an address op as Exec sends it to the link with the
// given index (for the benchmark's floor loader).
func EncodeAddr(op kernel.AddrOp, index uint32) ([]byte, error) { return encodeAddr(op, index) }

// encodeAddr encodes RTM_NEWADDR (failing on a present address) or
// RTM_DELADDR for a host prefix on the link with the given index.
func encodeAddr(op kernel.AddrOp, index uint32) ([]byte, error) {
	a := op.Addr.Unmap()
	if !a.IsValid() {
		return nil, fmt.Errorf("%w: no address", errEncode)
	}
	typ, flags := uint16(unix.RTM_DELADDR), uint16(0)
	if op.Add {
		typ, flags = unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL
	}
	// struct ifaddrmsg: family, prefixlen, flags, scope (universe), index.
	family, ifaFlags := uint8(unix.AF_INET), uint8(0)
	if a.Is6() {
		family, ifaFlags = unix.AF_INET6, unix.IFA_F_NODAD
	}
	hdr := []byte{family, uint8(a.BitLen()), ifaFlags, unix.RT_SCOPE_UNIVERSE}
	hdr = binary.NativeEndian.AppendUint32(hdr, index)
	return nlbatch.NewMessage(typ, flags).
		Header(hdr).
		Attr(unix.IFA_LOCAL, a.AsSlice()).
		Attr(unix.IFA_ADDRESS, a.AsSlice()).
		Bytes(), nil
}
