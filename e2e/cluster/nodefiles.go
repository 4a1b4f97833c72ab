package cluster

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/cluster/nodeapi"
)

// The node's software: Debian's packages on the host root (scripts/cluster/deps.sh installs them), crun as the
// OCI runtime (a C program: it starts containers in half the time runc takes under user-mode Linux, where every
// system call is costly).
const (
	containerdBin = "/usr/bin/containerd"
	cniBinDir     = "/usr/lib/cni"
	crunBin       = "/usr/bin/crun"
	// PauseImage is the sandbox image containerd runs for every pod (built here: e2e/cluster/pause).
	PauseImage = "registry.k8s.io/pause:3.10.1"
)

// writeNodeFiles writes the share directory of a node: node.json, and files/ (copied over the node's root at
// every boot): containerd's configuration, the CNI network and the kubelet's configuration and kubeconfig.
func (c *Cluster) writeNodeFiles(n *Node, kubeconfig []byte) error {
	files := map[string][]byte{
		"etc/containerd/config.toml":        []byte(containerdConfig()),
		"etc/cni/net.d/10-pods.conflist":    []byte(cniConfig(n.PodCIDR)),
		"etc/kubernetes/kubelet.yaml":       []byte(kubeletConfig()),
		"etc/kubernetes/kubelet.kubeconfig": kubeconfig,
	}
	for rel, data := range files {
		path := filepath.Join(n.share, "files", rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return err
		}
	}
	cfg := nodeapi.Config{
		Name:    n.Name,
		Address: n.IP + "/24",
		Gateway: HostIP,
		// What kubeadm's preflight asks of a node (br_netfilter, ip_forward), the container runtime's needs
		// (overlay, veth, bridge), and IPVS with its schedulers; modprobe loads the rest on demand.
		Modules: []string{"overlay", "br_netfilter", "bridge", "veth", "nf_conntrack", "ip_vs", "ip_vs_rr",
			"ip_vs_lc", "ip_vs_wrr", "ip_vs_sh", "nf_tables", "nft_compat", "iptable_nat",
			"iptable_filter", "iptable_mangle", "xt_MASQUERADE", "xt_mark", "xt_comment", "xt_set",
			"ip_set_hash_ip", "ip_set_hash_ipport", "ip_set_hash_ipportip", "ip_set_hash_ipportnet",
			"ip_set_hash_net", "ip_set_bitmap_port", "dummy"},
		Sysctls: map[string]string{
			"net.ipv4.ip_forward":                 "1",
			"net.bridge.bridge-nf-call-iptables":  "1",
			"net.bridge.bridge-nf-call-ip6tables": "1",
		},
		Containerd: []string{containerdBin, "--config", "/etc/containerd/config.toml"},
		Kubelet: []string{filepath.Join(c.binDir, "kubelet"), "--config=/etc/kubernetes/kubelet.yaml",
			"--kubeconfig=/etc/kubernetes/kubelet.kubeconfig", "--hostname-override=" + n.Name,
			"--node-ip=" + n.IP, "--v=2"},
		CPUMHz: "2000.000",
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(n.share, nodeapi.ConfigFile), data, 0o644)
}

func containerdConfig() string {
	return fmt.Sprintf(`version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = %q
`, PauseImage, cniBinDir, crunBin)
}

// cniConfig is a bridge network with host-local addresses: pods of one node on one bridge, routed by the node
// (the host routes each node's pod CIDR to it). No masquerading: pod addresses are seen as they are.
func cniConfig(podCIDR string) string {
	return fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "pods",
  "plugins": [{
    "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}
  }]
}
`, podCIDR)
}

// kubeletConfig: what kubeadm's kubelet configuration says, less what a test node cannot have (systemd, the
// apiserver-to-kubelet webhook authorization).
func kubeletConfig() string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
cgroupDriver: cgroupfs
failSwapOn: false
clusterDNS: [%s]
clusterDomain: cluster.local
# The API server reaches the kubelet (exec, logs) without client certificates in this harness.
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
# Every image is imported at boot; none can be pulled, so none may be collected.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
`, DNSServiceIP)
}
