package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// foreignVirtualServers are added by hand with ipvsadm, as another program
// would: one on an address that is not the node's, one there on the port
// of our NodePort, one on the node's own address with a port that is no
// NodePort, one on a firewall mark.
var foreignVirtualServers = []struct{ proto, addr, sched, rs string }{
	{"TCP", "192.0.2.50:80", "wlc", "10.244.1.2:8080"},
	{"TCP", "192.0.2.51:30080", "rr", "10.244.2.2:8080"},
	{"TCP", framework.NodeIP + ":7777", "rr", "10.244.2.2:8080"},
	{"FWM", "7", "sh", "10.244.1.2:8080"},
}

// foreignRules are iptables rules of another program, in the chains ours
// jump from and in a chain of its own, as iptables-save prints them.
var foreignRules = []string{
	"-A OTHER-CHAIN -s 192.0.2.7/32 -j RETURN",
	"-A INPUT -p tcp -m tcp --dport 7777 -j ACCEPT",
	"-A OUTPUT -d 192.0.2.8/32 -j RETURN",
}

// TestOwnershipAndCleanup: what ipvs-proxy did not create, it leaves alone.
//   - virtual servers added by hand (on 192.0.2.50:80, on 192.0.2.51:30080,
//     the port of our NodePort on an address that was never the node's, on
//     the node's own address 10.10.0.1:7777 next to a NodePort, on firewall
//     mark 7), an
//     ipset, an iptables chain, and rules of another program in that chain
//     and in filter INPUT and nat OUTPUT (where ours jump from), an
//     nftables table with a base chain on the input hook and a set survive
//     several full syncs (every 2 s),
//     which plan nothing for them, and the one on the node address keeps
//     carrying traffic;
//   - `ipvs-proxy cleanup --dry-run` lists the removals and changes nothing;
//   - `ipvs-proxy cleanup` removes everything of ours: virtual servers,
//     kube-ipvs0, the KUBE-* sets and chains (ipvsadm -Ln, ip link,
//     ipset list -n, iptables-save), the nftables tables ipvs-proxy, and
//     nothing else (another program's nftables table ip other stays).
func TestOwnershipAndCleanup(t *testing.T) { framework.EachRulesBackend(t, ownershipAndCleanup) }

// ownershipAndCleanup is TestOwnershipAndCleanup with one rules backend (framework.CurrentRulesBackend).
func ownershipAndCleanup(t *testing.T) {
	framework.ResetKernel(t)
	framework.NewBackend(t, "pod-a", "10.244.1.2")
	framework.NewBackend(t, "pod-b", "10.244.2.2")
	client := framework.NewClientNS(t, "client", "10.250.0.2").Client()
	dir := t.TempDir()
	framework.WriteManifest(t, dir, "np.yaml", joinYAML(nodePortService,
		sliceYAML("np", "np-1", []string{"http=8080/TCP"}, onNode("node-1", "10.244.1.2", "10.244.2.2"))))
	proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir, ExtraArgs: []string{"--ipvs-sync-period", "2s"}})
	proxy.WaitFullSyncs(t, 1, 30*time.Second)

	for _, vs := range foreignVirtualServers {
		flag := map[string]string{"TCP": "-t", "FWM": "-f"}[vs.proto]
		framework.IPVSADM(t, "-A", flag, vs.addr, "-s", vs.sched)
		framework.IPVSADM(t, "-a", flag, vs.addr, "-r", vs.rs, "-m")
	}
	framework.Run(t, framework.IPSetBin, "create", "OTHER-SET", "hash:ip")
	framework.Run(t, framework.IPSetBin, "add", "OTHER-SET", "192.0.2.7")
	framework.Run(t, framework.IPTablesBin, "-t", "nat", "-N", "OTHER-CHAIN")
	framework.Run(t, framework.IPTablesBin, "-t", "nat", "-A", "OTHER-CHAIN", "-s", "192.0.2.7/32", "-j", "RETURN")
	framework.Run(t, framework.IPTablesBin, "-t", "filter", "-A", "INPUT", "-p", "tcp", "--dport", "7777", "-j", "ACCEPT")
	framework.Run(t, framework.IPTablesBin, "-t", "nat", "-A", "OUTPUT", "-d", "192.0.2.8/32", "-j", "RETURN")
	framework.Run(t, framework.NFTBin, "-f", writeFile(t, "other.nft", foreignTable))

	t.Run("survives syncs", func(t *testing.T) {
		n := len(proxy.FullSyncs())
		syncs := proxy.WaitFullSyncs(t, n+2, 20*time.Second)[n:]
		for _, s := range syncs {
			if s.Ops != 0 {
				t.Errorf("full sync after the foreign objects appeared: %s, planned %q; want nothing", s, s.Planned)
			}
		}
		t.Logf("%d full syncs since the foreign objects were added: %v", len(syncs), syncs)
		expectForeign(t)
		spread := requests(t, client, framework.HTTP, framework.NodeIP+":7777", 3)
		t.Logf("foreign virtual server %s:7777 from a client namespace: %s", framework.NodeIP, spread)
		expectRealServers(t, framework.IPVSServices(t), "TCP", framework.NodeIP+":30080", "10.244.1.2:8080", "10.244.2.2:8080")
	})

	if err := proxy.Stop(); err != nil {
		t.Fatalf("stop ipvs-proxy: %v", err)
	}
	bin := os.Getenv(framework.EnvProxyBin)

	t.Run("cleanup --dry-run", func(t *testing.T) {
		before := kernelSnapshot(t)
		out := framework.Run(t, bin, "cleanup", "--dry-run")
		t.Logf("ipvs-proxy cleanup --dry-run:\n%s", strings.TrimRight(out, "\n"))
		ours := map[framework.RulesBackend]string{framework.IPTables: "delete-rules ipv4", framework.NFTables: "nft-delete-table ip"}[framework.CurrentRulesBackend()]
		for _, want := range []string{"del-vs -D -t 10.96.0.20:80", "del-vs -D -t " + framework.NodeIP + ":30080", "delete-link kube-ipvs0", ours} {
			if !strings.Contains(out, want) {
				t.Errorf("cleanup --dry-run does not list %q", want)
			}
		}
		for _, foreign := range []string{"192.0.2.50", "192.0.2.51", ":7777", "-f 7", "OTHER-", "192.0.2.8", "other"} {
			if strings.Contains(out, foreign) {
				t.Errorf("cleanup --dry-run would touch %s", foreign)
			}
		}
		after := kernelSnapshot(t)
		for what := range before {
			if before[what] != after[what] {
				t.Errorf("cleanup --dry-run changed %s:\nbefore:\n%s\nafter:\n%s", what, before[what], after[what])
			}
		}
	})

	t.Run("cleanup", func(t *testing.T) {
		out := framework.Run(t, bin, "cleanup", "--verbose")
		t.Logf("ipvs-proxy cleanup --verbose:\n%s", strings.TrimRight(out, "\n"))
		vss := framework.IPVSServices(t)
		if len(vss) != len(foreignVirtualServers) {
			t.Errorf("after cleanup, ipvsadm -Ln shows:\n%s\nwant only the foreign virtual servers", ipvsadmText(t))
		}
		expectForeign(t)
		if out, err := framework.Output(framework.IPBin, "link", "show", "kube-ipvs0"); err == nil {
			t.Errorf("kube-ipvs0 still exists after cleanup:\n%s", out)
		}
		sets := strings.Fields(framework.Run(t, framework.IPSetBin, "list", "-n"))
		if !slices.Equal(sets, []string{"OTHER-SET"}) {
			t.Errorf("after cleanup, ipset list -n = %q, want only OTHER-SET", sets)
		}
		for _, save := range []string{"/usr/sbin/iptables-save", "/usr/sbin/ip6tables-save"} {
			rules := stdout(t, save)
			if strings.Contains(rules, "KUBE-") {
				t.Errorf("after cleanup, %s still mentions KUBE-:\n%s", save, rules)
			}
		}
		for _, family := range []string{"ip", "ip6"} {
			if table := framework.NFTList(t, family); table != "" {
				t.Errorf("after cleanup, the nftables table %s ipvs-proxy is still there:\n%s", family, table)
			}
		}
		spread := requests(t, client, framework.HTTP, framework.NodeIP+":7777", 3)
		t.Logf("after cleanup, foreign virtual server %s:7777 still answers: %s; ipvsadm -Ln:\n%s", framework.NodeIP, spread, ipvsadmText(t))
	})
}

// expectForeign checks the foreign virtual servers (with their real server),
// set, chain and rule are intact.
func expectForeign(t *testing.T) {
	t.Helper()
	vss := framework.IPVSServices(t)
	for _, f := range foreignVirtualServers {
		vs := framework.FindVirtualServer(vss, f.proto, f.addr)
		if vs == nil || vs.Scheduler != f.sched || vs.RealServer(f.rs) == nil {
			t.Errorf("foreign virtual server %s %s %s → %s was changed or removed:\n%s", f.proto, f.addr, f.sched, f.rs, ipvsadmText(t))
		}
	}
	if m := framework.IPSetOnly(t, "OTHER-SET"); !slices.Equal(m, []string{"192.0.2.7"}) {
		t.Errorf("foreign set OTHER-SET holds %q, want [192.0.2.7]", m)
	}
	rules := iptablesSave(t)
	for _, want := range foreignRules {
		if !strings.Contains(rules, want) {
			t.Errorf("iptables-save lacks the foreign rule %q", want)
		}
	}
	table := framework.Run(t, framework.NFTBin, "list", "table", "ip", "other")
	for _, want := range []string{"tcp dport 7777 accept", "192.0.2.9", "chain other-input"} {
		if !strings.Contains(table, want) {
			t.Errorf("the foreign nftables table ip other lacks %q:\n%s", want, table)
		}
	}
}

// foreignTable is another program's nftables table: a base chain on the
// input hook, where ipvs-proxy's nftables backend hooks too, and a set.
const foreignTable = `table ip other {
	set other-set { type ipv4_addr; elements = { 192.0.2.9 } }
	chain other-input {
		type filter hook input priority filter; policy accept;
		tcp dport 7777 accept
		ip saddr @other-set return
	}
}
`

// writeFile writes a file into the test's temporary directory and returns its path.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
