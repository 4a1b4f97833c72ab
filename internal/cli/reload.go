package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/metrics"
	"github.com/ipvs-proxy/ipvs-proxy/internal/proxier"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	"github.com/ipvs-proxy/ipvs-proxy/internal/untrusted"
)

// The config file is watched and applied again when its content changes.
// A ConfigMap volume updates by swapping symlinks in the file's directory
// (config.conf -> ..data/config.conf, ..data -> ..<timestamp>), so the
// directory is watched, not the file, and every event leads to reading the
// file and comparing it with what was last read: spurious events cost a
// read. A slow poll backs the watch up (inotify limits, odd file systems).
const (
	// configSettle lets a burst of events (an editor's write and rename, a
	// ConfigMap's swap) end before the file is read.
	configSettle = 200 * time.Millisecond
	// configPoll reads the file even without events.
	configPoll = time.Minute
)

// configWatcher applies changes of the config file to a running daemon.
type configWatcher struct {
	f       *runFlags
	log     *zap.Logger
	running *config.Config
	proxier *proxier.Proxier
	configz *configz
	metrics *metrics.Metrics
	// restart receives the fields that need a restart; the daemon then stops.
	restart chan<- []string
	last    []byte
	// rulesBackend is the rules backend asked for at startup (auto, maybe),
	// running.RulesBackend the one in use.
	rulesBackend state.RulesBackend
}

func (w *configWatcher) run(ctx context.Context) {
	w.last, _ = untrusted.ReadFile(w.f.configFile, config.MaxFileSize)
	events := make(chan struct{}, 1)
	notify := func() {
		select {
		case events <- struct{}{}:
		default:
		}
	}
	if fw, err := fsnotify.NewWatcher(); err != nil {
		w.log.Warn("cannot watch the config file; reading it every minute instead", zap.Error(err))
	} else {
		defer fw.Close()
		if err := fw.Add(filepath.Dir(w.f.configFile)); err != nil {
			w.log.Warn("cannot watch the config file's directory; reading it every minute instead", zap.Error(err))
		}
		go func() {
			for {
				select {
				case _, ok := <-fw.Events:
					if !ok {
						return
					}
					notify()
				case err, ok := <-fw.Errors:
					if !ok {
						return
					}
					w.log.Warn("config file watch", zap.Error(err))
				}
			}
		}()
	}
	poll := time.NewTicker(configPoll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		case <-events:
			select {
			case <-ctx.Done():
				return
			case <-time.After(configSettle):
			}
		}
		if w.check(ctx) {
			return
		}
	}
}

// check reads the file and applies it if it changed; it reports whether
// the daemon must restart.
func (w *configWatcher) check(ctx context.Context) bool {
	data, err := untrusted.ReadFile(w.f.configFile, config.MaxFileSize) // a FIFO or /dev/zero is refused, not read forever
	if err != nil {
		w.log.Warn("cannot read the config file; keeping the running configuration", zap.Error(err))
		return false
	}
	if bytes.Equal(data, w.last) {
		return false
	}
	w.last = data
	next, err := loadRunConfig(w.f, w.log)
	if err != nil {
		w.metrics.ConfigReloads.WithLabelValues("invalid").Inc()
		w.metrics.ConfigValid.Set(0)
		w.log.Error("the config file changed but is invalid; keeping the running configuration", zap.Error(err))
		return false
	}
	w.metrics.ConfigValid.Set(1)
	if next.RulesBackend == w.rulesBackend {
		next.RulesBackend = w.running.RulesBackend // still what was asked for at startup: what it chose
	}
	changed := changedFields(w.running, next)
	if next.RulesBackend != w.running.RulesBackend {
		changed = append(changed, "ipvsProxy.rulesBackend")
	}
	if len(changed) == 0 {
		w.log.Info("the config file changed, its configuration did not")
		return false
	}
	if fields := config.NeedRestart(w.running, next); len(fields) > 0 {
		w.metrics.ConfigReloads.WithLabelValues("restart").Inc()
		w.log.Info("the config file changed fields that need a restart: stopping cleanly", zap.Strings("fields", fields))
		w.restart <- fields
		return true
	}
	w.log.Info("the config file changed: applying it in place", zap.Strings("fields", changed))
	if err := w.proxier.SetConfig(ctx, next); err != nil {
		return true // stopping
	}
	if next.Logging.Verbosity != w.running.Logging.Verbosity {
		if err := setVerbosity(next.Logging.Verbosity); err != nil {
			w.log.Warn("cannot change the log verbosity", zap.Error(err))
		}
	}
	if next.OOMScoreAdj != w.running.OOMScoreAdj {
		applyOOMScoreAdj(w.f.oomScoreFile, next.OOMScoreAdj, w.log)
	}
	raiseConntrackHashsize(w.f.hashsizeFile, next.Conntrack.Max(runtime.NumCPU()), w.log)
	w.configz.set(next)
	w.running = next
	w.metrics.ConfigReloads.WithLabelValues("applied").Inc()
	return false
}

// changedFields lists the KubeProxyConfiguration fields (dotted paths, as
// the file spells them) that differ between two configurations.
func changedFields(a, b *config.Config) []string {
	var ma, mb map[string]any
	ja, _ := json.Marshal(a.V1alpha1())
	jb, _ := json.Marshal(b.V1alpha1())
	_ = json.Unmarshal(ja, &ma)
	_ = json.Unmarshal(jb, &mb)
	var out []string
	diffPaths("", ma, mb, &out)
	if a.Master != b.Master {
		out = append(out, "--master")
	}
	out = append(out, config.ChangedExtension(a, b)...)
	sort.Strings(out)
	return out
}

func diffPaths(prefix string, a, b map[string]any, out *[]string) {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	for k := range keys {
		ma, okA := a[k].(map[string]any)
		mb, okB := b[k].(map[string]any)
		switch {
		case okA && okB:
			diffPaths(prefix+k+".", ma, mb, out)
		case !reflect.DeepEqual(a[k], b[k]):
			*out = append(*out, prefix+k)
		}
	}
}
