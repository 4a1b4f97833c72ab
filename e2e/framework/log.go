package framework

import (
	"encoding/json"
	"fmt"
	"strings"
)

// LogEntry is one line of the daemon's log in kube-proxy's JSON format
// (--logging-format=json, which StartProxy passes). The log is for people,
// and a scenario reads it only to check what people are told (an error
// named once, the field that needs a restart); what the daemon did comes
// from Proxy.Syncs (the sync events), /status and /metrics.
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

// Says reports whether the entry's message or one of its fields holds
// text (fields as printed, quotes unescaped).
func (e LogEntry) Says(text string) bool {
	if strings.Contains(e.Msg, text) {
		return true
	}
	for _, v := range e.Fields {
		if strings.Contains(fmt.Sprint(v), text) {
			return true
		}
	}
	return false
}

// CountSaying counts the entries that say text: for checking what the log
// tells people (once, naming the object), never for reading what the daemon
// did (Proxy.Syncs and /status are for that).
func CountSaying(entries []LogEntry, text string) int {
	n := 0
	for _, e := range entries {
		if e.Says(text) {
			n++
		}
	}
	return n
}

// Messages returns the entries with the message msg. Left for the scenarios
// of issue 11 (TestOneTenantCannotHurtTheNode reads three) until what
// they wait for is in a record: new scenarios read Proxy.Syncs, /status
// and /metrics.
func Messages(entries []LogEntry, msg string) []LogEntry {
	var out []LogEntry
	for _, e := range entries {
		if e.Msg == msg {
			out = append(out, e)
		}
	}
	return out
}
