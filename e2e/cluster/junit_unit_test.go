package cluster

import (
	"regexp"
	"strings"
	"testing"
)

// TestReadJUnit reads a report of e2e.test's shape: the suite's own nodes and specs outside the focus are left
// out, a skip pattern's reason replaces ginkgo's bare "skipped", a failure keeps its message.
func TestReadJUnit(t *testing.T) {
	results, err := readJUnit("testdata/conformance/junit-sample.xml")
	if err != nil {
		t.Fatal(err)
	}
	focus := []pattern{{re: regexp.MustCompile(`\[sig-network\] Services`)}}
	skips := []pattern{{re: regexp.MustCompile(`externalTrafficPolicy=Local for type=NodePort`), reason: "two nodes"}}
	got := results.selected(focus, skips)
	want := []string{
		"[sig-network] Services should have session affinity work for service with type clusterIP [LinuxOnly] [Conformance]: failed: [FAILED] Affinity should hold but didn't.",
		"[sig-network] Services should respect internalTrafficPolicy=Local Pod to Pod: skipped: skipped - The test requires at least two ready nodes on skeleton, but found 1",
		"[sig-network] Services should serve a basic endpoint from pods [Conformance]: passed: ",
		"[sig-network] Services should support externalTrafficPolicy=Local for type=NodePort: skipped: skip.txt: two nodes",
	}
	var lines []string
	for _, r := range got {
		first, _, _ := strings.Cut(r.Message, "\n")
		lines = append(lines, r.Name+": "+r.Status+": "+first)
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("selected results:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if s := got.summary(); s != "1 passed, 1 failed, 2 skipped" {
		t.Errorf("summary %q", s)
	}
	if f := got.failed(); len(f) != 1 {
		t.Errorf("failed: %v", f)
	}
}

// TestSkipFile: every skip pattern compiles and gives its reason; the focus files compile.
func TestSkipFile(t *testing.T) {
	skips, err := readPatterns("testdata/conformance/skip.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range skips {
		if p.reason == "" {
			t.Errorf("skip.txt: %s has no reason", p.re)
		}
	}
	for _, f := range []string{"focus.txt", "ci.txt"} {
		if _, err := readPatterns("testdata/conformance/" + f); err != nil {
			t.Error(err)
		}
	}
}
