package framework

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
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
}

// Proxy is a running ipvs-proxy daemon started by StartProxy. Its methods
// must be called from the test's goroutine.
type Proxy struct {
	t       testing.TB
	opts    Options
	bin     string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	// argv, when set, is the whole command line instead of ipvs-proxy's
	// (StartKubeProxy).
	argv []string
}

// StartProxy runs
//
//	$IPVS_PROXY_BIN run --logging-format=json --manifests DIR --node-name NAME [--config FILE] [EXTRA...]
//
// with its output in a log file (see Logs, ParseLog: the JSON format is the
// one to read by program). The daemon is stopped when the
// test ends, and if the test failed its log tail is printed.
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
	p := &Proxy{t: t, opts: opts, bin: bin, logPath: filepath.Join(artifactDir(t), "ipvs-proxy.log")}
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
	args := []string{"run", "--logging-format=json", "--node-name", p.opts.NodeName}
	if p.opts.Kubeconfig != "" {
		args = append(args, "--kubeconfig", p.opts.Kubeconfig)
	} else {
		args = append(args, "--manifests", p.opts.ManifestDir)
	}
	if p.opts.ConfigFile != "" {
		args = append(args, "--config", p.opts.ConfigFile)
	}
	return append(args, p.opts.ExtraArgs...)
}

// ManifestDir is the directory the daemon watches.
func (p *Proxy) ManifestDir() string { return p.opts.ManifestDir }

// Logs returns everything the daemon printed, across restarts.
func (p *Proxy) Logs() string { return readFile(p.logPath) }

// Running reports whether the daemon process has not exited.
func (p *Proxy) Running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM and waits for the daemon to exit (SIGKILL after 15 s).
// It returns the exit error (nil for a clean exit) and is a no-op when the
// daemon is not running.
func (p *Proxy) Stop() error {
	if p.cmd == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(proxyStopTimeout):
		p.t.Errorf("ipvs-proxy did not exit %s after SIGTERM: killing it", proxyStopTimeout)
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.cmd = nil
	return p.waitErr
}

// Kill sends SIGKILL and waits for the process to be gone, as in a crash.
func (p *Proxy) Kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.cmd = nil
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
	if p.cmd == nil {
		return p.waitErr
	}
	select {
	case <-p.exited:
		p.cmd = nil
		return p.waitErr
	case <-time.After(timeout):
		p.t.Fatalf("ipvs-proxy still running after %s", timeout)
		return nil
	}
}

func (p *Proxy) start() error {
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "=== %s: %s %q\n", time.Now().Format(time.RFC3339Nano), p.bin, p.Args())
	cmd := exec.Command(p.bin, p.Args()...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd = cmd
	p.exited = make(chan struct{})
	p.waitErr = nil
	exited := p.exited
	go func() {
		err := cmd.Wait()
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			err = fmt.Errorf("ipvs-proxy exited: %s", exitErr.ProcessState)
		}
		p.waitErr = err
		close(exited)
	}()
	return nil
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
