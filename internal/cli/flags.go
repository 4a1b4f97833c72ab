package cli

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
)

// overrides are kube-proxy's command-line flags that may override the
// config file; only flags given on the command line take effect.
type overrides struct {
	fs                 *pflag.FlagSet
	hostnameOverride   string
	kubeconfig, master string
	healthz, metrics   string
	scheduler          string
	syncPeriod         time.Duration
	minSyncPeriod      time.Duration
	clusterCIDR        string
	masqueradeAll      bool
	masqueradeBit      int32
	nodePortAddresses  []string
	excludeCIDRs       []string
	strictARP          bool
	tcpTimeout         time.Duration
	tcpFinTimeout      time.Duration
	udpTimeout         time.Duration
	// ipvs-proxy's own (the file's ipvsProxy section)
	externalIPCIDRs []string
	maxVS, maxRS    int
	nodePortRange   string
}

func addOverrideFlags(fs *pflag.FlagSet) *overrides {
	o := &overrides{fs: fs}
	fs.StringVar(&o.hostnameOverride, "hostname-override", "", "the node's name, if not the hostname (kube-proxy's flag)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file for the API server (default: in-cluster credentials)")
	fs.StringVar(&o.master, "master", "", "API server address, overriding the kubeconfig's")
	fs.StringVar(&o.healthz, "healthz-bind-address", "", "host:port of /healthz and /livez (default 0.0.0.0:10256; empty string disables in the file only)")
	fs.StringVar(&o.metrics, "metrics-bind-address", "", "host:port of /metrics, /proxyMode and /status (default 127.0.0.1:10249)")
	fs.StringVar(&o.scheduler, "ipvs-scheduler", "", "IPVS scheduler: rr wrr lc wlc lblc lblcr dh sh sed nq mh fo ovf")
	fs.DurationVar(&o.syncPeriod, "ipvs-sync-period", 0, "how often to re-read the kernel and repair drift (default 30s)")
	fs.DurationVar(&o.minSyncPeriod, "ipvs-min-sync-period", 0, "least time between two syncs")
	fs.StringVar(&o.clusterCIDR, "cluster-cidr", "", "pod CIDR(s), comma-separated: traffic from elsewhere to cluster IPs is masqueraded")
	fs.BoolVar(&o.masqueradeAll, "masquerade-all", false, "masquerade all traffic to cluster IPs")
	fs.Int32Var(&o.masqueradeBit, "iptables-masquerade-bit", 14, "fwmark bit for masquerading (0-31)")
	fs.StringSliceVar(&o.nodePortAddresses, "nodeport-addresses", nil, "CIDRs whose node addresses serve NodePorts, or \"primary\"")
	fs.StringSliceVar(&o.excludeCIDRs, "ipvs-exclude-cidrs", nil, "CIDRs whose IPVS virtual servers ipvs-proxy never touches")
	fs.BoolVar(&o.strictARP, "ipvs-strict-arp", false, "set arp_ignore=1 and arp_announce=2")
	fs.DurationVar(&o.tcpTimeout, "ipvs-tcp-timeout", 0, "IPVS idle TCP connection timeout (0: leave the kernel's)")
	fs.DurationVar(&o.tcpFinTimeout, "ipvs-tcpfin-timeout", 0, "IPVS TCP FIN_WAIT timeout (0: leave the kernel's)")
	fs.DurationVar(&o.udpTimeout, "ipvs-udp-timeout", 0, "IPVS UDP timeout (0: leave the kernel's)")
	fs.StringSliceVar(&o.externalIPCIDRs, "external-ip-cidrs", nil, "the only CIDRs Services' externalIPs may come from (ipvsProxy.externalIPCIDRs; default: any but the node's addresses)")
	fs.IntVar(&o.maxVS, "max-virtual-servers-per-service", config.DefaultMaxVirtualServersPerService, "the most virtual servers one Service may expand to on this node")
	fs.IntVar(&o.maxRS, "max-real-servers-per-service", config.DefaultMaxRealServersPerService, "the most real servers one Service may expand to on this node")
	fs.StringVar(&o.nodePortRange, "node-port-range", config.DefaultNodePortRange.String(), "standalone mode: the API server's --service-node-port-range, node ports are checked against")
	return o
}

// apply sets every flag given on the command line over cfg and revalidates.
func (o *overrides) apply(cfg *config.Config) error {
	set := func(name string, f func() error) error {
		if !o.fs.Changed(name) {
			return nil
		}
		if err := f(); err != nil {
			return fmt.Errorf("--%s: %w", name, err)
		}
		return nil
	}
	var err error
	for _, e := range []error{
		set("hostname-override", func() error { cfg.HostnameOverride = o.hostnameOverride; return nil }),
		set("kubeconfig", func() error { cfg.Kubeconfig = o.kubeconfig; return nil }),
		set("master", func() error { cfg.Master = o.master; return nil }),
		set("healthz-bind-address", func() error { cfg.HealthzBindAddress = o.healthz; return nil }),
		set("metrics-bind-address", func() error { cfg.MetricsBindAddress = o.metrics; return nil }),
		set("ipvs-scheduler", func() error { cfg.IPVS.Scheduler = o.scheduler; return config.CheckScheduler(o.scheduler) }),
		set("ipvs-sync-period", func() error { cfg.IPVS.SyncPeriod = o.syncPeriod; return positive(o.syncPeriod) }),
		set("ipvs-min-sync-period", func() error { cfg.IPVS.MinSyncPeriod = o.minSyncPeriod; return nil }),
		set("cluster-cidr", func() error {
			cfg.ClusterCIDRs, err = config.ParseCIDRList(o.clusterCIDR, true)
			return err
		}),
		set("masquerade-all", func() error { cfg.MasqueradeAll = o.masqueradeAll; return nil }),
		set("iptables-masquerade-bit", func() error {
			cfg.MasqueradeBit = int(o.masqueradeBit)
			if o.masqueradeBit < 0 || o.masqueradeBit > 31 {
				return fmt.Errorf("%d is out of range 0-31", o.masqueradeBit)
			}
			return nil
		}),
		set("nodeport-addresses", func() error { return cfg.SetNodePortAddresses(o.nodePortAddresses) }),
		set("ipvs-exclude-cidrs", func() error {
			cfg.IPVS.ExcludeCIDRs = nil
			for _, s := range o.excludeCIDRs {
				p, err := config.ParseCIDRList(s, false)
				if err != nil {
					return err
				}
				cfg.IPVS.ExcludeCIDRs = append(cfg.IPVS.ExcludeCIDRs, p...)
			}
			return nil
		}),
		set("ipvs-strict-arp", func() error { cfg.IPVS.StrictARP = o.strictARP; return nil }),
		set("ipvs-tcp-timeout", func() error { cfg.IPVS.Timeouts.TCP = o.tcpTimeout; return nil }),
		set("ipvs-tcpfin-timeout", func() error { cfg.IPVS.Timeouts.TCPFin = o.tcpFinTimeout; return nil }),
		set("ipvs-udp-timeout", func() error { cfg.IPVS.Timeouts.UDP = o.udpTimeout; return nil }),
		set("external-ip-cidrs", func() error { return cfg.SetExternalIPCIDRs(o.externalIPCIDRs) }),
		set("max-virtual-servers-per-service", func() error { cfg.Limits.VirtualServers = o.maxVS; return atLeastOne(o.maxVS) }),
		set("max-real-servers-per-service", func() error { cfg.Limits.RealServers = o.maxRS; return atLeastOne(o.maxRS) }),
		set("node-port-range", func() error { cfg.NodePortRange, err = config.ParsePortRange(o.nodePortRange); return err }),
	} {
		if e != nil {
			return e
		}
	}
	if cfg.IPVS.MinSyncPeriod > cfg.IPVS.SyncPeriod {
		return fmt.Errorf("--ipvs-min-sync-period %v must not exceed the sync period %v", cfg.IPVS.MinSyncPeriod, cfg.IPVS.SyncPeriod)
	}
	return nil
}

func atLeastOne(n int) error {
	if n < 1 {
		return fmt.Errorf("%d must be at least 1", n)
	}
	return nil
}

func positive(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%v must be positive", d)
	}
	return nil
}
