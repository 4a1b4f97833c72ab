package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
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
	out, err := run("", proxyBin, "plan", "--manifests", w.Dir, "--node-name", workload.NodeName, "--node-ip", framework.NodeIP)
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

// ToolsRun is one load of the whole state by the standard tools into a
// fresh namespace.
type ToolsRun struct {
	IP, IPSet, IPVSADM, Total time.Duration
	// CPU is the three processes' user and system time together.
	CPU framework.CPUTimes
}

// loadWithTools times ip -batch, ipset restore and ipvsadm -R, one after the
// other, in a fresh namespace, and checks that the kernel holds the result.
func loadWithTools(in *toolInputs, ns string) (ToolsRun, error) {
	var r ToolsRun
	if _, err := framework.NewNodeNamespace(ns); err != nil {
		return r, err
	}
	defer framework.DeleteNamespace(ns)
	for _, step := range []struct {
		input string
		took  *time.Duration
		bin   string
		args  []string
	}{
		{in.IPPath, &r.IP, framework.IPBin, []string{"-batch", "-"}},
		{in.IPSetPath, &r.IPSet, framework.IPSetBin, []string{"restore"}},
		{in.IPVSPath, &r.IPVSADM, framework.IPVSAdmBin, []string{"-R"}},
	} {
		f, err := os.Open(step.input)
		if err != nil {
			return r, err
		}
		t, err := framework.RunTimed(framework.Command{Bin: step.bin, Args: step.args, NetNS: ns, Stdin: f}, time.Hour)
		f.Close()
		if err != nil {
			return r, err
		}
		*step.took = t.Wall
		r.Total += t.Wall
		r.CPU.User += t.CPU.User
		r.CPU.System += t.CPU.System
	}
	return r, checkCounts(ns, 0, in)
}

// checkCounts compares what a namespace holds with the plan's counts: the
// virtual and real servers (of process pid's namespace, or ns's with pid 0),
// the set members and the addresses. A load that left anything else is a
// failed measurement, not a result.
func checkCounts(ns string, pid int, in *toolInputs) error {
	var vs, rs int
	err := framework.InNamespace(ns, func() error {
		var err error
		vs, rs, err = ipvsCounts(pid)
		return err
	})
	if err != nil {
		return err
	}
	var problems []string
	if vs != in.VirtualServers || rs != in.RealServers {
		problems = append(problems, fmt.Sprintf("%d virtual and %d real servers, planned %d and %d", vs, rs, in.VirtualServers, in.RealServers))
	}
	saved, err := run(ns, framework.IPSetBin, "save")
	if err != nil {
		return err
	}
	if m := strings.Count(saved, "\nadd "); m != in.Members {
		problems = append(problems, fmt.Sprintf("%d set members, planned %d", m, in.Members))
	}
	addrs, err := run(ns, framework.IPBin, "-o", "addr", "show", "dev", state.LinkName)
	if err != nil {
		return err
	}
	if a := len(nonEmptyLines(addrs)); a != in.Addresses {
		problems = append(problems, fmt.Sprintf("%d addresses on %s, planned %d", a, state.LinkName, in.Addresses))
	}
	if len(problems) > 0 {
		return fmt.Errorf("namespace %s holds %s", ns, strings.Join(problems, "; "))
	}
	return nil
}
