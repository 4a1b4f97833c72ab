package nft_test

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/rules/nft"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

func TestKeysRoundTrip(t *testing.T) {
	a := netip.MustParseAddr
	for _, tt := range []struct {
		typ   state.SetType
		entry state.SetEntry
		key   string
	}{
		{state.HashIP, state.SetEntry{Addr: a("10.96.0.10")}, "10.96.0.10"},
		{state.HashIPPort, state.SetEntry{Addr: a("fd00::a"), Proto: state.SCTP, Port: 9}, "fd00::a . sctp . 9"},
		{state.HashIPPortIP, state.SetEntry{Addr: a("10.244.0.5"), Proto: state.TCP, Port: 8080, Addr2: a("10.244.0.5")}, "10.244.0.5 . tcp . 8080 . 10.244.0.5"},
		{state.HashIPPortNet, state.SetEntry{Addr: a("10.96.0.10"), Proto: state.UDP, Port: 53, Net: netip.MustParsePrefix("10.0.0.0/8")}, "10.96.0.10 . udp . 53 . 10.0.0.0/8"},
		{state.BitmapPort, state.SetEntry{Port: 30080}, "30080"},
	} {
		key := nft.Key(tt.typ, tt.entry)
		if got := strings.Join(key, " . "); got != tt.key {
			t.Errorf("%s: key %q, want %q", tt.typ, got, tt.key)
		}
		back, err := nft.ParseKey(tt.typ, key)
		if err != nil || back != tt.entry {
			t.Errorf("%s: parsed back %+v, %v; want %+v", tt.typ, back, err, tt.entry)
		}
	}
	// nft lists a one-address prefix as the address; the protocol by number in some versions
	if e, err := nft.ParseKey(state.HashIPPortNet, []string{"10.96.0.10", "6", "80", "10.0.0.1"}); err != nil ||
		e.Net != netip.MustParsePrefix("10.0.0.1/32") || e.Proto != state.TCP {
		t.Errorf("bare address as a prefix: %+v %v", e, err)
	}
	for _, bad := range [][]string{{"10.96.0.10", "tcp"}, {"x"}, {"10.96.0.10", "icmp", "80"}, {"10.96.0.10", "tcp", "70000"}} {
		if _, err := nft.ParseKey(state.HashIPPort, bad); err == nil {
			t.Errorf("ParseKey(%q) succeeded", bad)
		}
	}
}

// Every set a rule names is a set of the catalog, in both families, and
// every chain a rule jumps to is in the table.
func TestTableNamesOnlyItsSetsAndChains(t *testing.T) {
	names := nft.NewNames(desired.SetSpecs(state.IPv4), desired.SetSpecs(state.IPv6))
	setRef, jumpRef := regexp.MustCompile(`@([a-z0-9-]+)`), regexp.MustCompile(`jump ([a-z0-9-]+)`)
	for _, f := range []state.Family{state.IPv4, state.IPv6} {
		cfg := config.Default()
		table := nft.Build(nft.NewParams(cfg, f, nil))
		for _, c := range table.Chains {
			for _, r := range c.Rules {
				if r.ID == "" || strings.Contains(r.Text, `"`) && !strings.Contains(r.Text, "iifname") {
					t.Errorf("rule %q: ID %q", r.Text, r.ID)
				}
				for _, m := range setRef.FindAllStringSubmatch(r.Text, -1) {
					if _, ok := names.Spec(f, m[1]); !ok {
						t.Errorf("IPv%d chain %s: rule %q names set %s, which stands for no ipset", f, c.Name, r.Text, m[1])
					}
				}
				for _, m := range jumpRef.FindAllStringSubmatch(r.Text, -1) {
					if _, ok := table.Chain(m[1]); !ok {
						t.Errorf("chain %s jumps to %s, not in the table", c.Name, m[1])
					}
				}
			}
		}
	}
}

func TestLocalDetector(t *testing.T) {
	cfg := config.Default()
	cfg.ClusterCIDRs = []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:244::/48")}
	if p := nft.NewParams(cfg, state.IPv6, nil); p.NotLocal != "ip6 saddr != fd00:244::/48" {
		t.Errorf("cluster CIDR, IPv6: %q", p.NotLocal)
	}
	cfg.DetectLocal = config.DetectLocal{Mode: config.LocalModeInterfaceNamePrefix, InterfaceNamePrefix: "veth"}
	if p := nft.NewParams(cfg, state.IPv4, nil); p.NotLocal != `iifname != "veth*"` {
		t.Errorf("interface prefix: %q", p.NotLocal)
	}
	cfg.DetectLocal = config.DetectLocal{Mode: config.LocalModeBridgeInterface, BridgeInterface: `cbr0" accept`}
	if p := nft.NewParams(cfg, state.IPv4, nil); p.NotLocal != "" {
		t.Errorf("a bridge name that is no interface name reached a rule: %q", p.NotLocal)
	}
	cfg.MasqueradeAll = true
	var rules []string
	for _, c := range nft.Build(nft.NewParams(cfg, state.IPv4, nil)).Chains {
		for _, r := range c.Rules {
			rules = append(rules, r.Text)
		}
	}
	if !strings.Contains(strings.Join(rules, "\n"), "ip daddr . meta l4proto . th dport @cluster-ip jump mark-for-masquerade") {
		t.Errorf("masqueradeAll: no unconditional cluster IP mark:\n%s", strings.Join(rules, "\n"))
	}
}
