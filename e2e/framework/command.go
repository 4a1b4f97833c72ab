package framework

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Full paths of the guest's tools. iproute2's ip is always called by path:
// busybox's ip applet has no netns support.
const (
	IPBin        = "/usr/bin/ip"
	IPVSAdmBin   = "/usr/sbin/ipvsadm"
	IPSetBin     = "/usr/sbin/ipset"
	IPTablesBin  = "/usr/sbin/iptables" // the backend Debian's alternatives chose (nft)
	ConntrackBin = "/usr/sbin/conntrack"
)

// commandTimeout bounds every command the framework runs, so a wedged tool
// fails the test instead of hanging the whole boot.
const commandTimeout = 30 * time.Second

// Output runs a command and returns its combined stdout and stderr. The
// error, if any, names the command and includes its output.
func Output(name string, args ...string) (string, error) {
	return outputWithInput("", name, args...)
}

// outputWithInput is Output with stdin.
func outputWithInput(stdin, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, ToolPath(name), args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.Stdin = strings.NewReader(stdin)
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %s", commandTimeout)
	}
	if err != nil {
		return out.String(), fmt.Errorf("%s: %w\n%s", commandLine(name, args), err, indent(out.String()))
	}
	return out.String(), nil
}

// Run runs a command and returns its combined output; it fails the test if
// the command fails.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := Output(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// RunIn runs a command inside network namespace ns ("" is the root namespace),
// like `ip netns exec NS NAME ARGS...`; it fails the test if the command fails.
func RunIn(t testing.TB, ns, name string, args ...string) string {
	t.Helper()
	if ns == "" {
		return Run(t, name, args...)
	}
	return Run(t, IPBin, append([]string{"netns", "exec", ns, name}, args...)...)
}

// Sysctl sets a kernel parameter, e.g. Sysctl(t, "net.ipv4.vs.conntrack", "1").
func Sysctl(t testing.TB, key, value string) {
	t.Helper()
	if err := writeSysctl(key, value); err != nil {
		t.Fatal(err)
	}
}

// ReadSysctl returns a kernel parameter's value, trimmed.
func ReadSysctl(t testing.TB, key string) string {
	t.Helper()
	b, err := os.ReadFile(sysctlPath(key))
	if err != nil {
		t.Fatalf("read sysctl %s: %v", key, err)
	}
	return strings.TrimSpace(string(b))
}

func writeSysctl(key, value string) error {
	if err := os.WriteFile(sysctlPath(key), []byte(value), 0o644); err != nil {
		return fmt.Errorf("set sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

func sysctlPath(key string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
}

func commandLine(name string, args []string) string {
	return strings.TrimSpace(name + " " + strings.Join(args, " "))
}

// indent prefixes each line of a command's output for error messages.
func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "  (no output)"
	}
	return "  | " + strings.ReplaceAll(s, "\n", "\n  | ")
}
