package framework

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Sync is one sync as the daemon logged it:
//
//	... INFO  proxier  synced  {"type": "full", "services": 1, "ops": 36, "failed": 0, "took": "2.7s"}
type Sync struct {
	// Type is "full", "partial" or "drain".
	Type     string `json:"type"`
	Services int    `json:"services"`
	Ops      int    `json:"ops"`
	Failed   int    `json:"failed"`
	Took     string `json:"took"`
	// Incomplete says the daemon logged "sync incomplete" (a kernel
	// operation failed) instead of "synced".
	Incomplete bool `json:"-"`
	// PlannedOps are the operations logged for this sync (only with -v 4),
	// e.g. "add-rs -a -t 10.96.0.10:80 -r 10.244.1.2:8080 -m -w 1".
	PlannedOps []string `json:"-"`
}

// String renders the sync like the daemon's log line.
func (s Sync) String() string {
	state := "synced"
	if s.Incomplete {
		state = "incomplete"
	}
	return fmt.Sprintf("%s %s: services %d, ops %d, failed %d, took %s", s.Type, state, s.Services, s.Ops, s.Failed, s.Took)
}

// Log messages of a sync (internal/proxier).
const (
	msgSynced     = "synced"
	msgIncomplete = "sync incomplete; a full resync is pending"
	msgOp         = "op"
)

// Syncs returns the syncs the daemon logged since it was last (re)started.
func (p *Proxy) Syncs() []Sync {
	return parseSyncs(currentRun(p.Logs()))
}

// FullSyncs returns the full syncs the daemon logged since it was last
// (re)started.
func (p *Proxy) FullSyncs() []Sync {
	var out []Sync
	for _, s := range p.Syncs() {
		if s.Type == "full" {
			out = append(out, s)
		}
	}
	return out
}

// WaitFullSyncs waits until the daemon has logged n full syncs since it was
// last (re)started and returns them all; it fails the test after timeout or
// if the daemon exits.
func (p *Proxy) WaitFullSyncs(t testing.TB, n int, timeout time.Duration) []Sync {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if full := p.FullSyncs(); len(full) >= n {
			return full
		}
		if !p.Running() {
			t.Fatalf("ipvs-proxy exited before its full sync #%d: %v", n, p.waitErr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("ipvs-proxy logged %d full syncs after %s, want %d", len(p.FullSyncs()), timeout, n)
		}
		time.Sleep(pollInterval)
	}
}

// currentRun cuts the log of the daemon's latest start: StartProxy writes a
// "=== <time>: <command>" line before each start.
func currentRun(log string) string {
	if i := strings.LastIndex(log, "\n=== "); i >= 0 {
		return log[i+1:]
	}
	return log
}

// parseSyncs reads the "synced" / "sync incomplete" lines of a daemon log
// (zap's console format: time, level, logger, message, JSON fields separated
// by tabs) and the "op" lines before each.
func parseSyncs(log string) []Sync {
	var syncs []Sync
	var ops []string
	for _, line := range strings.Split(log, "\n") {
		msg, fields, ok := splitLogLine(line)
		if !ok {
			continue
		}
		switch msg {
		case msgOp:
			var f struct {
				Op string `json:"op"`
			}
			if json.Unmarshal([]byte(fields), &f) == nil {
				ops = append(ops, f.Op)
			}
		case msgSynced, msgIncomplete:
			var s Sync
			if json.Unmarshal([]byte(fields), &s) != nil {
				continue
			}
			s.Incomplete = msg == msgIncomplete
			s.PlannedOps, ops = ops, nil
			syncs = append(syncs, s)
		}
	}
	return syncs
}

// splitLogLine returns the message and the JSON fields of a zap console line.
func splitLogLine(line string) (msg, fields string, ok bool) {
	parts := strings.Split(strings.TrimRight(line, "\r"), "\t")
	if len(parts) < 4 || !strings.HasPrefix(parts[len(parts)-1], "{") {
		return "", "", false
	}
	return parts[len(parts)-2], parts[len(parts)-1], true
}
