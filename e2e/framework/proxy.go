package framework

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// DefaultNodeName is the node name StartProxy passes when Options.NodeName is
// empty.
const DefaultNodeName = "node-1"

// proxyStopTimeout is how long Stop waits after SIGTERM before SIGKILL.
const proxyStopTimeout = 15 * time.Second

// Options says how to run the daemon.
type Options struct {
	// ManifestDir is the directory of Service/EndpointSlice manifests the
	// daemon watches; empty means a new temporary directory.
	ManifestDir string
	// NodeName is the node the daemon acts for; empty means DefaultNodeName.
	NodeName string
	// ConfigFile, if set, is passed as --config.
	ConfigFile string
	// ExtraArgs are appended to the command line.
	ExtraArgs []string
	// Kubeconfig, if set, runs the daemon against an API server instead of
	// a manifest directory (no --manifests is passed).
	Kubeconfig string
	// Env is added to the daemon's environment (e.g. GOMEMLIMIT).
	Env []string
	// NetNS is the network namespace the daemon runs in ("" is the root one).
	NetNS string
	// RulesBackend, if set, is passed as --rules-backend (before ExtraArgs,
	// which may override it). StartProxy sets the scenario's backend.
	RulesBackend RulesBackend
}

// Command returns the daemon's command:
//
//	BIN run --logging-format=json --sync-events EVENTS --node-name NAME \
//	    (--kubeconfig FILE | --manifests DIR) [--config FILE] [EXTRA...]
//
// with its output appended to logPath. The log is for people; what the
// daemon did is read from the events file (FollowSyncs).
func (o Options) Command(bin, logPath, eventsPath string) Command {
	if o.NodeName == "" {
		o.NodeName = DefaultNodeName
	}
	args := []string{"run", "--logging-format=json", "--sync-events", eventsPath, "--node-name", o.NodeName}
	if o.Kubeconfig != "" {
		args = append(args, "--kubeconfig", o.Kubeconfig)
	} else {
		args = append(args, "--manifests", o.ManifestDir)
	}
	if o.ConfigFile != "" {
		args = append(args, "--config", o.ConfigFile)
	}
	if o.RulesBackend != "" {
		args = append(args, "--rules-backend", string(o.RulesBackend))
	}
	args = append(args, o.ExtraArgs...)
	return Command{Bin: bin, Args: args, Env: o.Env, NetNS: o.NetNS, LogPath: logPath}
}

// Proxy is a running ipvs-proxy daemon started by StartProxy. Its methods
// must be called from the test's goroutine.
type Proxy struct {
	t          testing.TB
	opts       Options
	bin        string
	logPath    string
	eventsPath string
	proc       *Process
	// runOffset is the events file's size when the daemon last started.
	runOffset int64
	waitErr   error
	// argv, when set, is the whole command line instead of ipvs-proxy's
	// (StartKubeProxy).
	argv []string
}

// StartProxy runs the daemon (see Options.Command) with its log and sync
// events in the test's artifact directory (ipvs-proxy.log,
// ipvs-proxy.syncs.jsonl). The daemon is stopped when the test ends, and if
// the test failed its log tail is printed.
func StartProxy(t testing.TB, opts Options) *Proxy {
	t.Helper()
	bin := os.Getenv(EnvProxyBin)
	if bin == "" {
		t.Fatalf("%s is not set: it must name the ipvs-proxy binary", EnvProxyBin)
	}
	if opts.ManifestDir == "" && opts.Kubeconfig == "" {
		opts.ManifestDir = t.TempDir()
	}
	if opts.NodeName == "" {
		opts.NodeName = DefaultNodeName
	}
	if opts.RulesBackend == "" {
		opts.RulesBackend = rulesBackend
	}
	dir := artifactDir(t)
	p := &Proxy{t: t, opts: opts, bin: bin, logPath: filepath.Join(dir, "ipvs-proxy.log"),
		eventsPath: filepath.Join(dir, "ipvs-proxy.syncs.jsonl")}
	if err := p.start(); err != nil {
		t.Fatalf("start ipvs-proxy: %v", err)
	}
	t.Cleanup(func() {
		_ = p.Stop()
		if t.Failed() {
			t.Logf("ipvs-proxy log (%s), last lines:\n%s", p.logPath, indent(tail(p.Logs(), 60)))
		}
	})
	return p
}

// Args returns the daemon's command line arguments.
func (p *Proxy) Args() []string {
	if p.argv != nil {
		return p.argv
	}
	return p.command().Args
}

// command is what start runs: ipvs-proxy's command, or argv's.
func (p *Proxy) command() Command {
	if p.argv != nil {
		return Command{Bin: p.bin, Args: p.argv, LogPath: p.logPath}
	}
	return p.opts.Command(p.bin, p.logPath, p.eventsPath)
}

// ManifestDir is the directory the daemon watches.
func (p *Proxy) ManifestDir() string { return p.opts.ManifestDir }

// Logs returns everything the daemon printed, across restarts.
func (p *Proxy) Logs() string { return readFile(p.logPath) }

// Process is the daemon's current process (nil when stopped).
func (p *Proxy) Process() *Process { return p.proc }

// Running reports whether the daemon process has not exited.
func (p *Proxy) Running() bool { return p.proc != nil && p.proc.Running() }

// Stop sends SIGTERM and waits for the daemon to exit (SIGKILL after 15 s).
// It returns the exit error (nil for a clean exit) and is a no-op when the
// daemon is not running.
func (p *Proxy) Stop() error {
	if p.proc == nil {
		return nil
	}
	killed, err := p.proc.Stop(proxyStopTimeout)
	if killed {
		p.t.Errorf("ipvs-proxy did not exit %s after SIGTERM: killed it", proxyStopTimeout)
	}
	p.proc, p.waitErr = nil, err
	return err
}

// Kill sends SIGKILL and waits for the process to be gone, as in a crash.
func (p *Proxy) Kill() {
	if p.proc == nil {
		return
	}
	p.proc.Kill()
	p.proc = nil
}

// Start starts the daemon again after Stop or Kill, with the same options;
// it fails the test if the daemon is still running or cannot start.
func (p *Proxy) Start() {
	p.t.Helper()
	if p.Running() {
		p.t.Fatalf("start ipvs-proxy: it is still running")
	}
	if err := p.start(); err != nil {
		p.t.Fatalf("start ipvs-proxy: %v", err)
	}
}

// Restart stops the daemon (SIGTERM) and starts it again with the same
// options; it fails the test if the start fails. The exit error of the stop
// is returned.
func (p *Proxy) Restart() error {
	p.t.Helper()
	stopErr := p.Stop()
	if err := p.start(); err != nil {
		p.t.Fatalf("restart ipvs-proxy: %v", err)
	}
	return stopErr
}

// Wait waits up to timeout for the daemon to exit by itself and returns its
// exit error; it fails the test if the daemon is still running then.
func (p *Proxy) Wait(timeout time.Duration) error {
	p.t.Helper()
	if p.proc == nil {
		return p.waitErr
	}
	err, ok := p.proc.Wait(timeout)
	if !ok {
		p.t.Fatalf("ipvs-proxy still running after %s", timeout)
	}
	p.proc, p.waitErr = nil, err
	return err
}

func (p *Proxy) start() error {
	p.runOffset = FileSize(p.eventsPath)
	proc, err := StartProcess(p.command())
	if err != nil {
		return err
	}
	p.proc, p.waitErr = proc, nil
	return nil
}

// Syncs returns the syncs the daemon recorded since it was last
// (re)started, from its sync events file.
func (p *Proxy) Syncs() []Sync {
	p.t.Helper()
	syncs, err := FollowSyncs(p.eventsPath, p.runOffset).All()
	if err != nil {
		p.t.Fatalf("read the sync events: %v", err)
	}
	return syncs
}

// FullSyncs returns the full syncs the daemon recorded since it was last
// (re)started.
func (p *Proxy) FullSyncs() []Sync {
	p.t.Helper()
	var out []Sync
	for _, s := range p.Syncs() {
		if IsFull(s) {
			out = append(out, s)
		}
	}
	return out
}

// WaitFullSyncs waits until the daemon has recorded n full syncs since it
// was last (re)started and returns them all; it fails the test after
// timeout or if the daemon exits.
func (p *Proxy) WaitFullSyncs(t testing.TB, n int, timeout time.Duration) []Sync {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if full := p.FullSyncs(); len(full) >= n {
			return full
		}
		if !p.Running() {
			var err error
			if p.proc != nil {
				err = p.proc.Err()
			}
			t.Fatalf("ipvs-proxy exited before its full sync #%d: %v", n, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("ipvs-proxy recorded %d full syncs after %s, want %d", len(p.FullSyncs()), timeout, n)
		}
		time.Sleep(pollInterval)
	}
}

// WriteManifest writes a manifest file into dir atomically (a hidden
// temporary file renamed into place), so a watching daemon never reads half a
// file.
func WriteManifest(t testing.TB, dir, filename, yamlText string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+filename+".tmp")
	if err := os.WriteFile(tmp, []byte(yamlText), 0o644); err != nil {
		t.Fatalf("write manifest %s: %v", filename, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, filename)); err != nil {
		t.Fatalf("write manifest %s: %v", filename, err)
	}
}

// RemoveManifest deletes a manifest file from dir; a missing file fails the
// test.
func RemoveManifest(t testing.TB, dir, filename string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, filename)); err != nil {
		t.Fatalf("remove manifest %s: %v", filename, err)
	}
}
