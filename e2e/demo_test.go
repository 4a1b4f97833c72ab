package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
	"github.com/ipvs-proxy/ipvs-proxy/internal/manifest"
)

// EnvDemo names the manifest directory of `make demo` (scripts/demo.sh);
// TestDemo runs only when it is set.
const EnvDemo = "IPVS_PROXY_DEMO"

// TestDemo is `make demo`: it starts a backend for every endpoint address in
// the manifest directory, runs ipvs-proxy in standalone mode on it (with the
// directory's config.yaml, if any), and prints what a user would look at:
// ipvsadm -Ln, ip addr show kube-ipvs0, and requests through every Service
// address with the backend that answered each. It prints to stdout, for
// people; it fails only if the daemon does not sync or a request fails.
func TestDemo(t *testing.T) {
	dir := os.Getenv(EnvDemo)
	if dir == "" {
		t.Skipf("make demo runs this (%s names the manifest directory)", EnvDemo)
	}
	framework.ResetKernel(t)
	objs, err := manifest.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range objs.Errors {
		t.Errorf("%s: %v", dir, e)
	}
	label := filepath.Base(dir) + "/"

	pods := demoPods(objs.EndpointSlices)
	section("Pods: one network namespace each, answering with its name (HTTP on 80 and 8080, UDP 53, TCP 53 and 9000)")
	for _, p := range pods {
		framework.NewBackend(t, p.name, p.ip)
		fmt.Printf("   %-12s %s\n", p.name, p.ip)
	}
	client := framework.NewClientNS(t, "client", "10.250.0.2")

	opts := framework.Options{ManifestDir: dir}
	command := "ipvs-proxy run --manifests " + label
	if cfg := filepath.Join(dir, "config.yaml"); fileExists(cfg) {
		opts.ConfigFile = cfg
		command += " --config " + label + "config.yaml"
	}
	command += " --node-name " + framework.DefaultNodeName
	section(command)
	started := time.Now()
	proxy := framework.StartProxy(t, opts)
	first := proxy.WaitFullSyncs(t, 1, 60*time.Second)[0]
	fmt.Printf("   first sync %.1fs after the start: %d Services, %d kernel operations (took %s), %d failed\n",
		time.Since(started).Seconds(), first.Services, first.Ops, first.Took(), first.Failed)

	section("ipvsadm -Ln")
	fmt.Print(indentBlock(framework.IPVSADM(t, "-Ln")))
	section("ip addr show kube-ipvs0")
	fmt.Print(indentBlock(framework.AddrShow(t, "kube-ipvs0")))

	section(fmt.Sprintf("Requests from a client (namespace %s, %s): who answered each", client.Name, client.IP))
	c := client.Client()
	c.Timeout = 5 * time.Second
	for _, target := range demoTargets(objs.Services, objs.EndpointSlices) {
		answers := make([]string, 0, 6)
		for i := 0; i < 6; i++ {
			r, err := c.Exchange(target.proto, target.addr)
			if err != nil {
				t.Errorf("%s %s: %v", target.proto, target.addr, err)
				answers = append(answers, "(failed)")
				continue
			}
			answers = append(answers, r.Backend)
		}
		kind := map[framework.Proto]string{framework.HTTP: "http", framework.UDP: "udp", framework.TCPLine: "tcp"}[target.proto]
		fmt.Printf("   %-21s %-4s %-20s %-17s %s\n", target.service, kind, target.addr, target.note, strings.Join(answers, " "))
	}
	fmt.Printf("\n   The daemon's log: _output/demo/share/artifacts/%s/ipvs-proxy.log\n\n", t.Name())
}

// demoPod is a backend to start for an endpoint address.
type demoPod struct{ name, ip string }

// demoPods returns one pod per endpoint address of the slices, named after
// its targetRef when that fits a namespace name, sorted by address.
func demoPods(slices []*discovery.EndpointSlice) []demoPod {
	byIP := map[string]string{}
	for _, es := range slices {
		for _, ep := range es.Endpoints {
			if len(ep.Addresses) == 0 {
				continue
			}
			ip := ep.Addresses[0]
			name := "pod-" + strings.NewReplacer(".", "-").Replace(ip)
			if ep.TargetRef != nil && validPodName.MatchString(ep.TargetRef.Name) {
				name = ep.TargetRef.Name
			}
			if _, ok := byIP[ip]; !ok {
				byIP[ip] = name
			}
		}
	}
	pods := make([]demoPod, 0, len(byIP))
	for ip, name := range byIP {
		if len(name) > 12 {
			name = name[:12]
		}
		pods = append(pods, demoPod{name: name, ip: ip})
	}
	sort.Slice(pods, func(i, j int) bool {
		a, _ := netip.ParseAddr(pods[i].ip)
		b, _ := netip.ParseAddr(pods[j].ip)
		return a.Less(b)
	})
	return pods
}

var validPodName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,11}$`)

// demoTarget is one address of a Service port to send requests to.
type demoTarget struct {
	service, addr, note string
	proto               framework.Proto
}

// demoTargets lists every address of every Service port (cluster IP,
// external IPs, load balancer IPs, the NodePort on the node address) whose
// endpoints listen on a port the test backends serve.
func demoTargets(services []*v1.Service, slices []*discovery.EndpointSlice) []demoTarget {
	var out []demoTarget
	for _, svc := range services {
		key := svc.Namespace + "/" + svc.Name
		for _, p := range svc.Spec.Ports {
			proto := demoProto(p, endpointPort(slices, svc, p))
			if proto == "" || svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == v1.ClusterIPNone {
				continue
			}
			add := func(ip string, port int32, note string) {
				out = append(out, demoTarget{service: key, proto: proto, addr: fmt.Sprintf("%s:%d", ip, port), note: note})
			}
			note := ""
			if svc.Spec.SessionAffinity == v1.ServiceAffinityClientIP {
				note = "(sessionAffinity)"
			}
			add(svc.Spec.ClusterIP, p.Port, note)
			for _, ip := range svc.Spec.ExternalIPs {
				add(ip, p.Port, "(externalIP)")
			}
			for _, ing := range svc.Status.LoadBalancer.Ingress {
				if ing.IP != "" {
					add(ing.IP, p.Port, "(LoadBalancer)")
				}
			}
			if p.NodePort != 0 {
				add(framework.NodeIP, p.NodePort, "(NodePort)")
			}
		}
	}
	return out
}

// endpointPort returns the port the Service port's endpoints listen on, 0 if
// none is known.
func endpointPort(slices []*discovery.EndpointSlice, svc *v1.Service, p v1.ServicePort) int32 {
	for _, es := range slices {
		if es.Namespace != svc.Namespace || es.Labels[discovery.LabelServiceName] != svc.Name {
			continue
		}
		for _, ep := range es.Ports {
			if ep.Port != nil && (ep.Name == nil && p.Name == "" || ep.Name != nil && *ep.Name == p.Name) {
				return *ep.Port
			}
		}
	}
	return 0
}

// demoProto says how to talk to an endpoint port of the test backends, ""
// if they do not serve it.
func demoProto(p v1.ServicePort, port int32) framework.Proto {
	switch {
	case p.Protocol == v1.ProtocolUDP && port == framework.PortUDP:
		return framework.UDP
	case p.Protocol == v1.ProtocolSCTP:
		return ""
	case port == framework.PortHTTP || port == framework.PortHTTPAlt:
		return framework.HTTP
	case port == framework.PortTCPLine || port == framework.PortTCPDNS:
		return framework.TCPLine
	}
	return ""
}

func section(title string) {
	fmt.Printf("\n== %s\n\n", title)
}

func indentBlock(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return "   " + strings.Join(lines, "\n   ") + "\n"
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
