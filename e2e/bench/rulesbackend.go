package main

import (
	"fmt"
	"log"
	"path/filepath"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	"github.com/ipvs-proxy/ipvs-proxy/internal/testenv/workload"
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
	p, cs, err := g.coldStart(w, ns, every, fmt.Sprintf("ipvs-proxy-%s-%d.log", backend, n), proxyEnv, "--rules-backend", backend)
	if err != nil {
		return nil, err
	}
	defer deleteNS(ns)
	defer p.Stop()
	res := &RulesBackendResult{N: n, Backend: backend, Cold: cs}
	log.Printf("N=%d %s: cold start %s (sync %s, %d ops, %d messages)", n, backend, cs.Time, cs.Took, cs.Ops, cs.Messages)
	v := ipvs.New(ipvs.Config{NetNSPath: netNS{Name: ns}.Path()})
	if err := v.Open(); err != nil {
		return res, err
	}
	defer v.Close()
	for k := range rounds {
		added := workload.ServiceSpec(workload.ExtraBase + k*10)
		key := state.VSKey{Proto: state.TCP, Addr: added.ClusterIP, Port: 80}
		for _, st := range []struct {
			kind  string
			do    func() error
			check func(map[state.RSKey]state.RealServer) string
		}{
			{"Service added", func() error { return w.addService(k) }, func(m map[state.RSKey]state.RealServer) string {
				if len(m) != workload.EndpointsPer {
					return fmt.Sprintf("the new virtual server has %d real servers", len(m))
				}
				return ""
			}},
			{"Service deleted", func() error { return w.deleteService(k) }, func(m map[state.RSKey]state.RealServer) string {
				if len(m) != 0 {
					return fmt.Sprintf("the deleted virtual server still has %d real servers", len(m))
				}
				return ""
			}},
		} {
			time.Sleep(300 * time.Millisecond)
			p.drain()
			written := time.Now()
			if err := st.do(); err != nil {
				return res, err
			}
			c, err := awaitChange(p, v, key, written, st.check)
			if err != nil {
				return res, err
			}
			c.Kind = st.kind
			res.Changes = append(res.Changes, c)
		}
	}
	s, err := p.next(every+10*time.Minute, func(s syncLine) bool { return s.Type == "full" })
	if err != nil {
		return res, err
	}
	res.Resync = &Resync{Took: s.Took, Ops: s.Ops, Messages: s.Messages}
	log.Printf("N=%d %s: idle resync %s, %d ops", n, backend, s.Took, s.Ops)
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
			if !c.Collided && c.Problem == "" {
				byKind[c.Kind] = append(byKind[c.Kind], c.SinceChange)
			}
		}
		resync := "–"
		if b.Resync != nil {
			resync = fmt.Sprintf("%s (%d ops)", dur(b.Resync.Took), b.Resync.Ops)
		}
		r.f("| %s | %s | %s | %s | %s / %s | %s | %s | %s |\n", num(b.N), b.Backend, dur(b.Cold.Time), dur(b.Cold.Took),
			num(b.Cold.Ops), num(b.Cold.Messages), dur(time.Duration(medianDur(byKind["Service added"]))),
			dur(time.Duration(medianDur(byKind["Service deleted"]))), resync)
	}
	r.f("\n")
}
