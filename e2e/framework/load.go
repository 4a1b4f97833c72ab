package framework

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Bounds of a background load, so a forgotten one stops by itself.
const (
	loadInterval    = 20 * time.Millisecond
	loadMaxDuration = 5 * time.Minute
	loadMaxRequests = 20000
)

// Load is a client loop running in the background: one exchange every 20 ms
// (or the interval given to StartLoadEvery) on a fresh connection, until Stop
// (or the test's end, or 5 minutes, or 20000 exchanges).
type Load struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	result LoadResult
}

// LoadResult counts what a Load saw.
type LoadResult struct {
	// Sent is the number of exchanges attempted, Failed those without answer.
	Sent, Failed int
	// Backends counts answers per backend name.
	Backends map[string]int
	// Errors counts failures per error message.
	Errors map[string]int
	// FailedAt are the times the failed exchanges started.
	FailedAt []time.Time
}

// String summarizes the result for test logs.
func (r LoadResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sent %d, failed %d, backends %v", r.Sent, r.Failed, r.Backends)
	keys := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %dx %s", r.Errors[k], k)
	}
	return b.String()
}

// StartLoad starts exchanges of kind proto with target from client c.
func StartLoad(t testing.TB, c Client, proto Proto, target string) *Load {
	t.Helper()
	return StartLoadEvery(t, c, proto, target, loadInterval)
}

// StartLoadEvery is StartLoad with one exchange per interval instead of
// every 20 ms: under emulation a tight loop takes most of the guest's CPU,
// which slows down what the scenario is measuring (e.g. a daemon restart).
func StartLoadEvery(t testing.TB, c Client, proto Proto, target string, interval time.Duration) *Load {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), loadMaxDuration)
	l := &Load{
		cancel: cancel,
		done:   make(chan struct{}),
		result: LoadResult{Backends: map[string]int{}, Errors: map[string]int{}},
	}
	go l.run(ctx, c, proto, target, interval)
	t.Cleanup(func() { l.Stop() })
	return l
}

// Stop ends the loop, waits for the exchange in flight and returns the counts.
// Calling it again returns the same counts.
func (l *Load) Stop() LoadResult {
	l.cancel()
	<-l.done
	return l.Snapshot()
}

// Snapshot returns the counts so far without stopping.
func (l *Load) Snapshot() LoadResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.result
	r.Backends = copyCounts(l.result.Backends)
	r.Errors = copyCounts(l.result.Errors)
	r.FailedAt = append([]time.Time(nil), l.result.FailedAt...)
	return r
}

func (l *Load) run(ctx context.Context, c Client, proto Proto, target string, interval time.Duration) {
	defer close(l.done)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for sent := 0; sent < loadMaxRequests; sent++ {
		start := time.Now()
		reply, err := c.Exchange(proto, target)
		l.record(start, reply, err)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func (l *Load) record(start time.Time, reply Reply, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.result.Sent++
	if err != nil {
		l.result.Failed++
		l.result.FailedAt = append(l.result.FailedAt, start)
		l.result.Errors[localAddr.ReplaceAllString(err.Error(), "")]++
		return
	}
	l.result.Backends[reply.Backend]++
}

// localAddr matches the "IP:port->" of a socket error, whose ephemeral port
// would make every timeout a distinct message.
var localAddr = regexp.MustCompile(`[0-9.]+:[0-9]+->`)

func copyCounts(m map[string]int) map[string]int {
	c := make(map[string]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
