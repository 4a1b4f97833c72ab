package framework

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// sysctlDefaults are the kernel defaults of the parameters a proxy (or a
// scenario) may change. ResetKernel restores them so that no scenario sees
// another one's settings.
func sysctlDefaults() [][2]string {
	return [][2]string{
		{"net.ipv4.ip_forward", "0"},
		{"net.ipv6.conf.all.forwarding", "0"},
		{"net.ipv4.vs.conntrack", "0"},
		{"net.ipv4.vs.expire_nodest_conn", "0"},
		{"net.ipv4.vs.expire_quiescent_template", "0"},
		{"net.ipv4.vs.conn_reuse_mode", "1"},
		{"net.ipv4.conf.all.arp_ignore", "0"},
		{"net.ipv4.conf.all.arp_announce", "0"},
		{"net.ipv4.conf.all.route_localnet", "0"},
	}
}

// emptyTables is iptables-restore input that flushes the four tables, deletes
// their user chains and sets ACCEPT policies.
const emptyTables = `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
`

// ResetKernel removes everything a scenario may have left in the guest, so
// that scenarios sharing one boot start alike: call it first in every
// scenario. The guest belongs to the tests, so it clears everything rather
// than only what is named KUBE-*:
//   - every network namespace, after killing the processes in it (their
//     veths go with them);
//   - the link kube-ipvs0;
//   - every nftables table (ipvs-proxy's own too), and every rule and user
//     chain in the filter, nat, mangle and raw tables of iptables and
//     ip6tables, nft and legacy (so the KUBE-* chains and the jumps to
//     them), with ACCEPT policies;
//   - every ipset (after the rules that could reference them);
//   - every IPVS virtual server, and the IPVS timeouts back to 900/120/300;
//   - the conntrack table;
//   - the sysctls in sysctlDefaults.
//
// It fails the test if something could not be removed.
func ResetKernel(t testing.TB) {
	t.Helper()
	if err := Reset(); err != nil {
		t.Fatal(err)
	}
}

// Reset is ResetKernel for a program without a testing.TB (the benchmark).
func Reset() error {
	var errs []string
	note := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}

	for _, name := range namespaceNames() {
		deleteNamespace(name)
	}
	note(deleteLink("kube-ipvs0"))
	// every nftables table (ipvs-proxy's and iptables-nft's), then empty
	// iptables tables again below
	_, err := Output(NFTBin, "flush", "ruleset")
	note(err)
	// nft always; legacy only where a table was ever used (it shows up in
	// /proc/net/ip*_tables_names): each process costs ~0.1 s under emulation.
	note(restoreEmptyTables("/usr/sbin/iptables-nft-restore"))
	note(restoreEmptyTables("/usr/sbin/ip6tables-nft-restore"))
	if fileHasContent("/proc/net/ip_tables_names") {
		note(restoreEmptyTables("/usr/sbin/iptables-legacy-restore"))
	}
	if fileHasContent("/proc/net/ip6_tables_names") {
		note(restoreEmptyTables("/usr/sbin/ip6tables-legacy-restore"))
	}
	_, err = Output(IPSetBin, "destroy")
	note(err)
	_, err = outputWithInput("-C\n--set 900 120 300\n", IPVSAdmBin, "-R")
	note(err)
	// conntrack -F fails on an empty table with some versions: ignored.
	_, _ = Output(ConntrackBin, "-F")
	note(RestoreSysctls())

	if len(errs) > 0 {
		return fmt.Errorf("reset kernel state:\n%s", strings.Join(errs, "\n"))
	}
	return nil
}

// RestoreSysctls sets the parameters a proxy or a scenario may change back
// to the kernel's defaults (ResetKernel does it too).
func RestoreSysctls() error {
	var errs []string
	for _, kv := range sysctlDefaults() {
		if err := writeSysctl(kv[0], kv[1]); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func restoreEmptyTables(restore string) error {
	_, err := outputWithInput(emptyTables, restore, "-w")
	return err
}

func fileHasContent(path string) bool {
	b, err := os.ReadFile(path)
	return err == nil && len(strings.TrimSpace(string(b))) > 0
}
