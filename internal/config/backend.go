package config

import (
	"fmt"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// RulesAuto asks for the nftables backend where the node has no iptables
// rules of kube-proxy's (or of ipvs-proxy's iptables backend) and the
// kernel has what the nftables table needs; otherwise iptables.
const RulesAuto state.RulesBackend = "auto"

// ParseRulesBackend checks a rules backend name.
func ParseRulesBackend(s string) (state.RulesBackend, error) {
	switch b := state.RulesBackend(s); b {
	case state.BackendIPTables, state.BackendNFTables, RulesAuto:
		return b, nil
	}
	return "", fmt.Errorf("%q: want iptables, nftables or auto", s)
}
