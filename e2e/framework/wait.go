package framework

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// pollInterval is how often Eventually retries.
const pollInterval = 100 * time.Millisecond

// Eventually calls check until it returns nil, and fails the test with the
// last error if that has not happened within timeout.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for attempts := 1; ; attempts++ {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %s (%d attempts); last error: %v", timeout, attempts, err)
		}
		time.Sleep(pollInterval)
	}
}

// artifactDir returns the directory for this test's logs: a per-test folder
// under $IPVS_PROXY_E2E_ARTIFACTS when that is set (so the logs outlive the
// guest), else the test's temporary directory.
func artifactDir(t testing.TB) string {
	t.Helper()
	root := os.Getenv(EnvArtifacts)
	if root == "" {
		return t.TempDir()
	}
	dir := filepath.Join(root, unsafeChars.ReplaceAllString(t.Name(), "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create artifact directory: %v", err)
	}
	return dir
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return string(b)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
