package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	kpv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// fromV1alpha1 applies kube-proxy's defaults to the decoded file and
// validates it, naming the field of every error.
func fromV1alpha1(in *kpv1alpha1.KubeProxyConfiguration) (*Config, error) {
	c := Default()
	var errs []error
	fail := func(field string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}

	c.HostnameOverride = strings.TrimSpace(in.HostnameOverride)
	c.setProcess(in, fail)
	if in.ClusterCIDR != "" {
		cidrs, err := ParseCIDRList(in.ClusterCIDR, true)
		if err != nil {
			fail("clusterCIDR", "%v", err)
		}
		c.ClusterCIDRs = cidrs
	}
	if err := c.SetDetectLocal(string(in.DetectLocalMode), in.DetectLocal.BridgeInterface, in.DetectLocal.InterfaceNamePrefix); err != nil {
		errs = append(errs, err)
	}
	c.MasqueradeAll = in.IPTables.MasqueradeAll
	if in.IPTables.MasqueradeBit != nil {
		c.MasqueradeBit = int(*in.IPTables.MasqueradeBit)
		if c.MasqueradeBit < 0 || c.MasqueradeBit > 31 {
			fail("iptables.masqueradeBit", "%d is out of range 0-31", c.MasqueradeBit)
		}
	}
	if err := c.SetNodePortAddresses(in.NodePortAddresses); err != nil {
		errs = append(errs, err)
	}
	var err error
	if c.HealthzBindAddress, err = bindAddress(in.HealthzBindAddress, DefaultHealthzBindAddress); err != nil {
		fail("healthzBindAddress", "%v", err)
	}
	if c.MetricsBindAddress, err = bindAddress(in.MetricsBindAddress, DefaultMetricsBindAddress); err != nil {
		fail("metricsBindAddress", "%v", err)
	}

	if in.IPVS.Scheduler != "" {
		c.IPVS.Scheduler = in.IPVS.Scheduler
	}
	if err := CheckScheduler(c.IPVS.Scheduler); err != nil {
		fail("ipvs.scheduler", "%v", err)
	}
	if d := in.IPVS.SyncPeriod.Duration; d != 0 {
		c.IPVS.SyncPeriod = d
	}
	c.IPVS.MinSyncPeriod = in.IPVS.MinSyncPeriod.Duration
	durations := []struct {
		field string
		v     time.Duration
	}{
		{"ipvs.syncPeriod", c.IPVS.SyncPeriod}, {"ipvs.minSyncPeriod", c.IPVS.MinSyncPeriod},
		{"ipvs.tcpTimeout", in.IPVS.TCPTimeout.Duration}, {"ipvs.tcpFinTimeout", in.IPVS.TCPFinTimeout.Duration},
		{"ipvs.udpTimeout", in.IPVS.UDPTimeout.Duration}, {"configSyncPeriod", in.ConfigSyncPeriod.Duration},
		{"conntrack.udpTimeout", in.Conntrack.UDPTimeout.Duration}, {"conntrack.udpStreamTimeout", in.Conntrack.UDPStreamTimeout.Duration},
	}
	for _, d := range durations {
		if d.v < 0 {
			fail(d.field, "%v must not be negative", d.v)
		}
	}
	if c.IPVS.MinSyncPeriod > c.IPVS.SyncPeriod {
		fail("ipvs.minSyncPeriod", "%v must not exceed ipvs.syncPeriod (%v)", c.IPVS.MinSyncPeriod, c.IPVS.SyncPeriod)
	}
	for i, s := range in.IPVS.ExcludeCIDRs {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			fail(fmt.Sprintf("ipvs.excludeCIDRs[%d]", i), "%q is not a CIDR", s)
			continue
		}
		c.IPVS.ExcludeCIDRs = append(c.IPVS.ExcludeCIDRs, p.Masked())
	}
	c.IPVS.StrictARP = in.IPVS.StrictARP
	c.IPVS.Timeouts = state.Timeouts{TCP: in.IPVS.TCPTimeout.Duration, TCPFin: in.IPVS.TCPFinTimeout.Duration, UDP: in.IPVS.UDPTimeout.Duration}

	ct := in.Conntrack
	if ct.MaxPerCore != nil {
		c.Conntrack.MaxPerCore = *ct.MaxPerCore
	}
	if ct.Min != nil {
		c.Conntrack.Min = *ct.Min
	}
	if c.Conntrack.MaxPerCore < 0 {
		fail("conntrack.maxPerCore", "%d must not be negative", c.Conntrack.MaxPerCore)
	}
	if c.Conntrack.Min < 0 {
		fail("conntrack.min", "%d must not be negative", c.Conntrack.Min)
	}
	if ct.TCPEstablishedTimeout != nil {
		c.Conntrack.TCPEstablishedTimeout = ct.TCPEstablishedTimeout.Duration
	}
	if ct.TCPCloseWaitTimeout != nil {
		c.Conntrack.TCPCloseWaitTimeout = ct.TCPCloseWaitTimeout.Duration
	}
	if c.Conntrack.TCPEstablishedTimeout < 0 {
		fail("conntrack.tcpEstablishedTimeout", "must not be negative")
	}
	if c.Conntrack.TCPCloseWaitTimeout < 0 {
		fail("conntrack.tcpCloseWaitTimeout", "must not be negative")
	}
	c.Conntrack.TCPBeLiberal = ct.TCPBeLiberal
	c.Conntrack.UDPTimeout = ct.UDPTimeout.Duration
	c.Conntrack.UDPStreamTimeout = ct.UDPStreamTimeout.Duration

	cc := in.ClientConnection
	c.Kubeconfig = cc.Kubeconfig
	if cc.QPS != 0 {
		c.QPS = cc.QPS
	}
	if cc.Burst != 0 {
		c.Burst = cc.Burst
	}
	if cc.QPS < 0 {
		fail("clientConnection.qps", "%v must not be negative", cc.QPS)
	}
	if cc.Burst < 0 {
		fail("clientConnection.burst", "%d must not be negative", cc.Burst)
	}
	if cc.ContentType != "" {
		c.ContentType = cc.ContentType
	}
	if d := in.ConfigSyncPeriod.Duration; d > 0 {
		c.ConfigSyncPeriod = d
	}
	return c, errors.Join(errs...)
}

// CheckScheduler returns an error naming the allowed schedulers when name is not one.
func CheckScheduler(name string) error {
	if state.ValidScheduler(name) {
		return nil
	}
	return fmt.Errorf("unknown scheduler %q (allowed: %s)", name, strings.Join(state.Schedulers, ", "))
}

// ParseCIDRList parses a comma-separated CIDR list; perFamily allows at most one per IP family.
func ParseCIDRList(s string, perFamily bool) ([]netip.Prefix, error) {
	var out []netip.Prefix
	seen := map[state.Family]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR", part)
		}
		f := state.FamilyOf(p.Addr())
		if perFamily && seen[f] {
			return nil, fmt.Errorf("%q: only one CIDR per IP family is allowed", s)
		}
		seen[f] = true
		out = append(out, p.Masked())
	}
	return out, nil
}

// SetNodePortAddresses sets nodePortAddresses: CIDRs, or the single value "primary".
func (c *Config) SetNodePortAddresses(values []string) error {
	c.NodePortAddresses, c.NodePortPrimary = nil, false
	for i, s := range values {
		s = strings.TrimSpace(s)
		if s == "primary" {
			if len(values) != 1 {
				return fmt.Errorf("nodePortAddresses[%d]: \"primary\" cannot be combined with CIDRs", i)
			}
			c.NodePortPrimary = true
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("nodePortAddresses[%d]: %q is not a CIDR or \"primary\"", i, s)
		}
		c.NodePortAddresses = append(c.NodePortAddresses, p.Masked())
	}
	return nil
}

// SetDetectLocal validates detectLocalMode and its companion fields.
func (c *Config) SetDetectLocal(mode, bridge, prefix string) error {
	if mode == "" {
		mode = LocalModeClusterCIDR
	}
	c.DetectLocal = DetectLocal{Mode: mode, BridgeInterface: bridge, InterfaceNamePrefix: prefix}
	switch mode {
	case LocalModeClusterCIDR, LocalModeNodeCIDR:
	case LocalModeBridgeInterface:
		if bridge == "" {
			return errors.New("detectLocal.bridgeInterface: required when detectLocalMode is BridgeInterface")
		}
	case LocalModeInterfaceNamePrefix:
		if prefix == "" {
			return errors.New("detectLocal.interfaceNamePrefix: required when detectLocalMode is InterfaceNamePrefix")
		}
	default:
		return fmt.Errorf("detectLocalMode: unknown mode %q (allowed: ClusterCIDR, NodeCIDR, BridgeInterface, InterfaceNamePrefix)", mode)
	}
	return nil
}

// bindAddress validates host:port, appending the default port to a bare IP
// like kube-proxy does; empty gives the default.
func bindAddress(s, def string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return def, nil
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		_, port, _ := net.SplitHostPort(def)
		return net.JoinHostPort(ip.String(), port), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port", s)
	}
	if _, err := netip.ParseAddr(host); err != nil && host != "" {
		return "", fmt.Errorf("%q: host must be an IP address", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("%q: invalid port", s)
	}
	return s, nil
}
