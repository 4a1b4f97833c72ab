// Package config reads kube-proxy's own configuration file (the
// KubeProxyConfiguration in the kube-proxy ConfigMap's config.conf), applies
// kube-proxy's defaults, validates it and turns it into the typed Config the
// rest of ipvs-proxy uses. It is decoded with the upstream types from
// k8s.io/kube-proxy so the file is read exactly as kube-proxy reads it.
package config

import (
	"net/netip"
	"time"

	logsapi "k8s.io/component-base/logs/api/v1"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// Config is the validated configuration.
type Config struct {
	HostnameOverride string
	// ClusterCIDRs are the pod CIDRs (at most one per family) used to tell
	// pod traffic from outside traffic when DetectLocal.Mode is ClusterCIDR.
	ClusterCIDRs []netip.Prefix
	DetectLocal  DetectLocal
	// MasqueradeAll masquerades all traffic to cluster IPs.
	MasqueradeAll bool
	// MasqueradeBit is the fwmark bit that marks traffic for SNAT (14 → 0x4000).
	MasqueradeBit int
	// NodePortAddresses limits NodePort virtual servers to node addresses in
	// these CIDRs; empty means every node address.
	NodePortAddresses []netip.Prefix
	// NodePortPrimary is nodePortAddresses: ["primary"]: only the Node object's
	// primary addresses.
	NodePortPrimary bool

	HealthzBindAddress string // host:port; empty disables
	MetricsBindAddress string // host:port; empty disables

	IPVS      IPVS
	Conntrack Conntrack
	// RulesBackend is where the sets and rules around IPVS go: iptables
	// (ipsets and iptables chains) or nftables (a table of ipvs-proxy's
	// own); RulesAuto until the daemon has chosen.
	RulesBackend state.RulesBackend

	// ipvs-proxy's own settings: the file's ipvsProxy section (Extension)
	// or flags.

	// ExternalIPCIDRs, when set, are the only CIDRs externalIPs may come from.
	ExternalIPCIDRs []netip.Prefix
	// Limits bound what one Service may expand to on a node.
	Limits Limits
	// NodePortRange is what standalone mode checks node ports against.
	NodePortRange PortRange
	// APIChecks applies the API server's own checks that manifests skip:
	// set in standalone mode and by plan, where nobody else validated them.
	APIChecks bool

	Kubeconfig         string
	Master             string
	QPS                float32
	Burst              int32
	ContentType        string
	AcceptContentTypes string
	ConfigSyncPeriod   time.Duration

	Process
}

// Process holds what configures the process rather than the kernel state.
type Process struct {
	// Logging is the file's logging block with logsapi's defaults
	// (format text, verbosity 0); the command line's logging flags go over it.
	Logging logsapi.LoggingConfiguration
	// FeatureGates as the file gives them; only the logging gates mean
	// something to ipvs-proxy.
	FeatureGates map[string]bool
	// BindAddress, when valid, is kube-proxy's bindAddress: it overrides the
	// node's primary address of its family (nodePortAddresses: primary). No
	// socket is bound to it, in kube-proxy either.
	BindAddress netip.Addr
	// EnableProfiling serves net/http/pprof under /debug/pprof on the
	// metrics address.
	EnableProfiling bool
	// OOMScoreAdj is written to /proc/self/oom_score_adj at startup.
	OOMScoreAdj int32
}

// DetectLocal says how traffic from local pods is recognized.
type DetectLocal struct {
	// Mode is ClusterCIDR (default), NodeCIDR, BridgeInterface or InterfaceNamePrefix.
	Mode                string
	BridgeInterface     string
	InterfaceNamePrefix string
}

// The detect-local modes kube-proxy knows.
const (
	LocalModeClusterCIDR         = "ClusterCIDR"
	LocalModeNodeCIDR            = "NodeCIDR"
	LocalModeBridgeInterface     = "BridgeInterface"
	LocalModeInterfaceNamePrefix = "InterfaceNamePrefix"
)

// IPVS is the ipvs section.
type IPVS struct {
	Scheduler     string
	SyncPeriod    time.Duration
	MinSyncPeriod time.Duration
	// ExcludeCIDRs: virtual servers on these addresses are never touched.
	ExcludeCIDRs []netip.Prefix
	StrictARP    bool
	Timeouts     state.Timeouts
}

// Conntrack holds the netfilter conntrack settings kube-proxy applies.
type Conntrack struct {
	MaxPerCore            int32
	Min                   int32
	TCPEstablishedTimeout time.Duration
	TCPCloseWaitTimeout   time.Duration
	TCPBeLiberal          bool
	UDPTimeout            time.Duration
	UDPStreamTimeout      time.Duration
}

// MasqueradeMark is the fwmark value of MasqueradeBit ("0x4000").
func (c *Config) MasqueradeMark() uint32 { return 1 << uint(c.MasqueradeBit) }
