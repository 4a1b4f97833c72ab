package config

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	k8sjson "sigs.k8s.io/json"
)

// ExtensionKey is the top-level key of ipvs-proxy's own settings in a
// KubeProxyConfiguration file. ipvs-proxy takes it out before decoding
// kube-proxy's fields; kube-proxy, reading the same file, reports it as an
// unknown field and decodes the rest.
const ExtensionKey = "ipvsProxy"

// Extension is the ipvsProxy section of the configuration file.
type Extension struct {
	// ExternalIPCIDRs, when set, are the only CIDRs a Service's externalIPs
	// may come from (an externalIP that is a node address must be in one
	// too). Empty: any externalIP but the node's own addresses, as in
	// kube-proxy; see the README on CVE-2020-8554 and DenyServiceExternalIPs.
	ExternalIPCIDRs []string `json:"externalIPCIDRs,omitempty"`
	// MaxVirtualServersPerService and MaxRealServersPerService bound what one
	// Service may expand to on a node (ports × addresses, times endpoints).
	MaxVirtualServersPerService *int32 `json:"maxVirtualServersPerService,omitempty"`
	MaxRealServersPerService    *int32 `json:"maxRealServersPerService,omitempty"`
	// NodePortRange is the API server's --service-node-port-range, which
	// standalone mode checks node ports against ("30000-32767").
	NodePortRange string `json:"nodePortRange,omitempty"`
	// RulesBackend is where the sets and rules around IPVS go: iptables
	// (the default), nftables or auto (docs/rules-backends.md).
	RulesBackend string `json:"rulesBackend,omitempty"`
}

// Limits bound what one Service may expand to on a node.
type Limits struct {
	VirtualServers, RealServers int
}

// Defaults of the extension.
const (
	DefaultMaxVirtualServersPerService = 1000
	DefaultMaxRealServersPerService    = 100_000
)

// PortRange is an inclusive range of ports.
type PortRange struct{ Min, Max uint16 }

// DefaultNodePortRange is the API server's default --service-node-port-range.
var DefaultNodePortRange = PortRange{Min: 30000, Max: 32767}

// String renders "30000-32767".
func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.Min, r.Max) }

// Contains reports whether p is in the range.
func (r PortRange) Contains(p int32) bool { return p >= int32(r.Min) && p <= int32(r.Max) }

// ParsePortRange parses "30000-32767" (or a single port).
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, found := strings.Cut(strings.TrimSpace(s), "-")
	if !found {
		hi = lo
	}
	a, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	b, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
	if err1 != nil || err2 != nil || a == 0 || a > b {
		return PortRange{}, fmt.Errorf("%q is not a port range such as 30000-32767", s)
	}
	return PortRange{Min: uint16(a), Max: uint16(b)}, nil
}

// applyExtension decodes the ipvsProxy section into c, naming the field of
// every error; unknown fields are warnings.
func applyExtension(raw any, c *Config, rep *Report) error {
	js, err := jsonOf(raw)
	if err != nil {
		return err
	}
	var ext Extension
	strict, err := k8sjson.UnmarshalStrict(js, &ext)
	if err != nil {
		return fmt.Errorf("%s: %w", ExtensionKey, err)
	}
	for _, e := range strict {
		rep.Warnings = append(rep.Warnings, ExtensionKey+": "+e.Error())
	}
	var errs []error
	if err := c.SetExternalIPCIDRs(ext.ExternalIPCIDRs); err != nil {
		errs = append(errs, fmt.Errorf("%s.externalIPCIDRs%w", ExtensionKey, err))
	}
	for _, l := range []struct {
		field string
		v     *int32
		dst   *int
	}{{"maxVirtualServersPerService", ext.MaxVirtualServersPerService, &c.Limits.VirtualServers},
		{"maxRealServersPerService", ext.MaxRealServersPerService, &c.Limits.RealServers}} {
		if l.v == nil {
			continue
		}
		if *l.v < 1 {
			errs = append(errs, fmt.Errorf("%s.%s: %d must be at least 1", ExtensionKey, l.field, *l.v))
			continue
		}
		*l.dst = int(*l.v)
	}
	if ext.NodePortRange != "" {
		r, err := ParsePortRange(ext.NodePortRange)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.nodePortRange: %w", ExtensionKey, err))
		}
		c.NodePortRange = r
	}
	if ext.RulesBackend != "" {
		b, err := ParseRulesBackend(ext.RulesBackend)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.rulesBackend: %w", ExtensionKey, err))
		} else {
			c.RulesBackend = b
		}
	}
	return errors.Join(errs...)
}

// SetExternalIPCIDRs sets the allowed externalIP CIDRs; an error starts with
// the index of the bad one ("[1]: ...").
func (c *Config) SetExternalIPCIDRs(values []string) error {
	c.ExternalIPCIDRs = nil
	for i, s := range values {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("[%d]: %q is not a CIDR", i, s)
		}
		c.ExternalIPCIDRs = append(c.ExternalIPCIDRs, p.Masked())
	}
	return nil
}

// ExternalIPAllowed reports whether a may be an externalIP: inside one of
// ExternalIPCIDRs when they are set, anything otherwise.
func (c *Config) ExternalIPAllowed(a netip.Addr) bool {
	if len(c.ExternalIPCIDRs) == 0 {
		return true
	}
	for _, p := range c.ExternalIPCIDRs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ChangedExtension lists the ipvsProxy fields that differ between two
// configurations (a running daemon applies them in place).
func ChangedExtension(a, b *Config) []string {
	var out []string
	if !slices.Equal(a.ExternalIPCIDRs, b.ExternalIPCIDRs) {
		out = append(out, ExtensionKey+".externalIPCIDRs")
	}
	if a.Limits.VirtualServers != b.Limits.VirtualServers {
		out = append(out, ExtensionKey+".maxVirtualServersPerService")
	}
	if a.Limits.RealServers != b.Limits.RealServers {
		out = append(out, ExtensionKey+".maxRealServersPerService")
	}
	if a.NodePortRange != b.NodePortRange {
		out = append(out, ExtensionKey+".nodePortRange")
	}
	return out
}
