package framework

import (
	"fmt"
	"os"
	"testing"
)

// Environment variables that steer the e2e test binary.
const (
	// EnvE2E must be set (to anything) for the scenarios to run; scripts/e2e.sh
	// sets it inside the guest.
	EnvE2E = "IPVS_PROXY_E2E"
	// EnvProxyBin is the path of the ipvs-proxy binary that StartProxy runs.
	EnvProxyBin = "IPVS_PROXY_BIN"
	// EnvArtifacts, when set, is a directory where daemon and backend logs are
	// kept per test (scripts/e2e.sh points it at the 9p share, so the logs
	// survive the guest). Otherwise they go to the test's temporary directory.
	EnvArtifacts = "IPVS_PROXY_E2E_ARTIFACTS"

	// envRole makes a re-executed test binary play a helper role instead of
	// running tests; envRoleName is the helper's name.
	envRole     = "IPVS_PROXY_E2E_ROLE"
	envRoleName = "IPVS_PROXY_E2E_ROLE_NAME"
	// envRoleIPv6 and envRoleSCTP ("true") add IPv6 and SCTP listeners.
	envRoleIPv6 = "IPVS_PROXY_E2E_ROLE_IPV6"
	envRoleSCTP = "IPVS_PROXY_E2E_ROLE_SCTP"
	// envRoleQuiet makes the servers log no request (the benchmark's load).
	envRoleQuiet = "IPVS_PROXY_E2E_ROLE_QUIET"
	roleBackend  = "backend"
)

// PlayRole plays the helper role this process was re-executed for (a
// backend's servers inside its namespace), if any: ok is false when it was
// not re-executed, and otherwise code is its exit status. Main calls it;
// other programs that start backends (the benchmark) call it first thing.
func PlayRole() (code int, ok bool) {
	switch role := os.Getenv(envRole); role {
	case "":
		return 0, false
	case roleBackend:
		return runBackendRole(os.Getenv(envRoleName)), true
	default:
		fmt.Fprintf(os.Stderr, "e2e: unknown helper role %q\n", role)
		return 2, true
	}
}

// Main is the e2e package's TestMain body:
//
//	func TestMain(m *testing.M) { framework.Main(m) }
//
// When the binary was re-executed as a helper (a backend's servers inside its
// namespace) it plays that role and never returns to the tests. Outside the
// guest (EnvE2E unset) it runs no test and exits 0, so `go test ./...` on a
// development machine passes. Inside, it requires root.
func Main(m *testing.M) {
	if code, ok := PlayRole(); ok {
		os.Exit(code)
	}

	if os.Getenv(EnvE2E) == "" {
		fmt.Printf("e2e: %s is not set: skipping all scenarios (they run inside the VM: make e2e)\n", EnvE2E)
		os.Exit(0)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: the scenarios must run as root (inside the VM: make e2e)")
		os.Exit(2)
	}
	os.Exit(m.Run())
}
