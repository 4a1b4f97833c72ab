package desired

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// Defaults of Kubernetes' ClientIP session affinity.
const (
	DefaultAffinityTimeout = 10800
	MaxAffinityTimeout     = 86400
)

// service is a validated Service, reduced to what compute uses.
type service struct {
	key, namespace, name string
	clusterIPs           map[state.Family]netip.Addr
	externalIPs          []netip.Addr
	lbIPs                []netip.Addr
	sourceRanges         []netip.Prefix
	firewall             bool // loadBalancerSourceRanges given (even if some were invalid)
	ports                []servicePort
	affinityTimeout      uint32 // 0: no ClientIP affinity
	internalLocal        bool
	externalLocal        bool
	healthCheckNodePort  uint16
	sched                schedSettings
}

type servicePort struct {
	name     string // Service port name, matched against EndpointSlice ports
	label    string // name, or the number when unnamed
	proto    state.Protocol
	port     uint16
	nodePort uint16
}

func protocolOf(p *v1.Protocol) (state.Protocol, bool) {
	if p == nil {
		return state.TCP, true
	}
	switch *p {
	case v1.ProtocolTCP, "":
		return state.TCP, true
	case v1.ProtocolUDP:
		return state.UDP, true
	case v1.ProtocolSCTP:
		return state.SCTP, true
	}
	return 0, false
}

// parseService validates svc. ok is false when the whole Service must be
// skipped; a bad port or address skips only that port or address.
func parseService(in *Input, svc *v1.Service, errs *objErrs) (*service, bool) {
	s := &service{key: svc.Namespace + "/" + svc.Name, namespace: svc.Namespace, name: svc.Name, clusterIPs: map[state.Family]netip.Addr{}}
	spec := &svc.Spec
	switch spec.Type {
	case "", v1.ServiceTypeClusterIP, v1.ServiceTypeNodePort, v1.ServiceTypeLoadBalancer:
	case v1.ServiceTypeExternalName:
		return nil, false
	default:
		errs.add("spec.type", "unknown type %q (allowed: ClusterIP, NodePort, LoadBalancer, ExternalName)", spec.Type)
		return nil, false
	}
	if spec.ClusterIP == v1.ClusterIPNone || (spec.ClusterIP == "" && len(spec.ClusterIPs) == 0) {
		return nil, false // headless, or no cluster IP allocated: kube-proxy skips these
	}
	if in.Config.APIChecks && !checkName("Service", svc.Namespace, svc.Name, errs) {
		return nil, false
	}
	if !parseClusterIPs(in, s, spec, errs) || !parsePolicies(s, spec, errs) {
		return nil, false
	}
	s.sched = schedulerFor(in.Config.IPVS.Scheduler, in.MissingSchedulers, svc.Annotations, errs)
	parsePorts(in, s, spec, errs)
	for i, ip := range spec.ExternalIPs {
		if a, ok := parseExternalIP(in, fmt.Sprintf("spec.externalIPs[%d]", i), ip, errs); ok {
			s.externalIPs = append(s.externalIPs, a)
		}
	}
	if spec.Type == v1.ServiceTypeLoadBalancer {
		parseLoadBalancer(in, s, svc, errs)
	}
	return s, true
}

func parseClusterIPs(in *Input, s *service, spec *v1.ServiceSpec, errs *objErrs) bool {
	ips, field := spec.ClusterIPs, "spec.clusterIPs"
	if len(ips) == 0 {
		ips, field = []string{spec.ClusterIP}, "spec.clusterIP"
	} else if spec.ClusterIP != "" && spec.ClusterIP != ips[0] {
		errs.add("spec.clusterIP", "%q differs from spec.clusterIPs[0] %q", spec.ClusterIP, ips[0])
		return false
	}
	for i, ip := range ips {
		f := field
		if field == "spec.clusterIPs" {
			f = fmt.Sprintf("%s[%d]", field, i)
		}
		a, err := netip.ParseAddr(strings.TrimSpace(ip))
		if err != nil {
			errs.add(f, "invalid IP %q", ip)
			return false
		}
		a = a.Unmap()
		if why := specialIP(a); why != "" {
			errs.add(f, "%s %s", a, why)
			return false
		}
		if in.isNodeAddress(a) {
			errs.add(f, "%s is an address of this node: binding it on kube-ipvs0 would take it from the node", a)
			return false
		}
		fam := state.FamilyOf(a)
		if _, dup := s.clusterIPs[fam]; dup {
			errs.add(f, "a second %s cluster IP %s", map[state.Family]string{state.IPv4: "IPv4", state.IPv6: "IPv6"}[fam], a)
			return false
		}
		s.clusterIPs[fam] = a
	}
	return true
}

func parsePolicies(s *service, spec *v1.ServiceSpec, errs *objErrs) bool {
	ok := true
	switch spec.SessionAffinity {
	case "", v1.ServiceAffinityNone:
	case v1.ServiceAffinityClientIP:
		s.affinityTimeout = DefaultAffinityTimeout
		if c := spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			t := *c.ClientIP.TimeoutSeconds
			if t < 1 || t > MaxAffinityTimeout {
				errs.add("spec.sessionAffinityConfig.clientIP.timeoutSeconds", "%d is out of range 1-%d", t, MaxAffinityTimeout)
				ok = false
			}
			s.affinityTimeout = uint32(t)
		}
	default:
		errs.add("spec.sessionAffinity", "unknown value %q (allowed: None, ClientIP)", spec.SessionAffinity)
		ok = false
	}
	switch spec.ExternalTrafficPolicy {
	case "", v1.ServiceExternalTrafficPolicyCluster:
	case v1.ServiceExternalTrafficPolicyLocal:
		s.externalLocal = true
	default:
		errs.add("spec.externalTrafficPolicy", "unknown value %q (allowed: Cluster, Local)", spec.ExternalTrafficPolicy)
		ok = false
	}
	if p := spec.InternalTrafficPolicy; p != nil {
		switch *p {
		case "", v1.ServiceInternalTrafficPolicyCluster:
		case v1.ServiceInternalTrafficPolicyLocal:
			s.internalLocal = true
		default:
			errs.add("spec.internalTrafficPolicy", "unknown value %q (allowed: Cluster, Local)", *p)
			ok = false
		}
	}
	return ok
}

func parsePorts(in *Input, s *service, spec *v1.ServiceSpec, errs *objErrs) {
	names := map[string]bool{}
	numbers := map[string]bool{}
	exposesNodePorts := spec.Type == v1.ServiceTypeNodePort || spec.Type == v1.ServiceTypeLoadBalancer
	for i, p := range spec.Ports {
		field := fmt.Sprintf("spec.ports[%d]", i)
		proto, ok := protocolOf(&p.Protocol)
		if !ok {
			errs.add(field+".protocol", "unsupported protocol %q (allowed: TCP, UDP, SCTP)", p.Protocol)
			continue
		}
		if p.Port < 1 || p.Port > 65535 {
			errs.add(field+".port", "%d is out of range 1-65535", p.Port)
			continue
		}
		if p.NodePort < 0 || p.NodePort > 65535 {
			errs.add(field+".nodePort", "%d is out of range 1-65535", p.NodePort)
			continue
		}
		if r := in.Config.NodePortRange; in.Config.APIChecks && exposesNodePorts && p.NodePort != 0 && !r.Contains(p.NodePort) {
			errs.add(field+".nodePort", "%d is outside the node port range %s", p.NodePort, r)
			continue
		}
		if names[p.Name] {
			errs.add(field+".name", "duplicate port name %q", p.Name)
			continue
		}
		id := strconv.Itoa(int(p.Port)) + "/" + proto.String()
		if numbers[id] {
			errs.add(field+".port", "duplicate port %d/%s", p.Port, proto)
			continue
		}
		names[p.Name], numbers[id] = true, true
		sp := servicePort{name: p.Name, label: p.Name, proto: proto, port: uint16(p.Port)}
		if sp.label == "" {
			sp.label = strconv.Itoa(int(p.Port))
		}
		if exposesNodePorts {
			sp.nodePort = uint16(p.NodePort)
		}
		s.ports = append(s.ports, sp)
	}
}

// The legacy annotation kube-proxy reads when loadBalancerSourceRanges is empty.
const annotationSourceRanges = "service.beta.kubernetes.io/load-balancer-source-ranges"

func parseLoadBalancer(in *Input, s *service, svc *v1.Service, errs *objErrs) {
	for i, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IP == "" || (ing.IPMode != nil && *ing.IPMode == v1.LoadBalancerIPModeProxy) {
			continue
		}
		a, err := netip.ParseAddr(strings.TrimSpace(ing.IP))
		if err != nil {
			errs.add(fmt.Sprintf("status.loadBalancer.ingress[%d].ip", i), "invalid IP %q", ing.IP)
			continue
		}
		if why := specialIP(a.Unmap()); why != "" {
			errs.add(fmt.Sprintf("status.loadBalancer.ingress[%d].ip", i), "%s %s", a.Unmap(), why)
			continue
		}
		s.lbIPs = append(s.lbIPs, a.Unmap())
	}
	ranges, field := svc.Spec.LoadBalancerSourceRanges, "spec.loadBalancerSourceRanges"
	if len(ranges) == 0 {
		if v := strings.TrimSpace(svc.Annotations[annotationSourceRanges]); v != "" {
			ranges, field = strings.Split(v, ","), "metadata.annotations["+annotationSourceRanges+"]"
		}
	}
	for i, r := range ranges {
		s.firewall = true // an invalid range still closes the firewall: fail closed
		p, err := netip.ParsePrefix(strings.TrimSpace(r))
		if err != nil {
			errs.add(fmt.Sprintf("%s[%d]", field, i), "%q is not a CIDR", r)
			continue
		}
		s.sourceRanges = append(s.sourceRanges, p.Masked())
	}
	s.sourceRanges = outermost(s.sourceRanges)
	if s.externalLocal && svc.Spec.HealthCheckNodePort != 0 {
		if hc := svc.Spec.HealthCheckNodePort; hc < 1 || hc > 65535 {
			errs.add("spec.healthCheckNodePort", "%d is out of range 1-65535", hc)
		} else if r := in.Config.NodePortRange; in.Config.APIChecks && !r.Contains(hc) {
			errs.add("spec.healthCheckNodePort", "%d is outside the node port range %s", hc, r)
		} else {
			s.healthCheckNodePort = uint16(hc)
		}
	}
}
