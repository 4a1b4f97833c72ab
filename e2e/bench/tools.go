package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	"github.com/ipvs-proxy/ipvs-proxy/internal/testenv/workload"
)

// toolInputs are the desired state of a workload as the standard tools load
// it, from `ipvs-proxy plan`: ipvsadm -R input, ipset restore input (the
// sets' create lines, then the members) and ip -batch input (kube-ipvs0 and
// its addresses).
type toolInputs struct {
	IPVSPath, IPSetPath, IPPath string
	// Lines of each input: the tools send one netlink request per line.
	IPVSLines, IPSetLines, IPLines int
	// Counts of the desired objects.
	VirtualServers, RealServers, Members, Addresses int
}

// planInputs runs `ipvs-proxy plan` for the workload and writes the tools'
// inputs next to it.
func planInputs(proxyBin string, w *manifests, outDir string) (*toolInputs, error) {
	out, err := run("", proxyBin, "plan", "--manifests", w.Dir, "--node-name", workload.NodeName, "--node-ip", nodeIP)
	if err != nil {
		return nil, err
	}
	sections := strings.SplitN(out, "\n\n", 3)
	if len(sections) != 3 {
		return nil, fmt.Errorf("ipvs-proxy plan printed %d sections, want 3", len(sections))
	}
	in := &toolInputs{
		IPVSPath:  filepath.Join(outDir, "ipvsadm.restore"),
		IPSetPath: filepath.Join(outDir, "ipset.restore"),
		IPPath:    filepath.Join(outDir, "ip.batch"),
	}
	ipvs := nonEmptyLines(sections[0])
	for _, l := range ipvs {
		if strings.HasPrefix(l, "-A ") {
			in.VirtualServers++
		} else {
			in.RealServers++
		}
	}
	var sets []string
	for _, spec := range desired.SetSpecs(state.IPv4) {
		sets = append(sets, createLine(spec))
	}
	members := nonEmptyLines(sections[1])
	in.Members = len(members)
	ip := []string{"link add " + state.LinkName + " type dummy"}
	addrs := nonEmptyLines(sections[2])
	in.Addresses = len(addrs)
	for _, a := range addrs {
		ip = append(ip, "addr add "+a+" dev "+state.LinkName)
	}
	in.IPVSLines, in.IPSetLines, in.IPLines = len(ipvs), len(sets)+len(members), len(ip)
	for path, lines := range map[string][]string{in.IPVSPath: ipvs, in.IPSetPath: append(sets, members...), in.IPPath: ip} {
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// createLine is the ipset restore line that creates a set as ipvs-proxy does.
func createLine(s state.SetSpec) string {
	if s.Type == state.BitmapPort {
		return fmt.Sprintf("create %s %s range 0-65535", s.Name, s.Type)
	}
	return fmt.Sprintf("create %s %s family inet hashsize 1024 maxelem 1048576", s.Name, s.Type)
}

func nonEmptyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// ToolsRun is one load of the whole state by the standard tools into a
// fresh namespace.
type ToolsRun struct {
	IP, IPSet, IPVSADM, Total time.Duration
}

// loadWithTools times ip -batch, ipset restore and ipvsadm -R, one after the
// other, in a fresh namespace, and checks that the kernel holds the result.
func loadWithTools(in *toolInputs, ns string) (ToolsRun, error) {
	var r ToolsRun
	n, err := newNodeNS(ns)
	if err != nil {
		return r, err
	}
	defer deleteNS(n.Name)
	if r.IP, err = timedRun("", in.IPPath, ipBin, "-n", n.Name, "-batch", "-"); err != nil {
		return r, err
	}
	if r.IPSet, err = timedRun(n.Name, in.IPSetPath, ipsetBin, "restore"); err != nil {
		return r, err
	}
	if r.IPVSADM, err = timedRun(n.Name, in.IPVSPath, ipvsadmBin, "-R"); err != nil {
		return r, err
	}
	r.Total = r.IP + r.IPSet + r.IPVSADM
	var vs, rs int
	err = inNS(n.Name, func() error {
		var err error
		vs, rs, err = ipvsCounts(0)
		return err
	})
	if err == nil && (vs != in.VirtualServers || rs != in.RealServers) {
		err = fmt.Errorf("after ipvsadm -R the kernel has %d virtual and %d real servers, want %d and %d",
			vs, rs, in.VirtualServers, in.RealServers)
	}
	return r, err
}
