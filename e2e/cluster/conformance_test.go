package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Kubernetes' own end-to-end suite against ipvs-proxy: make conformance (scripts/conformance.sh) sets
// E2ETestEnv to the e2e.test binary that scripts/k8s/build.sh built for the cluster's version.
const (
	// E2ETestEnv is the path of e2e.test; without it TestConformance skips.
	E2ETestEnv = "CONFORMANCE_E2E_TEST"
	// FocusEnv selects the specs: a file of regexps (one a line, OR'ed; # comments), default
	// e2e/cluster/testdata/conformance/focus.txt (the full set). ci.txt is the part make test runs.
	FocusEnv = "CONFORMANCE_FOCUS"
	// OutEnv is where the run's log, JUnit report and results table go, default _output/conformance.
	OutEnv = "CONFORMANCE_OUT"
)

// TestConformance deploys ipvs-proxy as the README says on a one-node cluster with no other service proxy, with
// cluster DNS, and runs the e2e suite's specs that FocusEnv selects, minus those that one node cannot run
// (testdata/conformance/skip.txt, each with its reason). Every failed spec fails the test; results.md in
// OutEnv is the table docs/conformance.md holds.
func TestConformance(t *testing.T) {
	e2eTest := os.Getenv(E2ETestEnv)
	if e2eTest == "" {
		t.Skipf("run it with make conformance, which sets %s", E2ETestEnv)
	}
	c := Start(t, Options{})
	deployForConformance(t, c)

	focusFile := os.Getenv(FocusEnv)
	if focusFile == "" {
		focusFile = filepath.Join(c.Root(), "e2e/cluster/testdata/conformance/focus.txt")
	}
	focus, err := readPatterns(focusFile)
	if err != nil {
		t.Fatal(err)
	}
	skips, err := readPatterns(filepath.Join(c.Root(), "e2e/cluster/testdata/conformance/skip.txt"))
	if err != nil {
		t.Fatal(err)
	}
	out := os.Getenv(OutEnv)
	if out == "" {
		out = filepath.Join(c.Root(), "_output/conformance")
	}
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	args := e2eArgs(c, out, focus, skips)
	t.Logf("$ %s %s", e2eTest, strings.Join(args, " "))
	log, err := os.Create(filepath.Join(out, "e2e.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	began := time.Now()
	cmd := exec.Command(e2eTest, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.AdminKubeconfig(),
		"PATH="+filepath.Dir(c.KubectlBin())+":"+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = log, log
	runErr := cmd.Run()
	elapsed := time.Since(began).Round(time.Second)

	results, err := readJUnit(filepath.Join(out, "junit_01.xml"))
	if err != nil {
		t.Fatalf("e2e.test (%v, exit: %v) left no report: %v; its log: %s", elapsed, runErr, err, log.Name())
	}
	results = results.selected(focus, skips)
	table := results.markdown()
	if err := os.WriteFile(filepath.Join(out, "results.md"), []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("e2e.test ran %d specs in %v: %s\n%s", len(results), elapsed, results.summary(), table)
	for _, r := range results.failed() {
		t.Errorf("FAILED: %s\n%s", r.Name, r.Message)
	}
	if runErr != nil && len(results.failed()) == 0 {
		t.Errorf("e2e.test: %v with no failed spec; its log: %s", runErr, log.Name())
	}
}

// deployForConformance deploys cluster DNS and ipvs-proxy with the README's commands and waits until both serve.
func deployForConformance(t *testing.T, c *Cluster) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.Kubectl(ctx, "", "apply", "-f", filepath.Join(c.Root(), "e2e/cluster/testdata/coredns.yaml")); err != nil {
		t.Fatal(err)
	}
	user := newUserShell(t, c)
	user.run(t, 2*time.Minute, readmeSetServer, readmeSedServer)
	user.run(t, 2*time.Minute, readmeApply)
	user.run(t, 10*time.Minute, readmeRollout)
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if _, err := c.WaitPodsReady(waitCtx, "kube-system", "k8s-app=kube-dns", 2); err != nil {
		t.Fatal(err)
	}
}

// e2eArgs is e2e.test's command line: the admin kubeconfig, no cloud provider, one node, the cluster's kubectl,
// a JUnit report in out, every focus and skip pattern.
func e2eArgs(c *Cluster, out string, focus, skips []pattern) []string {
	args := []string{
		"--kubeconfig=" + c.AdminKubeconfig(),
		"--provider=skeleton",
		"--kubectl-path=" + c.KubectlBin(),
		"--num-nodes=1",
		"--report-dir=" + out,
		"--disable-log-dump",
		"--ginkgo.no-color",
		"--ginkgo.v",
		"--ginkgo.timeout=6h",
	}
	for _, f := range focus {
		args = append(args, "--ginkgo.focus="+f.re.String())
	}
	for _, s := range skips {
		args = append(args, "--ginkgo.skip="+s.re.String())
	}
	return args
}

// pattern is a line of a focus or skip file: a regexp, and why (the comment after it).
type pattern struct {
	re     *regexp.Regexp
	reason string
}

// readPatterns reads a pattern file: one regexp a line, then optionally " # " and the reason; blank lines and
// lines starting with # are comments.
func readPatterns(path string) ([]pattern, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var patterns []pattern
	for i, line := range strings.Split(string(data), "\n") {
		expr, reason, _ := strings.Cut(line, " # ")
		expr = strings.TrimSpace(expr)
		if expr == "" || strings.HasPrefix(expr, "#") {
			continue
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
		patterns = append(patterns, pattern{re: re, reason: strings.TrimSpace(reason)})
	}
	if len(patterns) == 0 {
		return nil, fmt.Errorf("%s: no pattern", path)
	}
	return patterns, nil
}

// matching returns the first pattern that matches name.
func matching(patterns []pattern, name string) (pattern, bool) {
	for _, p := range patterns {
		if p.re.MatchString(name) {
			return p, true
		}
	}
	return pattern{}, false
}
