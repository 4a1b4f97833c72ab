package desired

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, 0, len(s))
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

// TestNodePortAddressesPerFamily follows kube-proxy's NewNodePortAddresses and
// TestGetNodeIPs: nodePortAddresses applies per IP family, and a family with
// no CIDR in the list serves NodePorts on all of its addresses; "primary"
// means the Node's first address of each family (InternalIP before
// ExternalIP), and a family without one falls back to all of its addresses.
func TestNodePortAddressesPerFamily(t *testing.T) {
	host := addrs("10.0.0.1", "192.168.1.10", "127.0.0.1", "fd00::1", "2001:db8::1", "::1")
	cases := []struct {
		name     string
		values   []string
		primary  []netip.Addr
		want4    []string
		want6    []string
		noFamily bool
	}{
		{name: "unset: every address", want4: []string{"10.0.0.1", "192.168.1.10"}, want6: []string{"2001:db8::1", "fd00::1"}},
		{name: "0.0.0.0/0 keeps every IPv6 address", values: []string{"0.0.0.0/0"},
			want4: []string{"10.0.0.1", "192.168.1.10"}, want6: []string{"2001:db8::1", "fd00::1"}},
		{name: "::/0 keeps every IPv4 address", values: []string{"::/0"},
			want4: []string{"10.0.0.1", "192.168.1.10"}, want6: []string{"2001:db8::1", "fd00::1"}},
		{name: "an IPv4 CIDR limits IPv4 only", values: []string{"192.168.0.0/16"},
			want4: []string{"192.168.1.10"}, want6: []string{"2001:db8::1", "fd00::1"}},
		{name: "an IPv6 CIDR limits IPv6 only", values: []string{"fd00::/64"},
			want4: []string{"10.0.0.1", "192.168.1.10"}, want6: []string{"fd00::1"}},
		{name: "a CIDR of each family", values: []string{"10.0.0.0/8", "2001:db8::/32"},
			want4: []string{"10.0.0.1"}, want6: []string{"2001:db8::1"}},
		{name: "a CIDR matching nothing of its family", values: []string{"172.16.0.0/12"},
			want6: []string{"2001:db8::1", "fd00::1"}},
		{name: "primary, dual-stack Node", values: []string{"primary"}, primary: addrs("192.168.1.10", "10.0.0.1", "fd00::1"),
			want4: []string{"192.168.1.10"}, want6: []string{"fd00::1"}},
		{name: "primary, IPv6 Node first", values: []string{"primary"}, primary: addrs("2001:db8::1", "10.0.0.1"),
			want4: []string{"10.0.0.1"}, want6: []string{"2001:db8::1"}},
		{name: "primary, IPv4-only Node: IPv6 falls back to every address", values: []string{"primary"}, primary: addrs("10.0.0.1"),
			want4: []string{"10.0.0.1"}, want6: []string{"2001:db8::1", "fd00::1"}},
		{name: "primary, Node without addresses: every address", values: []string{"primary"},
			want4: []string{"10.0.0.1", "192.168.1.10"}, want6: []string{"2001:db8::1", "fd00::1"}},
		{name: "primary, loopback Node address is no primary", values: []string{"primary"}, primary: addrs("127.0.0.1", "fd00::1"),
			want4: []string{"10.0.0.1", "192.168.1.10"}, want6: []string{"fd00::1"}},
		{name: "loopback CIDR serves nothing on loopback", values: []string{"127.0.0.0/8"}, want6: []string{"2001:db8::1", "fd00::1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := config.Default()
			if err := cfg.SetNodePortAddresses(c.values); err != nil {
				t.Fatal(err)
			}
			in := NewInput(cfg, Node{Name: "n", Addresses: host, PrimaryAddresses: c.primary})
			for _, f := range []struct {
				fam  state.Family
				want []string
			}{{state.IPv4, c.want4}, {state.IPv6, c.want6}} {
				var got []string
				for _, a := range in.NodePortAddresses(f.fam) {
					got = append(got, a.String())
				}
				if !slices.Equal(got, f.want) {
					t.Errorf("IPv%d NodePort addresses %v, want %v", f.fam, got, f.want)
				}
			}
		})
	}
}
