package cli

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/manifest"
)

// planFlags are the flags of `ipvs-proxy plan`.
type planFlags struct {
	dir, cfgFile, nodeName string
	nodeIPs                []string
	labels                 map[string]string
	strict                 bool
}

func planCommand(stdout, stderr io.Writer) *cobra.Command {
	var f planFlags
	cmd := &cobra.Command{
		Use:   "plan --manifests DIR --node-name NAME --node-ip IP[,IP...] [--config FILE]",
		Short: "Print the desired kernel state for a manifest directory, kernel-free",
		Long: `Prints the desired state for the Services, EndpointSlices and Endpoints in a directory: the IPVS part in
ipvsadm -Sn syntax, a blank line, the ipset members in ipset save syntax, a blank line, and the kube-ipvs0
addresses. Invalid objects are reported on stderr, one line each, naming the object and the field; everything
else is still planned. With --strict the exit code is 1 when any object is invalid (for CI).`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return runPlan(&f, stdout, stderr) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.dir, "manifests", "", "directory of Service, EndpointSlice and Endpoints manifests (required)")
	fs.StringVar(&f.cfgFile, "config", "", "KubeProxyConfiguration file (kube-proxy's config.conf)")
	fs.StringVar(&f.nodeName, "node-name", "", "name of the node to plan for (endpoints with this nodeName are local)")
	fs.StringSliceVar(&f.nodeIPs, "node-ip", nil, "the node's addresses, comma-separated (NodePort virtual servers listen on them)")
	fs.StringToStringVar(&f.labels, "node-labels", nil, "the node's labels, e.g. topology.kubernetes.io/zone=a")
	fs.BoolVar(&f.strict, "strict", false, "exit 1 when any object is invalid")
	_ = cmd.MarkFlagRequired("manifests")
	_ = cmd.MarkFlagDirname("manifests")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml", "json", "conf")
	return cmd
}

// runPlan prints the desired kernel state for a manifest directory.
func runPlan(f *planFlags, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(f.cfgFile, stderr)
	if err != nil {
		return fail(exitError, "%v", err)
	}
	cfg.APIChecks = true // manifests: nobody validated them
	node := desired.Node{Name: f.nodeName, Labels: f.labels}
	for _, s := range f.nodeIPs {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return fail(exitUsage, "--node-ip: %q is not an IP address", s)
		}
		node.Addresses = append(node.Addresses, a.Unmap())
	}
	if len(node.Addresses) == 0 {
		// The node's addresses decide which IP families it serves: without
		// one nothing at all would be planned, which looks like success.
		return fail(exitUsage, "no node address: pass --node-ip with the node's addresses (its IP families decide what is planned; NodePorts listen on them)")
	}
	node.PrimaryAddresses = cfg.PrimaryAddresses(node.Addresses)
	objs, err := manifest.ReadDir(f.dir)
	if err != nil {
		return fail(exitError, "%v", err)
	}
	errs := WritePlan(stdout, cfg, node, objs)
	for _, e := range errs {
		fmt.Fprintf(stderr, "error: %v\n", e)
	}
	for _, w := range objs.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if f.strict && len(errs) > 0 {
		return fail(exitError, "--strict: %d invalid objects or fields", len(errs))
	}
	return nil
}

// WritePlan writes the desired state for objs: the IPVS part in ipvsadm -Sn
// syntax, a blank line, the ipset members in ipset save syntax, a blank line,
// and the kube-ipvs0 addresses. It returns every invalid object.
func WritePlan(w io.Writer, cfg *config.Config, node desired.Node, objs *manifest.Objects) []error {
	var errs []error
	node.ServiceCIDRs, errs = desired.ServiceCIDRs(objs.ServiceCIDRs)
	x, serr := desired.Build(desired.NewInput(cfg, node), objs.Services, objs.EndpointSlices)
	errs = append(errs, serr...)
	s := x.State()
	werr := errors.Join(s.WriteIPVS(w), writeString(w, "\n"), s.WriteSetMembers(w), writeString(w, "\n"), s.WriteAddresses(w))
	if werr != nil {
		errs = append(errs, werr)
	}
	return append(objs.Errors, errs...)
}

func writeString(w io.Writer, s string) error {
	_, err := io.WriteString(w, s)
	return err
}

// loadConfig reads a KubeProxyConfiguration file, or returns the defaults.
// Notes about the file go to log.
func loadConfig(path string, log io.Writer) (*config.Config, error) {
	if path == "" {
		return config.Default(), nil
	}
	cfg, rep, err := config.LoadFile(path)
	if rep != nil {
		for _, w := range rep.Warnings {
			fmt.Fprintf(log, "warning: config: %s\n", w)
		}
		for _, i := range rep.Infos {
			fmt.Fprintf(log, "info: config: %s\n", i)
		}
	}
	return cfg, err
}
