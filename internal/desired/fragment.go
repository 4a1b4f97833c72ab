package desired

import (
	"net/netip"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// Member is an ipset member a Service wants.
type Member = state.SetMember

// Fragment is the part of the desired state that one Service wants.
type Fragment struct {
	Services  []*state.Service
	Addresses []netip.Addr
	Members   []Member
	// HealthCheckNodePort is the port of the Service's health check server
	// (LoadBalancer with externalTrafficPolicy Local), 0 if none.
	HealthCheckNodePort uint16
	// LocalEndpoints counts this node's ready endpoints, one per address
	// (what the health check reports, as kube-proxy counts them).
	LocalEndpoints int
	// NoLocalEndpoints, per IP family: Local traffic policies with endpoints
	// elsewhere but none here (nil: none).
	NoLocalEndpoints map[state.Family]NoLocal
	// Errors are the Service's and its EndpointSlices' invalid fields.
	Errors []error
	// Rejected says the whole Service was invalid and nothing was computed.
	Rejected bool
	// Created is the Service's creationTimestamp: between two Services that
	// want the same virtual server in the same role, the older keeps it.
	Created time.Time
	// MarkPorts are the Service ports (labels) with a firewall-mark virtual
	// server for in-cluster traffic (see incluster.go): until the Index
	// assigns their marks, the fragment carries placeholders, the position
	// here plus one.
	MarkPorts []string
	// MarkMask is the mask of those marks (rules.InClusterMarkMask).
	MarkMask uint32
}

// ForService computes what one Service and its EndpointSlices want on this node.
func ForService(in *Input, svc *v1.Service, slices []*discovery.EndpointSlice) *Fragment {
	f := &Fragment{Created: svc.CreationTimestamp.Time}
	errs := &objErrs{kind: "Service", ns: svc.Namespace, name: svc.Name}
	s, ok := parseService(in, svc, errs)
	f.Errors = errs.errs
	if !ok {
		f.Rejected = len(f.Errors) > 0
		return f
	}
	var parsed []sliceEndpoints
	for _, es := range slices {
		serrs := &objErrs{kind: "EndpointSlice", ns: es.Namespace, name: es.Name}
		if in.Config.APIChecks && !checkName("EndpointSlice", es.Namespace, es.Name, serrs) {
			f.Errors = append(f.Errors, serrs.errs...)
			continue
		}
		if p, ok := parseSlice(es, in.Node.Name, serrs); ok {
			parsed = append(parsed, p)
		}
		f.Errors = append(f.Errors, serrs.errs...)
	}
	if vs, rs := s.expansion(in, parsed); overLimits(in, vs, rs) != "" {
		// computing it would take the node's memory (10,000 ports × 10
		// externalIPs is 110,000 virtual servers): refused whole
		errs.add("spec", "%s", overLimits(in, vs, rs))
		f.Errors = append(f.Errors, errs.errs[len(errs.errs)-1])
		f.Rejected = true
		return f
	}
	b := fragmentBuilder{in: in, s: s, f: f, localReady: map[state.Family]map[netip.Addr]bool{}}
	for fam, vip := range s.clusterIPs {
		if !in.families[fam] {
			continue // this node has no address of that family
		}
		for _, p := range s.ports {
			b.port(fam, vip, p, portEndpoints(parsed, fam, p.name, p.proto))
		}
		if s.healthCheckNodePort != 0 {
			f.HealthCheckNodePort = s.healthCheckNodePort
			b.member(SetName(SetHealthCheckNodePort, fam), state.SetEntry{Port: s.healthCheckNodePort})
		}
	}
	for _, ips := range b.localReady {
		// kube-proxy runs one proxier per family and each reports its own
		// count: a dual-stack pod counts once, not once per family
		f.LocalEndpoints = max(f.LocalEndpoints, len(ips))
	}
	return f
}

// fragmentBuilder accumulates one Service's fragment.
type fragmentBuilder struct {
	in *Input
	s  *service
	f  *Fragment
	// localReady holds this node's ready endpoint addresses, per family.
	localReady map[state.Family]map[netip.Addr]bool
}

func (b *fragmentBuilder) member(set string, e state.SetEntry) {
	b.f.Members = append(b.f.Members, Member{Set: set, Entry: e})
}

func (b *fragmentBuilder) bind(a netip.Addr, fam state.Family) {
	b.f.Addresses = append(b.f.Addresses, a)
	b.member(SetName(SetIPVSIPs, fam), state.SetEntry{Addr: a})
}

// port adds everything one Service port wants for one IP family.
func (b *fragmentBuilder) port(fam state.Family, vip netip.Addr, p servicePort, eps []endpoint) {
	s, in := b.s, b.in
	zone := in.Node.Labels[v1.LabelTopologyZone]
	cluster := clusterEndpoints(eps, in.Node.Name, zone)
	local := localEndpoints(eps)
	internal, external := cluster, cluster
	b.noteNoLocal(fam, p, local, cluster)
	if s.internalLocal {
		internal = local
	}
	if s.externalLocal {
		external = local
	}
	for _, e := range eps {
		if e.local && e.ready {
			if b.localReady[fam] == nil {
				b.localReady[fam] = map[netip.Addr]bool{}
			}
			b.localReady[fam][e.addr] = true
		}
		if e.local && (e.ready || (e.serving && e.terminating)) {
			b.member(SetName(SetLoopBack, fam), state.SetEntry{Addr: e.addr, Proto: p.proto, Port: e.port, Addr2: e.addr})
		}
	}
	name := func(base string) string { return SetName(base, fam) }
	ipPort := func(a netip.Addr) state.SetEntry { return state.SetEntry{Addr: a, Proto: p.proto, Port: p.port} }

	// ClusterIP
	b.virtualServer(vip, p.port, p, state.KindClusterIP, internal)
	b.bind(vip, fam)
	b.member(name(SetClusterIP), ipPort(vip))

	// externalIPs
	for _, a := range s.externalIPs {
		if state.FamilyOf(a) != fam {
			continue
		}
		b.virtualServer(a, p.port, p, state.KindExternalIP, external)
		if !in.isNodeAddress(a) {
			b.bind(a, fam)
		}
		if s.externalLocal {
			b.member(name(SetExternalIPLocal), ipPort(a))
		} else {
			b.member(name(SetExternalIP), ipPort(a))
		}
	}

	// LoadBalancer ingress IPs
	for _, a := range s.lbIPs {
		if state.FamilyOf(a) != fam {
			continue
		}
		b.virtualServer(a, p.port, p, state.KindLoadBalancer, external)
		if !in.isNodeAddress(a) {
			b.bind(a, fam)
		}
		b.member(name(SetLoadBalancer), ipPort(a))
		if s.externalLocal {
			b.member(name(SetLoadBalancerLocal), ipPort(a))
		}
		if s.firewall {
			b.firewall(fam, a, p)
		}
	}

	// NodePort on every node-port address
	if p.nodePort != 0 {
		b.nodePort(fam, p, external)
	}

	// in-cluster traffic to the external addresses of an
	// externalTrafficPolicy Local port goes to every endpoint
	if s.externalLocal && b.hasExternal(fam, p) {
		b.inCluster(fam, p, cluster)
	}
}

// firewall admits the Service's loadBalancerSourceRanges to LB IP a.
func (b *fragmentBuilder) firewall(fam state.Family, a netip.Addr, p servicePort) {
	name := func(base string) string { return SetName(base, fam) }
	b.member(name(SetLoadBalancerFW), state.SetEntry{Addr: a, Proto: p.proto, Port: p.port})
	fromNode := false
	for _, r := range b.s.sourceRanges {
		if state.FamilyOf(r.Addr()) != fam {
			continue
		}
		b.member(name(SetLoadBalancerSrcCIDR), state.SetEntry{Addr: a, Proto: p.proto, Port: p.port, Net: r})
		for _, n := range b.in.Node.Addresses {
			fromNode = fromNode || r.Contains(n)
		}
	}
	if fromNode {
		// traffic the node itself sends to its LB IP keeps the LB IP as source
		b.member(name(SetLoadBalancerSourceIP), state.SetEntry{Addr: a, Proto: p.proto, Port: p.port, Addr2: a})
	}
}

func (b *fragmentBuilder) nodePort(fam state.Family, p servicePort, eps []endpoint) {
	addrs := b.in.NodePortAddresses(fam)
	if len(addrs) == 0 {
		return
	}
	local := b.s.externalLocal
	switch p.proto {
	case state.TCP, state.UDP:
		base, baseLocal := SetNodePortTCP, SetNodePortLocalTCP
		if p.proto == state.UDP {
			base, baseLocal = SetNodePortUDP, SetNodePortLocalUDP
		}
		b.member(SetName(base, fam), state.SetEntry{Port: p.nodePort})
		if local {
			b.member(SetName(baseLocal, fam), state.SetEntry{Port: p.nodePort})
		}
	case state.SCTP:
		for _, a := range addrs {
			e := state.SetEntry{Addr: a, Proto: p.proto, Port: p.nodePort}
			b.member(SetName(SetNodePortSCTP, fam), e)
			if local {
				b.member(SetName(SetNodePortLocalSCTP, fam), e)
			}
		}
	}
	for _, a := range addrs {
		b.virtualServer(a, p.nodePort, p, state.KindNodePort, eps)
	}
}

// virtualServer adds addr:port for Service port p with the endpoints as real servers.
func (b *fragmentBuilder) virtualServer(addr netip.Addr, port uint16, p servicePort, kind state.Kind, eps []endpoint) {
	vs := b.vs(state.VSKey{Proto: p.proto, Addr: addr, Port: port}, p, kind)
	b.f.Services = append(b.f.Services, &state.Service{VirtualServer: vs, RealServers: realServers(eps)})
}

// vs returns the virtual server of key for Service port p: the Service's
// scheduler and persistence.
func (b *fragmentBuilder) vs(key state.VSKey, p servicePort, kind state.Kind) state.VirtualServer {
	s := b.s
	vs := state.VirtualServer{
		Key:       key,
		Scheduler: s.sched.name,
		Flags:     s.sched.flags,
		Origin:    state.Origin{Service: s.key, Port: p.label, Kind: kind},
	}
	if s.affinityTimeout != 0 {
		vs.Flags |= state.FlagPersistent
		vs.Timeout = s.affinityTimeout
		if key.Addr.Is4() {
			vs.PersistenceBits = s.sched.bits4
		} else {
			vs.PersistenceBits = s.sched.bits6
		}
	}
	return vs
}
