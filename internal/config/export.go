package config

import (
	"maps"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kpv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	"k8s.io/utils/ptr"
)

// V1alpha1 returns the effective configuration as the KubeProxyConfiguration
// kube-proxy would have been given for it (mode ipvs, every default filled
// in): what /configz serves and `run --write-config-to` writes. Parsing the
// result gives back an equal Config.
func (c *Config) V1alpha1() *kpv1alpha1.KubeProxyConfiguration {
	d := func(v time.Duration) metav1.Duration { return metav1.Duration{Duration: v} }
	out := &kpv1alpha1.KubeProxyConfiguration{
		TypeMeta:     metav1.TypeMeta{APIVersion: APIVersion, Kind: Kind},
		FeatureGates: maps.Clone(c.FeatureGates),
		Logging:      *c.Logging.DeepCopy(),
		Mode:         "ipvs",

		HostnameOverride:   c.HostnameOverride,
		HealthzBindAddress: c.HealthzBindAddress,
		MetricsBindAddress: c.MetricsBindAddress,
		EnableProfiling:    c.EnableProfiling,
		OOMScoreAdj:        ptr.To(c.OOMScoreAdj),
		ConfigSyncPeriod:   d(c.ConfigSyncPeriod),
		DetectLocalMode:    kpv1alpha1.LocalMode(c.DetectLocal.Mode),
		DetectLocal: kpv1alpha1.DetectLocalConfiguration{
			BridgeInterface: c.DetectLocal.BridgeInterface, InterfaceNamePrefix: c.DetectLocal.InterfaceNamePrefix,
		},
		IPTables: kpv1alpha1.KubeProxyIPTablesConfiguration{MasqueradeAll: c.MasqueradeAll, MasqueradeBit: ptr.To(int32(c.MasqueradeBit))},
		IPVS: kpv1alpha1.KubeProxyIPVSConfiguration{
			Scheduler: c.IPVS.Scheduler, SyncPeriod: d(c.IPVS.SyncPeriod), MinSyncPeriod: d(c.IPVS.MinSyncPeriod),
			StrictARP: c.IPVS.StrictARP, TCPTimeout: d(c.IPVS.Timeouts.TCP), TCPFinTimeout: d(c.IPVS.Timeouts.TCPFin),
			UDPTimeout: d(c.IPVS.Timeouts.UDP), ExcludeCIDRs: prefixStrings(c.IPVS.ExcludeCIDRs),
		},
		Conntrack: kpv1alpha1.KubeProxyConntrackConfiguration{
			MaxPerCore: ptr.To(c.Conntrack.MaxPerCore), Min: ptr.To(c.Conntrack.Min),
			TCPEstablishedTimeout: ptr.To(d(c.Conntrack.TCPEstablishedTimeout)),
			TCPCloseWaitTimeout:   ptr.To(d(c.Conntrack.TCPCloseWaitTimeout)),
			TCPBeLiberal:          c.Conntrack.TCPBeLiberal,
			UDPTimeout:            d(c.Conntrack.UDPTimeout), UDPStreamTimeout: d(c.Conntrack.UDPStreamTimeout),
		},
	}
	out.ClientConnection.Kubeconfig = c.Kubeconfig
	out.ClientConnection.QPS = c.QPS
	out.ClientConnection.Burst = c.Burst
	out.ClientConnection.ContentType = c.ContentType
	out.ClientConnection.AcceptContentTypes = c.AcceptContentTypes
	out.ClusterCIDR = strings.Join(prefixStrings(c.ClusterCIDRs), ",")
	if c.BindAddress.IsValid() {
		out.BindAddress = c.BindAddress.String()
	}
	out.NodePortAddresses = prefixStrings(c.NodePortAddresses)
	if c.NodePortPrimary {
		out.NodePortAddresses = []string{"primary"}
	}
	return out
}

func prefixStrings[T interface{ String() string }](list []T) []string {
	if len(list) == 0 {
		return nil
	}
	out := make([]string, len(list))
	for i, p := range list {
		out[i] = p.String()
	}
	return out
}
