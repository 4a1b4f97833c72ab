package cli

import (
	"strings"
	"testing"
)

// TestPlanWithoutNodeAddress: without --node-ip the node serves no IP family,
// so nothing could be planned; plan says what is missing instead of printing
// an empty plan and exiting 0.
func TestPlanWithoutNodeAddress(t *testing.T) {
	code, stdout, stderr := execute(t, "plan", "--manifests", "testdata/plan/nginx-clusterip.yaml", "--node-name", "node1")
	if code != exitUsage {
		t.Errorf("exit code %d, want %d (usage)", code, exitUsage)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
	if !strings.Contains(stderr, "--node-ip") || !strings.Contains(stderr, "no node address") {
		t.Errorf("stderr %q does not say that --node-ip is missing", stderr)
	}
}
