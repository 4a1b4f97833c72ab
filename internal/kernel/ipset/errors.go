package ipset

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/nlbatch"
	"golang.org/x/sys/unix"
)

// Errno is an ipset-specific kernel error code (IPSET_ERR_*, 4096 and up,
// include/uapi/linux/netfilter/ipset/ip_set.h). The kernel also answers with
// plain errnos, which stay syscall.Errno: ENOENT for a missing set, EEXIST
// when creating a set that exists.
//
// errors.Is(err, ErrExist) tells "already a member" (add) and "not a member"
// (del) apart from other failures. An Errno also matches the syscall.Errno of
// the same number, and ErrBusy matches unix.EBUSY, so callers that only know
// errnos work too.
type Errno uint32

// The ipset error codes ipvs-proxy can meet.
const (
	ErrProtocol      Errno = 4097 // IPSET_ERR_PROTOCOL: malformed or unsupported request
	ErrFindType      Errno = 4098 // IPSET_ERR_FIND_TYPE: no such set type or revision
	ErrMaxSets       Errno = 4099 // IPSET_ERR_MAX_SETS
	ErrBusy          Errno = 4100 // IPSET_ERR_BUSY: the set is referenced by a rule
	ErrTypeMismatch  Errno = 4102 // IPSET_ERR_TYPE_MISMATCH
	ErrExist         Errno = 4103 // IPSET_ERR_EXIST: already added (add) or not added (del)
	ErrInvalidCIDR   Errno = 4104 // IPSET_ERR_INVALID_CIDR
	ErrInvalidFamily Errno = 4106 // IPSET_ERR_INVALID_FAMILY
	ErrIPAddrIPv4    Errno = 4109 // IPSET_ERR_IPADDR_IPV4: an IPv4 address was expected
	ErrIPAddrIPv6    Errno = 4110 // IPSET_ERR_IPADDR_IPV6: an IPv6 address was expected
	// ErrTypeSpecific is the first type-specific code: "hash is full" for
	// hash types, "out of range" for bitmap types.
	ErrTypeSpecific Errno = 4352
	// ErrInvalidProto and ErrMissingProto are hash:*port* type-specific codes.
	ErrInvalidProto Errno = 4354
	ErrMissingProto Errno = 4355
)

var errnoText = map[Errno]string{
	ErrProtocol:      "ipset protocol error: the kernel does not understand the request",
	ErrFindType:      "set type or revision not supported by the kernel",
	ErrMaxSets:       "the kernel's maximum number of sets is reached",
	ErrBusy:          "the set is in use by a rule or another set",
	ErrTypeMismatch:  "the set exists with another type",
	ErrExist:         "element already added (add) or not added (del)",
	ErrInvalidCIDR:   "invalid CIDR",
	ErrInvalidFamily: "invalid family",
	ErrIPAddrIPv4:    "an IPv4 address was expected",
	ErrIPAddrIPv6:    "an IPv6 address was expected",
	ErrTypeSpecific:  "the set is full, or the element is out of its range",
	ErrInvalidProto:  "invalid protocol",
	ErrMissingProto:  "protocol missing",
}

// Error names the code as the ipset tool would explain it.
func (e Errno) Error() string {
	if t, ok := errnoText[e]; ok {
		return fmt.Sprintf("ipset: %s (error %d)", t, uint32(e))
	}
	return fmt.Sprintf("ipset: kernel error %d", uint32(e))
}

// Is matches the syscall.Errno of the same number, and unix.EBUSY for ErrBusy.
func (e Errno) Is(target error) bool {
	t, ok := target.(syscall.Errno)
	if !ok {
		return false
	}
	return uint32(t) == uint32(e) || (e == ErrBusy && t == unix.EBUSY)
}

// kernelError turns an ipset-private errno from nlbatch into an Errno and
// leaves every other error as it is.
func kernelError(err error) error {
	var errno syscall.Errno
	if err == nil || !errors.As(err, &errno) || errno < 4096 {
		return err
	}
	var ext *nlbatch.Error
	if errors.As(err, &ext) {
		return fmt.Errorf("%w: %s", Errno(errno), ext.Msg)
	}
	return Errno(errno)
}
