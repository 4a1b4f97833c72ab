package standalone

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
)

// recorder is a sink that lists what it was told.
type recorder struct {
	mu     sync.Mutex
	calls  []string
	synced bool
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
}

func (r *recorder) UpsertService(s *v1.Service)             { r.add("svc " + s.Name) }
func (r *recorder) DeleteService(_, name string)            { r.add("-svc " + name) }
func (r *recorder) UpsertSlice(es *discovery.EndpointSlice) { r.add("es " + es.Name) }
func (r *recorder) DeleteSlice(_, name string)              { r.add("-es " + name) }
func (r *recorder) SetNode(desired.Node)                    {}
func (r *recorder) SetServiceCIDRs(c []netip.Prefix)        { r.add(fmt.Sprintf("cidrs %v", c)) }
func (r *recorder) SetSynced() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.synced = true
}

// take returns the calls so far, sorted, and forgets them.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	slices.Sort(out)
	return out
}

func manifestText(name string, endpoints ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: default}\nspec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}\n---\n", name)
	fmt.Fprintf(&b, "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: %s-1, namespace: default, labels: {kubernetes.io/service-name: %s}}\naddressType: IPv4\nendpoints:\n", name, name)
	for _, e := range endpoints {
		fmt.Fprintf(&b, "- addresses: [%s]\n", e)
	}
	return b.String()
}

// scanDir returns the stamps of dir's manifest files.
func scanDir(t *testing.T, dir string) map[string]fileStamp {
	t.Helper()
	stamps, _, err := scan(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return stamps
}

func write(t *testing.T, dir, file, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A change to one file re-reads that file only and sends only its objects;
// a removed file deletes its objects.
func TestReloadSendsOnlyChanges(t *testing.T) {
	dir := t.TempDir()
	for i := range 3 {
		write(t, dir, fmt.Sprintf("f%d.yaml", i), manifestText(fmt.Sprintf("s%d", i), "10.244.0.1"))
	}
	src := New(Config{Dir: dir})
	rec := &recorder{}
	reload := func() {
		t.Helper()
		src.reload(rec, scanDir(t, dir))
	}
	reload()
	if got, want := rec.take(), []string{"es s0-1", "es s1-1", "es s2-1", "svc s0", "svc s1", "svc s2"}; !slices.Equal(got, want) {
		t.Fatalf("first read: %v, want %v", got, want)
	}

	reload()
	if got := rec.take(); len(got) != 0 {
		t.Errorf("nothing changed, yet the sink heard %v", got)
	}

	write(t, dir, "f1.yaml", manifestText("s1", "10.244.0.1", "10.244.0.2"))
	reload()
	if got, want := rec.take(), []string{"es s1-1", "svc s1"}; !slices.Equal(got, want) {
		t.Errorf("after changing f1: %v, want %v", got, want)
	}

	if err := os.Remove(filepath.Join(dir, "f2.yaml")); err != nil {
		t.Fatal(err)
	}
	reload()
	if got, want := rec.take(), []string{"-es s2-1", "-svc s2"}; !slices.Equal(got, want) {
		t.Errorf("after removing f2: %v, want %v", got, want)
	}

	// A broken file keeps its last good objects.
	write(t, dir, "f0.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: s0, namespace: default}\nspec: {ports: [{port: x}]}\n")
	reload()
	if got := rec.take(); len(got) != 0 {
		t.Errorf("a broken file changed what the sink holds: %v", got)
	}
}

// A Service defined in two files comes from the first; when that file goes,
// the other's definition takes over. A new file's slice reaches the sink
// before its Service, so the Service arrives complete.
func TestReloadDuplicatesAndOrder(t *testing.T) {
	dir := t.TempDir()
	src := New(Config{Dir: dir})
	rec := &recorder{}
	reload := func() []string {
		t.Helper()
		src.reload(rec, scanDir(t, dir))
		rec.mu.Lock()
		defer rec.mu.Unlock()
		out := rec.calls
		rec.calls = nil
		return out
	}
	write(t, dir, "0-other.yaml", "# keeps the directory from being empty\n")
	write(t, dir, "a.yaml", manifestText("web", "10.244.0.1"))
	if got, want := reload(), []string{"es web-1", "svc web"}; !slices.Equal(got, want) {
		t.Fatalf("sink heard %v, want %v (the slice first)", got, want)
	}
	first := src.services["default/web"]
	write(t, dir, "b.yaml", strings.Replace(manifestText("web", "10.244.0.2"), "10.96.0.1", "10.96.0.2", 1))
	if got := reload(); len(got) != 0 {
		t.Errorf("a second definition: sink heard %v, want nothing (the first definitions count)", got)
	}
	if src.services["default/web"] != first {
		t.Error("the Service of the second file replaced the first")
	}
	if err := os.Remove(filepath.Join(dir, "a.yaml")); err != nil {
		t.Fatal(err)
	}
	if got, want := reload(), []string{"es web-1", "svc web"}; !slices.Equal(got, want) {
		t.Errorf("after removing the first file: %v, want %v", got, want)
	}
	if ip := src.services["default/web"].Spec.ClusterIP; ip != "10.96.0.2" {
		t.Errorf("the Service now has cluster IP %s, want the second file's 10.96.0.2", ip)
	}
	if err := os.Remove(filepath.Join(dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	if got, want := reload(), []string{"-svc web", "-es web-1"}; !slices.Equal(got, want) {
		t.Errorf("after removing both: %v, want %v (the Service first)", got, want)
	}
}

// A directory with only an empty manifest file is a valid state: the source
// reports itself synced.
func TestEmptyManifestFileSyncs(t *testing.T) {
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	dir := t.TempDir()
	write(t, dir, "none.yaml", "")
	go func() { done <- New(Config{Dir: dir, Poll: 10 * time.Millisecond}).Run(ctx, rec) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec.mu.Lock()
		synced := rec.synced
		rec.mu.Unlock()
		if synced {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not synced after 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// staleRecorder is a source.Health that keeps the last value.
type staleRecorder struct {
	mu    sync.Mutex
	stale bool
}

func (r *staleRecorder) SourceStale(v bool) { r.mu.Lock(); r.stale = v; r.mu.Unlock() }
func (r *staleRecorder) get() bool          { r.mu.Lock(); defer r.mu.Unlock(); return r.stale }

// A directory that goes away marks the source stale and keeps what was sent;
// it is logged once, however long it stays away, and once when it is back.
func TestUnreadableDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "manifests")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, dir, "a.yaml", manifestText("a", "10.244.0.1"))
	core, logs := observer.New(zap.InfoLevel)
	health := &staleRecorder{}
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- New(Config{Dir: dir, Poll: 5 * time.Millisecond, Log: zap.New(core), Health: health}).Run(ctx, rec)
	}()
	defer func() { cancel(); <-done }()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("not %s after 5 s", what)
			}
		}
	}
	waitFor("synced", func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return rec.synced })
	rec.take()

	if err := os.Rename(dir, dir+".away"); err != nil {
		t.Fatal(err)
	}
	waitFor("stale", health.get)
	time.Sleep(100 * time.Millisecond) // some 20 polls
	if err := os.Rename(dir+".away", dir); err != nil {
		t.Fatal(err)
	}
	waitFor("fresh", func() bool { return !health.get() })
	if got := rec.take(); len(got) != 0 {
		t.Errorf("the sink heard %v while the directory was away", got)
	}
	for msg, want := range map[string]int{"manifest directory unreadable; keeping the current Services": 1, "manifest directory readable again": 1} {
		if n := logs.FilterMessage(msg).Len(); n != want {
			t.Errorf("%q logged %d times, want %d", msg, n, want)
		}
	}
}
