package cli

import (
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	logsapi "k8s.io/component-base/logs/api/v1"

	"github.com/ipvs-proxy/ipvs-proxy/internal/apply"
	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/plan"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// cleanupCommand removes everything ipvs-proxy (or kube-proxy's ipvs mode,
// which uses the same names) programmed, with either rules backend: its
// virtual servers, kube-ipvs0, its ipsets and iptables chains, its nftables
// tables. Virtual servers that are not ours (on other
// addresses, or inside ipvs.excludeCIDRs) and other chains and sets stay.
func (a *app) cleanupCommand(stdout, stderr io.Writer) *cobra.Command {
	var f cleanupFlags
	f.logging = logsapi.NewLoggingConfiguration()
	cmd := &cobra.Command{
		Use:   "cleanup [--dry-run] [--config FILE]",
		Short: "Remove everything ipvs-proxy programmed (IPVS, kube-ipvs0, KUBE-* sets and chains, nftables tables)",
		Long: `Removes what ipvs-proxy, or kube-proxy's ipvs mode, programmed: its virtual servers, the kube-ipvs0 link, its
ipsets and iptables chains, its nftables tables ip/ip6 ipvs-proxy. Virtual servers on other addresses or inside ipvs.excludeCIDRs, and other sets and
chains, stay.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runCleanup(cmd.Flags(), &f, stdout, stderr) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.cfgFile, "config", "", "KubeProxyConfiguration file (for ipvs.excludeCIDRs)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "print what would be removed, change nothing")
	fs.BoolVar(&f.verbose, "verbose", false, "print every operation")
	addLoggingFlags(fs, f.logging)
	_ = cmd.MarkFlagFilename("config", "yaml", "yml", "json", "conf")
	return cmd
}

type cleanupFlags struct {
	cfgFile         string
	dryRun, verbose bool
	logging         *logsapi.LoggingConfiguration
}

func (a *app) runCleanup(fs *pflag.FlagSet, f *cleanupFlags, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(f.cfgFile, stderr)
	if err != nil {
		return fail(exitError, "%v", err)
	}
	logging, err := mergeLogging(fs, cfg.Logging)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	fg, _, err := loggingFeatureGate(cfg.FeatureGates)
	if err != nil {
		return fail(exitError, "%v", err)
	}
	log, err := setupLogging(&logging, fg, stderr)
	if err != nil {
		return fail(exitError, "%v", err)
	}
	defer func() { _ = log.Sync() }()
	k, closeKernel, err := a.openKernel(log, "auto", config.RulesAuto)
	if err != nil {
		return fail(exitError, "%v", err)
	}
	defer closeKernel()
	return cleanupKernel(k, cfg, f, stdout, stderr)
}

// cleanupKernel plans the removal of everything of ours and applies it.
func cleanupKernel(k kernel.Kernel, cfg *config.Config, f *cleanupFlags, stdout, stderr io.Writer) error {
	observed, err := apply.Observe(k, state.New(), true)
	if observed == nil {
		return fail(exitError, "%v", err)
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
	if f.dryRun || f.verbose {
		for _, op := range pl.Ops {
			fmt.Fprintln(stdout, op.String())
		}
	}
	for _, fam := range []state.Family{state.IPv4, state.IPv6} {
		for _, chain := range slices.Sorted(maps.Keys(observed.Rules[fam].Shared)) {
			fmt.Fprintf(stdout, "left chain %s (IPv%d) in place: another component still uses it (%s)\n", chain, fam, observed.Rules[fam].Shared[chain])
		}
	}
	if f.dryRun {
		return nil
	}
	res := apply.New(k).Apply(pl)
	for _, e := range res.Errors {
		fmt.Fprintf(stderr, "cleanup: %v\n", e)
	}
	c := pl.Counts()
	fmt.Fprintf(stdout, "removed %d virtual servers, %d addresses, %d ipsets, iptables rules of %d families, nftables tables of %d families%s\n",
		c[plan.DelVS], c[plan.DelAddress], c[plan.DestroySet], c[plan.DeleteRules], c[plan.NFTDeleteTable], map[bool]string{true: ", and " + state.LinkName, false: ""}[c[plan.DeleteLink] > 0])
	if res.Failed() > 0 {
		return fail(exitError, "%d operations failed", res.Failed())
	}
	return nil
}
