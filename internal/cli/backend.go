package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/ipvs-proxy/ipvs-proxy/internal/apply"
	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/nftables"
	"github.com/ipvs-proxy/ipvs-proxy/internal/rules"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// rulesBackendFlag parses --rules-backend.
type rulesBackendFlag struct{ b *state.RulesBackend }

func (f *rulesBackendFlag) String() string { return string(*f.b) }
func (f *rulesBackendFlag) Type() string   { return "backend" }
func (f *rulesBackendFlag) Set(s string) error {
	b, err := config.ParseRulesBackend(s)
	if err == nil {
		*f.b = b
	}
	return err
}

// openNFTables opens nft for the rules backend rb: the nftables backend
// cannot run without it; the others use it, when it is there, to remove
// what the nftables backend left.
func openNFTables(log *zap.Logger, rb state.RulesBackend) (kernel.NFTables, error) {
	n, err := nftables.Open()
	switch {
	case err == nil:
		return n, nil
	case rb == state.BackendNFTables:
		return nil, fmt.Errorf("rules backend nftables: %w (install nftables: the nft binary, version 1.0.1 or later)", err)
	}
	log.Info("nft is not usable: nftables tables of ipvs-proxy, if any, are left alone", zap.Error(err))
	return nil, nil
}

// ipsetIfLoaded lists ipsets only where the ip_set module is loaded: the
// nftables backend and cleanup look for ipsets the iptables backend left,
// and listing would load the module (which some distributions no longer
// maintain) where there cannot be any.
type ipsetIfLoaded struct{ kernel.IPSet }

func (s ipsetIfLoaded) List() (map[string]*state.Set, error) {
	if _, err := os.Stat("/sys/module/ip_set"); errors.Is(err, fs.ErrNotExist) {
		return map[string]*state.Set{}, nil
	}
	return s.IPSet.List()
}

// chooseRulesBackend decides what auto means on this node: nftables where
// the node has no iptables chains of kube-proxy's (nor of ipvs-proxy's
// iptables backend, which uses the same names) and the kernel accepts the
// whole nftables table; iptables otherwise. It says why.
func chooseRulesBackend(k kernel.Kernel, cfg *config.Config) (state.RulesBackend, string) {
	if k.NFTables == nil {
		return state.BackendIPTables, "nft is not usable on this node"
	}
	for _, f := range []state.Family{state.IPv4, state.IPv6} {
		save, err := k.IPTables.Save(f)
		if err != nil {
			continue // no iptables tools: no rules that ipvs-proxy could take over
		}
		var chains []string
		for _, c := range rules.Parse(save).Chains {
			chains = append(chains, c.Table+"/"+c.Name)
		}
		if len(chains) > 0 {
			return state.BackendIPTables, fmt.Sprintf("the node has iptables chains of kube-proxy's (IPv%d: %s)", f, strings.Join(chains, ", "))
		}
	}
	addrs, err := k.Link.NodeAddresses()
	if err != nil {
		return state.BackendIPTables, fmt.Sprintf("cannot list the node's addresses: %v", err)
	}
	c := *cfg
	c.RulesBackend = state.BackendNFTables
	node := desired.Node{Addresses: addrs}
	if len(node.Families()) == 0 {
		node.Addresses = []netip.Addr{netip.MustParseAddr("127.0.0.1")} // check the IPv4 table at least
	}
	if err := apply.CheckNFTables(k, desired.Base(desired.NewInput(&c, node))); err != nil {
		return state.BackendIPTables, fmt.Sprintf("the kernel does not accept the nftables table: %v", err)
	}
	fams := []string{}
	for _, f := range node.Families() {
		fams = append(fams, fmt.Sprintf("IPv%d", f))
	}
	slices.Sort(fams)
	return state.BackendNFTables, fmt.Sprintf("no iptables chains of kube-proxy's, and the kernel accepts the nftables table (%s)", strings.Join(fams, ", "))
}
