package config

import (
	"fmt"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// RulesAuto asks for the nftables backend where the node has no iptables
// rules of kube-proxy's (or of ipvs-proxy's iptables backend) and the
// kernel has what the nftables table needs; otherwise iptables.
const RulesAuto state.RulesBackend = "auto"

// ExtensionKey is the top-level section of the file that holds ipvs-proxy's
// own settings, which KubeProxyConfiguration has no field for:
//
//	ipvsProxy:
//	  rulesBackend: nftables   # iptables (default), nftables or auto
const ExtensionKey = "ipvsProxy"

// ParseRulesBackend checks a rules backend name.
func ParseRulesBackend(s string) (state.RulesBackend, error) {
	switch b := state.RulesBackend(s); b {
	case state.BackendIPTables, state.BackendNFTables, RulesAuto:
		return b, nil
	}
	return "", fmt.Errorf("%q: want iptables, nftables or auto", s)
}

// extension takes ipvs-proxy's own section out of the decoded file, so that
// kube-proxy's strict decoding does not warn about it, and applies it.
func extension(raw map[string]any, c *Config) (bool, error) {
	ext, ok := raw[ExtensionKey]
	if !ok {
		return false, nil
	}
	delete(raw, ExtensionKey)
	m, ok := ext.(map[string]any)
	if !ok {
		return true, fmt.Errorf("%s: want a mapping", ExtensionKey)
	}
	for k, v := range m {
		switch k {
		case "rulesBackend":
			s, _ := v.(string)
			b, err := ParseRulesBackend(s)
			if err != nil {
				return true, fmt.Errorf("%s.rulesBackend: %w", ExtensionKey, err)
			}
			c.RulesBackend = b
		default:
			return true, fmt.Errorf("%s.%s: unknown field (known: rulesBackend)", ExtensionKey, k)
		}
	}
	return true, nil
}
