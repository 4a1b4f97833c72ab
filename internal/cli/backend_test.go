package cli

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fake"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

func TestChooseRulesBackend(t *testing.T) {
	cfg := config.Default()
	fresh := fake.New(netip.MustParseAddr("10.0.0.1"))
	if b, why := chooseRulesBackend(fresh.Interfaces(), cfg); b != state.BackendNFTables || !strings.Contains(why, "IPv4") {
		t.Errorf("fresh node: %s (%s), want nftables", b, why)
	}
	if fresh.NFTables.Dump(state.IPv4) != "" {
		t.Error("choosing wrote the table: --check must not")
	}

	kubeProxy := fake.New(netip.MustParseAddr("10.0.0.1"))
	if err := kubeProxy.IPTables.Restore(state.IPv4, "*nat\n:KUBE-SERVICES - [0:0]\n-A PREROUTING -j KUBE-SERVICES\nCOMMIT\n"); err != nil {
		t.Fatal(err)
	}
	if b, why := chooseRulesBackend(kubeProxy.Interfaces(), cfg); b != state.BackendIPTables || !strings.Contains(why, "nat/KUBE-SERVICES") {
		t.Errorf("node with kube-proxy's chains: %s (%s), want iptables naming the chain", b, why)
	}

	noNFT := fresh.Interfaces()
	noNFT.NFTables = nil
	if b, why := chooseRulesBackend(noNFT, cfg); b != state.BackendIPTables || !strings.Contains(why, "nft") {
		t.Errorf("node without nft: %s (%s), want iptables", b, why)
	}
}

func TestRulesBackendFlag(t *testing.T) {
	f, err := parseRunFlags([]string{"--rules-backend", "nftables"}, nil)
	if err != nil || f.rulesBackend != state.BackendNFTables {
		t.Fatalf("--rules-backend nftables: %v %v", f, err)
	}
	if _, err := parseRunFlags([]string{"--rules-backend", "ebpf"}, &strings.Builder{}); err == nil {
		t.Error("--rules-backend ebpf accepted")
	}
}
