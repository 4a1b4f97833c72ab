package iptables

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
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
//
// Each backend is read with one iptables-save run of all its tables, both at
// once: a process costs a few hundred milliseconds on an emulated CPU, and
// this is on the way to the first sync.
func Detect(ctx context.Context) (Backend, string) {
	var nft, legacy int
	var nftHint, legacyHint bool
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); nft, nftHint = countRules(ctx, BackendNFT) }()
	go func() { defer wg.Done(); legacy, legacyHint = countRules(ctx, BackendLegacy) }()
	wg.Wait()
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

// countRules runs iptables-<b>-save once and counts the rules of its mangle,
// nat and filter tables (the ones kubelet and kube-proxy use), and whether
// kubelet's hint chains are there; -1 if the tool does not run.
func countRules(ctx context.Context, b Backend) (rules int, hint bool) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, "iptables-"+string(b)+"-save").Output()
	if err != nil {
		return -1, false
	}
	return parseRuleCount(string(out))
}

// parseRuleCount reads iptables-save output for countRules.
func parseRuleCount(save string) (rules int, hint bool) {
	counted := false
	for _, line := range strings.Split(save, "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			t := strings.TrimSpace(line[1:])
			counted = t == "mangle" || t == "nat" || t == "filter"
		case !counted:
		case strings.HasPrefix(line, ":KUBE-IPTABLES-HINT"), strings.HasPrefix(line, ":KUBE-KUBELET-CANARY"):
			hint = true
		case strings.HasPrefix(line, "-A "):
			rules++
		}
	}
	return rules, hint
}
