// Package standalone feeds the proxier from a directory of manifests instead
// of an API server: it polls names, sizes and modification times, re-reads
// only the files that changed (all of them, in parallel, at the start) and
// sends only the objects that changed, so a change costs the same with 100
// Services as with 10,000.
//
// A file that fails to parse or cannot be read (not a regular file, too
// large, a dangling symlink) keeps its last good objects until it is fixed;
// an unreadable or empty directory (a mount not there yet) keeps everything;
// a file written in place is applied once it has stopped changing for a
// poll period (one renamed into place at once): bad or half-written input
// never takes down what is already programmed.
package standalone

import (
	"context"
	"maps"
	"net/netip"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	networking "k8s.io/api/networking/v1"

	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/manifest"
	"github.com/ipvs-proxy/ipvs-proxy/internal/source"
)

// Config configures the directory source.
type Config struct {
	Dir  string
	Node desired.Node
	// Poll is how often the directory is checked for changes (default 1 s).
	Poll   time.Duration
	Log    *zap.Logger
	Health source.Health
}

// Source reads a manifest directory.
type Source struct {
	cfg Config
	// last good objects per file
	files map[string]fileObjects
	// size and modification time of each file when it was last read
	stamps map[string]fileStamp
	// the files defining each Service and EndpointSlice, sorted: the first
	// definition wins (manifest.Objects.KeepFirst, the rule `plan` applies)
	svcFiles, sliceFiles map[string][]string
	// what the sink has been told
	services     map[string]*v1.Service
	slices       map[string]*discovery.EndpointSlice
	serviceCIDRs []netip.Prefix

	// polling state: whether the sink has been told it is synced, what was
	// last logged about the directory, the stamps seen at the last poll
	// (a file written in place counts once the same twice running) and the
	// subdirectories that could not be read
	synced     bool
	problem    string
	seen       map[string]fileStamp
	unreadable map[string]error
}

type fileObjects struct {
	services     []*v1.Service
	slices       []*discovery.EndpointSlice
	serviceCIDRs []*networking.ServiceCIDR
}

// service returns the file's first Service named key.
func (f fileObjects) service(key string) *v1.Service {
	for _, svc := range f.services {
		if svc.Namespace+"/"+svc.Name == key {
			return svc
		}
	}
	return nil
}

// slice returns the file's first EndpointSlice named key.
func (f fileObjects) slice(key string) *discovery.EndpointSlice {
	for _, es := range f.slices {
		if es.Namespace+"/"+es.Name == key {
			return es
		}
	}
	return nil
}

// New returns a Source; it does no I/O until Run.
func New(cfg Config) *Source {
	if cfg.Poll == 0 {
		cfg.Poll = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return &Source{cfg: cfg, files: map[string]fileObjects{}, stamps: map[string]fileStamp{},
		svcFiles: map[string][]string{}, sliceFiles: map[string][]string{},
		services: map[string]*v1.Service{}, slices: map[string]*discovery.EndpointSlice{}}
}

// Run feeds sink until ctx is done. The source is synced once the
// directory has been read with at least one manifest file in it.
func (s *Source) Run(ctx context.Context, sink source.Sink) error {
	sink.SetNode(s.cfg.Node)
	t := time.NewTicker(s.cfg.Poll)
	defer t.Stop()
	for {
		s.poll(sink)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// poll looks at the directory once and sends what is ready to the sink.
func (s *Source) poll(sink source.Sink) {
	stamps, subs, err := scan(s.cfg.Dir, s.stamps)
	s.logProblem(&s.problem, err)
	s.logSubdirs(s.unreadable, subs)
	s.unreadable = subs
	if err != nil {
		s.stale(true)
		return // s.seen stays: a file must be seen twice running by polls that worked
	}
	s.stale(false)
	ready := settle(s.stamps, s.seen, stamps, !s.synced)
	s.seen = stamps
	if !maps.Equal(ready, s.stamps) || !s.synced {
		s.reload(sink, ready)
	}
	if !s.synced {
		s.synced = true
		sink.SetSynced()
	}
}

func (s *Source) stale(v bool) {
	if s.cfg.Health != nil {
		s.cfg.Health.SourceStale(v)
	}
}

// reload reads the files whose stamps changed, keeping a broken file's last
// good objects, and sends the sink the objects that changed: the work is
// that of the changed files, whatever the directory holds.
func (s *Source) reload(sink source.Sink, stamps map[string]fileStamp) {
	var changed, removed []string
	for p, st := range stamps {
		if old, ok := s.stamps[p]; !ok || old != st {
			changed = append(changed, p)
		}
	}
	for p := range s.stamps {
		if _, ok := stamps[p]; !ok {
			removed = append(removed, p)
		}
	}
	sort.Strings(changed)
	sort.Strings(removed)
	touchedSvcs, touchedSlices := map[string]bool{}, map[string]bool{}
	replace := func(p string, fo fileObjects, present bool) {
		s.track(p, s.files[p], without, touchedSvcs, touchedSlices)
		if !present {
			delete(s.files, p)
			return
		}
		s.files[p] = fo
		s.track(p, fo, with, touchedSvcs, touchedSlices)
	}
	for i, r := range readFiles(changed) {
		p := changed[i]
		if r.err != nil {
			s.cfg.Log.Warn("cannot read manifest file; keeping its last good objects", zap.String("file", p), zap.Error(r.err))
			if _, ok := s.files[p]; !ok {
				replace(p, fileObjects{}, true)
			}
			continue
		}
		for _, w := range r.objs.Warnings {
			s.cfg.Log.Info("manifest", zap.String("note", w))
		}
		fo := fileObjects{services: r.objs.Services, slices: r.objs.EndpointSlices, serviceCIDRs: r.objs.ServiceCIDRs}
		if len(r.objs.Errors) > 0 {
			for _, e := range r.objs.Errors {
				s.cfg.Log.Warn("invalid manifest; keeping the file's last good objects", zap.Error(e))
			}
			fo = mergeKeepingOld(s.files[p], fo)
		}
		replace(p, fo, true)
	}
	for _, p := range removed {
		replace(p, fileObjects{}, false)
	}
	s.stamps = stamps

	// Slices before Services: a new Service then arrives complete, and its
	// virtual server is never programmed without its real servers.
	var gone []string
	for _, key := range sortedSet(touchedSlices) {
		files := s.sliceFiles[key]
		if len(files) == 0 {
			delete(s.sliceFiles, key)
			if _, ok := s.slices[key]; ok {
				gone = append(gone, key)
			}
			continue
		}
		if len(files) > 1 {
			s.cfg.Log.Warn("EndpointSlice defined twice; using the first", zap.String("endpointSlice", key), zap.Strings("files", files))
		}
		if es := s.files[files[0]].slice(key); es != nil && s.slices[key] != es {
			s.slices[key] = es
			sink.UpsertSlice(es) // the sink ignores unchanged objects
		}
	}
	for _, key := range sortedSet(touchedSvcs) {
		files := s.svcFiles[key]
		if len(files) == 0 {
			delete(s.svcFiles, key)
			if _, ok := s.services[key]; ok {
				delete(s.services, key)
				ns, name, _ := strings.Cut(key, "/")
				sink.DeleteService(ns, name)
			}
			continue
		}
		if len(files) > 1 {
			s.cfg.Log.Warn("Service defined twice; using the first", zap.String("service", key), zap.Strings("files", files))
		}
		if svc := s.files[files[0]].service(key); svc != nil && s.services[key] != svc {
			s.services[key] = svc
			sink.UpsertService(svc)
		}
	}
	for _, key := range gone {
		delete(s.slices, key)
		ns, name, _ := strings.Cut(key, "/")
		sink.DeleteSlice(ns, name)
	}
	s.tellServiceCIDRs(sink)
	s.cfg.Log.Info("manifests loaded", zap.String("dir", s.cfg.Dir), zap.Int("services", len(s.services)),
		zap.Int("endpointSlices", len(s.slices)), zap.Int("filesRead", len(changed)), zap.Int("filesRemoved", len(removed)))
}

// tellServiceCIDRs gives the sink the CIDRs of every file's ServiceCIDRs
// when they changed.
func (s *Source) tellServiceCIDRs(sink source.Sink) {
	var objs []*networking.ServiceCIDR
	for _, p := range slices.Sorted(maps.Keys(s.files)) {
		objs = append(objs, s.files[p].serviceCIDRs...)
	}
	cidrs, errs := desired.ServiceCIDRs(objs)
	for _, e := range errs {
		s.cfg.Log.Warn("invalid manifest", zap.Error(e))
	}
	if !slices.Equal(cidrs, s.serviceCIDRs) {
		s.serviceCIDRs = cidrs
		sink.SetServiceCIDRs(cidrs)
	}
}

// track updates the file lists of fo's objects with update(list, p) (with
// or without) and marks the objects touched.
func (s *Source) track(p string, fo fileObjects, update func([]string, string) []string, svcs, slices map[string]bool) {
	for _, svc := range fo.services {
		key := svc.Namespace + "/" + svc.Name
		s.svcFiles[key] = update(s.svcFiles[key], p)
		svcs[key] = true
	}
	for _, es := range fo.slices {
		key := es.Namespace + "/" + es.Name
		s.sliceFiles[key] = update(s.sliceFiles[key], p)
		slices[key] = true
	}
}

// with adds p to a sorted list of files, once.
func with(files []string, p string) []string {
	i, found := slices.BinarySearch(files, p)
	if found {
		return files
	}
	return slices.Insert(files, i, p)
}

// without removes p from a sorted list of files.
func without(files []string, p string) []string {
	if i, found := slices.BinarySearch(files, p); found {
		return slices.Delete(files, i, i+1)
	}
	return files
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type readResult struct {
	objs *manifest.Objects
	err  error
}

// readFiles reads and parses files on as many goroutines as there are CPUs:
// parsing YAML is most of a cold start's cost in standalone mode.
func readFiles(paths []string) []readResult {
	out := make([]readResult, len(paths))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(len(paths), runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i].objs, out[i].err = manifest.ReadFile(paths[i])
			}
		}()
	}
	for i := range paths {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// mergeKeepingOld keeps the old objects of a broken file that the new read
// did not deliver again.
func mergeKeepingOld(old, cur fileObjects) fileObjects {
	have := map[string]bool{}
	for _, s := range cur.services {
		have["svc "+s.Namespace+"/"+s.Name] = true
	}
	for _, e := range cur.slices {
		have["es "+e.Namespace+"/"+e.Name] = true
	}
	for _, s := range old.services {
		if !have["svc "+s.Namespace+"/"+s.Name] {
			cur.services = append(cur.services, s)
		}
	}
	for _, e := range old.slices {
		if !have["es "+e.Namespace+"/"+e.Name] {
			cur.slices = append(cur.slices, e)
		}
	}
	for _, c := range cur.serviceCIDRs {
		have["cidr "+c.Name] = true
	}
	for _, c := range old.serviceCIDRs {
		if !have["cidr "+c.Name] {
			cur.serviceCIDRs = append(cur.serviceCIDRs, c)
		}
	}
	return cur
}
