package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/health"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fault"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/internal/metrics"
	"github.com/ipvs-proxy/ipvs-proxy/internal/proxier"
	"github.com/ipvs-proxy/ipvs-proxy/internal/server"
	"github.com/ipvs-proxy/ipvs-proxy/internal/source/standalone"
	"github.com/ipvs-proxy/ipvs-proxy/internal/status"
)

// runFlags are the flags of `ipvs-proxy run`.
type runFlags struct {
	configFile      string
	manifests       string
	nodeName        string
	nodeLabels      map[string]string
	logFormat       string
	verbosity       int
	poll            time.Duration
	drainCheck      time.Duration
	faultRate       float64
	faultFile       string
	iptablesBackend iptables.Backend
	trafficPeriod   time.Duration
	faultSeed       int64
	over            *overrides
	fs              *pflag.FlagSet
}

func parseRunFlags(args []string, stderr io.Writer) (*runFlags, error) {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &runFlags{fs: fs, iptablesBackend: "auto"}
	fs.StringVar(&f.configFile, "config", "", "KubeProxyConfiguration file (kube-proxy's ConfigMap config.conf)")
	fs.StringVar(&f.manifests, "manifests", "", "standalone mode: read Services and EndpointSlices from this directory instead of an API server")
	fs.StringVar(&f.nodeName, "node-name", "", "this node's name (same as --hostname-override)")
	fs.StringToStringVar(&f.nodeLabels, "node-labels", nil, "standalone mode: the node's labels, e.g. topology.kubernetes.io/zone=a")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.IntVarP(&f.verbosity, "v", "v", 0, "log verbosity; 4 or more logs every planned operation")
	fs.DurationVar(&f.poll, "manifests-poll-period", time.Second, "standalone mode: how often to check the directory for changes")
	fs.DurationVar(&f.drainCheck, "drain-check-period", 5*time.Second, "how often to check drained real servers for remaining connections")
	fs.Var(&backendFlag{&f.iptablesBackend}, "iptables-backend", "iptables backend: auto (the one the node's kubelet uses), nft, legacy, or default (the iptables-restore in PATH)")
	fs.DurationVar(&f.trafficPeriod, "traffic-metrics-period", 15*time.Second, "how often per-Service traffic counters are read from IPVS")
	fs.Float64Var(&f.faultRate, "fault-inject-rate", 0, "testing only: make this share of kernel writes fail")
	fs.Int64Var(&f.faultSeed, "fault-inject-seed", 1, "testing only: seed of the fault injector")
	fs.StringVar(&f.faultFile, "fault-inject-rate-file", "", "testing only: read the fault injection rate from this file every second")
	for _, name := range []string{"fault-inject-rate", "fault-inject-seed", "fault-inject-rate-file"} {
		_ = fs.MarkHidden(name)
	}
	f.over = addOverrideFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: ipvs-proxy run [--config FILE] [--manifests DIR | --kubeconfig FILE] [--hostname-override NAME] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return f, nil
}

// runCmd runs the daemon until SIGTERM or SIGINT. Stopping leaves the kernel
// state in place: a restarted daemon adopts it without disturbing traffic.
func runCmd(args []string, stdout, stderr io.Writer) int {
	f, err := parseRunFlags(args, stderr)
	if err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "run: %v\n", err)
		return 2
	}
	log, err := newLogger(stderr, f.logFormat, f.verbosity)
	if err != nil {
		fmt.Fprintf(stderr, "run: %v\n", err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	open := func(log *zap.Logger) (kernel.Kernel, func(), error) { return openKernel(log, f.iptablesBackend) }
	if err := run(ctx, f, log, open); err != nil {
		log.Error("ipvs-proxy cannot run", zap.Error(err))
		return 1
	}
	return 0
}

// kernelOpener opens the kernel interfaces (the real ones, or a fake in tests).
type kernelOpener func(*zap.Logger) (kernel.Kernel, func(), error)

// run runs the daemon until ctx is done.
func run(ctx context.Context, f *runFlags, log *zap.Logger, open kernelOpener) error {
	cfg, err := loadRunConfig(f, log)
	if err != nil {
		return err
	}
	nodeName, err := nodeName(f, cfg)
	if err != nil {
		return err
	}
	k, closeKernel, err := open(log)
	if err != nil {
		return err
	}
	defer closeKernel()
	if err := checkScheduler(k, cfg.IPVS.Scheduler); err != nil {
		return err
	}
	statsKernel, _ := k.IPVS.(status.Kernel) // before any wrapping
	var injector *fault.Injector
	if f.faultRate > 0 || f.faultFile != "" {
		log.Warn("fault injection enabled: kernel writes will fail on purpose", zap.Float64("rate", f.faultRate), zap.String("rateFile", f.faultFile))
		injector = fault.NewInjector(f.faultRate, f.faultSeed)
		k = fault.Wrap(k, injector)
	}

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var background sync.WaitGroup // every goroutine started here ends before run returns
	defer background.Wait()
	m := metrics.New()
	tracker := health.NewTracker(2*cfg.IPVS.SyncPeriod, nil)
	checks := server.NewServiceHealthServers("", func() bool { return tracker.Status().Healthy }, log.Named("healthcheck"))
	defer checks.Close()
	// the source comes first: in cluster mode it also reports invalid Services as Events
	var src runner
	var reporter proxier.Reporter
	if f.manifests != "" {
		log.Info("standalone mode", zap.String("manifests", f.manifests), zap.String("node", nodeName))
		src = standalone.New(standalone.Config{Dir: f.manifests, Node: desired.Node{Name: nodeName, Labels: f.nodeLabels},
			Poll: f.poll, Log: log.Named("manifests"), Health: tracker})
	} else {
		ks, err := newKubeSource(cfg, nodeName, tracker, log)
		if err != nil {
			return err
		}
		ev := ks.Reporter()
		ev.Start(ctx)
		src, reporter = ks, ev
	}
	p := proxier.New(proxier.Config{
		Kernel: k, Config: cfg, Log: log.Named("proxier"), Metrics: m, Health: tracker,
		DrainCheckPeriod: f.drainCheck, CPUs: runtime.NumCPU(), Reporter: reporter,
		HealthChecks: func(hc map[uint16]proxier.HealthCheck) {
			want := make(map[uint16]server.ServiceHealth, len(hc))
			for port, c := range hc {
				want[port] = server.ServiceHealth{Namespace: c.Namespace, Name: c.Name, LocalEndpoints: c.LocalEndpoints}
			}
			checks.Sync(want)
		},
	})

	var serverErrs []<-chan error
	if cfg.HealthzBindAddress != "" {
		errc, err := server.Serve(ctx, cfg.HealthzBindAddress, server.HealthMux(tracker), log.Named("healthz"))
		if err != nil {
			return fmt.Errorf("healthz server: %w", err)
		}
		serverErrs = append(serverErrs, errc)
	}
	extra := map[string]http.Handler{}
	if statsKernel != nil {
		extra["/status"] = status.Handler(nodeName, p, statsKernel)
		traffic := status.NewTraffic(statsKernel.ServiceStats, p.Origins(), f.trafficPeriod, log.Named("traffic"))
		m.Registry.MustRegister(traffic)
		background.Go(func() { traffic.Run(ctx) })
	}
	if cfg.MetricsBindAddress != "" {
		errc, err := server.Serve(ctx, cfg.MetricsBindAddress, server.MetricsMux(m, extra), log.Named("metrics"))
		if err != nil {
			return fmt.Errorf("metrics server: %w", err)
		}
		serverErrs = append(serverErrs, errc)
	}

	if injector != nil && f.faultFile != "" {
		background.Go(func() { followRateFile(ctx, f.faultFile, injector, log) })
	}
	srcDone := make(chan error, 1)
	go func() { srcDone <- src.Run(ctx, p) }()
	log.Info("ipvs-proxy started", zap.String("version", Version), zap.String("commit", GitCommit), zap.String("node", nodeName),
		zap.String("scheduler", cfg.IPVS.Scheduler), zap.Duration("syncPeriod", cfg.IPVS.SyncPeriod))
	runErr := p.Run(ctx)
	stop()
	srcErr := <-srcDone
	for _, errc := range serverErrs {
		if err := <-errc; err != nil {
			log.Warn("server stopped with an error", zap.Error(err))
		}
	}
	log.Info("stopped; the kernel state stays in place for the next start (use `ipvs-proxy cleanup` to remove it)")
	return errors.Join(runErr, srcErr)
}

// loadRunConfig reads the config file, then applies command-line flags over it.
func loadRunConfig(f *runFlags, log *zap.Logger) (*config.Config, error) {
	cfg := config.Default()
	if f.configFile != "" {
		c, rep, err := config.LoadFile(f.configFile)
		if rep != nil {
			for _, w := range rep.Warnings {
				log.Warn("config", zap.String("file", f.configFile), zap.String("warning", w))
			}
			for _, i := range rep.Infos {
				log.Info("config", zap.String("file", f.configFile), zap.String("note", i))
			}
		}
		if err != nil {
			return nil, err
		}
		cfg = c
	}
	if err := f.over.apply(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// nodeName picks the node's name like kube-proxy: --hostname-override, the
// file's hostnameOverride, then the hostname, lower-cased.
func nodeName(f *runFlags, cfg *config.Config) (string, error) {
	name := cfg.HostnameOverride
	if f.nodeName != "" {
		name = f.nodeName
	}
	if name == "" {
		h, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("no node name: set --hostname-override (%w)", err)
		}
		name = h
	}
	return strings.ToLower(strings.TrimSpace(name)), nil
}

// followRateFile sets the fault injection rate from a file, every second
// (testing only: lets a scenario start and stop kernel failures).
func followRateFile(ctx context.Context, path string, inj *fault.Injector, log *zap.Logger) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := -1.0
	for {
		if b, err := os.ReadFile(path); err == nil {
			if rate, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64); err == nil && rate != last {
				inj.SetRate(rate)
				log.Warn("fault injection rate changed", zap.Float64("rate", rate))
				last = rate
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// backendFlag parses --iptables-backend.
type backendFlag struct{ b *iptables.Backend }

func (f *backendFlag) String() string {
	if *f.b == iptables.BackendDefault {
		return "default"
	}
	return string(*f.b)
}

func (f *backendFlag) Set(s string) error {
	switch s {
	case "auto", "nft", "legacy":
		*f.b = iptables.Backend(s)
	case "default":
		*f.b = iptables.BackendDefault
	default:
		return fmt.Errorf("%q: want auto, nft, legacy or default", s)
	}
	return nil
}

func (f *backendFlag) Type() string { return "backend" }
