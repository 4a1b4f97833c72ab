// Package nstest gives privileged tests (build tag privileged) a private
// network namespace: TestMain re-executes the test binary with
// CLONE_NEWNET, so every test in the package starts from an empty
// namespace (only lo, down) and nothing leaks into the host's.
package nstest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// envInNamespace marks the re-executed test binary.
const envInNamespace = "IPVS_PROXY_TEST_IN_NETNS"

// Main is the TestMain of a privileged test package:
//
//	func TestMain(m *testing.M) { nstest.Main(m) }
//
// It must run as root (sudo go test -tags privileged ./internal/kernel/...).
func Main(m *testing.M) {
	if os.Getenv(envInNamespace) != "" {
		os.Exit(m.Run())
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "privileged tests need root: sudo go test -tags privileged ./internal/kernel/...")
		os.Exit(2)
	}
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Env = append(os.Environ(), envInNamespace+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNET}
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		os.Exit(0)
	case errors.As(err, &exit):
		os.Exit(exit.ExitCode())
	default:
		fmt.Fprintf(os.Stderr, "re-execute the tests in a new network namespace: %v\n", err)
		os.Exit(2)
	}
}
