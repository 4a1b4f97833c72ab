package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/ipvs-proxy/ipvs-proxy/internal/apply"
	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/plan"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// cleanupCmd removes everything ipvs-proxy (or kube-proxy's ipvs mode, which
// uses the same names) programmed, with either rules backend: its virtual
// servers, kube-ipvs0, its ipsets and iptables chains, its nftables tables. Virtual servers that are not ours (on other
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
	k, closeKernel, err := openKernel(log, "auto", config.RulesAuto)
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
	pl := plan.Diff(state.New(), observed, plan.Options{Cleanup: true, ExcludeCIDRs: cfg.IPVS.ExcludeCIDRs})
	if *dryRun || *verbose {
		for _, op := range pl.Ops {
			fmt.Fprintln(stdout, op.String())
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
	fmt.Fprintf(stdout, "removed %d virtual servers, %d addresses, %d ipsets, iptables rules of %d families, nftables tables of %d families%s\n",
		c[plan.DelVS], c[plan.DelAddress], c[plan.DestroySet], c[plan.DeleteRules], c[plan.NFTDeleteTable], map[bool]string{true: ", and " + state.LinkName, false: ""}[c[plan.DeleteLink] > 0])
	if res.Failed() > 0 {
		return 1
	}
	return 0
}
