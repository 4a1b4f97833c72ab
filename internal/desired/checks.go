package desired

import (
	"fmt"
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// specialIP says why an address can be no Service's or endpoint's ("" when
// it can): the API server refuses unspecified, loopback and link-local
// addresses for externalIPs and endpoints (ValidateNonSpecialIP); multicast
// is refused here too, since the kernel will not bind it on kube-ipvs0
// (an IPv6 multicast externalIP, which the API server allows, made every
// full sync fail on every node).
func specialIP(a netip.Addr) string {
	switch {
	case a.IsUnspecified():
		return "may not be unspecified"
	case a.IsLoopback():
		return "may not be in the loopback range (127.0.0.0/8, ::1/128)"
	case a.IsLinkLocalUnicast():
		return "may not be in the link-local range (169.254.0.0/16, fe80::/10)"
	case a.IsMulticast():
		return "may not be a multicast address (224.0.0.0/4, ff00::/8): the kernel cannot bind it"
	}
	return ""
}

// checkName applies the API server's name rules (manifests skip them):
// Service names are DNS-1035 labels, namespaces DNS-1123 labels, and other
// objects' names DNS-1123 subdomains.
func checkName(kind, namespace, name string, errs *objErrs) bool {
	ok := true
	bad := func(field string, msgs []string) {
		if len(msgs) > 0 {
			errs.add(field, "%q is not valid: %s", map[string]string{"metadata.name": name, "metadata.namespace": namespace}[field], strings.Join(msgs, "; "))
			ok = false
		}
	}
	bad("metadata.namespace", validation.IsDNS1123Label(namespace))
	if kind == "Service" {
		bad("metadata.name", validation.IsDNS1035Label(name))
	} else {
		bad("metadata.name", validation.IsDNS1123Subdomain(name))
	}
	return ok
}

// parseExternalIP checks one externalIP: a special address, one outside the
// allowed CIDRs, or a node address (a tenant would take the node's port 22
// or 10250) unless the allowed CIDRs name it, is refused.
func parseExternalIP(in *Input, field, ip string, errs *objErrs) (netip.Addr, bool) {
	a, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil {
		errs.add(field, "invalid IP %q", ip)
		return a, false
	}
	a = a.Unmap()
	cfg := in.Config
	switch {
	case specialIP(a) != "":
		errs.add(field, "%s %s", a, specialIP(a))
	case !cfg.ExternalIPAllowed(a):
		errs.add(field, "%s is outside the allowed externalIP CIDRs %s (ipvsProxy.externalIPCIDRs)", a, prefixes(cfg.ExternalIPCIDRs))
	case in.isNodeAddress(a) && len(cfg.ExternalIPCIDRs) == 0:
		errs.add(field, "%s is an address of this node: any Service could take its ports; allow it in ipvsProxy.externalIPCIDRs if that is wanted", a)
	default:
		return a, true
	}
	return a, false
}

func prefixes(ps []netip.Prefix) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return strings.Join(out, ", ")
}

// expansion counts what a Service would expand to on this node before it is
// built: virtual servers (ports × addresses) and real servers (each port's
// endpoints, counted from the slices' ports, times its addresses).
func (s *service) expansion(in *Input, parsed []sliceEndpoints) (vs, rs int) {
	for fam := range s.clusterIPs {
		if !in.families[fam] {
			continue
		}
		addrs := 1
		for _, a := range s.externalIPs {
			if state.FamilyOf(a) == fam {
				addrs++
			}
		}
		for _, a := range s.lbIPs {
			if state.FamilyOf(a) == fam {
				addrs++
			}
		}
		for _, p := range s.ports {
			n := addrs
			if p.nodePort != 0 {
				n += len(in.NodePortAddresses(fam))
			}
			eps := 0
			for _, sl := range parsed {
				if sl.family == fam && sl.hasPort(p.name, p.proto) {
					eps += len(sl.eps)
				}
			}
			vs += n
			rs += n * eps
		}
	}
	return vs, rs
}

// hasPort reports whether the slice offers the named port.
func (se sliceEndpoints) hasPort(name string, proto state.Protocol) bool {
	for _, p := range se.ports {
		if p.name == name && p.proto == proto {
			return true
		}
	}
	return false
}

// overLimits returns an error when a Service expands past the limits.
func overLimits(in *Input, vs, rs int) string {
	l := in.Config.Limits
	if (l.VirtualServers > 0 && vs > l.VirtualServers) || (l.RealServers > 0 && rs > l.RealServers) {
		return fmt.Sprintf("expands to %d virtual servers and %d real servers on this node, over the limits of %d and %d "+
			"(ipvsProxy.maxVirtualServersPerService, maxRealServersPerService)", vs, rs, l.VirtualServers, l.RealServers)
	}
	return ""
}
