package cli

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/manifest"
)

// planCmd prints the desired kernel state for a manifest directory, kernel-free.
func planCmd(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("plan", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("manifests", "", "directory of Service, EndpointSlice and Endpoints manifests (required)")
	cfgFile := fs.String("config", "", "KubeProxyConfiguration file (kube-proxy's config.conf)")
	nodeName := fs.String("node-name", "", "name of the node to plan for (endpoints with this nodeName are local)")
	nodeIPs := fs.StringSlice("node-ip", nil, "the node's addresses, comma-separated (NodePort virtual servers listen on them)")
	labels := fs.StringToString("node-labels", nil, "the node's labels, e.g. topology.kubernetes.io/zone=a")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: ipvs-proxy plan --manifests DIR --node-name NAME --node-ip IP[,IP...] [--config FILE]")
		fmt.Fprintln(stderr, "Prints the desired state: ipvsadm -Sn lines, ipset members, kube-ipvs0 addresses.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" {
		fmt.Fprintln(stderr, "plan: --manifests is required")
		return 2
	}
	cfg, err := loadConfig(*cfgFile, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "plan: %v\n", err)
		return 1
	}
	cfg.APIChecks = true // manifests: nobody validated them
	node := desired.Node{Name: *nodeName, Labels: *labels}
	for _, s := range *nodeIPs {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			fmt.Fprintf(stderr, "plan: --node-ip: %q is not an IP address\n", s)
			return 2
		}
		node.Addresses = append(node.Addresses, a.Unmap())
	}
	node.PrimaryAddresses = node.Addresses
	objs, err := manifest.ReadDir(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "plan: %v\n", err)
		return 1
	}
	errs := WritePlan(stdout, cfg, node, objs)
	for _, e := range errs {
		fmt.Fprintf(stderr, "error: %v\n", e)
	}
	for _, w := range objs.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	return 0
}

// WritePlan writes the desired state for objs: the IPVS part in ipvsadm -Sn
// syntax, a blank line, the ipset members in ipset save syntax, a blank line,
// and the kube-ipvs0 addresses. It returns every invalid object.
func WritePlan(w io.Writer, cfg *config.Config, node desired.Node, objs *manifest.Objects) []error {
	x, errs := desired.Build(desired.NewInput(cfg, node), objs.Services, objs.EndpointSlices)
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
