package framework

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Ports the backends serve on.
const (
	PortHTTP    = 80
	PortHTTPAlt = 8080
	PortUDP     = 53
	PortTCPLine = 9000
	// PortTCPDNS is TCP 53, served like PortTCPLine, so a DNS-like Service
	// (53/UDP and 53/TCP) has both ports answered.
	PortTCPDNS = 53
)

// backendReadyTimeout bounds how long a backend's servers may take to listen.
const backendReadyTimeout = 15 * time.Second

// Backend is a namespace (a "pod") running the test servers under its name.
type Backend struct {
	*Namespace
	sctp    bool
	cmd     *exec.Cmd
	logPath string
	// quiet servers log nothing per request (the benchmark's load).
	quiet bool
}

// NewBackend creates namespace name with address ip (see NewClientNS) and
// starts the servers in it: HTTP on 80 and 8080, UDP on 53, line-per-line TCP
// on 9000 and 53, each answering with name. All ports listen when it returns. The
// servers are killed and the namespace deleted when the test ends.
func NewBackend(t testing.TB, name, ip string) *Backend {
	t.Helper()
	return NewBackendWith(t, name, ip, BackendOptions{})
}

// BackendOptions add to a backend's servers.
type BackendOptions struct {
	// IP6 gives the backend an IPv6 address too (as NewDualStackClientNS),
	// and its servers listen on it as well.
	IP6 string
	// SCTP adds the SCTP echo on PortSCTP.
	SCTP bool
}

// NewBackendWith is NewBackend with options.
func NewBackendWith(t testing.TB, name, ip string, opts BackendOptions) *Backend {
	t.Helper()
	ns, err := newNamespace(name, ip, opts.IP6)
	t.Cleanup(func() { deleteNamespace(name) })
	if err != nil {
		t.Fatalf("create backend %s (%s): %v", name, ip, err)
	}
	b := &Backend{Namespace: ns, sctp: opts.SCTP, logPath: filepath.Join(artifactDir(t), "backend-"+name+".log")}
	if err := b.start(); err != nil {
		t.Fatalf("start backend %s (%s): %v", name, ip, err)
	}
	t.Cleanup(func() {
		b.Stop()
		if t.Failed() {
			t.Logf("backend %s log (%s):\n%s", name, b.logPath, indent(tail(readFile(b.logPath), 20)))
		}
	})
	return b
}

// StartBackend is NewBackend for a program without a testing.TB (the
// benchmark): its servers log no request when quiet, and the caller removes
// it with Delete.
func StartBackend(name, ip, logPath string, quiet bool) (*Backend, error) {
	ns, err := newNamespace(name, ip, "")
	if err != nil {
		deleteNamespace(name)
		return nil, fmt.Errorf("create backend %s (%s): %w", name, ip, err)
	}
	b := &Backend{Namespace: ns, logPath: logPath, quiet: quiet}
	if err := b.start(); err != nil {
		deleteNamespace(name)
		return nil, fmt.Errorf("start backend %s (%s): %w", name, ip, err)
	}
	return b, nil
}

// Delete stops the servers and deletes the namespace.
func (b *Backend) Delete() {
	b.Stop()
	deleteNamespace(b.Name)
}

// Addr returns "IP:port" of this backend.
func (b *Backend) Addr(port int) string {
	return net.JoinHostPort(b.IP, fmt.Sprint(port))
}

// Stop kills the backend's servers (the namespace and its address stay), as
// when a pod's process dies. Stopping twice is fine.
func (b *Backend) Stop() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	_ = b.cmd.Wait()
	b.cmd = nil
}

// Start restarts the servers after Stop.
func (b *Backend) Start(t testing.TB) {
	t.Helper()
	if b.cmd != nil {
		return
	}
	if err := b.start(); err != nil {
		t.Fatalf("restart backend %s: %v", b.Name, err)
	}
}

// start re-executes the test binary inside the namespace as the backend role
// and waits for its "ready" line, printed once every port listens.
func (b *Backend) start() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(b.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(IPBin, "netns", "exec", b.Name, self)
	cmd.Env = append(os.Environ(), envRole+"="+roleBackend, envRoleName+"="+b.Name,
		fmt.Sprintf("%s=%t", envRoleIPv6, b.IP6 != ""), fmt.Sprintf("%s=%t", envRoleSCTP, b.sctp))
	if b.quiet {
		cmd.Env = append(cmd.Env, envRoleQuiet+"=1")
	}
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("unexpected first line %q", line)
		}
		ready <- err
	}()
	select {
	case err = <-ready:
	case <-time.After(backendReadyTimeout):
		err = errors.New("servers not listening after " + backendReadyTimeout.String())
	}
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("%w; log %s:\n%s", err, b.logPath, indent(tail(readFile(b.logPath), 20)))
	}
	b.cmd = cmd
	return nil
}
