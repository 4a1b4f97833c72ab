package proxier

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fake"
	"github.com/ipvs-proxy/ipvs-proxy/internal/plan"
)

// TestSetConfigAppliesInPlace: a new configuration handed to a running
// proxier is applied by one full sync with exactly the operations that
// change what differs: edit-vs for the scheduler, the IPVS timeouts, the
// strict ARP sysctls; no virtual server or real server is deleted or added.
func TestSetConfigAppliesInPlace(t *testing.T) {
	fk := fake.New(nodeIP)
	h := start(t, fk, fk.Interfaces(), nil)
	h.feed(3)
	if s := h.next("full"); s.Err != nil {
		t.Fatal(s.Err)
	}
	next := *h.p.cfg.Config // read before the loop may change it: SetConfig hands over a new value
	next.IPVS.Scheduler = "lc"
	next.IPVS.StrictARP = true
	next.IPVS.Timeouts.TCP = 5 * time.Minute
	if err := h.p.SetConfig(context.Background(), &next); err != nil {
		t.Fatal(err)
	}
	s := h.next("full")
	if s.Err != nil {
		t.Fatal(s.Err)
	}
	want := map[plan.Kind]int{plan.EditVS: 3, plan.SetTimeouts: 1, plan.SetSysctl: 2}
	for k, n := range s.Counts {
		if want[k] != n {
			t.Errorf("%d %s operations, want %d (all: %v)", n, k, want[k], s.Counts)
		}
	}
	if got := fk.IPVS.Save(); strings.Count(got, "-s lc") != 3 || strings.Contains(got, "-s rr") {
		t.Errorf("kernel after the new config:\n%s", got)
	}
}

// TestSetConfigStopped: SetConfig on a proxier that does not run returns
// when its context ends instead of blocking forever.
func TestSetConfigStopped(t *testing.T) {
	p := New(Config{Kernel: fake.New(nodeIP).Interfaces(), Config: config.Default()})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.SetConfig(ctx, config.Default()); err == nil {
		t.Error("SetConfig on a stopped proxier returned nil")
	}
}
