package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/cluster/nodeapi"
)

// Node is a cluster node: a user-mode Linux kernel running the node agent (e2e/cluster/nodeagent) as init,
// containerd and a kubelet, with a disk that survives reboots.
type Node struct {
	Name string
	// IP is the node's address on the cluster network (its InternalIP).
	IP string
	// PodCIDR is the node's pod network.
	PodCIDR string

	cluster *Cluster
	tap     string
	dir     string // _output/cluster/TEST/NAME: disk.img, console.log
	share   string // dir/share: the agent binary, node.json, files/, images/, logs/
	kernel  *process
	boots   int
}

// MemoryMB is each node's memory. Images live on the disk, not in memory.
const MemoryMB = 1536

// diskSize is the size of each node's disk image: sparse, only what is written takes space.
const diskSize = "4G"

// prepare creates the node's directory, tap device, disk and share.
func (n *Node) prepare(agent string, kubeconfig []byte, images []string) error {
	if err := os.RemoveAll(n.dir); err != nil {
		return err
	}
	for _, d := range []string{filepath.Join(n.share, "images"), filepath.Join(n.share, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	disk := filepath.Join(n.dir, "disk.img")
	if _, err := run("truncate", "-s", diskSize, disk); err != nil {
		return err
	}
	if _, err := run("mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=1,lazy_journal_init=1", disk); err != nil {
		return err
	}
	if err := copyFile(agent, filepath.Join(n.share, "nodeagent"), 0o755); err != nil {
		return err
	}
	for _, img := range images {
		// A hard link where possible: the archives are large and the same for every node.
		dst := filepath.Join(n.share, "images", filepath.Base(img))
		if err := os.Link(img, dst); err != nil {
			if err := copyFile(img, dst, 0o644); err != nil {
				return err
			}
		}
	}
	if err := n.cluster.writeNodeFiles(n, kubeconfig); err != nil {
		return err
	}
	return addTap(n.tap, bridgeName, n.PodCIDR, n.IP)
}

// Boot starts the node's kernel and returns once its agent answers. The kubelet is then starting; wait for the
// Node to be Ready with Cluster.WaitNodeReady.
func (n *Node) Boot(ctx context.Context) error {
	n.boots++
	argv := []string{
		"linux.uml", fmt.Sprintf("mem=%dM", MemoryMB),
		"root=/dev/root", "rootfstype=hostfs", "rootflags=/", "ro",
		"init=" + filepath.Join(n.share, "nodeagent"),
		"ubd0=" + filepath.Join(n.dir, "disk.img"),
		"vec0:transport=tap,ifname=" + n.tap,
		"con=null", "con0=fd:0,fd:1", "quiet",
	}
	p, err := startProcess(n.Name, argv, filepath.Join(n.dir, "console.log"))
	if err != nil {
		return err
	}
	n.kernel = p
	for {
		if err := n.ping(ctx); err == nil {
			return nil
		}
		if gone, err := p.exited(); gone {
			return fmt.Errorf("node %s stopped while booting (%w); see %s and %s", n.Name, err,
				filepath.Join(n.dir, "console.log"), filepath.Join(n.share, "logs", "agent.log"))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s: agent not answering: %w", n.Name, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// PowerOff shuts the node down the way a reboot does (the kubelet and containerd are stopped, the kernel
// powers off) and waits until its kernel has exited. Everything in the kernel (IPVS, ipsets, iptables rules,
// addresses) is gone; the disk stays.
func (n *Node) PowerOff(ctx context.Context) error {
	if n.kernel == nil {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.agentURL("/poweroff"), nil)
	if err != nil {
		return err
	}
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	if !n.kernel.wait(2 * time.Minute) {
		n.kernel.stop(5 * time.Second)
		return fmt.Errorf("node %s did not power off within 2 minutes; killed", n.Name)
	}
	n.kernel.stop(time.Second) // its helper processes
	n.kernel = nil
	return nil
}

// Reboot powers the node off and boots it again from the same disk.
func (n *Node) Reboot(ctx context.Context) error {
	if err := n.PowerOff(ctx); err != nil {
		return err
	}
	return n.Boot(ctx)
}

// kill ends the node's kernel at once (test cleanup).
func (n *Node) kill() {
	if n.kernel != nil {
		n.kernel.stop(5 * time.Second)
		n.kernel = nil
	}
}

func (n *Node) agentURL(path string) string {
	return "http://" + net.JoinHostPort(n.IP, strconv.Itoa(nodeapi.Port)) + path
}

func (n *Node) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.agentURL("/healthz"), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Exec runs a command in the node's root namespaces (its host network, as a DaemonSet pod with hostNetwork
// sees it) and returns its standard output; a non-zero exit is an error carrying standard error.
func (n *Node) Exec(ctx context.Context, argv ...string) (string, error) {
	res, err := n.ExecResult(ctx, nodeapi.ExecRequest{Argv: argv})
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return res.Stdout, fmt.Errorf("node %s: %s: exit %d %s: %s", n.Name, strings.Join(argv, " "), res.ExitCode,
			res.Error, strings.TrimSpace(res.Stderr))
	}
	return res.Stdout, nil
}

// ExecResult runs a command on the node and returns its whole outcome, whatever its exit code.
func (n *Node) ExecResult(ctx context.Context, in nodeapi.ExecRequest) (nodeapi.ExecResponse, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nodeapi.ExecResponse{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.agentURL("/exec"), bytes.NewReader(body))
	if err != nil {
		return nodeapi.ExecResponse{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nodeapi.ExecResponse{}, fmt.Errorf("node %s agent: %w", n.Name, err)
	}
	defer resp.Body.Close()
	var out nodeapi.ExecResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("node %s agent: %w", n.Name, err)
	}
	return out, nil
}

// LogPath is where a node service's log is kept on the host: "agent", "containerd", "kubelet".
func (n *Node) LogPath(name string) string {
	return filepath.Join(n.share, "logs", name+".log")
}
