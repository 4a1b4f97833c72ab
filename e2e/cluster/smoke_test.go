package cluster

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestClusterSmoke: the harness itself: a node becomes Ready, a pod on the CNI bridge runs and answers from the
// node and from outside.
func TestClusterSmoke(t *testing.T) {
	c := Start(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pod := `apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers:
  - name: web
    image: ` + AgnhostImage + `
    args: [netexec, --http-port=8080]
    readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 2}
`
	if _, err := c.Kubectl(ctx, pod, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	pods, err := c.WaitPodsReady(ctx, "default", "app=web", 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pod Ready in %v at %s", time.Since(began).Round(time.Second), pods[0].Status.PodIP)
	url := "http://" + pods[0].Status.PodIP + ":8080/hostname"
	out, err := c.Nodes[0].Exec(ctx, "curl", "-sS", "--max-time", "10", url)
	if err != nil || strings.TrimSpace(out) != "web" {
		t.Fatalf("from the node: %q %v", out, err)
	}
	if out, err := run("curl", "-sS", "--max-time", "10", url); err != nil || strings.TrimSpace(out) != "web" {
		t.Fatalf("from outside: %q %v", out, err)
	}
}
