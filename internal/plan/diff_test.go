package plan

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

func vs(addr string, port uint16, sched string) state.VirtualServer {
	return state.VirtualServer{Key: state.VSKey{Proto: state.TCP, Addr: netip.MustParseAddr(addr), Port: port}, Scheduler: sched}
}

func rs(addr string, port uint16, weight int32) state.RealServer {
	return state.RealServer{Key: state.RSKey{Addr: netip.MustParseAddr(addr), Port: port}, Weight: weight}
}

func svc(v state.VirtualServer, rss ...state.RealServer) *state.Service {
	s := &state.Service{VirtualServer: v, RealServers: map[state.RSKey]state.RealServer{}}
	for _, r := range rss {
		s.RealServers[r.Key] = r
	}
	return s
}

// world returns a state holding one ClusterIP Service with its address and set member.
func world(svcs ...*state.Service) *state.State {
	s := state.New()
	s.Link = true
	s.Sets[desired.SetClusterIP] = state.NewSet(state.SetSpec{Name: desired.SetClusterIP, Type: state.HashIPPort, Family: state.IPv4})
	for _, v := range svcs {
		s.Services[v.Key] = v.Clone()
		s.Addresses[v.Key.Addr] = struct{}{}
		s.Sets[desired.SetClusterIP].Entries[state.SetEntry{Addr: v.Key.Addr, Proto: v.Key.Proto, Port: v.Key.Port}] = struct{}{}
	}
	return s
}

func opStrings(p *Plan) []string {
	var out []string
	for _, o := range p.Ops {
		out = append(out, o.String())
	}
	return out
}

func TestDiff(t *testing.T) {
	web := vs("10.96.0.10", 80, "rr")
	a, b, c := rs("10.244.1.1", 8080, 1), rs("10.244.1.2", 8080, 1), rs("10.244.1.3", 8080, 1)
	busy := b
	busy.ActiveConns = 2
	drained := b
	drained.Weight = 0
	lc := web
	lc.Scheduler = "lc"
	sticky := web
	sticky.Flags, sticky.Timeout = state.FlagPersistent, 10800

	tests := []struct {
		name       string
		want, have *state.State
		opt        Options
		ops        []string
	}{
		{name: "equal states give an empty plan",
			want: world(svc(web, a, b)), have: world(svc(web, a, b))},
		{name: "empty kernel: address, then virtual server, real servers, set member",
			want: world(svc(web, a)), have: &state.State{Addresses: map[netip.Addr]struct{}{}, Services: map[state.VSKey]*state.Service{}, Sets: map[string]*state.Set{}},
			ops: []string{
				"ensure-link kube-ipvs0",
				"create-set KUBE-CLUSTER-IP hash:ip,port",
				"add-address 10.96.0.10/32",
				"add-vs -A -t 10.96.0.10:80 -s rr",
				"add-rs -a -t 10.96.0.10:80 -r 10.244.1.1:8080 -m -w 1",
				"add-entry KUBE-CLUSTER-IP 10.96.0.10,tcp:80",
			}},
		{name: "one endpoint added: one real-server op",
			want: world(svc(web, a, b, c)), have: world(svc(web, a, b)),
			ops: []string{"add-rs -a -t 10.96.0.10:80 -r 10.244.1.3:8080 -m -w 1"}},
		{name: "one endpoint removed, connections unknown: drained at weight 0",
			want: world(svc(web, a)), have: world(svc(web, a, b)),
			ops: []string{"edit-rs -e -t 10.96.0.10:80 -r 10.244.1.2:8080 -m -w 0"}},
		{name: "removed endpoint with connections: drained at weight 0",
			want: world(svc(web, a)), have: world(svc(web, a, busy)), opt: Options{ConnsKnown: true},
			ops: []string{"edit-rs -e -t 10.96.0.10:80 -r 10.244.1.2:8080 -m -w 0"}},
		{name: "drained endpoint still busy: nothing to do",
			want: world(svc(web, a)), have: world(svc(web, a, func() state.RealServer { d := drained; d.InactiveConns = 1; return d }())), opt: Options{ConnsKnown: true}},
		{name: "drained endpoint idle: deleted",
			want: world(svc(web, a)), have: world(svc(web, a, drained)), opt: Options{ConnsKnown: true},
			ops: []string{"del-rs -d -t 10.96.0.10:80 -r 10.244.1.2:8080"}},
		{name: "drained endpoint comes back: weight restored",
			want: world(svc(web, a, b)), have: world(svc(web, a, drained)),
			ops: []string{"edit-rs -e -t 10.96.0.10:80 -r 10.244.1.2:8080 -m -w 1"}},
		{name: "scheduler change edits the virtual server in place",
			want: world(svc(lc, a)), have: world(svc(web, a)),
			ops: []string{"edit-vs -E -t 10.96.0.10:80 -s lc"}},
		{name: "affinity change edits in place",
			want: world(svc(sticky, a)), have: world(svc(web, a)),
			ops: []string{"edit-vs -E -t 10.96.0.10:80 -s rr -p 10800"}},
		{name: "Service deleted: member, virtual server, address go, in that order",
			want: world(), have: world(svc(web, a)),
			ops: []string{
				"del-entry KUBE-CLUSTER-IP 10.96.0.10,tcp:80",
				"del-vs -D -t 10.96.0.10:80",
				"del-address 10.96.0.10/32",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := opStrings(Diff(tt.want, tt.have, tt.opt))
			if !slices.Equal(got, tt.ops) {
				t.Errorf("ops:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.ops, "\n  "))
			}
		})
	}
}

func TestDiffUDP(t *testing.T) {
	dns := state.VirtualServer{Key: state.VSKey{Proto: state.UDP, Addr: netip.MustParseAddr("10.96.0.10"), Port: 53}, Scheduler: "rr"}
	a, b := rs("10.244.0.20", 53, 1), rs("10.244.1.21", 53, 1)
	t.Run("removed UDP endpoint is deleted at once and its conntrack flushed", func(t *testing.T) {
		got := opStrings(Diff(world(svc(dns, a)), world(svc(dns, a, b)), Options{}))
		want := []string{"del-rs -d -u 10.96.0.10:53 -r 10.244.1.21:53", "flush-conntrack UDP 10.96.0.10:53 -> 10.244.1.21"}
		if !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("first endpoint of a UDP service flushes stale entries", func(t *testing.T) {
		got := opStrings(Diff(world(svc(dns, a)), world(svc(dns)), Options{}))
		want := []string{"add-rs -a -u 10.96.0.10:53 -r 10.244.0.20:53 -m -w 1", "flush-conntrack UDP 10.96.0.10:53"}
		if !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

func TestDiffOwnership(t *testing.T) {
	web := vs("10.96.0.10", 80, "rr")
	foreign := svc(vs("192.168.1.50", 8080, "wlc"), rs("192.168.1.60", 8080, 3))
	excluded := svc(vs("10.96.0.99", 80, "rr")) // on our address, but inside excludeCIDRs
	nodePort := svc(vs("10.0.0.1", 30080, "rr"))
	staleNodePort := svc(vs("192.168.9.9", 30080, "rr")) // an address the node no longer serves NodePorts on
	foreignOnNode := svc(vs("10.0.0.1", 8443, "rr"))
	// another program's virtual server on an address that was never the
	// node's, whose port happens to be one of our node ports
	foreignNodePortNumber := svc(vs("192.0.2.50", 30080, "wlc"))

	have := world(svc(web, rs("10.244.1.1", 8080, 1)))
	have.Services[foreign.Key] = foreign
	have.Services[excluded.Key] = excluded
	have.Addresses[excluded.Key.Addr] = struct{}{}
	have.Services[nodePort.Key] = nodePort
	have.Services[staleNodePort.Key] = staleNodePort
	have.Services[foreignOnNode.Key] = foreignOnNode
	have.Services[foreignNodePortNumber.Key] = foreignNodePortNumber
	np := state.NewSet(state.SetSpec{Name: desired.SetNodePortTCP, Type: state.BitmapPort, Family: state.IPv4})
	np.Entries[state.SetEntry{Port: 30080}] = struct{}{}
	have.Sets[np.Name] = np
	// a set that is not ours, even with a KUBE- prefix, is never touched
	have.Sets["KUBE-DST-ABC"] = state.NewSet(state.SetSpec{Name: "KUBE-DST-ABC", Type: state.HashIP})
	have.Sets["KUBE-DST-ABC"].Entries[state.SetEntry{Addr: netip.MustParseAddr("1.2.3.4")}] = struct{}{}

	want := world(svc(web, rs("10.244.1.1", 8080, 1)))
	want.Sets[np.Name] = state.NewSet(np.SetSpec)
	opt := Options{ExcludeCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.96/28")},
		NodeAddresses: map[netip.Addr]bool{netip.MustParseAddr("10.0.0.1"): true, netip.MustParseAddr("192.168.9.9"): true}}
	got := opStrings(Diff(want, have, opt))
	wantOps := []string{
		"del-entry KUBE-NODE-PORT-TCP 30080",
		"del-vs -D -t 10.0.0.1:30080",
		"del-vs -D -t 192.168.9.9:30080",
		"del-address 10.96.0.99/32",
	}
	if !slices.Equal(got, wantOps) {
		t.Errorf("ops:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(wantOps, "\n  "))
	}
}

func TestDiffScoped(t *testing.T) {
	web, api := vs("10.96.0.10", 80, "rr"), vs("10.96.0.11", 80, "rr")
	a := rs("10.244.1.1", 8080, 1)
	have := world(svc(web, a), svc(api, a))
	want := world(svc(web, a)) // api is gone, but only web is in scope
	scope := state.NewScope()
	scope.Services[web.Key] = struct{}{}
	if p := Diff(want, have, Options{Scope: scope}); !p.Empty() {
		t.Errorf("out-of-scope changes planned: %q", opStrings(p))
	}
	scope.Services[api.Key] = struct{}{}
	scope.Addresses[api.Key.Addr] = struct{}{}
	got := opStrings(Diff(want, have, Options{Scope: scope}))
	wantOps := []string{"del-vs -D -t 10.96.0.11:80", "del-address 10.96.0.11/32"}
	if !slices.Equal(got, wantOps) {
		t.Errorf("got %q, want %q", got, wantOps)
	}
}

func TestRecordConverges(t *testing.T) {
	want := world(svc(vs("10.96.0.10", 80, "lc"), rs("10.244.1.1", 8080, 1)))
	have := world(svc(vs("10.96.0.10", 80, "rr"), rs("10.244.1.2", 8080, 1)), svc(vs("10.96.0.20", 80, "rr")))
	for i := 0; i < 3; i++ {
		p := Diff(want, have, Options{ConnsKnown: true})
		if p.Empty() {
			return
		}
		for _, op := range p.Ops {
			Record(have, op, want.Rules)
		}
	}
	t.Fatalf("recording a plan's ops does not converge: %q", opStrings(Diff(want, have, Options{ConnsKnown: true})))
}

func TestDiffNFTablesLeftovers(t *testing.T) {
	want := state.New()
	want.Tables[state.IPv4] = state.NFTable{}
	have := state.New()
	have.IPSets = map[string]*state.Set{desired.SetClusterIP: state.NewSet(state.SetSpec{Name: desired.SetClusterIP, Type: state.HashIPPort}),
		"OTHER": state.NewSet(state.SetSpec{Name: "OTHER", Type: state.HashIP})}
	opt := Options{Backend: state.BackendNFTables}
	if got := opStrings(Diff(want, have, opt)); len(got) != 0 {
		t.Errorf("without the iptables tools (no rules read), leftover ipsets must stay: %q", got)
	}
	have.Rules[state.IPv4] = state.RuleSet{Chains: []state.Chain{{Table: "nat", Name: "KUBE-SERVICES"}}}
	got := opStrings(Diff(want, have, opt))
	wantOps := []string{"delete-rules ipv4", "destroy-set KUBE-CLUSTER-IP hash:ip,port"}
	if !slices.Equal(got, wantOps) {
		t.Errorf("leftovers: %q, want %q", got, wantOps)
	}
	// the iptables backend deletes the nftables tables, after its own rules
	have = state.New()
	have.Tables[state.IPv6] = state.NFTable{}
	got = opStrings(Diff(state.New(), have, Options{}))
	if !slices.Equal(got, []string{"nft-delete-table ip6"}) {
		t.Errorf("nftables leftovers: %q", got)
	}
}

// Cleanup knows a NodePort virtual server as ours by the nft set that
// records its port, and destroys only ipsets.
func TestCleanupWithNFTablesSets(t *testing.T) {
	have := world()
	np := svc(vs("10.0.0.1", 30080, "rr"))
	have.Services[np.Key] = np
	nftSet := state.NewSet(state.SetSpec{Name: desired.SetNodePortTCP, Type: state.BitmapPort, Family: state.IPv4})
	nftSet.Entries[state.SetEntry{Port: 30080}] = struct{}{}
	have.IPSets, have.Sets = have.Sets, map[string]*state.Set{desired.SetNodePortTCP: nftSet}
	have.Tables[state.IPv4] = state.NFTable{}
	got := opStrings(Diff(state.New(), have, Options{Cleanup: true, NodeAddresses: map[netip.Addr]bool{netip.MustParseAddr("10.0.0.1"): true}}))
	want := []string{"del-vs -D -t 10.0.0.1:30080", "destroy-set KUBE-CLUSTER-IP hash:ip,port", "nft-delete-table ip", "delete-link kube-ipvs0"}
	if !slices.Equal(got, want) {
		t.Errorf("cleanup: %q, want %q", got, want)
	}
}

func TestRecordConvergesNFTables(t *testing.T) {
	want := world(svc(vs("10.96.0.10", 80, "rr"), rs("10.244.1.1", 8080, 1)))
	want.Tables[state.IPv4] = state.NFTable{Chains: []state.NFTChain{
		{Name: "services", Rules: []state.NFTRule{{Text: "jump x", ID: "1"}}}, {Name: "x"}}}
	have := state.New()
	have.Tables[state.IPv4] = state.NFTable{Chains: []state.NFTChain{{Name: "services"}, {Name: "stale"}}, OtherSets: []string{"old"}}
	opt := Options{Backend: state.BackendNFTables, ConnsKnown: true}
	p := Diff(want, have, opt)
	for _, op := range p.Ops {
		Record(have, op, want.Rules)
	}
	if p := Diff(want, have, opt); !p.Empty() {
		t.Fatalf("recording an nftables plan does not converge: %q", opStrings(p))
	}
	if c, _ := have.Tables[state.IPv4].Chain("stale"); c.Name != "" || len(have.Tables[state.IPv4].OtherSets) != 0 {
		t.Errorf("stale chain or set still believed: %+v", have.Tables[state.IPv4])
	}
}

// An nft map element cannot change its value in place: a member whose mark
// changes is deleted and added again (one transaction keeps it atomic).
func TestDiffNFTablesMarkChange(t *testing.T) {
	spec := state.SetSpec{Name: desired.SetExternalLocalMarks, Type: state.HashIPPort, Family: state.IPv4, Marks: true}
	entry := func(mark uint32) state.SetEntry {
		return state.SetEntry{Addr: netip.MustParseAddr("10.0.0.1"), Proto: state.TCP, Port: 30080, Mark: mark, MarkMask: 0x3fff}
	}
	want, have := state.New(), state.New()
	want.Sets[spec.Name], have.Sets[spec.Name] = state.NewSet(spec), state.NewSet(spec)
	want.Sets[spec.Name].Entries[entry(4)] = struct{}{}
	have.Sets[spec.Name].Entries[entry(3)] = struct{}{}
	scope := state.NewScope()
	scope.Members[state.SetMember{Set: spec.Name, Entry: entry(3)}] = struct{}{}
	scope.Members[state.SetMember{Set: spec.Name, Entry: entry(4)}] = struct{}{}
	got := opStrings(Diff(want, have, Options{Scope: scope, Backend: state.BackendNFTables}))
	wantOps := []string{"nft-add-element ip KUBE-EXTERNAL-LOCAL-MARK 10.0.0.1,tcp:30080 skbmark 0x4/0x3fff",
		"nft-del-element ip KUBE-EXTERNAL-LOCAL-MARK 10.0.0.1,tcp:30080 skbmark 0x3/0x3fff"}
	if !slices.Equal(got, wantOps) {
		t.Errorf("mark change: %q, want %q", got, wantOps)
	}
}
