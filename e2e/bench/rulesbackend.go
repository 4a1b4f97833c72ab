package main

import (
	"fmt"
	"log"
	"path/filepath"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/ipvs"
)

// RulesBackendResult is what one rules backend (--rules-backend) costs at N
// Services: a cold start, the changes whose operations include set members
// (a Service added, a Service deleted), and an idle periodic resync, which
// reads every set back. The two backends run the same manifests in the
// same boot, one after the other, each in a fresh network namespace.
type RulesBackendResult struct {
	N       int
	Backend string
	Cold    ColdStart
	Changes []Change
	Resync  *Resync `json:",omitempty"`
}

// runRulesBackends measures both backends at n with rounds rounds of changes.
func (g *guest) runRulesBackends(n, rounds int) ([]*RulesBackendResult, error) {
	dir := filepath.Join(g.work, fmt.Sprintf("rules-%d", n))
	w, err := writeManifests(filepath.Join(dir, "manifests"), n)
	if err != nil {
		return nil, err
	}
	var out []*RulesBackendResult
	for _, b := range []string{"iptables", "nftables"} {
		settle(time.Minute)
		res, err := g.rulesBackend(w, n, b, rounds)
		if res != nil {
			out = append(out, res)
		}
		if err != nil {
			return out, fmt.Errorf("%s: %w", b, err)
		}
	}
	return out, nil
}

func (g *guest) rulesBackend(w *manifests, n int, backend string, rounds int) (*RulesBackendResult, error) {
	ns := fmt.Sprintf("rules-%s-%d", backend, n)
	every := syncEvery(n)
	d, cs, err := g.coldStart(w, ns, every, nil, "--rules-backend", backend)
	if err != nil {
		return nil, err
	}
	defer d.stop()
	res := &RulesBackendResult{N: n, Backend: backend, Cold: cs}
	log.Printf("N=%d %s: cold start %s (sync %s, %d ops, %d messages)", n, backend, cs.Time, cs.Sync, cs.Ops, cs.Messages)
	v := ipvs.New(ipvs.Config{NetNSPath: (&framework.Namespace{Name: ns}).Path()})
	if err := v.Open(); err != nil {
		return res, err
	}
	defer v.Close()
	for k := range rounds {
		// the steps whose operations include set members
		for _, st := range changeSteps(w, k)[2:] {
			c, err := g.oneChange(d, v, st, nil)
			if err != nil {
				return res, fmt.Errorf("round %d, %s: %w", k, st.kind, err)
			}
			res.Changes = append(res.Changes, c)
		}
	}
	rs, err := idleResync(d, every, nil)
	if err != nil {
		return res, err
	}
	res.Resync = &rs
	log.Printf("N=%d %s: idle resync %s, %d ops", n, backend, rs.Took, rs.Ops)
	return res, nil
}

// rulesBackends renders the comparison of the two rules backends.
func (r *reportWriter) rulesBackends(res *Results) {
	if len(res.RulesBackends) == 0 {
		return
	}
	r.f("#### Rules backends: iptables and ipset against nftables\n\n")
	r.f("The same manifests with `--rules-backend iptables` and `--rules-backend nftables`, one after the other in fresh network namespaces of the same boot. ")
	r.f("A change is timed by the daemon's sinceChange (source to the last kernel answer), median of the rounds; its operations include two set members (KUBE-CLUSTER-IP, KUBE-IPVS-IPS), applied as two ipset requests or one nft transaction. ")
	r.f("The idle resync reads everything back: ipsets in one netlink dump and iptables-save, or the nftables table with one `nft --json list table`.\n\n")
	r.f("| Services | backend | cold start | its sync | ops / kernel messages | Service added | Service deleted | idle resync |\n|---|---|---|---|---|---|---|---|\n")
	for _, b := range res.RulesBackends {
		byKind := map[string][]time.Duration{}
		for _, c := range b.Changes {
			if !c.Collided {
				byKind[c.Kind] = append(byKind[c.Kind], c.SinceChange)
			}
		}
		resync := "–"
		if b.Resync != nil {
			resync = fmt.Sprintf("%s (%d ops)", dur(b.Resync.Took), b.Resync.Ops)
		}
		r.f("| %s | %s | %s | %s | %s / %s | %s | %s | %s |\n", num(b.N), b.Backend, dur(b.Cold.Time), dur(b.Cold.Sync),
			num(b.Cold.Ops), num(b.Cold.Messages), dur(time.Duration(median(durs(byKind["Service added"])))),
			dur(time.Duration(median(durs(byKind["Service deleted"])))), resync)
	}
	r.f("\n")
}
