package cli

import (
	"context"
	"errors"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fault"
)

// Version and Commit are set at build time (make build):
// go build -ldflags "-X github.com/ipvs-proxy/ipvs-proxy/internal/cli.Version=... -X ...cli.Commit=...".
var (
	Version = "dev"
	Commit  = ""
)

// gitCommit is the commit the binary was built from: Commit, or what the Go
// toolchain recorded (go build in a git checkout, without -buildvcs=false).
func gitCommit() string {
	if Commit != "" {
		return Commit
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return ""
}

// The process-wide settings kube-proxy makes at startup besides the proxier's.
const (
	oomScoreAdjFile = "/proc/self/oom_score_adj"
	// nf_conntrack's hash table size: a module parameter (one for the whole
	// host), not a sysctl.
	conntrackHashsizeFile = "/sys/module/nf_conntrack/parameters/hashsize"
)

// applyOOMScoreAdj writes oomScoreAdj to path (empty: skip), like
// kube-proxy: a failure (not allowed to lower it) is logged, not fatal.
func applyOOMScoreAdj(path string, v int32, log *zap.Logger) {
	if path == "" {
		return
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(int(v))), 0o644); err != nil {
		log.Warn("cannot set oomScoreAdj", zap.Int32("oomScoreAdj", v), zap.Error(err))
		return
	}
	log.Debug("oomScoreAdj set", zap.Int32("oomScoreAdj", v))
}

// raiseConntrackHashsize raises nf_conntrack's hash table to a quarter of
// nf_conntrack_max (conntrack.maxPerCore x CPUs), like kube-proxy: never
// lowers it. max 0 leaves it alone. The proxier sets nf_conntrack_max itself
// (a sysctl of the desired state). A read-only /sys (an unprivileged
// container) is logged, not fatal. An empty path skips it.
func raiseConntrackHashsize(path string, max int, log *zap.Logger) {
	if max <= 0 || path == "" {
		return
	}
	b, err := os.ReadFile(path)
	var cur int
	if err == nil {
		cur, err = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			log.Warn("cannot read the conntrack hash size", zap.String("file", path), zap.Error(err))
		}
		return
	}
	want := max / 4
	if cur >= want {
		return
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(want)), 0o644); err != nil {
		log.Warn("cannot raise the conntrack hash size", zap.String("file", path), zap.Int("hashsize", want), zap.Error(err))
		return
	}
	log.Info("conntrack hash size raised", zap.Int("from", cur), zap.Int("to", want), zap.Int("nf_conntrack_max", max))
}

// followRateFile sets the fault injection rate from a file, every second
// (testing only: lets a scenario start and stop kernel failures).
func followRateFile(ctx context.Context, path string, inj *fault.Injector, log *zap.Logger) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := -1.0
	for {
		if b, err := os.ReadFile(path); err == nil {
			if rate, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64); err == nil && rate != last {
				inj.SetRate(rate)
				log.Warn("fault injection rate changed", zap.Float64("rate", rate))
				last = rate
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
