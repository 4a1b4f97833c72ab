package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	logsapi "k8s.io/component-base/logs/api/v1"
	"sigs.k8s.io/yaml"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// runFlags are the flags of `ipvs-proxy run`.
type runFlags struct {
	configFile        string
	manifests         string
	nodeName          string
	nodeLabels        map[string]string
	logging           *logsapi.LoggingConfiguration
	poll              time.Duration
	drainCheck        time.Duration
	faultRate         float64
	faultFile         string
	iptablesBackend   iptables.Backend
	rulesBackend      state.RulesBackend
	trafficPeriod     time.Duration
	trafficNamespaces []string
	faultSeed         int64
	syncEvents        string
	faultReads        string
	statusRemote      bool
	kernelRelease     string
	cleanup           bool
	writeConfigTo     string
	over              *overrides
	fs                *pflag.FlagSet

	// Files the daemon writes besides the kernel state (oomScoreAdj,
	// nf_conntrack's hashsize); empty skips them. The command sets the real
	// ones (app), so that tests never change the host's.
	oomScoreFile, hashsizeFile string
	// startup times the start for the first sync event (nil: untimed).
	startup *startup
}

// addRunFlags defines run's flags on fs.
func addRunFlags(fs *pflag.FlagSet) *runFlags {
	f := &runFlags{fs: fs, iptablesBackend: "auto", rulesBackend: state.BackendIPTables, logging: logsapi.NewLoggingConfiguration()}
	fs.StringVar(&f.configFile, "config", "", "KubeProxyConfiguration file (kube-proxy's ConfigMap config.conf); watched, and applied again when it changes")
	fs.StringVar(&f.manifests, "manifests", "", "standalone mode: read Services and EndpointSlices from this directory instead of an API server")
	fs.StringVar(&f.nodeName, "node-name", "", "this node's name (same as --hostname-override)")
	fs.StringToStringVar(&f.nodeLabels, "node-labels", nil, "standalone mode: the node's labels, e.g. topology.kubernetes.io/zone=a")
	fs.DurationVar(&f.poll, "manifests-poll-period", time.Second, "standalone mode: how often to check the directory for changes")
	fs.DurationVar(&f.drainCheck, "drain-check-period", 5*time.Second, "how often to check drained real servers for remaining connections")
	fs.Var(&backendFlag{&f.iptablesBackend}, "iptables-backend", "iptables backend: auto (the one the node's kubelet uses), nft, legacy, or default (the iptables-restore in PATH)")
	fs.Var(&rulesBackendFlag{&f.rulesBackend}, "rules-backend", "where the sets and rules around IPVS go: iptables (ipsets and iptables chains), nftables (a table of ipvs-proxy's own), or auto (nftables unless the node has kube-proxy's iptables rules or the kernel lacks what the table needs); overrides the file's ipvsProxy.rulesBackend (default iptables)")
	fs.DurationVar(&f.trafficPeriod, "traffic-metrics-period", 0,
		"per-Service traffic metrics: how often IPVS's counters are read (0: off; 5 series per Service port, see README)")
	fs.StringSliceVar(&f.trafficNamespaces, "traffic-metrics-namespaces", nil, "per-Service traffic metrics only for Services in these namespaces (default: all)")
	fs.StringVar(&f.syncEvents, "sync-events", "", "append one JSON line per sync to this file (for tests, benchmarks and tools; see internal/syncevent)")
	fs.BoolVar(&f.cleanup, "cleanup", false, "remove everything ipvs-proxy programmed and exit (kube-proxy's flag; same as `ipvs-proxy cleanup`)")
	fs.StringVar(&f.writeConfigTo, "write-config-to", "", "write the effective configuration as a KubeProxyConfiguration to this file and exit")
	fs.Float64Var(&f.faultRate, "fault-inject-rate", 0, "testing only: make this share of kernel writes fail")
	fs.Int64Var(&f.faultSeed, "fault-inject-seed", 1, "testing only: seed of the fault injector")
	fs.StringVar(&f.faultFile, "fault-inject-rate-file", "", "testing only: read the fault injection rate from this file every second")
	fs.StringVar(&f.kernelRelease, "kernel-release-override", "", "testing only: act as if the kernel's release (uname -r) were this")
	fs.StringVar(&f.faultReads, "fault-inject-reads-file", "", "testing only: while this file names a read (node-addresses), that read fails")
	fs.BoolVar(&f.statusRemote, "status-remote", false, "answer /status on the metrics address to clients on other hosts too (it lists every Service, unauthenticated); by default only the node itself may ask")
	for _, name := range []string{"fault-inject-rate", "fault-inject-seed", "fault-inject-rate-file", "fault-inject-reads-file", "kernel-release-override"} {
		_ = fs.MarkHidden(name)
	}
	f.over = addOverrideFlags(fs)
	addLoggingFlags(fs, f.logging)
	return f
}

// validate checks the flags that are not configuration fields.
func (f *runFlags) validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"manifests-poll-period", f.poll}, {"drain-check-period", f.drainCheck}} {
		if d.v <= 0 {
			return fmt.Errorf("--%s: %v must be positive", d.name, d.v)
		}
	}
	if f.trafficPeriod < 0 {
		return fmt.Errorf("--traffic-metrics-period: %v must not be negative (0 turns the metrics off)", f.trafficPeriod)
	}
	if f.faultRate < 0 || f.faultRate > 1 {
		return fmt.Errorf("--fault-inject-rate: %v is not between 0 and 1", f.faultRate)
	}
	return nil
}

// parseRunFlags parses run's flags (tests; the command parses with cobra).
func parseRunFlags(args []string, stderr io.Writer) (*runFlags, error) {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	f := addRunFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return f, f.validate()
}

func (a *app) runCommand(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run [--config FILE] [--manifests DIR | --kubeconfig FILE] [--hostname-override NAME] [flags]",
		Short: "Program Services into IPVS (from an API server, or --manifests DIR)",
		Long: `Runs the daemon until SIGTERM or SIGINT. Stopping leaves the kernel state in place: a restarted daemon adopts it
without disturbing traffic.

The flags are kube-proxy's where kube-proxy has one. With --config the file is what counts, as in kube-proxy:
the configuration flags are ignored (with a warning when they disagree with the file), except
--hostname-override, --master and the logging flags. The file is watched: a change is applied in place, or,
for the fields that need it (bind addresses, the API server connection, the log format), the daemon stops
cleanly with exit status 3 so that it is restarted.`,
		Args: cobra.NoArgs,
	}
	f := addRunFlags(cmd.Flags())
	_ = cmd.MarkFlagFilename("config", "yaml", "yml", "json", "conf")
	_ = cmd.MarkFlagDirname("manifests")
	cmd.RunE = func(*cobra.Command, []string) error { return a.runDaemon(f, stdout, stderr) }
	return cmd
}

// runDaemon runs the daemon until SIGTERM or SIGINT.
func (a *app) runDaemon(f *runFlags, stdout, stderr io.Writer) error {
	f.startup = newStartup()
	if err := f.validate(); err != nil {
		return fail(exitUsage, "%v", err)
	}
	// Until logging is set up from the file and the flags, messages wait here.
	early, recorded := observer.New(zapcore.DebugLevel)
	cfg, err := loadRunConfig(f, zap.New(early))
	if err != nil {
		for _, e := range recorded.All() {
			fmt.Fprintf(stderr, "run: %s %v\n", e.Message, e.ContextMap())
		}
		return fail(exitError, "%v", err)
	}
	fg, unknownGates, err := loggingFeatureGate(cfg.FeatureGates)
	if err != nil {
		return fail(exitError, "%v", err)
	}
	log, err := setupLogging(&cfg.Logging, fg, stderr)
	if err != nil {
		return fail(exitError, "%v", err)
	}
	defer func() { _ = log.Sync() }()
	for _, e := range recorded.All() {
		if ce := log.Check(e.Level, e.Message); ce != nil {
			ce.Write(e.Context...)
		}
	}
	if len(unknownGates) > 0 {
		log.Info("featureGates: only the logging gates mean something to ipvs-proxy; ignoring the others", zap.Strings("gates", unknownGates))
	}
	switch {
	case f.writeConfigTo != "":
		return writeConfig(cfg, f.writeConfigTo)
	case f.cleanup:
		k, closeKernel, err := a.openKernel(log, f.iptablesBackend, config.RulesAuto)
		if err != nil {
			return fail(exitError, "%v", err)
		}
		defer closeKernel()
		return cleanupKernel(k, cfg, &cleanupFlags{}, stdout, stderr)
	}
	f.oomScoreFile, f.hashsizeFile = a.oomScoreFile, a.hashsizeFile
	f.startup.step("config")
	ctx, stop := a.signals()
	defer stop()
	open := func(log *zap.Logger) (kernel.Kernel, func(), error) {
		return a.openKernel(log, f.iptablesBackend, cfg.RulesBackend)
	}
	err = runWith(ctx, f, cfg, log, open)
	switch {
	case errors.Is(err, errRestart):
		return &exitCodeError{code: exitRestart}
	case err != nil:
		log.Error("ipvs-proxy cannot run", zap.Error(err))
		return &exitCodeError{code: exitError}
	}
	return nil
}

// run loads the configuration and runs the daemon until ctx is done.
func run(ctx context.Context, f *runFlags, log *zap.Logger, open kernelOpener) error {
	cfg, err := loadRunConfig(f, log)
	if err != nil {
		return err
	}
	return runWith(ctx, f, cfg, log, open)
}

// loadRunConfig reads the config file (or takes kube-proxy's defaults),
// applies the command-line flags that count (see overrides) and puts the
// logging flags over the file's logging block.
func loadRunConfig(f *runFlags, log *zap.Logger) (*config.Config, error) {
	cfg := config.Default()
	if f.configFile != "" {
		c, rep, err := config.LoadFile(f.configFile)
		logReport(log, f.configFile, rep)
		if err != nil {
			return nil, err
		}
		cfg = c
	}
	if err := f.over.apply(cfg, f.configFile != "", log); err != nil {
		return nil, err
	}
	if f.fs.Changed("rules-backend") { // ipvs-proxy's own flag: it counts with --config too
		cfg.RulesBackend = f.rulesBackend
	}
	logging, err := mergeLogging(f.fs, cfg.Logging)
	if err != nil {
		return nil, err
	}
	cfg.Logging = logging
	return cfg, nil
}

// logReport logs what loading the file noticed without failing.
func logReport(log *zap.Logger, file string, rep *config.Report) {
	if rep == nil {
		return
	}
	for _, w := range rep.Warnings {
		log.Warn("config", zap.String("file", file), zap.String("warning", w))
	}
	for _, i := range rep.Infos {
		log.Info("config", zap.String("file", file), zap.String("note", i))
	}
}

// writeConfig writes cfg as a KubeProxyConfiguration (--write-config-to).
func writeConfig(cfg *config.Config, path string) error {
	b, err := yaml.Marshal(cfg.V1alpha1())
	if err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		return fail(exitError, "--write-config-to: %v", err)
	}
	return nil
}

// nodeName picks the node's name like kube-proxy: --hostname-override (or
// --node-name), the file's hostnameOverride, then the hostname, lower-cased.
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
