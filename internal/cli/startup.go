package cli

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/syncevent"
)

// startup times the steps of a daemon's start, for its first sync event
// (phases "init/..."): where a cold start's time goes before the first sync.
type startup struct {
	last   time.Time
	phases []syncevent.Phase
}

// newStartup starts timing; "init/exec" is from the process's start (the
// Go runtime and package initialisation, the command line) to now.
func newStartup() *startup {
	s := &startup{last: time.Now()}
	if t, ok := processStart(); ok && t.Before(s.last) {
		s.phases = append(s.phases, syncevent.Phase{Name: "init/exec", Took: s.last.Sub(t)})
	}
	return s
}

// step records that the named step ran from the previous one until now.
func (s *startup) step(name string) {
	if s == nil {
		return
	}
	now := time.Now()
	s.phases = append(s.phases, syncevent.Phase{Name: "init/" + name, Took: now.Sub(s.last)})
	s.last = now
}

// first adds the startup's phases to the daemon's first sync event, and
// "init/other" up to the proxier's wait for its source.
func (s *startup) first(e *syncevent.Event) {
	if s == nil {
		return
	}
	if wait := e.Start.Add(-e.Phase("source")).Sub(s.last); wait > 0 {
		s.phases = append(s.phases, syncevent.Phase{Name: "init/other", Took: wait})
	}
	e.Phases = append(s.phases, e.Phases...)
}

// clockTicks is USER_HZ, the unit of /proc's process times on Linux.
const clockTicks = 100

// processStart reads when this process started: its age is the system's
// uptime (/proc/uptime) less its start in clock ticks after boot (field 22
// of /proc/self/stat), to 10 ms.
func processStart() (time.Time, bool) {
	now := time.Now()
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return time.Time{}, false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 20 {
		return time.Time{}, false
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	up, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return time.Time{}, false
	}
	secs, err := strconv.ParseFloat(strings.Fields(string(up))[0], 64)
	if err != nil {
		return time.Time{}, false
	}
	age := time.Duration(secs*float64(time.Second)) - time.Duration(ticks)*time.Second/clockTicks
	return now.Add(-age), true
}
