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
//	{"ts":1764601234567.8,"caller":"proxier/sync.go:300","msg":"synced","v":0,"logger":"proxier","type":"full","services":1,"ops":36,"failed":0,"took":"2.7s"}
type Sync struct {
	// Type is "full", "partial" or "drain".
	Type     string `json:"type"`
	Services int    `json:"services"`
	Ops      int    `json:"ops"`
	Failed   int    `json:"failed"`
	Took     string `json:"took"`
	// TS is when the sync ended (the log line's time, Unix milliseconds).
	TS float64 `json:"ts"`
	// Incomplete says the daemon logged "sync incomplete" (a kernel
	// operation failed) instead of "synced".
	Incomplete bool `json:"-"`
	// PlannedOps are the operations logged for this sync (only with -v 4),
	// e.g. "add-rs -a -t 10.96.0.10:80 -r 10.244.1.2:8080 -m -w 1".
	PlannedOps []string `json:"-"`
}

// End is when the sync ended.
func (s Sync) End() time.Time { return time.UnixMicro(int64(s.TS * 1000)) }

// Start is when the sync started (its end less what it took).
func (s Sync) Start() time.Time {
	took, _ := time.ParseDuration(s.Took)
	return s.End().Add(-took)
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

// LogEntry is one line of the daemon's log in kube-proxy's JSON format
// (--logging-format=json, which StartProxy passes).
type LogEntry struct {
	Msg    string
	Logger string
	// Fields are the line's other keys: ts, caller, v, err and the
	// entry's own (numbers are float64).
	Fields map[string]any
}

// Field returns a field as text ("" when missing).
func (e LogEntry) Field(key string) string {
	if v, ok := e.Fields[key]; ok {
		return fmt.Sprint(v)
	}
	return ""
}

// ParseLog reads the JSON lines of a daemon log (others, like StartProxy's
// "===" lines, are skipped).
func ParseLog(log string) []LogEntry {
	var out []LogEntry
	for _, line := range strings.Split(log, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var fields map[string]any
		if json.Unmarshal([]byte(line), &fields) != nil {
			continue
		}
		e := LogEntry{Fields: fields}
		e.Msg, _ = fields["msg"].(string)
		e.Logger, _ = fields["logger"].(string)
		delete(fields, "msg")
		delete(fields, "logger")
		out = append(out, e)
	}
	return out
}

// Messages returns the entries of a log with the message msg.
func Messages(log, msg string) []LogEntry {
	var out []LogEntry
	for _, e := range ParseLog(log) {
		if e.Msg == msg {
			out = append(out, e)
		}
	}
	return out
}

// parseSyncs reads the "synced" / "sync incomplete" lines of a daemon log
// and the "op" lines before each.
func parseSyncs(log string) []Sync {
	var syncs []Sync
	var ops []string
	for _, e := range ParseLog(log) {
		switch e.Msg {
		case msgOp:
			ops = append(ops, e.Field("op"))
		case msgSynced, msgIncomplete:
			b, _ := json.Marshal(e.Fields)
			var s Sync
			if json.Unmarshal(b, &s) != nil {
				continue
			}
			s.Incomplete = e.Msg == msgIncomplete
			s.PlannedOps, ops = ops, nil
			syncs = append(syncs, s)
		}
	}
	return syncs
}
