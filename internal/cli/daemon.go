package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/health"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fault"
	"github.com/ipvs-proxy/ipvs-proxy/internal/metrics"
	"github.com/ipvs-proxy/ipvs-proxy/internal/proxier"
	"github.com/ipvs-proxy/ipvs-proxy/internal/server"
	"github.com/ipvs-proxy/ipvs-proxy/internal/source/standalone"
	"github.com/ipvs-proxy/ipvs-proxy/internal/status"
	"github.com/ipvs-proxy/ipvs-proxy/internal/syncevent"
)

// kernelOpener opens the kernel interfaces (the real ones, or a fake in tests).
type kernelOpener func(*zap.Logger) (kernel.Kernel, func(), error)

// errRestart: the config file changed a field that needs a restart; the
// daemon stopped as on SIGTERM (kernel state kept).
var errRestart = errors.New("the configuration changed a field that needs a restart")

// runWith runs the daemon with cfg until ctx is done, or until the config
// file changes a field that needs a restart (errRestart).
func runWith(ctx context.Context, f *runFlags, cfg *config.Config, log *zap.Logger, open kernelOpener) error {
	nodeName, err := nodeName(f, cfg)
	if err != nil {
		return err
	}
	applyOOMScoreAdj(f.oomScoreFile, cfg.OOMScoreAdj, log)
	k, closeKernel, err := open(log)
	if err != nil {
		return err
	}
	defer closeKernel()
	f.startup.step("kernel")
	requestedBackend := cfg.RulesBackend
	if requestedBackend == config.RulesAuto {
		var why string
		cfg.RulesBackend, why = chooseRulesBackend(k, cfg)
		log.Info("rules backend chosen", zap.String("backend", string(cfg.RulesBackend)), zap.String("why", why))
	}
	if err := checkScheduler(k, cfg.IPVS.Scheduler); err != nil {
		return err
	}
	f.startup.step("scheduler")
	statsKernel, _ := k.IPVS.(status.Kernel) // before any wrapping
	var injector *fault.Injector
	if f.faultRate > 0 || f.faultFile != "" || f.faultReads != "" {
		log.Warn("fault injection enabled: kernel writes (and reads) will fail on purpose", zap.Float64("rate", f.faultRate),
			zap.String("rateFile", f.faultFile), zap.String("readsFile", f.faultReads))
		injector = fault.NewInjector(f.faultRate, f.faultSeed)
		k = fault.Wrap(k, injector)
	}
	raiseConntrackHashsize(f.hashsizeFile, cfg.Conntrack.Max(runtime.NumCPU()), log)

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var background sync.WaitGroup // every goroutine started here ends before runWith returns
	defer background.Wait()
	m := metrics.New()
	m.Registry.MustRegister(metrics.BuildInfo(Version, gitCommit()))
	tracker := health.NewTracker(2*cfg.IPVS.SyncPeriod, 0, nil)
	m.Registry.MustRegister(metrics.SourceStale(func() time.Time { return tracker.Status().SourceStaleSince }))
	if injector != nil {
		m.Registry.MustRegister(metrics.FaultRate(injector.Rate))
	}
	checks := server.NewServiceHealthServers("", func() bool { return tracker.Status().Healthy }, log.Named("healthcheck"))
	defer checks.Close()
	src, reporter, err := newSource(ctx, f, cfg, nodeName, tracker, log)
	if err != nil {
		return err
	}
	onSync, closeEvents, err := syncEvents(f.syncEvents, f.startup, log)
	if err != nil {
		return err
	}
	defer closeEvents()
	p := proxier.New(proxier.Config{
		Kernel: k, Config: cfg, Log: log.Named("proxier"), Metrics: m, Health: tracker, OnSync: onSync,
		DrainCheckPeriod: f.drainCheck, CPUs: runtime.NumCPU(), KernelRelease: kernelRelease(f, log), Reporter: reporter,
		HealthChecks: func(hc map[uint16]proxier.HealthCheck) {
			want := make(map[uint16]server.ServiceHealth, len(hc))
			for port, c := range hc {
				want[port] = server.ServiceHealth{Namespace: c.Namespace, Name: c.Name, LocalEndpoints: c.LocalEndpoints}
			}
			checks.Sync(want)
		},
	})
	cz := &configz{}
	cz.set(cfg)
	serverErrs, err := serve(ctx, cfg, m, tracker, endpoints(nodeName, p, statsKernel, cz, cfg.EnableProfiling, f.statusRemote), log)
	if err != nil {
		return err
	}
	f.startup.step("servers")
	if statsKernel != nil && f.trafficPeriod > 0 {
		traffic := status.NewTraffic(statsKernel.ServiceStats, namespaceFilter(p.Origins(), f.trafficNamespaces), f.trafficPeriod, log.Named("traffic"))
		m.Registry.MustRegister(traffic)
		background.Go(func() { traffic.Run(ctx) })
	}
	if injector != nil && f.faultFile != "" {
		background.Go(func() { followRateFile(ctx, f.faultFile, injector, log) })
	}
	if injector != nil && f.faultReads != "" {
		background.Go(func() { followReadsFile(ctx, f.faultReads, injector, log) })
	}
	restart := make(chan []string, 1)
	if f.configFile != "" {
		w := &configWatcher{f: f, log: log.Named("config"), running: cfg, proxier: p, configz: cz, metrics: m, restart: restart,
			rulesBackend: requestedBackend}
		background.Go(func() { w.run(ctx) })
	}
	srcDone := make(chan error, 1)
	go func() { srcDone <- src.Run(ctx, p) }()
	log.Info("ipvs-proxy started", zap.String("version", Version), zap.String("node", nodeName),
		zap.String("scheduler", cfg.IPVS.Scheduler), zap.Duration("syncPeriod", cfg.IPVS.SyncPeriod), zap.String("rulesBackend", string(cfg.RulesBackend)),
		zap.String("logging", describeLogging(&cfg.Logging)), zap.Duration("trafficMetricsPeriod", f.trafficPeriod))
	procDone := make(chan error, 1)
	go func() { procDone <- p.Run(ctx) }()
	var restartFields []string
	select {
	case <-ctx.Done():
	case restartFields = <-restart:
	}
	stop()
	runErr, srcErr := <-procDone, <-srcDone
	for _, errc := range serverErrs {
		if err := <-errc; err != nil {
			log.Warn("server stopped with an error", zap.Error(err))
		}
	}
	log.Info("stopped; the kernel state stays in place for the next start (use `ipvs-proxy cleanup` to remove it)")
	if err := errors.Join(runErr, srcErr); err != nil || restartFields == nil {
		return err
	}
	log.Info("exiting so that the new configuration is read at the next start", zap.Strings("fields", restartFields))
	return errRestart
}

// syncEvents opens the --sync-events file, if any, and returns the
// proxier's OnSync that appends to it.
func syncEvents(path string, start *startup, log *zap.Logger) (func(proxier.SyncStats), func(), error) {
	if path == "" {
		return nil, func() {}, nil
	}
	w, err := syncevent.Create(path)
	if err != nil {
		return nil, nil, err
	}
	failed, first := false, true
	onSync := func(st proxier.SyncStats) {
		e := st.Event()
		if first {
			first = false
			start.first(&e)
		}
		if err := w.Write(e); err != nil && !failed {
			failed = true // said once: the daemon keeps syncing without the record
			log.Warn("cannot write the sync events file", zap.String("file", path), zap.Error(err))
		}
	}
	return onSync, func() { _ = w.Close() }, nil
}

// newSource builds the standalone (manifest directory) or API server source.
// In cluster mode the reporter turns invalid Services into Events.
func newSource(ctx context.Context, f *runFlags, cfg *config.Config, nodeName string, tracker *health.Tracker, log *zap.Logger) (runner, proxier.Reporter, error) {
	if f.manifests != "" {
		log.Info("standalone mode", zap.String("manifests", f.manifests), zap.String("node", nodeName))
		return standalone.New(standalone.Config{Dir: f.manifests, Node: desired.Node{Name: nodeName, Labels: f.nodeLabels},
			Poll: f.poll, Log: log.Named("manifests"), Health: tracker}), nil, nil
	}
	ks, err := newKubeSource(cfg, nodeName, tracker, log)
	if err != nil {
		return nil, nil, err
	}
	ev := ks.Reporter()
	ev.Start(ctx)
	return ks, ev, nil
}

// serve starts the healthz and metrics servers of cfg. An address in use
// (an old kube-proxy still there) is bound once free, while the kernel is
// programmed meanwhile; any other listen failure is a startup error.
func serve(ctx context.Context, cfg *config.Config, m *metrics.Metrics, tracker *health.Tracker, extra map[string]http.Handler, log *zap.Logger) ([]<-chan error, error) {
	var errs []<-chan error
	if cfg.HealthzBindAddress != "" {
		errc, err := server.Serve(ctx, cfg.HealthzBindAddress, countAnswers(server.HealthMux(tracker), m), server.HealthLimits, log.Named("healthz"))
		if err != nil {
			return nil, fmt.Errorf("healthz server: %w", err)
		}
		errs = append(errs, errc)
	}
	if cfg.MetricsBindAddress != "" {
		errc, err := server.Serve(ctx, cfg.MetricsBindAddress, server.MetricsMux(m, extra), server.MetricsLimits, log.Named("metrics"))
		if err != nil {
			return nil, fmt.Errorf("metrics server: %w", err)
		}
		errs = append(errs, errc)
	}
	return errs, nil
}
