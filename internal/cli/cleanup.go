package cli

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"

	"github.com/spf13/pflag"

	"github.com/ipvs-proxy/ipvs-proxy/internal/apply"
	"github.com/ipvs-proxy/ipvs-proxy/internal/plan"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// cleanupCmd removes everything ipvs-proxy (or kube-proxy's ipvs mode, which
// uses the same names) programmed: its virtual servers, kube-ipvs0, its
// ipsets and iptables chains. Virtual servers that are not ours (on other
// addresses, or inside ipvs.excludeCIDRs) and other chains and sets stay.
func cleanupCmd(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("cleanup", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgFile := fs.String("config", "", "KubeProxyConfiguration file (for ipvs.excludeCIDRs)")
	dryRun := fs.Bool("dry-run", false, "print what would be removed, change nothing")
	verbose := fs.BoolP("verbose", "v", false, "print every operation")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg, err := loadConfig(*cfgFile, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "cleanup: %v\n", err)
		return 1
	}
	log, _ := newLogger(stderr, "text", 0)
	k, closeKernel, err := openKernel(log, "auto")
	if err != nil {
		fmt.Fprintf(stderr, "cleanup: %v\n", err)
		return 1
	}
	defer closeKernel()
	observed, err := apply.Observe(k, state.New(), true)
	if observed == nil {
		fmt.Fprintf(stderr, "cleanup: %v\n", err)
		return 1
	}
	addrs, err := k.Link.NodeAddresses()
	if err != nil {
		fmt.Fprintf(stderr, "cleanup: cannot list the node's addresses (%v): NodePort virtual servers are left in place\n", err)
	}
	nodeAddrs := map[netip.Addr]bool{}
	for _, a := range addrs {
		nodeAddrs[a] = true
	}
	pl := plan.Diff(state.New(), observed, plan.Options{Cleanup: true, ExcludeCIDRs: cfg.IPVS.ExcludeCIDRs, NodeAddresses: nodeAddrs})
	if *dryRun || *verbose {
		for _, op := range pl.Ops {
			fmt.Fprintln(stdout, op.String())
		}
	}
	for _, f := range []state.Family{state.IPv4, state.IPv6} {
		for _, chain := range slices.Sorted(maps.Keys(observed.Rules[f].Shared)) {
			fmt.Fprintf(stdout, "left chain %s (IPv%d) in place: another component still uses it (%s)\n", chain, f, observed.Rules[f].Shared[chain])
		}
	}
	if *dryRun {
		return 0
	}
	res := apply.New(k).Apply(pl)
	for _, e := range res.Errors {
		fmt.Fprintf(stderr, "cleanup: %v\n", e)
	}
	c := pl.Counts()
	fmt.Fprintf(stdout, "removed %d virtual servers, %d addresses, %d ipsets, iptables rules of %d families%s\n",
		c[plan.DelVS], c[plan.DelAddress], c[plan.DestroySet], c[plan.DeleteRules], map[bool]string{true: ", and " + state.LinkName, false: ""}[c[plan.DeleteLink] > 0])
	if res.Failed() > 0 {
		return 1
	}
	return 0
}
