package standalone

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// waitFor polls ok until it holds; the deadline only turns a hang into a failure.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not %s after 10 s", what)
		}
	}
}

func (r *recorder) heard(call string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.calls, call)
}

// Files that are not regular files (a FIFO, a symlink to /dev/zero, a
// directory named like a manifest), a dangling symlink and a symlink loop
// next to a good file: the source neither blocks on them nor stops seeing
// changes to other files, and stops when asked.
func TestHostileFilesNeitherBlockNorFreeze(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "good.yaml", manifestText("a", "10.244.0.1"))
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"zero.yaml": "/dev/zero", "dangling.yaml": "missing.yaml",
		"loop1.yaml": "loop2.yaml", "loop2.yaml": "loop1.yaml", "dir.json": "."} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(Config{Dir: dir, Poll: 5 * time.Millisecond}).Run(ctx, rec) }()
	waitFor(t, "synced with Service a", func() bool { return rec.heard("svc a") })
	write(t, dir, "later.yaml", manifestText("b", "10.244.0.2"))
	waitFor(t, "told about Service b", func() bool { return rec.heard("svc b") })
	cancel()
	waitFor(t, "stopped", func() bool { return len(done) == 1 })
}

// An empty directory is more often a mount not there yet than a wish to
// remove every Service: at the start the source waits for a manifest file;
// later, a directory emptied keeps every Service until a file is back.
func TestEmptyDirectoryKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	health := &staleRecorder{}
	src := New(Config{Dir: dir, Health: health})
	rec := &recorder{}
	src.poll(rec)
	if rec.synced || !health.get() {
		t.Fatalf("an empty directory at the start: synced %v, stale %v; want not synced, stale", rec.synced, health.get())
	}
	write(t, dir, "a.yaml", manifestText("a", "10.244.0.1"))
	src.poll(rec)
	if got, want := rec.take(), []string{"es a-1", "svc a"}; !rec.synced || !slices.Equal(got, want) {
		t.Fatalf("first file: synced %v, sink heard %v, want %v", rec.synced, got, want)
	}
	if err := os.Remove(filepath.Join(dir, "a.yaml")); err != nil {
		t.Fatal(err)
	}
	src.poll(rec)
	src.poll(rec)
	if got := rec.take(); len(got) != 0 || !health.get() {
		t.Errorf("directory emptied: sink heard %v, stale %v; want nothing, stale", got, health.get())
	}
	write(t, dir, "b.yaml", manifestText("b", "10.244.0.2"))
	src.poll(rec)
	src.poll(rec)
	if got, want := rec.take(), []string{"-es a-1", "-svc a", "es b-1", "svc b"}; !slices.Equal(got, want) || health.get() {
		t.Errorf("a file back: sink heard %v, want %v; stale %v", got, want, health.get())
	}
}

// A file caught while it is written in place (cat > file) is applied only
// once it has stopped changing for a poll: the Services of its cut-off tail
// are never deleted. A file renamed into place is complete and counts at once.
func TestHalfWrittenFileWaits(t *testing.T) {
	dir := t.TempDir()
	src := New(Config{Dir: dir})
	rec := &recorder{}
	full := manifestText("one", "10.244.0.1") + "---\n" + manifestText("two", "10.244.0.2")
	write(t, dir, "a.yaml", full)
	src.poll(rec)
	rec.take()

	write(t, dir, "a.yaml", manifestText("one", "10.244.0.1")) // in place, cut off after one
	src.poll(rec)
	write(t, dir, "a.yaml", full+"---\n"+manifestText("three", "10.244.0.3")) // the writer goes on
	src.poll(rec)
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("a file still being written was applied: %v", got)
	}
	src.poll(rec)
	if got := rec.take(); !slices.Contains(got, "svc three") || slices.ContainsFunc(got, isDelete) {
		t.Errorf("once written: sink heard %v, want Service three added and nothing deleted", got)
	}

	tmp := filepath.Join(dir, ".a.yaml.tmp")
	write(t, dir, ".a.yaml.tmp", manifestText("one", "10.244.0.1"))
	if err := os.Rename(tmp, filepath.Join(dir, "a.yaml")); err != nil {
		t.Fatal(err)
	}
	src.poll(rec)
	if got := rec.take(); !slices.Contains(got, "-svc two") || !slices.Contains(got, "-svc three") {
		t.Errorf("renamed into place: sink heard %v, want Services two and three deleted at once", got)
	}
}

func isDelete(call string) bool { return call[0] == '-' }
