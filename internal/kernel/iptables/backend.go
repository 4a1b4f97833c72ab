package iptables

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Backend is an iptables backend: "nft" or "legacy", or "" for whatever the
// plain iptables-save and iptables-restore in PATH use.
type Backend string

// The backends.
const (
	BackendDefault Backend = ""
	BackendNFT     Backend = "nft"
	BackendLegacy  Backend = "legacy"
)

// ConfigFor returns the tools of a backend: iptables-nft-save and so on.
func ConfigFor(b Backend) Config {
	if b == BackendDefault {
		return Config{}
	}
	s := "-" + string(b)
	return Config{
		IPv4: Tools{Save: "iptables" + s + "-save", Restore: "iptables" + s + "-restore"},
		IPv6: Tools{Save: "ip6tables" + s + "-save", Restore: "ip6tables" + s + "-restore"},
	}
}

// Detect picks the backend the node already uses, the way kube-proxy's
// iptables-wrapper does: the one where kubelet left its KUBE-IPTABLES-HINT or
// KUBE-KUBELET-CANARY chain, else the one holding more rules, else the
// default. In a container the tools' default is not necessarily the node's,
// and rules split between two backends do not work.
func Detect(ctx context.Context) (Backend, string) {
	count := func(b Backend) (rules int, hint bool) {
		for _, tables := range [][]string{{"-t", "mangle"}, {"-t", "nat"}, {"-t", "filter"}} {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			out, err := exec.CommandContext(cctx, "iptables-"+string(b)+"-save", tables...).Output()
			cancel()
			if err != nil {
				return -1, false
			}
			for _, line := range strings.Split(string(out), "\n") {
				switch {
				case strings.HasPrefix(line, ":KUBE-IPTABLES-HINT"), strings.HasPrefix(line, ":KUBE-KUBELET-CANARY"):
					hint = true
				case strings.HasPrefix(line, "-A "):
					rules++
				}
			}
		}
		return rules, hint
	}
	nft, nftHint := count(BackendNFT)
	legacy, legacyHint := count(BackendLegacy)
	switch {
	case nftHint:
		return BackendNFT, "kubelet's chains are in nft"
	case legacyHint:
		return BackendLegacy, "kubelet's chains are in legacy"
	case nft < 0 && legacy < 0:
		return BackendDefault, "neither iptables-nft-save nor iptables-legacy-save runs: using iptables-save"
	case legacy > nft:
		return BackendLegacy, fmt.Sprintf("legacy holds more rules (%d vs %d)", legacy, nft)
	case nft > 0:
		return BackendNFT, fmt.Sprintf("nft holds more rules (%d vs %d)", nft, legacy)
	}
	return BackendDefault, "no rules in either backend: using iptables-save"
}
