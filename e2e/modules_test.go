package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

// noModprobe is what /proc/sys/kernel/modprobe points at while the kernel
// must not load modules on demand: a program that fails (busybox's false;
// the image has no /bin/false).
const noModprobe = "/usr/lib/busybox/false"

// ipvsModules are loaded again after TestMissingKernelModules: what the
// guest's /init loads, plus xt_ipvs.
var ipvsModules = []string{"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_lc", "ip_vs_wlc", "ip_vs_lblc", "ip_vs_lblcr",
	"ip_vs_dh", "ip_vs_sh", "ip_vs_sed", "ip_vs_nq", "ip_vs_mh", "ip_vs_fo", "ip_vs_ovf", "xt_ipvs"}

// TestMissingKernelModules starts the daemon on a kernel that lacks what it
// needs, with on-demand module loading disabled (/proc/sys/kernel/modprobe
// pointing at a program that fails), as on a node without the modules:
//   - the configured scheduler's module removed (ipvs.scheduler: wlc,
//     ip_vs_wlc unloaded): the daemon exits by itself with status 1, saying
//     `modprobe ip_vs_wlc`, and leaves nothing behind (no virtual server,
//     not even its probe, no kube-ipvs0);
//   - IPVS itself removed (every ip_vs module unloaded after ipvsadm -C):
//     status 1, saying `modprobe ip_vs`.
//
// The modules and the modprobe path are restored afterwards, whatever
// happens, so the scenarios after this one find the kernel as before.
func TestMissingKernelModules(t *testing.T) {
	framework.ResetKernel(t)
	if _, err := os.Stat(noModprobe); err != nil {
		t.Fatalf("%s is missing from the image: %v", noModprobe, err)
	}
	modprobe := framework.ReadSysctl(t, "kernel.modprobe")
	t.Cleanup(func() {
		framework.Sysctl(t, "kernel.modprobe", modprobe)
		framework.Run(t, "/usr/sbin/modprobe", append([]string{"-a"}, ipvsModules...)...)
		if _, err := os.Stat("/proc/net/ip_vs"); err != nil {
			t.Errorf("IPVS not back after reloading its modules: %v", err)
		}
	})
	framework.Sysctl(t, "kernel.modprobe", noModprobe)
	dir := t.TempDir()
	framework.WriteManifest(t, dir, "web.yaml", joinYAML(webService("10.96.0.10", ""), webSlice("web-1", "10.244.1.2")))

	t.Run("scheduler module missing", func(t *testing.T) {
		framework.Run(t, "/usr/sbin/rmmod", "ip_vs_wlc")
		cfg := writeConfig(t, t.TempDir(), "ipvs:\n  scheduler: wlc\n")
		out := runUntilExit(t, "--manifests", dir, "--node-name", framework.DefaultNodeName, "--config", cfg)
		if want := "load it with `modprobe ip_vs_wlc`"; !strings.Contains(out, want) {
			t.Errorf("the daemon's output does not say %q:\n%s", want, out)
		}
		if vss := framework.IPVSServices(t); len(vss) != 0 {
			t.Errorf("the daemon left virtual servers behind:\n%s", ipvsadmText(t))
		}
		if _, err := framework.Output(framework.IPBin, "link", "show", "kube-ipvs0"); err == nil {
			t.Errorf("the daemon created kube-ipvs0 before giving up")
		}
	})

	t.Run("ip_vs missing", func(t *testing.T) {
		framework.IPVSADM(t, "-C")
		holders, err := os.ReadDir("/sys/module/ip_vs/holders")
		if err != nil {
			t.Fatalf("ip_vs is not loaded: %v", err)
		}
		var names []string
		for _, h := range holders {
			names = append(names, h.Name())
		}
		if len(names) > 0 {
			framework.Run(t, "/usr/sbin/rmmod", names...)
		}
		framework.Run(t, "/usr/sbin/rmmod", "ip_vs")
		t.Logf("unloaded ip_vs and %s", strings.Join(names, " "))
		out := runUntilExit(t, "--manifests", dir, "--node-name", framework.DefaultNodeName)
		if want := "IPVS is not available in this kernel: load it with `modprobe ip_vs`"; !strings.Contains(out, want) {
			t.Errorf("the daemon's output does not say %q:\n%s", want, out)
		}
		if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
			t.Errorf("ip_vs was loaded again: on-demand loading is not disabled")
		}
	})
}

// runUntilExit runs `ipvs-proxy run ARGS...`, which must exit by itself with
// status 1 within a minute, and returns its output.
func runUntilExit(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Getenv(framework.EnvProxyBin), append([]string{"run"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("ipvs-proxy still running after %s:\n%s", time.Minute, out.String())
	case !errors.As(err, &exit) || exit.ExitCode() != 1:
		t.Fatalf("ipvs-proxy exited with %v, want status 1:\n%s", err, out.String())
	}
	t.Logf("ipvs-proxy exited with status 1 after %.1fs:\n%s", took.Seconds(), strings.TrimRight(out.String(), "\n"))
	return out.String()
}
