package framework

import (
	"encoding/json"
	"fmt"
	"strings"
)

// LogEntry is one line of the daemon's log in kube-proxy's JSON format
// (--logging-format=json, which StartProxy passes). The log is for people:
// what a scenario needs to know about syncs comes from Proxy.Syncs.
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
