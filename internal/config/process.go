package config

import (
	"fmt"
	"maps"
	"net/netip"
	"strings"

	logsapi "k8s.io/component-base/logs/api/v1"
	kpv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
)

// setProcess reads the fields that configure the process: logging, feature
// gates, bindAddress, enableProfiling, oomScoreAdj. The logging block is
// validated when it is applied (cli), where the feature gates are known.
func (c *Config) setProcess(in *kpv1alpha1.KubeProxyConfiguration, fail func(field, format string, args ...any)) {
	c.Logging = *in.Logging.DeepCopy()
	logsapi.SetRecommendedLoggingConfiguration(&c.Logging)
	c.FeatureGates = maps.Clone(in.FeatureGates)
	c.EnableProfiling = in.EnableProfiling
	if a, err := ParseBindAddress(in.BindAddress); err != nil {
		fail("bindAddress", "%v", err)
	} else {
		c.BindAddress = a
	}
	if in.OOMScoreAdj != nil {
		c.OOMScoreAdj = *in.OOMScoreAdj
	}
	if c.OOMScoreAdj < -1000 || c.OOMScoreAdj > 1000 {
		fail("oomScoreAdj", "%d is out of range -1000-1000", c.OOMScoreAdj)
	}
	c.AcceptContentTypes = in.ClientConnection.AcceptContentTypes
}

// ParseBindAddress reads kube-proxy's bindAddress: an IP address; empty,
// 0.0.0.0 and :: mean "no override" (the zero Addr).
func ParseBindAddress(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	if a.IsUnspecified() {
		return netip.Addr{}, nil
	}
	return a.Unmap(), nil
}

// PrimaryAddresses applies bindAddress to the node's primary addresses (the
// Node object's, one per family): a set bindAddress replaces the one of its
// family, as kube-proxy's detectNodeIPs does.
func (c *Config) PrimaryAddresses(node []netip.Addr) []netip.Addr {
	if !c.BindAddress.IsValid() {
		return node
	}
	out := []netip.Addr{c.BindAddress}
	for _, a := range node {
		if a.Is4() != c.BindAddress.Is4() {
			out = append(out, a)
		}
	}
	return out
}

// Max is the nf_conntrack_max kube-proxy sets for cpus CPUs: maxPerCore per
// CPU, at least min; 0 leaves the kernel's limit alone.
func (ct Conntrack) Max(cpus int) int {
	if ct.MaxPerCore <= 0 || cpus <= 0 {
		return 0
	}
	return max(int(ct.MaxPerCore)*cpus, int(ct.Min))
}
