package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestPlanWithoutNodeAddress: without --node-ip the node serves no IP family,
// so nothing could be planned; plan says what is missing instead of printing
// an empty plan and exiting 0.
func TestPlanWithoutNodeAddress(t *testing.T) {
	var out, errOut bytes.Buffer
	code := planCmd([]string{"--manifests", "testdata/plan/nginx-clusterip.yaml", "--node-name", "node1"}, &out, &errOut)
	if code != 2 {
		t.Errorf("exit code %d, want 2 (usage)", code)
	}
	if out.Len() != 0 {
		t.Errorf("stdout %q, want nothing", out.String())
	}
	if msg := errOut.String(); !strings.Contains(msg, "--node-ip") || !strings.Contains(msg, "no node address") {
		t.Errorf("stderr %q does not say that --node-ip is missing", msg)
	}
}
