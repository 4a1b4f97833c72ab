package e2e

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// migrationDifference is a documented difference between kube-proxy's ipvs
// mode and ipvs-proxy (README, "How it differs from kube-proxy's ipvs mode")
// and the operations of ipvs-proxy's first full sync on kube-proxy's kernel
// state that it explains.
type migrationDifference struct {
	why string
	ops *regexp.Regexp
}

// migrationDifferences explain every operation ipvs-proxy's first full sync
// plans on a node kube-proxy v1.34's ipvs mode has programmed (TestMigration).
// An operation none of them matches fails the scenario: either ipvs-proxy
// gained a difference that must be documented here and in the README, or it
// should adopt kube-proxy's state as it is. Nothing else is touched: no
// virtual server of kube-proxy is edited or deleted, no weight reset, no
// kube-ipvs0 address added or removed, no member of kube-proxy's sets
// removed.
var migrationDifferences = []migrationDifference{
	{"externalTrafficPolicy Local, traffic from inside the cluster: a firewall-mark virtual server with every " +
		"endpoint per Service port, and the set the mangle rule maps each external address to its mark from " +
		"(kube-proxy sends pods to the local endpoints only)",
		regexp.MustCompile(`^(add-vs -A -f \d+ |add-rs -a -f \d+ |create-set KUBE-(6-)?EXTERNAL-LOCAL-MARK |add-entry KUBE-(6-)?EXTERNAL-LOCAL-MARK )`)},
	{"externalTrafficPolicy Local without a local endpoint: no real server, external clients refused " +
		"(kube-proxy falls back to every endpoint, kubernetes#97081); the Service etp-remote's NodePort 30091",
		regexp.MustCompile(`^del-rs -d -t [0-9.]+:30091 `)},
	{"an externalIP that is one of the node's own addresses is refused unless ipvsProxy.externalIPCIDRs allows it " +
		"(CVE-2020-8554; kube-proxy programs it): the Service ext's 10.10.0.1:80",
		regexp.MustCompile(`^(del-vs -D -t 10\.10\.0\.1:80$|del-entry KUBE-EXTERNAL-IP 10\.10\.0\.1,tcp:80$)`)},
	{"unallocated ClusterIPs are dropped: the set of the ServiceCIDRs (kube-proxy's ipvs mode lets them leak)",
		regexp.MustCompile(`^(create-set KUBE-(6-)?SERVICE-CIDRS |add-entry KUBE-(6-)?SERVICE-CIDRS )`)},
	{"IPv6: the guest has IPv6 addresses and its Node only an IPv4 one; kube-proxy's IPv6 proxier never " +
		"finishes a sync there (no ip_family=\"IPv6\" sync metric) and so never creates its KUBE-6-* sets, " +
		"while ipvs-proxy serves every family the node has addresses of and creates them (empty)",
		regexp.MustCompile(`^create-set KUBE-6-`)},
	{"the iptables rules, one iptables-restore per family: ipvs-proxy's fixed rule set differs from kube-proxy's " +
		"(no -m comment texts; rules for empty sets too; no `-s 127.0.0.0/8 -j RETURN`; the node's source-range " +
		"check by set lookup in mangle instead of a filter OUTPUT rule per load balancer IP; the in-cluster marks; " +
		"the ServiceCIDR check; ipvs-marked node traffic masqueraded)",
		regexp.MustCompile(`^sync-rules ipv[46]$`)},
}

// checkFirstSync reports ipvs-proxy's first full sync after kube-proxy by
// difference and fails on an operation no documented difference explains.
func checkFirstSync(t *testing.T, s framework.Sync) {
	t.Helper()
	if s.Failed != 0 || s.Incomplete() {
		t.Errorf("ipvs-proxy's first sync after kube-proxy: %s", s)
	}
	explained := make([][]string, len(migrationDifferences))
	var unexplained []string
	for _, op := range s.Planned {
		i := explainedBy(op)
		if i < 0 {
			unexplained = append(unexplained, op)
			continue
		}
		explained[i] = append(explained[i], op)
	}
	var b strings.Builder
	for i, d := range migrationDifferences {
		fmt.Fprintf(&b, "\n  %d operations (%s): %s", len(explained[i]), kindCounts(explained[i]), d.why)
		for _, op := range explained[i] {
			b.WriteString("\n      " + op)
		}
	}
	t.Logf("ipvs-proxy's first full sync after kube-proxy: %s%s", s, b.String())
	if len(unexplained) > 0 {
		t.Errorf("ipvs-proxy's first sync after kube-proxy planned %d operations no documented difference explains:\n  %s",
			len(unexplained), strings.Join(unexplained, "\n  "))
	}
}

// explainedBy returns the index of the difference explaining op, or -1.
func explainedBy(op string) int {
	for i, d := range migrationDifferences {
		if d.ops.MatchString(op) {
			return i
		}
	}
	return -1
}

// kindCounts renders operations counted by kind: "add-vs 2, add-rs 5".
func kindCounts(ops []string) string {
	n := map[string]int{}
	for _, op := range ops {
		kind, _, _ := strings.Cut(op, " ")
		n[kind]++
	}
	kinds := make([]string, 0, len(n))
	for k := range n {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s %d", k, n[k]))
	}
	return strings.Join(parts, ", ")
}
