// Package contract is the behaviour every implementation of a kernel
// interface must have, as sequences of operations with the error each one
// must get and what a dump must show afterwards. The same suites run
// against the in-memory fakes in the unit tests (internal/kernel/fake)
// and against the kernel: ipset as root in a private network namespace
// (internal/kernel/ipset's privileged tests), IPVS and the link in the VM
// (e2e/kernel_contract_test.go), since the build machines' kernel has
// neither IPVS nor dummy links. A fake that drifts from the kernel fails
// its unit tests; the whole unit tier trusts the fakes.
package contract

import (
	"errors"

	"strings"
	"syscall"
	"testing"
)

// errno is what an operation must return: nil, an errno, or one of the
// kernel package's predicates (ipset has its own error numbers).
type want struct {
	name string
	ok   func(error) bool
}

var (
	none = want{"nil", func(err error) bool { return err == nil }}
)

func is(e syscall.Errno) want {
	return want{e.Error(), func(err error) bool { return errors.Is(err, e) }}
}

func pred(name string, f func(error) bool) want { return want{name, f} }

// check reports each operation whose error is not the one wanted.
func check(t *testing.T, what string, errs []error, wants []want) {
	t.Helper()
	if len(errs) != len(wants) {
		t.Fatalf("%s: %d results, want %d", what, len(errs), len(wants))
	}
	for i, err := range errs {
		if !wants[i].ok(err) {
			t.Errorf("%s: operation %d: %v, want %s", what, i, err, wants[i].name)
		}
	}
}

// sameLines compares two listings line by line.
func sameLines(t *testing.T, what, got, want string) {
	t.Helper()
	if strings.TrimSpace(got) != strings.TrimSpace(want) {
		t.Errorf("%s:\n%s\nwant:\n%s", what, got, want)
	}
}
