package main

import (
	"regexp"
	"slices"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// kernelState is what a daemon left in its namespace, as the standard tools
// print it, one normalised line per object, by part.
type kernelState map[string][]string

// The parts of a kernel state.
const (
	partIPVS      = "IPVS (ipvsadm -Sn)"
	partSets      = "ipsets (ipset save)"
	partAddresses = "addresses of kube-ipvs0"
	partRules     = "iptables rules (iptables-save)"
)

// statePartOrder is the order the report lists the parts in.
var statePartOrder = []string{partIPVS, partSets, partAddresses, partRules}

// counters are iptables-save's packet counters, and ipset's set headers
// carry sizes the two daemons choose differently on purpose.
var (
	counters  = regexp.MustCompile(`\[\d+:\d+\]`)
	setHeader = regexp.MustCompile(`^(create \S+ \S+).*$`)
)

// snapshotState reads namespace ns.
func snapshotState(ns string) (kernelState, error) {
	s := kernelState{}
	read := []struct {
		part string
		bin  string
		args []string
		norm func(string) string
	}{
		{partIPVS, framework.IPVSAdmBin, []string{"-Sn"}, nil},
		{partSets, framework.IPSetBin, []string{"save"}, func(l string) string { return setHeader.ReplaceAllString(l, "$1") }},
		{partAddresses, framework.IPBin, []string{"-o", "-4", "addr", "show", "dev", state.LinkName}, func(l string) string {
			f := strings.Fields(l)
			if len(f) > 3 {
				return f[3]
			}
			return l
		}},
		{partRules, "/usr/sbin/iptables-save", nil, func(l string) string {
			if strings.HasPrefix(l, "#") {
				return ""
			}
			return counters.ReplaceAllString(l, "")
		}},
	}
	for _, r := range read {
		out, err := run(ns, r.bin, r.args...)
		if err != nil {
			return nil, err
		}
		for _, l := range nonEmptyLines(out) {
			if r.norm != nil {
				l = strings.TrimSpace(r.norm(l))
			}
			if l != "" {
				s[r.part] = append(s[r.part], l)
			}
		}
		slices.Sort(s[r.part])
	}
	return s, nil
}

// StateDiff is one part of two kernel states compared.
type StateDiff struct {
	Part string
	// Same counts the lines in both; OnlyOurs and OnlyKubeProxy the rest,
	// with a few examples of each.
	Same, OnlyOurs, OnlyKubeProxy   int
	OursExamples, KubeProxyExamples []string
}

// diffExamples is how many lines of each side a diff keeps.
const diffExamples = 8

// diffStates compares ipvs-proxy's state with kube-proxy's, part by part.
func diffStates(ours, kp kernelState) []StateDiff {
	var out []StateDiff
	for _, part := range statePartOrder {
		a, b := ours[part], kp[part]
		d := StateDiff{Part: part}
		i, j := 0, 0
		for i < len(a) || j < len(b) {
			switch {
			case j == len(b) || (i < len(a) && a[i] < b[j]):
				d.OnlyOurs++
				if len(d.OursExamples) < diffExamples {
					d.OursExamples = append(d.OursExamples, a[i])
				}
				i++
			case i == len(a) || b[j] < a[i]:
				d.OnlyKubeProxy++
				if len(d.KubeProxyExamples) < diffExamples {
					d.KubeProxyExamples = append(d.KubeProxyExamples, b[j])
				}
				j++
			default:
				d.Same++
				i++
				j++
			}
		}
		out = append(out, d)
	}
	return out
}
