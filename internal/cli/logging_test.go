package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
)

// syncBuffer is a bytes.Buffer safe for klog's flush goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// applyLogging applies a logging configuration for one test; logsapi and
// klog are process-wide, so it is undone when the test ends.
func applyLogging(t *testing.T, args ...string) (*zap.Logger, *syncBuffer) {
	t.Helper()
	f, err := parseRunFlags(args, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	fg, _, err := loggingFeatureGate(nil)
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	log, err := setupLogging(f.logging, fg, out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		klog.Flush()
		if err := logsapi.ResetForTest(nil); err != nil {
			t.Error(err)
		}
	})
	return log, out
}

// logSample logs what the packages log: a named logger, the stable keys,
// a warning with an error, a debug line.
func logSample(log *zap.Logger) {
	p := log.Named("proxier")
	p.Info("synced", zap.String("type", "full"), zap.Int("ops", 3), zap.Duration("took", 1500*1e6))
	p.Warn("kernel operation failed", zap.String("service", "default/web"), zap.String("vip", "10.96.0.10:80"),
		zap.String("rs", "10.244.1.2:8080"), zap.String("op", "add-rs"), zap.Error(errors.New("file exists")))
	p.Debug("op", zap.String("op", "edit-vs -E -t 10.96.0.10:80 -s lc"))
	klog.Flush()
}

// TestJSONLogsKeepStructuredKeys: --logging-format=json gives one JSON
// object per line with kube-proxy's layout (msg, v, logger, caller naming
// the file that logged) and every structured key of the packages' lines:
// service, vip, rs, op, and err (zap.Error's "error" becomes klog's "err").
func TestJSONLogsKeepStructuredKeys(t *testing.T) {
	log, out := applyLogging(t, "--logging-format=json")
	logSample(log)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines at -v 0 (the debug line hidden), got %d:\n%s", len(lines), out)
	}
	var synced, failed map[string]any
	for i, dst := range []*map[string]any{&synced, &failed} {
		if err := json.Unmarshal([]byte(lines[i]), dst); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i, err, lines[i])
		}
	}
	if synced["msg"] != "synced" || synced["logger"] != "proxier" || synced["type"] != "full" || synced["ops"] != 3.0 ||
		synced["took"] != "1.5s" || synced["v"] != 0.0 {
		t.Errorf("synced line: %v", synced)
	}
	if c, _ := synced["caller"].(string); !strings.HasPrefix(c, "cli/logging_test.go:") {
		t.Errorf("caller %q, want this test file (the code that called zap)", c)
	}
	for k, want := range map[string]string{"service": "default/web", "vip": "10.96.0.10:80", "rs": "10.244.1.2:8080",
		"op": "add-rs", "err": "file exists", "msg": "kernel operation failed"} {
		if failed[k] != want {
			t.Errorf("key %q: %v, want %q (line %s)", k, failed[k], want, lines[1])
		}
	}
}

// TestTextLogsAndVerbosity: the text format is klog's (the header names the
// file that logged), -v 4 shows debug lines, and --vmodule raises the
// verbosity of one file only.
func TestTextLogsAndVerbosity(t *testing.T) {
	t.Run("-v 0", func(t *testing.T) {
		log, out := applyLogging(t)
		logSample(log)
		s := out.String()
		if !strings.Contains(s, `logging_test.go:`) || !strings.Contains(s, `] "synced" logger="proxier" type="full" ops=3 took="1.5s"`) {
			t.Errorf("text line not in klog's format:\n%s", s)
		}
		if !strings.Contains(s, `service="default/web" vip="10.96.0.10:80" rs="10.244.1.2:8080" op="add-rs" err="file exists"`) {
			t.Errorf("structured keys lost:\n%s", s)
		}
		if strings.Contains(s, "edit-vs") {
			t.Errorf("a debug line at -v 0:\n%s", s)
		}
	})
	t.Run("-v 4", func(t *testing.T) {
		log, out := applyLogging(t, "-v", "4")
		logSample(log)
		if !strings.Contains(out.String(), `"op" logger="proxier" op="edit-vs -E -t 10.96.0.10:80 -s lc"`) {
			t.Errorf("no debug line at -v 4:\n%s", out)
		}
	})
	t.Run("--vmodule", func(t *testing.T) {
		log, out := applyLogging(t, "--vmodule", "logging_test=4")
		logSample(log)
		if !strings.Contains(out.String(), "edit-vs") {
			t.Errorf("--vmodule logging_test=4 did not enable this file's debug line:\n%s", out)
		}
	})
	t.Run("--vmodule another file", func(t *testing.T) {
		log, out := applyLogging(t, "--vmodule", "sync=4")
		logSample(log)
		if strings.Contains(out.String(), "edit-vs") {
			t.Errorf("--vmodule sync=4 enabled this file's debug line:\n%s", out)
		}
	})
}
