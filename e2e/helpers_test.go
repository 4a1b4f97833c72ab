package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// Helpers shared by the scenarios: manifests, the config file, traffic
// counts.

// endpoint is one entry of an EndpointSlice: a backend's address and the
// node it runs on.
type endpoint struct{ ip, node string }

// onNode returns endpoints for ips, all on node.
func onNode(node string, ips ...string) []endpoint {
	eps := make([]endpoint, 0, len(ips))
	for _, ip := range ips {
		eps = append(eps, endpoint{ip: ip, node: node})
	}
	return eps
}

// sliceYAML returns an EndpointSlice of Service svc (namespace default)
// with ports given as "name=port/PROTO" (e.g. "http=8080/TCP") and the
// endpoints, all ready.
func sliceYAML(svc, name string, ports []string, eps []endpoint) string {
	return sliceYAMLOf(svc, name, "IPv4", ports, eps)
}

// sliceYAMLOf is sliceYAML for an address type, IPv4 or IPv6.
func sliceYAMLOf(svc, name, addressType string, ports []string, eps []endpoint) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %s
  namespace: default
  labels: {kubernetes.io/service-name: %s}
addressType: %s
ports:
`, name, svc, addressType)
	for _, p := range ports {
		pname, rest, _ := strings.Cut(p, "=")
		port, proto, _ := strings.Cut(rest, "/")
		fmt.Fprintf(&b, "- {name: %q, port: %s, protocol: %s}\n", pname, port, proto)
	}
	if len(eps) == 0 {
		b.WriteString("endpoints: []\n")
		return b.String()
	}
	b.WriteString("endpoints:\n")
	for _, e := range eps {
		fmt.Fprintf(&b, "- addresses: [%q]\n  conditions: {ready: true}\n  nodeName: %s\n", e.ip, e.node)
	}
	return b.String()
}

// joinYAML joins manifests into one multi-document file.
func joinYAML(docs ...string) string {
	return strings.Join(docs, "---\n")
}

// writeConfig writes a KubeProxyConfiguration (mode ipvs) with the given
// extra YAML (top-level fields) to dir/kube-proxy.yaml and returns its path.
func writeConfig(t testing.TB, dir, extra string) string {
	t.Helper()
	path := filepath.Join(dir, "kube-proxy.yaml")
	text := "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n" + extra
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatalf("write config: %v", err)
	}
	return path
}

// requests makes n exchanges with target from client c and returns how many
// each backend answered; it fails the test at the first failed exchange.
func requests(t testing.TB, c framework.Client, proto framework.Proto, target string, n int) counts {
	t.Helper()
	seen := counts{}
	for i := 0; i < n; i++ {
		r, err := c.Exchange(proto, target)
		if err != nil {
			t.Fatalf("%s %s, exchange %d of %d: %v", proto, target, i+1, n, err)
		}
		seen[r.Backend]++
	}
	return seen
}

// counts are answers per backend.
type counts map[string]int

// String renders counts sorted by backend: "pod-a=3 pod-b=3".
func (c counts) String() string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, c[k]))
	}
	if len(parts) == 0 {
		return "(none)"
	}
	return strings.Join(parts, " ")
}

// only returns the single backend that answered, or "" if none or several did.
func (c counts) only() string {
	if len(c) != 1 {
		return ""
	}
	for k := range c {
		return k
	}
	return ""
}

// expectRealServers fails the test unless virtual server proto addr exists
// with exactly the real servers want ("IP:port"), each Masq with weight 1.
func expectRealServers(t testing.TB, vss []framework.VirtualServer, proto, addr string, want ...string) *framework.VirtualServer {
	t.Helper()
	vs := framework.FindVirtualServer(vss, proto, addr)
	if vs == nil {
		t.Errorf("ipvsadm -Ln has no virtual server %s %s", proto, addr)
		return nil
	}
	got := vs.RealServerAddrs()
	sort.Strings(got)
	sorted := append([]string(nil), want...)
	sort.Strings(sorted)
	if strings.Join(got, " ") != strings.Join(sorted, " ") {
		t.Errorf("%s %s: real servers %v, want %v", proto, addr, got, sorted)
	}
	for _, rs := range vs.RealServers {
		if rs.Forward != "Masq" || rs.Weight != 1 {
			t.Errorf("%s %s: real server %s is %s weight %d, want Masq weight 1", proto, addr, rs.Addr, rs.Forward, rs.Weight)
		}
	}
	return vs
}

// ipvsadmText returns `ipvsadm -Ln` for test logs.
func ipvsadmText(t testing.TB) string {
	t.Helper()
	return strings.TrimRight(framework.IPVSADM(t, "-Ln"), "\n")
}

// stdout runs a command and returns its standard output alone; it fails the
// test if the command fails. Unlike framework.Run it keeps stderr apart:
// iptables-save, for one, warns there ("iptables-legacy tables present")
// in the middle of its output.
func stdout(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, framework.ToolPath(name), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// iptablesSave returns iptables-save's rules (nft backend, all tables).
func iptablesSave(t testing.TB) string {
	t.Helper()
	return stdout(t, "/usr/sbin/iptables-save")
}

// expectRulesBackend checks that the daemon's sets and rules are where the
// scenario's rules backend puts them, and nowhere else: ipsets and iptables
// chains, or the nftables table ip ipvs-proxy (and then neither ipset nor
// iptables program in PATH).
func expectRulesBackend(t testing.TB) {
	t.Helper()
	table := framework.NFTList(t, "ip")
	ipsets := framework.Run(t, framework.IPSetBin, "list", "-n")
	rules := iptablesSave(t)
	switch framework.CurrentRulesBackend() {
	case framework.NFTables:
		if !strings.Contains(table, "masquerade fully-random") || !strings.Contains(table, "set cluster-ip") {
			t.Errorf("nftables backend: table ip ipvs-proxy is missing or incomplete:\n%s", table)
		}
		if strings.Contains(ipsets, "KUBE-") || strings.Contains(rules, "KUBE-") {
			t.Errorf("nftables backend: ipsets or iptables chains of ours exist:\n%s\n%s", ipsets, rules)
		}
		for _, tool := range []string{"iptables", "iptables-restore", "ip6tables-save", "ipset"} {
			if p, err := exec.LookPath(tool); err == nil {
				t.Errorf("nftables backend: %s is in PATH (%s); the scenario runs without it", tool, p)
			}
		}
	default:
		if !strings.Contains(rules, "-A KUBE-POSTROUTING") || !strings.Contains(ipsets, "KUBE-CLUSTER-IP") {
			t.Errorf("iptables backend: KUBE-POSTROUTING or KUBE-CLUSTER-IP missing:\n%s\n%s", rules, ipsets)
		}
		if table != "" {
			t.Errorf("iptables backend: an nftables table ip ipvs-proxy exists:\n%s", table)
		}
	}
}
