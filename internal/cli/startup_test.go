package cli

import (
	"slices"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/syncevent"
)

func TestStartupPhases(t *testing.T) {
	t0 := time.Now()
	s := newStartup()
	start, ok := processStart()
	if !ok || start.After(t0) || t0.Sub(start) > time.Hour {
		t.Errorf("process start %v (%v), test started %v", start, ok, t0)
	}
	s.step("kernel")
	e := syncevent.Event{Start: time.Now().Add(time.Second), Phases: []syncevent.Phase{{Name: "source", Took: 500 * time.Millisecond}}}
	s.first(&e)
	var names []string
	for _, p := range e.Phases {
		names = append(names, p.Name)
	}
	if want := []string{"init/exec", "init/kernel", "init/other", "source"}; !slices.Equal(names, want) {
		t.Errorf("phases %q, want %q", names, want)
	}
	if d := e.Phase("init/other"); d < 400*time.Millisecond || d > time.Second {
		t.Errorf("init/other %s, want about 500ms", d)
	}
	var nilStartup *startup
	nilStartup.step("x") // untimed runs (tests) pass nil
}
