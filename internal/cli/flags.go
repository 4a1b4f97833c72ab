package cli

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
)

// overrides are kube-proxy's command-line flags for configuration fields.
// Without --config they set the configuration over kube-proxy's defaults.
// With --config they are ignored, as kube-proxy ignores them: the file is
// the one source of truth (and is applied again when it changes); a flag
// that disagrees with the file is named in a warning. --hostname-override
// and --master apply over the file, as in kube-proxy, and so do the logging
// flags (see logging.go).
type overrides struct {
	fs    *pflag.FlagSet
	flags []override
}

// override is one flag: its name and how it sets the configuration.
type override struct {
	name  string
	apply func(cfg *config.Config) error
	// always: applied over --config too.
	always bool
}

func addOverrideFlags(fs *pflag.FlagSet) *overrides {
	o := &overrides{fs: fs}
	var (
		s           = map[string]*string{}
		d           = map[string]*time.Duration{}
		b           = map[string]*bool{}
		i           = map[string]*int32{}
		list        = map[string]*[]string{}
		qps         float32
		str         = func(n, def, usage string) { s[n] = fs.String(n, def, usage) }
		dur         = func(n, usage string) { d[n] = fs.Duration(n, 0, usage) }
		boolean     = func(n, usage string) { b[n] = fs.Bool(n, false, usage) }
		i32         = func(n string, def int32, usage string) { i[n] = fs.Int32(n, def, usage) }
		stringsFlag = func(n, usage string) { list[n] = fs.StringSlice(n, nil, usage) }
		set         = func(n string, f func(*config.Config) error) { o.flags = append(o.flags, override{name: n, apply: f}) }
		setAlways   = func(n string, f func(*config.Config) error) {
			o.flags = append(o.flags, override{name: n, apply: f, always: true})
		}
		positiveOrZero = func(v time.Duration) error {
			if v < 0 {
				return fmt.Errorf("%v must not be negative", v)
			}
			return nil
		}
	)
	str("hostname-override", "", "the node's name, if not the hostname")
	setAlways("hostname-override", func(c *config.Config) error { c.HostnameOverride = *s["hostname-override"]; return nil })
	str("master", "", "API server address, overriding the kubeconfig's")
	setAlways("master", func(c *config.Config) error { c.Master = *s["master"]; return nil })
	str("kubeconfig", "", "kubeconfig file for the API server (default: in-cluster credentials)")
	set("kubeconfig", func(c *config.Config) error { c.Kubeconfig = *s["kubeconfig"]; return nil })
	str("bind-address", "", "overrides the node's primary IP of its family (nodePortAddresses: primary); no socket is bound to it")
	set("bind-address", func(c *config.Config) error {
		a, err := config.ParseBindAddress(*s["bind-address"])
		c.BindAddress = a
		return err
	})
	str("healthz-bind-address", "", "host:port of /healthz and /livez (default 0.0.0.0:10256)")
	set("healthz-bind-address", func(c *config.Config) error { c.HealthzBindAddress = *s["healthz-bind-address"]; return nil })
	str("metrics-bind-address", "", "host:port of /metrics, /proxyMode, /configz and /status (default 127.0.0.1:10249); empty disables")
	set("metrics-bind-address", func(c *config.Config) error { c.MetricsBindAddress = *s["metrics-bind-address"]; return nil })
	boolean("profiling", "serve /debug/pprof on the metrics address")
	set("profiling", func(c *config.Config) error { c.EnableProfiling = *b["profiling"]; return nil })
	i32("oom-score-adj", config.DefaultOOMScoreAdj, "the process's oom_score_adj (-1000 to 1000)")
	set("oom-score-adj", func(c *config.Config) error {
		c.OOMScoreAdj = *i["oom-score-adj"]
		if c.OOMScoreAdj < -1000 || c.OOMScoreAdj > 1000 {
			return fmt.Errorf("%d is out of range -1000-1000", c.OOMScoreAdj)
		}
		return nil
	})
	str("proxy-mode", "ipvs", "proxy mode: only ipvs")
	set("proxy-mode", func(c *config.Config) error {
		if m := *s["proxy-mode"]; m != "ipvs" {
			return fmt.Errorf("%q is not supported: ipvs-proxy implements only the ipvs mode", m)
		}
		return nil
	})
	str("ipvs-scheduler", "", "IPVS scheduler: rr wrr lc wlc lblc lblcr dh sh sed nq mh fo ovf")
	set("ipvs-scheduler", func(c *config.Config) error {
		c.IPVS.Scheduler = *s["ipvs-scheduler"]
		return config.CheckScheduler(c.IPVS.Scheduler)
	})
	dur("ipvs-sync-period", "how often to re-read the kernel and repair drift (default 30s)")
	set("ipvs-sync-period", func(c *config.Config) error {
		c.IPVS.SyncPeriod = *d["ipvs-sync-period"]
		return positive(c.IPVS.SyncPeriod)
	})
	dur("ipvs-min-sync-period", "least time between two syncs")
	set("ipvs-min-sync-period", func(c *config.Config) error {
		c.IPVS.MinSyncPeriod = *d["ipvs-min-sync-period"]
		return positiveOrZero(c.IPVS.MinSyncPeriod)
	})
	stringsFlag("ipvs-exclude-cidrs", "CIDRs whose IPVS virtual servers ipvs-proxy never touches")
	set("ipvs-exclude-cidrs", func(c *config.Config) error {
		c.IPVS.ExcludeCIDRs = nil
		for _, v := range *list["ipvs-exclude-cidrs"] {
			p, err := config.ParseCIDRList(v, false)
			if err != nil {
				return err
			}
			c.IPVS.ExcludeCIDRs = append(c.IPVS.ExcludeCIDRs, p...)
		}
		return nil
	})
	boolean("ipvs-strict-arp", "set arp_ignore=1 and arp_announce=2")
	set("ipvs-strict-arp", func(c *config.Config) error { c.IPVS.StrictARP = *b["ipvs-strict-arp"]; return nil })
	for _, t := range []struct {
		name string
		dst  func(*config.Config) *time.Duration
	}{
		{"ipvs-tcp-timeout", func(c *config.Config) *time.Duration { return &c.IPVS.Timeouts.TCP }},
		{"ipvs-tcpfin-timeout", func(c *config.Config) *time.Duration { return &c.IPVS.Timeouts.TCPFin }},
		{"ipvs-udp-timeout", func(c *config.Config) *time.Duration { return &c.IPVS.Timeouts.UDP }},
		{"conntrack-tcp-timeout-established", func(c *config.Config) *time.Duration { return &c.Conntrack.TCPEstablishedTimeout }},
		{"conntrack-tcp-timeout-close-wait", func(c *config.Config) *time.Duration { return &c.Conntrack.TCPCloseWaitTimeout }},
		{"conntrack-udp-timeout", func(c *config.Config) *time.Duration { return &c.Conntrack.UDPTimeout }},
		{"conntrack-udp-timeout-stream", func(c *config.Config) *time.Duration { return &c.Conntrack.UDPStreamTimeout }},
	} {
		dur(t.name, "a timeout, as kube-proxy's flag of this name (0: leave the kernel's)")
		set(t.name, func(c *config.Config) error { *t.dst(c) = *d[t.name]; return positiveOrZero(*d[t.name]) })
	}
	str("cluster-cidr", "", "pod CIDR(s), comma-separated: traffic from elsewhere to cluster IPs is masqueraded")
	set("cluster-cidr", func(c *config.Config) error {
		var err error
		c.ClusterCIDRs, err = config.ParseCIDRList(*s["cluster-cidr"], true)
		return err
	})
	boolean("masquerade-all", "masquerade all traffic to cluster IPs")
	set("masquerade-all", func(c *config.Config) error { c.MasqueradeAll = *b["masquerade-all"]; return nil })
	i32("iptables-masquerade-bit", 14, "fwmark bit for masquerading (0-31)")
	set("iptables-masquerade-bit", func(c *config.Config) error {
		c.MasqueradeBit = int(*i["iptables-masquerade-bit"])
		if c.MasqueradeBit < 0 || c.MasqueradeBit > 31 {
			return fmt.Errorf("%d is out of range 0-31", c.MasqueradeBit)
		}
		return nil
	})
	stringsFlag("nodeport-addresses", "CIDRs whose node addresses serve NodePorts, or \"primary\"")
	set("nodeport-addresses", func(c *config.Config) error { return c.SetNodePortAddresses(*list["nodeport-addresses"]) })
	str("detect-local-mode", "", "how local pod traffic is recognized: ClusterCIDR, NodeCIDR, BridgeInterface, InterfaceNamePrefix")
	str("pod-bridge-interface", "", "the bridge of detect-local-mode BridgeInterface")
	str("pod-interface-name-prefix", "", "the interface prefix of detect-local-mode InterfaceNamePrefix")
	for _, n := range []string{"detect-local-mode", "pod-bridge-interface", "pod-interface-name-prefix"} {
		set(n, func(c *config.Config) error {
			dl := c.DetectLocal
			mode, bridge, prefix := dl.Mode, dl.BridgeInterface, dl.InterfaceNamePrefix
			switch n {
			case "detect-local-mode":
				mode = *s[n]
			case "pod-bridge-interface":
				bridge = *s[n]
			default:
				prefix = *s[n]
			}
			return c.SetDetectLocal(mode, bridge, prefix)
		})
	}
	i32("conntrack-max-per-core", 32*1024, "conntrack entries per CPU (0: leave the limit and conntrack-min alone)")
	set("conntrack-max-per-core", func(c *config.Config) error {
		c.Conntrack.MaxPerCore = *i["conntrack-max-per-core"]
		return nonNegative(c.Conntrack.MaxPerCore)
	})
	i32("conntrack-min", 128*1024, "least conntrack entries, whatever conntrack-max-per-core gives")
	set("conntrack-min", func(c *config.Config) error {
		c.Conntrack.Min = *i["conntrack-min"]
		return nonNegative(c.Conntrack.Min)
	})
	boolean("conntrack-tcp-be-liberal", "set nf_conntrack_tcp_be_liberal to 1")
	set("conntrack-tcp-be-liberal", func(c *config.Config) error { c.Conntrack.TCPBeLiberal = *b["conntrack-tcp-be-liberal"]; return nil })
	dur("config-sync-period", "the informers' resync period (default 15m)")
	set("config-sync-period", func(c *config.Config) error {
		c.ConfigSyncPeriod = *d["config-sync-period"]
		return positive(c.ConfigSyncPeriod)
	})
	str("kube-api-content-type", "", "content type of requests to the API server (default application/vnd.kubernetes.protobuf)")
	set("kube-api-content-type", func(c *config.Config) error { c.ContentType = *s["kube-api-content-type"]; return nil })
	fs.Float32Var(&qps, "kube-api-qps", 5, "queries per second to the API server")
	set("kube-api-qps", func(c *config.Config) error { c.QPS = qps; return nonNegative(qps) })
	i32("kube-api-burst", 10, "burst of queries to the API server")
	set("kube-api-burst", func(c *config.Config) error { c.Burst = *i["kube-api-burst"]; return nonNegative(c.Burst) })
	fg := fs.StringToString("feature-gates", nil, "feature gates, key=true|false (only the logging gates mean something to ipvs-proxy)")
	set("feature-gates", func(c *config.Config) error {
		c.FeatureGates = map[string]bool{}
		for k, v := range *fg {
			switch strings.ToLower(v) {
			case "true":
				c.FeatureGates[k] = true
			case "false":
				c.FeatureGates[k] = false
			default:
				return fmt.Errorf("%s=%s: want true or false", k, v)
			}
		}
		return nil
	})
	// ipvs-proxy's own (the file's ipvsProxy section): applied over --config too
	stringsFlag("external-ip-cidrs", "the only CIDRs Services' externalIPs may come from (ipvsProxy.externalIPCIDRs; default: any but the node's addresses)")
	setAlways("external-ip-cidrs", func(c *config.Config) error { return c.SetExternalIPCIDRs(*list["external-ip-cidrs"]) })
	i32("max-virtual-servers-per-service", config.DefaultMaxVirtualServersPerService, "the most virtual servers one Service may expand to on this node")
	setAlways("max-virtual-servers-per-service", func(c *config.Config) error {
		c.Limits.VirtualServers = int(*i["max-virtual-servers-per-service"])
		return atLeastOne(c.Limits.VirtualServers)
	})
	i32("max-real-servers-per-service", config.DefaultMaxRealServersPerService, "the most real servers one Service may expand to on this node")
	setAlways("max-real-servers-per-service", func(c *config.Config) error {
		c.Limits.RealServers = int(*i["max-real-servers-per-service"])
		return atLeastOne(c.Limits.RealServers)
	})
	str("node-port-range", config.DefaultNodePortRange.String(), "standalone mode: the API server's --service-node-port-range, node ports are checked against")
	setAlways("node-port-range", func(c *config.Config) error {
		var err error
		c.NodePortRange, err = config.ParsePortRange(*s["node-port-range"])
		return err
	})
	return o
}

func atLeastOne(n int) error {
	if n < 1 {
		return fmt.Errorf("%d must be at least 1", n)
	}
	return nil
}

// apply sets the flags given on the command line over cfg. With fromFile
// (the configuration came from --config) only the flags kube-proxy applies
// over a file are applied; every other flag given is left out, with a
// warning when it disagrees with the file.
func (o *overrides) apply(cfg *config.Config, fromFile bool, log *zap.Logger) error {
	for _, f := range o.flags {
		if !o.fs.Changed(f.name) {
			continue
		}
		if !fromFile || f.always {
			if err := f.apply(cfg); err != nil {
				return fmt.Errorf("--%s: %w", f.name, err)
			}
			continue
		}
		probe := *cfg
		err := f.apply(&probe)
		if err == nil && reflect.DeepEqual(&probe, cfg) {
			continue // the flag says what the file says
		}
		log.Warn("flag ignored: --config is given, and the file is what counts, as in kube-proxy",
			zap.String("flag", "--"+f.name+"="+o.fs.Lookup(f.name).Value.String()))
	}
	if cfg.IPVS.MinSyncPeriod > cfg.IPVS.SyncPeriod {
		return fmt.Errorf("--ipvs-min-sync-period %v must not exceed the sync period %v", cfg.IPVS.MinSyncPeriod, cfg.IPVS.SyncPeriod)
	}
	return nil
}

func positive(v time.Duration) error {
	if v <= 0 {
		return fmt.Errorf("%v must be positive", v)
	}
	return nil
}

func nonNegative[T int32 | float32](v T) error {
	if v < 0 {
		return fmt.Errorf("%v must not be negative", v)
	}
	return nil
}
