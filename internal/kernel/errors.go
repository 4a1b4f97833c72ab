package kernel

import (
	"errors"
	"syscall"
)

// ipset reports its own error numbers above 4096 (linux/netfilter/ipset/ip_set.h).
const (
	// ErrIPSetExist: adding a member that is present, or deleting one that is absent.
	ErrIPSetExist = syscall.Errno(4103)
	// ErrIPSetBusy: destroying a set that an iptables rule still uses.
	ErrIPSetBusy = syscall.Errno(4100)
)

// AlreadyExists reports whether an add failed because the object is present.
func AlreadyExists(err error) bool {
	return errors.Is(err, syscall.EEXIST) || errors.Is(err, ErrIPSetExist)
}

// AlreadyGone reports whether a delete failed because the object is absent:
// deleting something already gone counts as done.
func AlreadyGone(err error) bool {
	for _, e := range []error{syscall.ENOENT, syscall.ESRCH, syscall.EADDRNOTAVAIL, syscall.ENODEV, ErrIPSetExist} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
