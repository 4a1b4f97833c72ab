package proxier

import (
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/fake"
	"github.com/ipvs-proxy/ipvs-proxy/internal/plan"
	"github.com/ipvs-proxy/ipvs-proxy/internal/rules/nft"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

func nftBackend(c *config.Config) { c.RulesBackend = state.BackendNFTables }

// nftRuns returns how many nftables transactions ran since before.
func nftRuns(fk *fake.Kernel, before int) int { return fk.NFTables.Writes() - before }

func TestNFTablesColdStartRestartAndOneChange(t *testing.T) {
	fk := fake.New(nodeIP)
	h := start(t, fk, fk.Interfaces(), nftBackend)
	h.feed(3)
	s := h.next("full")
	if s.Err != nil || nftRuns(fk, 0) != 1 {
		t.Fatalf("cold start: %v, %d nft transactions, want 1", s.Err, nftRuns(fk, 0))
	}
	dump := fk.NFTables.Dump(state.IPv4)
	for _, want := range []string{
		"add chain ip ipvs-proxy nat-prerouting { type nat hook prerouting priority -100 ; }",
		"add rule ip ipvs-proxy postrouting masquerade fully-random",
		"add element ip ipvs-proxy cluster-ip { 10.96.0.1 . tcp . 80 }",
		"add element ip ipvs-proxy ipvs-ips { 10.96.0.3 }",
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("table after cold start lacks %q:\n%s", want, dump)
		}
	}
	if save, _ := fk.IPTables.Save(state.IPv4); strings.Contains(save, "KUBE-") {
		t.Errorf("the nftables backend wrote iptables rules:\n%s", save)
	}
	if sets, _ := fk.IPSet.List(); len(sets) > 0 {
		t.Errorf("the nftables backend created ipsets: %v", sets)
	}

	// a Service added: its elements, in one transaction, and nothing else of the table
	before := fk.NFTables.Writes()
	h.p.UpsertService(service("svc-9", "10.96.0.99", 80))
	s = h.next("partial")
	if s.Counts[plan.NFTAddElement] != 2 || nftRuns(fk, before) != 1 || s.Counts[plan.NFTSyncChain] != 0 {
		t.Fatalf("one Service added: %v, %d transactions; want 2 nft-add-element in 1", s.Counts, nftRuns(fk, before))
	}
	last := fk.NFTables.V4.LastTransaction.String()
	if strings.Count(last, "\n") != 2 {
		t.Errorf("transaction of one Service:\n%s", last)
	}

	// a Service changed (another port): its two elements swapped, nothing else
	before = fk.NFTables.Writes()
	h.p.UpsertService(service("svc-9", "10.96.0.99", 81))
	s = h.next("partial")
	if s.Counts[plan.NFTAddElement] != 1 || s.Counts[plan.NFTDelElement] != 1 || s.Counts[plan.NFTSyncChain] != 0 || nftRuns(fk, before) != 1 {
		t.Fatalf("one Service's port changed: %v, %d transactions; want 1 nft-add-element and 1 nft-delete-element in 1", s.Counts, nftRuns(fk, before))
	}

	// a Service deleted: its elements deleted, in one transaction
	before = fk.NFTables.Writes()
	h.p.DeleteService("default", "svc-9")
	s = h.next("partial")
	if s.Counts[plan.NFTDelElement] != 2 || s.Counts[plan.NFTAddElement] != 0 || s.Counts[plan.NFTSyncChain] != 0 || nftRuns(fk, before) != 1 {
		t.Fatalf("one Service deleted: %v, %d transactions; want 2 nft-delete-element in 1", s.Counts, nftRuns(fk, before))
	}
	if dump := fk.NFTables.Dump(state.IPv4); strings.Contains(dump, "10.96.0.99") {
		t.Errorf("the deleted Service's elements are still in the table:\n%s", dump)
	}

	// restart: adopts, no write
	h.p.UpsertService(service("svc-9", "10.96.0.99", 80))
	h.next("partial")
	h.stop()
	before = fk.Writes()
	h2 := start(t, fk, fk.Interfaces(), nftBackend)
	h2.p.UpsertService(service("svc-9", "10.96.0.99", 80))
	h2.feed(3)
	if s := h2.next("full"); s.Ops != 0 || fk.Writes() != before {
		t.Fatalf("restart planned %d ops (%v), wrote %d", s.Ops, s.Counts, fk.Writes()-before)
	}
}

func TestNFTablesResyncRepairsExactly(t *testing.T) {
	fk := fake.New(nodeIP)
	h := start(t, fk, fk.Interfaces(), func(c *config.Config) { nftBackend(c); c.IPVS.SyncPeriod = 50 * time.Millisecond })
	h.feed(2)
	h.next("full")
	if s := h.next("full"); s.Ops != 0 {
		t.Fatalf("idle resync planned %d ops (%v)", s.Ops, s.Counts)
	}
	tamper := func(ops ...kernel.NFTOp) {
		t.Helper()
		if err := fk.NFTables.Tables.Run(state.IPv4, ops); err != nil {
			t.Fatal(err)
		}
	}
	chain := func(name string) *knftables.Chain {
		return &knftables.Chain{Family: knftables.IPv4Family, Table: nft.TableName, Name: name}
	}
	elem := &knftables.Element{Family: knftables.IPv4Family, Table: nft.TableName, Set: "cluster-ip", Key: []string{"10.96.0.1", "tcp", "80"}}
	tamper(kernel.NFTOp{Verb: kernel.NFTFlush, Obj: chain(nft.ChainPostrouting)}, kernel.NFTOp{Verb: kernel.NFTDelete, Obj: elem},
		kernel.NFTOp{Verb: kernel.NFTAdd, Obj: chain("foreign")},
		kernel.NFTOp{Verb: kernel.NFTAdd, Obj: &knftables.Rule{Family: knftables.IPv4Family, Table: nft.TableName, Chain: nft.ChainServices, Rule: "jump foreign"}})
	s := h.next("full")
	want := map[plan.Kind]int{plan.NFTSyncChain: 2, plan.NFTAddElement: 1, plan.NFTDeleteChain: 1}
	if s.Ops != 4 || s.Err != nil {
		t.Fatalf("repair: %d ops %v (%v), want %v", s.Ops, s.Counts, s.Err, want)
	}
	for k, n := range want {
		if s.Counts[k] != n {
			t.Errorf("repair: %d %s, want %d", s.Counts[k], k, n)
		}
	}
	if s := h.next("full"); s.Ops != 0 {
		t.Fatalf("resync after repair planned %d ops (%v)", s.Ops, s.Counts)
	}
	// the whole table deleted: rebuilt in one transaction
	tamper(kernel.NFTOp{Verb: kernel.NFTDelete, Obj: &knftables.Table{Family: knftables.IPv4Family, Name: nft.TableName}})
	before := fk.NFTables.Writes()
	if s := h.next("full"); s.Err != nil || nftRuns(fk, before) != 1 {
		t.Fatalf("table deleted: %v, %d transactions", s.Err, nftRuns(fk, before))
	}
	if s := h.next("full"); s.Ops != 0 {
		t.Fatalf("after rebuilding the table: %d ops (%v)", s.Ops, s.Counts)
	}
}

func TestSwitchBackendsEitherWay(t *testing.T) {
	fk := fake.New(nodeIP)
	ipt := start(t, fk, fk.Interfaces(), nil)
	ipt.feed(2)
	ipt.next("full")
	ipt.stop()
	ipsets, _ := fk.IPSet.List()

	nf := start(t, fk, fk.Interfaces(), func(c *config.Config) { nftBackend(c); c.IPVS.SyncPeriod = 50 * time.Millisecond })
	nf.feed(2)
	s := nf.next("full")
	if s.Err != nil || s.Counts[plan.DeleteRules] != 1 || s.Counts[plan.DestroySet] != len(ipsets) {
		t.Fatalf("iptables to nftables: %v %v", s.Counts, s.Err)
	}
	if save, _ := fk.IPTables.Save(state.IPv4); strings.Contains(save, "KUBE-") {
		t.Fatalf("iptables rules left:\n%s", save)
	}
	if sets, _ := fk.IPSet.List(); len(sets) > 0 {
		t.Fatalf("ipsets left: %d", len(sets))
	}
	if s := nf.next("full"); s.Ops != 0 {
		t.Fatalf("second full sync on nftables: %v", s.Counts)
	}
	nf.stop()

	back := start(t, fk, fk.Interfaces(), nil)
	back.feed(2)
	s = back.next("full")
	if s.Err != nil || s.Counts[plan.NFTDeleteTable] != 1 || s.Counts[plan.SyncRules] != 1 {
		t.Fatalf("nftables to iptables: %v %v", s.Counts, s.Err)
	}
	if fk.NFTables.Dump(state.IPv4) != "" {
		t.Fatalf("nftables table left:\n%s", fk.NFTables.Dump(state.IPv4))
	}
}
