package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
	"github.com/ipvs-proxy/ipvs-proxy/internal/testenv/workload"
)

// subject is one daemon of the comparison through the API server, seen the
// same way whichever it is: its process, when its syncs ended, and what it
// says a sync took (ipvs-proxy: its sync events; kube-proxy: its metrics).
type subject interface {
	process() *framework.Process
	// firstSync says when the first full sync ended, once it has.
	firstSync() (end time.Time, ok bool, err error)
	// quietFor waits, if a periodic sync is due within window, until it
	// has run.
	quietFor(window time.Duration) error
	// changeSyncs returns ipvs-proxy's sinceChange and ops of the syncs
	// since start (zero for kube-proxy, which has no such record).
	changeSyncs(start time.Time) (time.Duration, int)
	// idleResync waits for the next periodic sync and returns when it
	// ended and its duration.
	idleResync(timeout time.Duration) (time.Time, time.Duration, error)
	stop()
}

// startSubject starts ipvs-proxy or kube-proxy in the API namespace with
// the shared configuration file.
func (g *guest) startSubject(name string, n int, cfg string, period time.Duration) (subject, error) {
	if name == "ipvs-proxy" {
		d, err := g.startDaemon(apiNS, fmt.Sprintf("ipvs-proxy-api-%d", n), period, framework.Options{
			Kubeconfig: g.kubeconfig, NodeName: workload.NodeName, ConfigFile: cfg})
		return &oursAPI{d}, err
	}
	p, err := framework.StartProcess(framework.Command{Bin: g.kubeProxyBin, Args: []string{"--config", cfg}, NetNS: apiNS,
		LogPath: filepath.Join(g.logs, fmt.Sprintf("kube-proxy-api-%d.log", n))})
	return &kubeProxyAPI{p: p, period: period}, err
}

// oursAPI is ipvs-proxy, read through its sync events.
type oursAPI struct{ d *daemon }

func (o *oursAPI) process() *framework.Process { return o.d.proc }

func (o *oursAPI) firstSync() (time.Time, bool, error) {
	s, ok := o.d.take(framework.IsFull)
	if ok && s.Incomplete() {
		return time.Time{}, false, fmt.Errorf("first full sync incomplete: %q", s.Errors)
	}
	return s.End, ok, nil
}

func (o *oursAPI) quietFor(window time.Duration) error { return o.d.quietFor(window) }

func (o *oursAPI) changeSyncs(start time.Time) (time.Duration, int) {
	time.Sleep(100 * time.Millisecond) // the event is written just after the last ack
	var first, last framework.Sync
	ops := 0
	for {
		s, ok := o.d.take(framework.Wrote)
		if !ok {
			break
		}
		if s.End.Before(start) {
			continue
		}
		if ops == 0 {
			first = s
		}
		last, ops = s, ops+s.Ops
	}
	if ops == 0 {
		return 0, 0
	}
	return last.End.Sub(first.End) + first.SinceChange, ops
}

func (o *oursAPI) idleResync(timeout time.Duration) (time.Time, time.Duration, error) {
	o.d.drain()
	s, err := o.d.next(timeout, framework.IsFull)
	return s.End, s.Took(), err
}

func (o *oursAPI) stop() { _, _ = o.d.proc.Stop(20 * time.Second) }

// kubeProxyAPI is kube-proxy, read through its metrics.
type kubeProxyAPI struct {
	p      *framework.Process
	period time.Duration
}

func (k *kubeProxyAPI) process() *framework.Process { return k.p }

// scrape returns the end of the last sync (zero before the first) and the
// count and sum of sync durations, of the IPv4 proxier (kube-proxy runs one
// per family; the IPv6 one has nothing to do here).
func (k *kubeProxyAPI) scrape() (last time.Time, count, sum float64, err error) {
	m, err := framework.ScrapeMetricsIn(apiNS, framework.MetricsAddr)
	if err != nil {
		return last, 0, 0, err
	}
	for series, v := range m {
		name, labels, _ := strings.Cut(series, "{")
		if strings.Contains(labels, `ip_family="IPv6"`) {
			continue
		}
		switch name {
		case "kubeproxy_sync_proxy_rules_last_timestamp_seconds":
			if v > 0 {
				last = time.Unix(0, int64(v*1e9))
			}
		case "kubeproxy_sync_proxy_rules_duration_seconds_count":
			count = v
		case "kubeproxy_sync_proxy_rules_duration_seconds_sum":
			sum = v
		}
	}
	return last, count, sum, nil
}

func (k *kubeProxyAPI) firstSync() (time.Time, bool, error) {
	last, _, _, err := k.scrape()
	if err != nil {
		return last, false, nil //nolint:nilerr // not serving yet: not synced, and no failure either
	}
	return last, !last.IsZero(), nil
}

// quietFor: kube-proxy's periodic sync comes syncPeriod after its last sync
// of any kind.
func (k *kubeProxyAPI) quietFor(window time.Duration) error {
	last, count, _, err := k.scrape()
	if err != nil {
		return err
	}
	if time.Until(last.Add(k.period)) > window {
		return nil
	}
	_, err = k.waitSync(count, k.period+window+10*time.Minute)
	return err
}

// waitSync waits for the sync count to pass count and returns the new sum.
func (k *kubeProxyAPI) waitSync(count float64, timeout time.Duration) (float64, error) {
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(time.Second) {
		if !k.p.Running() {
			return 0, fmt.Errorf("kube-proxy exited: %w", k.p.Err())
		}
		if _, c, sum, err := k.scrape(); err == nil && c > count {
			return sum, nil
		}
	}
	return 0, fmt.Errorf("kube-proxy did not sync within %s", timeout)
}

func (k *kubeProxyAPI) changeSyncs(time.Time) (time.Duration, int) { return 0, 0 }

func (k *kubeProxyAPI) idleResync(timeout time.Duration) (time.Time, time.Duration, error) {
	_, count, sum0, err := k.scrape()
	if err != nil {
		return time.Time{}, 0, err
	}
	sum, err := k.waitSync(count, timeout)
	if err != nil {
		return time.Time{}, 0, err
	}
	last, _, _, err := k.scrape()
	return last, time.Duration((sum - sum0) * 1e9), err
}

func (k *kubeProxyAPI) stop() { _, _ = k.p.Stop(20 * time.Second) }
