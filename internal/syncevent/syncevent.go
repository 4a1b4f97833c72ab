// Package syncevent is the daemon's record of its syncs for programs: one
// JSON object per sync, one per line, appended to the file named by
// `ipvs-proxy run --sync-events FILE`.
//
// The log is for people and its English may change; this record is the
// interface for tests, benchmarks and tools. Its schema is versioned (field
// "v"): a field is never renamed or given another meaning within a
// version, and readers ignore fields they do not know. A file is only
// appended to, so it holds every start of the daemon in order (Seq restarts
// at 1 with each start).
//
// Why a file and not a history on /status: a reader of the file costs the
// daemon nothing (a benchmark polling an HTTP endpoint on the same emulated
// CPUs would slow what it measures), no event is lost however slowly it is
// read (a bounded history drops the oldest), it outlives the process (a test
// reads what a crashed daemon did), and it needs no network path into the
// daemon's network namespace.
package syncevent

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// Version is the schema version this package writes.
const Version = 1

// The sync types.
const (
	Full    = "full"    // reads the whole kernel state and repairs drift
	Partial = "partial" // applies changed Services from the believed state
	Drain   = "drain"   // deletes drained real servers whose connections ended
)

// MaxPlanned is the most planned operations an event lists; a cold start at
// 10,000 Services plans 165,000.
const MaxPlanned = 1000

// MaxErrors is the most failures an event lists.
const MaxErrors = 20

// Event is one sync. Durations are integer nanoseconds.
type Event struct {
	// V is the schema version (Version).
	V int `json:"v"`
	// Seq numbers the syncs of one start of the daemon from 1.
	Seq int `json:"seq"`
	// Type is Full, Partial or Drain.
	Type  string    `json:"type"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Services is how many Services the sync recomputed.
	Services int `json:"services"`
	// Ops is how many kernel operations were planned; Failed how many failed.
	Ops    int `json:"ops"`
	Failed int `json:"failed"`
	// Messages counts the kernel write requests sent (netlink messages and
	// iptables-restore runs), retries included.
	Messages int `json:"messages"`
	// SinceChange is from the source delivering the oldest change this sync
	// applied to the sync's end; 0 when no change was pending.
	SinceChange time.Duration `json:"sinceChangeNs,omitempty"`
	// Applied counts the operations that took effect, by kind ("add-rs").
	Applied map[string]int `json:"applied,omitempty"`
	// Phases are where the time went, in order: "source" (waiting for the
	// source's initial state: reading the manifests or listing the API;
	// first sync only), "compute", "observe" (with "observe/ipvs",
	// "observe/addresses", "observe/ipset", "observe/rules", which run at
	// once), "plan", "apply/<subsystem>" (summed over the plan's batches),
	// "record".
	Phases []Phase `json:"phases,omitempty"`
	// Planned are the first MaxPlanned planned operations in ipvsadm / ipset
	// syntax ("add-rs -a -t 10.96.0.10:80 -r 10.244.1.2:8080 -m -w 1");
	// PlannedOmitted says how many more there were.
	Planned        []string `json:"planned,omitempty"`
	PlannedOmitted int      `json:"plannedOmitted,omitempty"`
	// Errors are the first MaxErrors failures, each naming what was being
	// done; an incomplete sync has at least one.
	Errors []string `json:"errors,omitempty"`
	// RetryAfter is, for an incomplete sync, the wait before the daemon
	// retries it (doubling from 1 s up to 30 s while syncs keep failing);
	// 0 when a retry was already pending.
	RetryAfter time.Duration `json:"retryAfterNs,omitempty"`
	// Failing are the Services whose kernel operations failed in this sync:
	// each is retried on its own and does not fail the sync (Errors are the
	// node's failures).
	Failing []ServiceFailure `json:"failing,omitempty"`
}

// ServiceFailure is a Service whose operations failed in a sync.
type ServiceFailure struct {
	Service string `json:"service"`
	// Attempts counts its failed syncs in a row; RetryAfter is the wait
	// before the next (doubling from 1 s).
	Attempts   int           `json:"attempts"`
	RetryAfter time.Duration `json:"retryAfterNs"`
	// Errors say what was being done, on which object.
	Errors []string `json:"errors"`
}

// Phase is the time one step of a sync took.
type Phase struct {
	Name string        `json:"name"`
	Took time.Duration `json:"tookNs"`
}

// Took is the sync's duration.
func (e *Event) Took() time.Duration { return e.End.Sub(e.Start) }

// Incomplete says that something failed: a full resync is pending.
func (e *Event) Incomplete() bool { return len(e.Errors) > 0 || e.Failed > 0 }

// Phase returns the duration of the named phase (0 when absent).
func (e *Event) Phase(name string) time.Duration {
	for _, p := range e.Phases {
		if p.Name == name {
			return p.Took
		}
	}
	return 0
}

// Writer appends events to a file.
type Writer struct {
	mu  sync.Mutex
	f   *os.File
	seq int
}

// Create opens path for appending (creating it if needed).
func Create(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sync events: %w", err)
	}
	return &Writer{f: f}, nil
}

// Write numbers e and appends it as one line. One write call per event, so
// a reader never sees half a line unless it reads while the write runs.
func (w *Writer) Write(e Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
	e.V, e.Seq = Version, w.seq
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = w.f.Write(append(b, '\n'))
	return err
}

// Close closes the file.
func (w *Writer) Close() error { return w.f.Close() }

// Decode reads one line of a file.
func Decode(line []byte) (Event, error) {
	var e Event
	err := json.Unmarshal(line, &e)
	if err == nil && e.V != Version {
		err = fmt.Errorf("sync event version %d, this reader knows %d", e.V, Version)
	}
	return e, err
}
