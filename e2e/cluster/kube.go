package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Kubectl runs the kubectl built for the cluster (scripts/k8s/build.sh) as the admin, with stdin, and returns
// its standard output; a failure is an error with its standard error.
func (c *Cluster) Kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, "kubectl"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.cp.adminKubeconfig)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// KubectlBin is the path of that kubectl, for scenarios that run a command line from the README as is.
func (c *Cluster) KubectlBin() string { return filepath.Join(c.binDir, "kubectl") }

// WaitNodeReady waits until the Node reports Ready.
func (c *Cluster) WaitNodeReady(ctx context.Context, n *Node) error {
	return c.poll(ctx, "node "+n.Name+" Ready", func() (bool, error) {
		node, err := c.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range node.Status.Conditions {
			if cond.Type == v1.NodeReady {
				return cond.Status == v1.ConditionTrue, nil
			}
		}
		return false, nil
	})
}

// WaitPodsReady waits until at least want pods match selector in namespace and every one of them is Ready,
// and returns them.
func (c *Cluster) WaitPodsReady(ctx context.Context, namespace, selector string, want int) ([]v1.Pod, error) {
	var pods []v1.Pod
	err := c.poll(ctx, fmt.Sprintf("%d ready pods %q in %s", want, selector, namespace), func() (bool, error) {
		list, err := c.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err
		}
		pods = list.Items
		if len(pods) < want {
			return false, nil
		}
		for _, p := range pods {
			if p.DeletionTimestamp != nil || !podReady(&p) {
				return false, nil
			}
		}
		return true, nil
	})
	return pods, err
}

func podReady(p *v1.Pod) bool {
	for _, cond := range p.Status.Conditions {
		if cond.Type == v1.PodReady {
			return cond.Status == v1.ConditionTrue
		}
	}
	return false
}

// poll calls check every half second until it returns true, ctx ends or a cluster process dies. An error from
// check is taken as passing (an API server restarting, a node rebooting) and reported only if the wait fails.
func (c *Cluster) poll(ctx context.Context, what string, check func() (bool, error)) error {
	var last error
	for {
		ok, err := check()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if err := c.cp.check(); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		for _, n := range c.Nodes {
			if n.kernel != nil {
				if gone, err := n.kernel.exited(); gone {
					return fmt.Errorf("waiting for %s: node %s: %w", what, n.Name, err)
				}
			}
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("waiting for %s: %w (last error: %w)", what, ctx.Err(), last)
			}
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// goBuild builds a static binary of the repository.
func goBuild(root, out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w: %s", pkg, err, b)
	}
	return nil
}

// repoRoot is the nearest directory at or above the working directory holding this module's go.mod.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.HasPrefix(string(data), "module github.com/ipvs-proxy/ipvs-proxy\n") {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no repository root above %s", wd)
		}
	}
}
