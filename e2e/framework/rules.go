package framework

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// RulesBackend is where the daemon puts the sets and rules around IPVS
// (its --rules-backend).
type RulesBackend string

// The rules backends.
const (
	IPTables RulesBackend = "iptables"
	NFTables RulesBackend = "nftables"
)

// NFTBin is nft, which the nftables backend runs (through knftables).
const NFTBin = "/usr/sbin/nft"

// rulesBackend is the backend of the scenario running now (scenarios run
// one at a time): StartProxy passes it, IPSetMembers reads its sets.
var rulesBackend = IPTables

// CurrentRulesBackend returns the rules backend of the running scenario.
func CurrentRulesBackend() RulesBackend { return rulesBackend }

// EachRulesBackend runs a scenario once per rules backend, as the subtests
// "iptables" and "nftables" (select one with E2E_RUN=TestX/nftables). For
// nftables the guest's iptables and ipset programs are hidden (see
// HideRuleTools): the daemon must not need them.
func EachRulesBackend(t *testing.T, scenario func(t *testing.T)) {
	for _, b := range []RulesBackend{IPTables, NFTables} {
		t.Run(string(b), func(t *testing.T) {
			prev := rulesBackend
			rulesBackend = b
			t.Cleanup(func() { rulesBackend = prev })
			if b == NFTables {
				HideRuleTools(t)
			}
			scenario(t)
		})
	}
}

// hiddenTools holds the hidden programs; on the root file system, so that
// hiding is a rename.
const hiddenTools = "/usr/lib/e2e-hidden-tools"

// ruleToolGlobs are the iptables and ipset programs: the two multi-call
// binaries and every name that points at them.
var ruleToolGlobs = []string{"/usr/sbin/iptables*", "/usr/sbin/ip6tables*", "/usr/sbin/xtables-*", "/usr/sbin/ipset*",
	"/usr/sbin/arptables*", "/usr/sbin/ebtables*"}

// HideRuleTools moves iptables, ip6tables and ipset (every name of them) out
// of the guest's PATH until the test ends. The framework keeps using them
// from where they are hidden (to reset the kernel and to check that the
// daemon left such state alone); nothing else finds them.
func HideRuleTools(t testing.TB) {
	t.Helper()
	if err := os.MkdirAll(hiddenTools, 0o755); err != nil {
		t.Fatal(err)
	}
	var moved []string
	for _, g := range ruleToolGlobs {
		paths, _ := filepath.Glob(g)
		for _, p := range paths {
			if err := os.Rename(p, filepath.Join(hiddenTools, filepath.Base(p))); err != nil {
				t.Fatalf("hide %s: %v", p, err)
			}
			moved = append(moved, p)
		}
	}
	t.Logf("hidden from PATH for this test: %d iptables and ipset programs", len(moved))
	t.Cleanup(func() {
		for _, p := range moved {
			if err := os.Rename(filepath.Join(hiddenTools, filepath.Base(p)), p); err != nil {
				t.Errorf("restore %s: %v", p, err)
			}
		}
	})
}

// ToolPath returns where a guest program is: its path, or where
// HideRuleTools put it.
func ToolPath(path string) string {
	if !strings.Contains(path, "/") {
		if _, err := exec.LookPath(path); err == nil {
			return path
		}
		path = "/usr/sbin/" + path
	}
	if _, err := os.Lstat(path); err == nil || !strings.HasPrefix(path, "/usr/sbin/") {
		return path
	}
	if hidden := filepath.Join(hiddenTools, filepath.Base(path)); fileExists(hidden) {
		return hidden
	}
	return path
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// NFTSetName is the nft set of ipvs-proxy's table that stands for an ipset
// (KUBE-CLUSTER-IP is cluster-ip), with the table's family.
func NFTSetName(ipset string) (family, name string) {
	if n, ok := strings.CutPrefix(ipset, "KUBE-6-"); ok {
		return "ip6", strings.ToLower(n)
	}
	return "ip", strings.ToLower(strings.TrimPrefix(ipset, "KUBE-"))
}

// nftSetMembers returns the elements of the nft set that stands for ipset
// name, written as ipset writes members ("10.96.0.10,tcp:80"), sorted.
func nftSetMembers(t testing.TB, ipset string) []string {
	t.Helper()
	family, name := NFTSetName(ipset)
	out, err := Output(NFTBin, "--json", "list", "set", family, "ipvs-proxy", name)
	if err != nil { // an ipset whose members carry a mark is an nft map
		out = Run(t, NFTBin, "--json", "list", "map", family, "ipvs-proxy", name)
	}
	members, err := parseNFTSet(out)
	if err != nil {
		t.Fatalf("nft list set %s ipvs-proxy %s: %v\n%s", family, name, err, out)
	}
	return members
}

// parseNFTSet reads `nft --json list set` into ipset-style members.
func parseNFTSet(out string) ([]string, error) {
	var doc struct {
		NFTables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return nil, err
	}
	var members []string
	for _, obj := range doc.NFTables {
		raw, ok := obj["set"]
		if !ok {
			raw, ok = obj["map"]
		}
		if !ok {
			continue
		}
		var set struct {
			Elem []any `json:"elem"`
		}
		if err := json.Unmarshal(raw, &set); err != nil {
			return nil, err
		}
		for _, e := range set.Elem {
			var mark any
			if kv, ok := e.([]any); ok && len(kv) == 2 { // a map's [key, mark]
				e, mark = kv[0], kv[1]
			}
			m, err := ipsetMember(e)
			if err != nil {
				return nil, err
			}
			if v, ok := mark.(float64); ok {
				m += fmt.Sprintf(" skbmark 0x%x", int(v))
			}
			members = append(members, m)
		}
	}
	sort.Strings(members)
	return members, nil
}

// ipsetMember renders one nft element the way ipset prints the member it
// stands for: ip; port; ip,proto:port; ip,proto:port,ip (or net).
func ipsetMember(e any) (string, error) {
	switch v := e.(type) {
	case string:
		return v, nil
	case float64:
		return fmt.Sprint(int(v)), nil
	case map[string]any:
		if p, ok := v["prefix"].(map[string]any); ok {
			return fmt.Sprintf("%v/%v", p["addr"], p["len"]), nil
		}
		parts, ok := v["concat"].([]any)
		if !ok || len(parts) < 3 {
			return "", fmt.Errorf("element %v: not an address, port, prefix or concatenation of 3 or 4", e)
		}
		var s []string
		for _, p := range parts {
			m, err := ipsetMember(p)
			if err != nil {
				return "", err
			}
			s = append(s, m)
		}
		out := s[0] + "," + s[1] + ":" + s[2]
		if len(s) == 4 {
			out += "," + s[3]
		}
		return out, nil
	}
	return "", fmt.Errorf("element %v: unknown form", e)
}

// NFTList returns `nft list table FAMILY ipvs-proxy`, "" if there is no
// such table.
func NFTList(t testing.TB, family string) string {
	t.Helper()
	out, err := Output(NFTBin, "list", "table", family, "ipvs-proxy")
	if err != nil {
		if strings.Contains(out, "No such file or directory") {
			return ""
		}
		t.Fatal(err)
	}
	return out
}
