package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// execute runs the command line with a fake kernel that must not be opened.
func execute(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	a := defaultApp()
	a.oomScoreFile, a.hashsizeFile = "", ""
	code = a.main(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestHelpToStdout: --help of every command (and `help COMMAND`) goes to
// stdout with exit status 0.
func TestHelpToStdout(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"run", "--help"}, {"plan", "--help"}, {"cleanup", "--help"},
		{"status", "--help"}, {"version", "--help"}, {"help", "plan"}, {"help", "run"}, {"completion", "--help"}} {
		code, stdout, stderr := execute(t, args...)
		if code != 0 || !strings.Contains(stdout, "Usage:") || stderr != "" {
			t.Errorf("%q: exit %d, stdout %d bytes, stderr %q", args, code, len(stdout), stderr)
		}
	}
	_, stdout, _ := execute(t, "help", "run")
	for _, flag := range []string{"--config", "--hostname-override", "--logging-format", "-v, --v", "--vmodule", "--ipvs-scheduler", "--traffic-metrics-period"} {
		if !strings.Contains(stdout, flag) {
			t.Errorf("run --help does not list %s", flag)
		}
	}
}

// TestUsageErrors: an unknown flag, command or argument prints what was
// wrong on stderr and exits 2, for every command.
func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"plan", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"cleanup", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"status", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"run", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"--bogus"}, "unknown flag: --bogus"}, // flags without a command are run's
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"plan", "extra"}, `unknown command "extra"`},
		{[]string{"plan"}, `required flag(s) "manifests" not set`},
		{[]string{"status", "--output", "yaml"}, `--output "yaml": want table or json`},
		{[]string{"run", "--traffic-metrics-period", "-1s"}, "--traffic-metrics-period: -1s must not be negative"},
		{[]string{"run", "--manifests-poll-period", "0s"}, "--manifests-poll-period: 0s must be positive"},
		{[]string{"run", "--drain-check-period", "-5s"}, "--drain-check-period: -5s must be positive"},
		{[]string{}, "Usage:"},
	} {
		code, _, stderr := execute(t, c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

// TestOneMeaningOfV: -v is the log verbosity wherever it exists; the root
// command's version flag has no shorthand.
func TestOneMeaningOfV(t *testing.T) {
	if code, stdout, _ := execute(t, "--version"); code != 0 || !strings.HasPrefix(stdout, "ipvs-proxy ") {
		t.Errorf("--version: %d %q", code, stdout)
	}
	if code, _, stderr := execute(t, "cleanup", "-v"); code != exitUsage || !strings.Contains(stderr, "flag needs an argument") {
		t.Errorf("cleanup -v without a level: %d %q", code, stderr)
	}
	for _, cmd := range []string{"run", "cleanup"} {
		_, stdout, _ := execute(t, cmd, "--help")
		if !strings.Contains(stdout, "-v, --v Level") {
			t.Errorf("%s --help: -v is not the log verbosity", cmd)
		}
	}
}

// TestCompletion: cobra's completion scripts, and completion of flag values.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		if code, stdout, _ := execute(t, "completion", shell); code != 0 || !strings.Contains(stdout, "ipvs-proxy") {
			t.Errorf("completion %s: exit %d", shell, code)
		}
	}
	code, stdout, _ := execute(t, "__complete", "status", "--output", "")
	if code != 0 || !strings.Contains(stdout, "table\njson\n") {
		t.Errorf("completing status --output: %d %q", code, stdout)
	}
}

// TestPlanStrict: plan --strict exits 1 when an object is invalid and 0
// when none is; without --strict it plans and exits 0 either way.
func TestPlanStrict(t *testing.T) {
	good, bad := t.TempDir(), t.TempDir()
	svc := "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec:\n  clusterIP: 10.96.0.10\n  ports: [{name: http, port: %s}]\n"
	if err := os.WriteFile(filepath.Join(good, "s.yaml"), []byte(strings.Replace(svc, "%s", "80", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "s.yaml"), []byte(strings.Replace(svc, "%s", "0", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir    string
		strict bool
		want   int
	}{{good, true, 0}, {bad, true, 1}, {bad, false, 0}} {
		args := []string{"plan", "--manifests", c.dir, "--node-name", "n", "--node-ip", "10.0.0.1"}
		if c.strict {
			args = append(args, "--strict")
		}
		code, _, stderr := execute(t, args...)
		if code != c.want {
			t.Errorf("%q: exit %d, want %d (%s)", args, code, c.want, stderr)
		}
	}
}

// TestFlagsAndConfigFile: without --config the flags set the configuration;
// with it the file counts, as in kube-proxy: a disagreeing flag is named in
// a warning and left out, while --hostname-override and the logging flags
// still apply over the file.
func TestFlagsAndConfigFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.conf")
	if err := os.WriteFile(file, []byte("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n"+
		"ipvs: {scheduler: lc, syncPeriod: 10s}\nlogging: {verbosity: 1, vmodule: [{filePattern: sync, verbosity: 3}]}\nhostnameOverride: from-file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	load := func(args ...string) (*configResult, []observer.LoggedEntry) {
		t.Helper()
		f, err := parseRunFlags(args, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		core, logs := observer.New(zapcore.InfoLevel)
		cfg, err := loadRunConfig(f, zap.New(core))
		if err != nil {
			t.Fatal(err)
		}
		return &configResult{scheduler: cfg.IPVS.Scheduler, sync: cfg.IPVS.SyncPeriod.String(), host: cfg.HostnameOverride,
			v: int(cfg.Logging.Verbosity), vmodule: len(cfg.Logging.VModule)}, logs.All()
	}
	got, _ := load("--ipvs-scheduler", "wrr", "--ipvs-sync-period", "5s")
	if got.scheduler != "wrr" || got.sync != "5s" {
		t.Errorf("without --config the flags count: %+v", got)
	}
	got, logs := load("--config", file, "--ipvs-scheduler", "wrr", "--ipvs-sync-period", "10s", "--hostname-override", "from-flag",
		"-v", "4", "--vmodule", "proxier=5")
	if got.scheduler != "lc" || got.sync != "10s" {
		t.Errorf("with --config the file counts: %+v", got)
	}
	if got.host != "from-flag" || got.v != 4 || got.vmodule != 2 {
		t.Errorf("--hostname-override and the logging flags apply over the file: %+v", got)
	}
	var warned []string
	for _, e := range logs {
		if e.Level == zapcore.WarnLevel {
			warned = append(warned, e.ContextMap()["flag"].(string))
		}
	}
	if len(warned) != 1 || warned[0] != "--ipvs-scheduler=wrr" {
		t.Errorf("warnings name %v, want only the disagreeing --ipvs-scheduler=wrr (--ipvs-sync-period agrees with the file)", warned)
	}
}

type configResult struct {
	scheduler, sync, host string
	v, vmodule            int
}
