package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The README's deploy section, command for command. A scenario runs a line only if README.md has it verbatim,
// so a README that says something else fails here instead of failing users.
const (
	readmeSetServer = `server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')`
	readmeSedServer = `sed -i "s|server: \"\"|server: $server|" manifests/kubeconfig.conf`
	readmeApply     = `kubectl apply -k manifests/`
	readmeOverlay   = `kubectl apply -k manifests/overlays/kube-proxy-configmap`
	readmeRollout   = `kubectl -n kube-system rollout status daemonset ipvs-proxy`
	readmeRestart   = `kubectl -n kube-system rollout restart daemonset ipvs-proxy`
	readmeStatus    = `kubectl -n kube-system exec ds/ipvs-proxy -- ipvs-proxy status`
	readmeIPVSAdm   = `ipvsadm -Ln`
	readmePodIPVS   = `kubectl -n kube-system exec ds/ipvs-proxy -- ipvsadm -Ln`
)

// manifestsEnv names another manifests directory to deploy instead of the checkout's (to show that a broken
// layout fails the scenarios).
const manifestsEnv = "CLUSTER_MANIFESTS"

// userShell runs README command lines as a user would: bash in a directory holding a copy of manifests/, with
// the cluster's kubectl first in PATH and the admin kubeconfig.
type userShell struct {
	c      *Cluster
	readme string
	dir    string
}

func newUserShell(t *testing.T, c *Cluster) *userShell {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(c.Root(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := filepath.Join(c.Root(), "manifests")
	if alt := os.Getenv(manifestsEnv); alt != "" {
		src = alt
		t.Logf("deploying %s instead of manifests/ (%s)", alt, manifestsEnv)
	}
	if out, err := exec.Command("cp", "-a", src, filepath.Join(dir, "manifests")).CombinedOutput(); err != nil {
		t.Fatalf("copy manifests: %v: %s", err, out)
	}
	return &userShell{c: c, readme: string(readme), dir: dir}
}

// run runs lines (README lines, each checked) in one bash, stopping at the first failure.
func (u *userShell) run(t *testing.T, timeout time.Duration, lines ...string) string {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(u.readme, l) {
			t.Fatalf("README.md no longer says %q: the scenario follows the README; update one or the other", l)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	script := "set -euo pipefail\n" + strings.Join(lines, "\n") + "\n"
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = u.dir
	cmd.Env = append(os.Environ(), "KUBECONFIG="+u.c.AdminKubeconfig(),
		"PATH="+filepath.Dir(u.c.KubectlBin())+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	t.Logf("$ %s\n%s", strings.Join(lines, "\n$ "), out)
	if err != nil {
		t.Fatalf("README commands failed: %v", err)
	}
	return string(out)
}

// nodeShell runs a README line that is run on a node (ipvsadm) there.
func (u *userShell) onNode(t *testing.T, n *Node, line string) string {
	t.Helper()
	if !strings.Contains(u.readme, line) {
		t.Fatalf("README.md no longer says %q", line)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := n.Exec(ctx, "bash", "-c", line)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (u *userShell) String() string { return fmt.Sprintf("user shell in %s", u.dir) }

// runShell runs a shell line as the admin, with the cluster's kubectl in PATH (for steps the README leaves to
// the user, like editing a ConfigMap without an editor).
func runShell(ctx context.Context, c *Cluster, line string) (string, error) {
	cmd := exec.CommandContext(ctx, "bash", "-c", "set -euo pipefail\n"+line)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.AdminKubeconfig(),
		"PATH="+filepath.Dir(c.KubectlBin())+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", line, err, out)
	}
	return string(out), nil
}
