package framework

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/syncevent"
)

// Sync is one sync as the daemon recorded it in its --sync-events file
// (package syncevent: a versioned record, not a log line).
type Sync struct {
	syncevent.Event
}

// String summarises the sync for test messages.
func (s Sync) String() string {
	state := "synced"
	if s.Incomplete() {
		state = "incomplete"
	}
	return fmt.Sprintf("%s %s: services %d, ops %d, failed %d, messages %d, took %s", s.Type, state, s.Services, s.Ops,
		s.Failed, s.Messages, s.Took())
}

// SyncFollower reads a sync events file as the daemon appends to it: the
// one reader of the record, for the scenarios and the benchmark. Reading
// the new bytes costs the daemon nothing, unlike polling it.
type SyncFollower struct {
	path   string
	offset int64
	rest   []byte
	queue  []Sync
	err    error
}

// FollowSyncs follows the file at path from byte offset (the file's size
// when the daemon of interest started: the file is only appended to).
func FollowSyncs(path string, offset int64) *SyncFollower {
	return &SyncFollower{path: path, offset: offset}
}

// FileSize returns a file's size, 0 if it does not exist.
func FileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// poll queues the complete lines appended since the last poll.
func (f *SyncFollower) poll() error {
	if f.err != nil {
		return f.err
	}
	file, err := os.Open(f.path)
	if os.IsNotExist(err) {
		return nil // the daemon has not synced yet
	}
	if err != nil {
		return err
	}
	defer file.Close()
	if _, err := file.Seek(f.offset, io.SeekStart); err != nil {
		return err
	}
	b, err := io.ReadAll(file)
	if err != nil {
		return err
	}
	f.offset += int64(len(b))
	b = append(f.rest, b...)
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		e, err := syncevent.Decode(b[:i])
		if err != nil {
			f.err = fmt.Errorf("%s: %w in %q", f.path, err, b[:i])
			return f.err
		}
		f.queue = append(f.queue, Sync{e})
		b = b[i+1:]
	}
	f.rest = append([]byte(nil), b...)
	return nil
}

// All reads what is new and returns every sync not yet taken, leaving them
// queued.
func (f *SyncFollower) All() ([]Sync, error) {
	err := f.poll()
	return append([]Sync(nil), f.queue...), err
}

// Take returns the next sync for which keep is true (nil keeps all),
// dropping the ones before it, without waiting.
func (f *SyncFollower) Take(keep func(Sync) bool) (Sync, bool, error) {
	err := f.poll()
	for len(f.queue) > 0 {
		s := f.queue[0]
		f.queue = f.queue[1:]
		if keep == nil || keep(s) {
			return s, true, nil
		}
	}
	return Sync{}, false, err
}

// Next waits up to timeout for the next sync for which keep is true. It
// gives up early when the process p (if not nil) exits.
func (f *SyncFollower) Next(timeout time.Duration, p *Process, keep func(Sync) bool) (Sync, error) {
	deadline := time.Now().Add(timeout)
	for {
		running := p == nil || p.Running()
		s, ok, err := f.Take(keep)
		switch {
		case ok:
			return s, nil
		case err != nil:
			return s, err
		case !running:
			return s, fmt.Errorf("%s exited before such a sync: %w", p.Bin, p.waitErr)
		case time.Now().After(deadline):
			return s, fmt.Errorf("no such sync in %s within %s", f.path, timeout)
		}
		time.Sleep(syncPoll)
	}
}

// Drain drops every sync recorded so far.
func (f *SyncFollower) Drain() error {
	err := f.poll()
	f.queue = nil
	return err
}

// syncPoll is how often Next reads the file: cheap, and a sync's end is
// known from its own time stamp, not from when it was read.
const syncPoll = 20 * time.Millisecond

// IsFull keeps full syncs (for Next and Take).
func IsFull(s Sync) bool { return s.Type == syncevent.Full }

// Wrote keeps syncs that planned operations, other than drain checks.
func Wrote(s Sync) bool { return s.Type != syncevent.Drain && s.Ops > 0 }
