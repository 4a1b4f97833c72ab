// Package cluster is a real Kubernetes cluster for end-to-end scenarios: a control plane on the host (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, built from the Go module proxy by
// scripts/k8s/build.sh) and nodes in user-mode Linux, each running containerd, crun and the CNI bridge plugin
// (Debian's packages) and a kubelet, with pods on a bridge. Nothing serves Services but what a scenario deploys:
// there is no kube-proxy.
//
// Everything runs in a network namespace of its own (Main re-executes the test binary there): the host's end of
// the cluster network is the bridge cluster0 with HostIP, which is "outside" the nodes: a test reaches node IPs,
// NodePorts and pod IPs from there, as a client outside the cluster would. Each node has a tap device on that
// bridge and its own disk, so a reboot keeps what a real node's disk keeps and loses what its kernel held.
//
// A test starts a cluster with Start, talks to it with Client and Kubectl, runs commands on a node with
// Node.Exec, and reboots one with Node.Reboot. docs/testing.md has the costs.
package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ipvs-proxy/ipvs-proxy/internal/testenv/apiserver"
)

// The cluster network.
const (
	// HostIP is the host's address on the cluster network: the API server's address (the control-plane
	// endpoint) and where "outside" clients come from.
	HostIP = "10.99.0.1"
	// ServiceCIDR is the Service ClusterIP range; the kubernetes Service is its first address.
	ServiceCIDR = "10.96.0.0/16"
	// DNSServiceIP is the cluster DNS Service's ClusterIP, the kubelets' clusterDNS.
	DNSServiceIP = "10.96.0.10"
	bridgeName   = "cluster0"
)

// Options configures Start.
type Options struct {
	// Nodes is the number of nodes (default 1).
	Nodes int
}

// Cluster is a running cluster. Stop ends it; Start registers that with t.Cleanup.
type Cluster struct {
	Nodes []*Node
	// Client is an admin client-go clientset, RESTConfig its configuration.
	Client     kubernetes.Interface
	RESTConfig *rest.Config

	root       string // repository root
	dir        string // _output/cluster/TEST: kubeconfigs, CA, logs, node directories
	logDir     string // dir/logs: control plane logs
	binDir     string // the Kubernetes binaries
	proxyImage string // _output/image/ipvs-proxy.oci.tar
	cp         *controlPlane
}

// Start starts a cluster and waits until every node is Ready. The scenario is skipped outside
// scripts/cluster.sh; a missing binary or image fails it, naming the step that builds it.
func Start(t *testing.T, opts Options) *Cluster {
	t.Helper()
	skipUnlessEnabled(t)
	if opts.Nodes == 0 {
		opts.Nodes = 1
	}
	c, err := newCluster(opts, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if err := c.start(ctx); err != nil {
		t.Fatalf("start the cluster: %v (logs in %s)", err, c.dir)
	}
	t.Logf("cluster: control plane and %d node(s) up in %v; logs in %s", len(c.Nodes),
		time.Since(began).Round(time.Second), c.dir)
	return c
}

func newCluster(opts Options, test string) (*Cluster, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	binDir, err := apiserver.DefaultBinDir()
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler", "kubelet",
		"kubectl", "agnhost", "coredns"} {
		if _, err := os.Stat(filepath.Join(binDir, name)); err != nil {
			return nil, fmt.Errorf("no %s in %s: run scripts/k8s/build.sh cluster", name, binDir)
		}
	}
	c := &Cluster{
		root:       root,
		dir:        filepath.Join(root, "_output", "cluster", strings.ReplaceAll(test, "/", "_")),
		binDir:     binDir,
		proxyImage: filepath.Join(root, "_output", "image", "ipvs-proxy.oci.tar"),
	}
	if _, err := os.Stat(c.proxyImage); err != nil {
		return nil, fmt.Errorf("no %s: run make image", c.proxyImage)
	}
	c.logDir = filepath.Join(c.dir, "logs")
	for i := range opts.Nodes {
		name := fmt.Sprintf("node-%d", i+1)
		dir := filepath.Join(c.dir, name)
		c.Nodes = append(c.Nodes, &Node{
			Name: name, IP: fmt.Sprintf("10.99.0.%d", i+2), PodCIDR: fmt.Sprintf("10.244.%d.0/24", i),
			cluster: c, tap: fmt.Sprintf("tap%d", i), dir: dir, share: filepath.Join(dir, "share"),
		})
	}
	return c, nil
}

func (c *Cluster) nodeNames() []string {
	var names []string
	for _, n := range c.Nodes {
		names = append(names, n.Name)
	}
	return names
}

func (c *Cluster) start(ctx context.Context) error {
	if err := os.RemoveAll(c.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(c.logDir, 0o755); err != nil {
		return err
	}
	if err := setupLink(bridgeName, HostIP+"/24"); err != nil {
		return err
	}
	images, err := c.buildImages(filepath.Join(c.dir, "images"))
	if err != nil {
		return err
	}
	agent := filepath.Join(c.dir, "nodeagent")
	if err := goBuild(c.root, agent, "./e2e/cluster/nodeagent"); err != nil {
		return err
	}
	if c.cp, err = startControlPlane(ctx, c); err != nil {
		return err
	}
	if c.RESTConfig, err = clientcmd.BuildConfigFromFlags("", c.cp.adminKubeconfig); err != nil {
		return err
	}
	c.RESTConfig.QPS, c.RESTConfig.Burst = 100, 200
	if c.Client, err = kubernetes.NewForConfig(c.RESTConfig); err != nil {
		return err
	}
	for _, n := range c.Nodes {
		kubeconfig := filepath.Join(c.dir, n.Name+".kubeconfig")
		if err := c.cp.writeKubeconfig(kubeconfig, kubeletUser(n.Name), c.cp.server.Tokens[kubeletUser(n.Name)]); err != nil {
			return err
		}
		data, err := os.ReadFile(kubeconfig)
		if err != nil {
			return err
		}
		if err := n.prepare(agent, data, images); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		if err := n.Boot(ctx); err != nil {
			return err
		}
	}
	for _, n := range c.Nodes {
		if err := c.WaitNodeReady(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// Stop powers the nodes off, stops the control plane and removes the cluster network. The logs stay in
// _output/cluster/TEST.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.kill()
		_, _ = run("ip", "link", "del", n.tap)
	}
	if c.cp != nil {
		c.cp.stop()
	}
	_, _ = run("ip", "link", "del", bridgeName)
}

// ControlPlaneEndpoint is the API server's URL on the cluster network, what kubeadm calls the control-plane
// endpoint: what a node reaches the API server at without any Service.
func (c *Cluster) ControlPlaneEndpoint() string { return c.cp.serverURL() }

// AdminKubeconfig is the path of the admin kubeconfig (system:masters).
func (c *Cluster) AdminKubeconfig() string { return c.cp.adminKubeconfig }

// Root is the repository root (where manifests/ and README.md are).
func (c *Cluster) Root() string { return c.root }

// Dir is the cluster's output directory, _output/cluster/TEST.
func (c *Cluster) Dir() string { return c.dir }
