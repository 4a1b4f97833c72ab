package cluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// EnableEnv must be set (to 1) for the cluster scenarios to run; scripts/cluster.sh sets it. They need root,
// user-mode Linux and the binaries the script builds.
const EnableEnv = "IPVS_PROXY_CLUSTER"

// inNetnsEnv marks the process that Main re-executed inside its own network namespace.
const inNetnsEnv = "IPVS_PROXY_CLUSTER_NETNS"

// Main is the TestMain of a package of cluster scenarios. Without EnableEnv it runs the tests, which then skip.
// With it, it re-executes the test binary in a new network namespace (unshare --net), where the cluster's
// link, addresses and control plane live: nothing is added to the machine's own namespace, two runs on one
// machine never see each other, and everything is gone when the binary exits.
func Main(m *testing.M) {
	if os.Getenv(EnableEnv) == "" || os.Getenv(inNetnsEnv) != "" {
		if os.Getenv(inNetnsEnv) != "" {
			if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "cluster: ip link set lo up: %v: %s\n", err, out)
				os.Exit(1)
			}
		}
		os.Exit(m.Run())
	}
	if os.Getuid() != 0 {
		fmt.Fprintln(os.Stderr, "cluster: the scenarios need root (network namespace, tap device)")
		os.Exit(1)
	}
	cmd := exec.Command("unshare", append([]string{"--net", "--"}, os.Args...)...)
	cmd.Env = append(os.Environ(), inNetnsEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			os.Exit(ee.ExitCode())
		}
		fmt.Fprintf(os.Stderr, "cluster: unshare --net %s: %v\n", strings.Join(os.Args, " "), err)
		os.Exit(1)
	}
	os.Exit(0)
}

// skipUnlessEnabled skips a scenario outside scripts/cluster.sh.
func skipUnlessEnabled(t testing.TB) {
	t.Helper()
	if os.Getenv(EnableEnv) == "" || os.Getenv(inNetnsEnv) == "" {
		t.Skipf("cluster scenario: run it with scripts/cluster.sh (make cluster-e2e), which sets %s=1", EnableEnv)
	}
}

// run runs a command of the host (inside the cluster's network namespace) and returns its output.
func run(argv ...string) (string, error) {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, out)
	}
	return string(out), nil
}

// setupLink makes the bridge the nodes' tap devices join, with the host's address of the cluster network, and
// the route to every node's pods.
func setupLink(bridge, hostAddr string) error {
	steps := [][]string{
		{"ip", "link", "add", bridge, "type", "bridge"},
		{"ip", "addr", "add", hostAddr, "dev", bridge},
		{"ip", "link", "set", bridge, "up"},
		{"sysctl", "-qw", "net.ipv4.ip_forward=1"},
	}
	for _, s := range steps {
		if _, err := run(s...); err != nil {
			return err
		}
	}
	return nil
}

// addTap makes a tap device for one node, joined to the bridge, and routes the node's pod CIDR to it.
func addTap(tap, bridge, podCIDR, nodeIP string) error {
	steps := [][]string{
		{"ip", "tuntap", "add", "dev", tap, "mode", "tap"},
		{"ip", "link", "set", tap, "master", bridge},
		{"ip", "link", "set", tap, "up"},
		{"ip", "route", "replace", podCIDR, "via", nodeIP},
	}
	for _, s := range steps {
		if _, err := run(s...); err != nil {
			return err
		}
	}
	return nil
}
