package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

const (
	smokeVIP = "10.96.0.10"
	smokeIPA = "10.244.1.2"
	smokeIPB = "10.244.2.2"
)

// TestHarnessSmoke proves the VM harness and the framework without the
// daemon: it programs by hand what ipvs-proxy will program (kube-ipvs0 with
// the VIP, a masquerading rr virtual server, the KUBE-CLUSTER-IP set and the
// kube-proxy mark/MASQUERADE rules) and sends traffic through the VIP from
// the node, from a client namespace and from a backend itself (hairpin).
func TestHarnessSmoke(t *testing.T) {
	framework.ResetKernel(t)
	a := framework.NewBackend(t, "pod-a", smokeIPA)
	b := framework.NewBackend(t, "pod-b", smokeIPB)
	client := framework.NewClientNS(t, "client", "10.250.0.2")
	programVIPByHand(t)

	http := smokeVIP + ":80"
	udp := smokeVIP + ":53"
	t.Run("kernel views", func(t *testing.T) {
		ipvs := framework.IPVSADM(t, "-Ln")
		for _, rs := range []string{a.Addr(80), b.Addr(80), a.Addr(53), b.Addr(53)} {
			if !strings.Contains(ipvs, rs) {
				t.Errorf("ipvsadm -Ln lacks real server %s:\n%s", rs, ipvs)
			}
		}
		if got := framework.Addrs(t, "kube-ipvs0"); len(got) != 1 || got[0] != smokeVIP+"/32" {
			t.Errorf("kube-ipvs0 addresses = %v, want [%s/32]", got, smokeVIP)
		}
		members := strings.Join(framework.IPSetMembers(t, "KUBE-CLUSTER-IP"), " ")
		if members != smokeVIP+",tcp:80 "+smokeVIP+",udp:53" {
			t.Errorf("KUBE-CLUSTER-IP members = %q", members)
		}
		if rules := framework.IPTablesSave(t); !strings.Contains(rules, "-A KUBE-POSTROUTING") {
			t.Errorf("iptables-save lacks KUBE-POSTROUTING:\n%s", rules)
		}
	})
	t.Run("backends answer directly", func(t *testing.T) {
		for _, be := range []*framework.Backend{a, b} {
			for _, port := range []int{framework.PortHTTP, framework.PortHTTPAlt} {
				expectBackend(t, framework.Client{}, framework.HTTP, be.Addr(port), be.Name)
			}
			expectBackend(t, framework.Client{}, framework.UDP, be.Addr(framework.PortUDP), be.Name)
			expectBackend(t, framework.Client{}, framework.TCPLine, be.Addr(framework.PortTCPLine), be.Name)
		}
	})
	t.Run("rr from the node", func(t *testing.T) {
		expectAlternation(t, framework.Client{}, framework.HTTP, http)
	})
	t.Run("rr from a client namespace", func(t *testing.T) {
		expectAlternation(t, client.Client(), framework.HTTP, http)
	})
	t.Run("udp from the node and a client namespace", func(t *testing.T) {
		expectBoth(t, framework.Client{}, framework.UDP, udp, a.Name, b.Name)
		expectBoth(t, client.Client(), framework.UDP, udp, a.Name, b.Name)
	})
	t.Run("hairpin from a backend", func(t *testing.T) {
		expectAlternation(t, a.Client(), framework.HTTP, http)
	})
	t.Run("long-lived connection", func(t *testing.T) {
		conn, err := framework.Client{}.OpenLine(a.Addr(framework.PortTCPLine))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for i := 0; i < 3; i++ {
			if got, err := conn.Ask(); err != nil || got != a.Name {
				t.Fatalf("ask %d: got %q, %v; want %q", i, got, err, a.Name)
			}
		}
	})
	t.Run("refused and timeout are told apart", func(t *testing.T) {
		_, err := framework.Client{}.HTTPGet(smokeVIP + ":81")
		if !framework.IsRefused(err) {
			t.Errorf("VIP port without virtual server: want refused, got %v", err)
		}
		framework.Run(t, framework.IPTablesBin, "-w", "-A", "OUTPUT", "-d", smokeIPB, "-p", "tcp", "--dport", "8080", "-j", "DROP")
		_, err = framework.Client{Timeout: 300 * time.Millisecond}.HTTPGet(b.Addr(framework.PortHTTPAlt))
		if !framework.IsTimeout(err) || framework.IsRefused(err) {
			t.Errorf("dropped SYN: want timeout, got %v", err)
		}
		framework.Run(t, framework.IPTablesBin, "-w", "-D", "OUTPUT", "-d", smokeIPB, "-p", "tcp", "--dport", "8080", "-j", "DROP")
	})
	t.Run("source addresses", func(t *testing.T) {
		expectSource(t, client.Client(), a.Addr(framework.PortHTTP), client.IP)
		expectSource(t, framework.Client{Source: framework.NodeIP}, a.Addr(framework.PortHTTP), framework.NodeIP)
		// Marked by KUBE-SERVICES, masqueraded on the way to the backend.
		expectSource(t, client.Client(), http, framework.NodeIP)
	})
	t.Run("backend stop and start", func(t *testing.T) {
		b.Stop()
		if _, err := (framework.Client{}).HTTPGet(b.Addr(framework.PortHTTP)); !framework.IsRefused(err) {
			t.Errorf("stopped backend: want refused, got %v", err)
		}
		b.Start(t)
		expectBackend(t, framework.Client{}, framework.HTTP, b.Addr(framework.PortHTTP), b.Name)
	})
	t.Run("background load", func(t *testing.T) {
		load := framework.StartLoad(t, client.Client(), framework.HTTP, http)
		time.Sleep(time.Second)
		res := load.Stop()
		t.Logf("load: %s", res)
		if res.Sent < 10 || res.Failed > 0 || res.Backends[a.Name] == 0 || res.Backends[b.Name] == 0 {
			t.Errorf("load through the VIP: %s", res)
		}
	})
}

// programVIPByHand does what ipvs-proxy (and kube-proxy's ipvs mode) does for
// one ClusterIP Service with two endpoints, TCP 80 and UDP 53.
func programVIPByHand(t *testing.T) {
	t.Helper()
	ip, ipvsadm, ipset, iptables := framework.IPBin, framework.IPVSAdmBin, framework.IPSetBin, framework.IPTablesBin
	framework.Run(t, ip, "link", "add", "kube-ipvs0", "type", "dummy")
	framework.Run(t, ip, "addr", "add", smokeVIP+"/32", "dev", "kube-ipvs0")
	for _, svc := range []struct{ flag, port string }{{"-t", "80"}, {"-u", "53"}} {
		vs := smokeVIP + ":" + svc.port
		framework.Run(t, ipvsadm, "-A", svc.flag, vs, "-s", "rr")
		for _, rip := range []string{smokeIPA, smokeIPB} {
			framework.Run(t, ipvsadm, "-a", svc.flag, vs, "-r", rip+":"+svc.port, "-m")
		}
	}
	framework.Run(t, ipset, "create", "KUBE-CLUSTER-IP", "hash:ip,port")
	framework.Run(t, ipset, "add", "KUBE-CLUSTER-IP", smokeVIP+",tcp:80")
	framework.Run(t, ipset, "add", "KUBE-CLUSTER-IP", smokeVIP+",udp:53")
	for _, rule := range [][]string{
		{"-N", "KUBE-SERVICES"},
		{"-N", "KUBE-POSTROUTING"},
		{"-A", "KUBE-SERVICES", "-m", "set", "--match-set", "KUBE-CLUSTER-IP", "dst,dst", "-j", "MARK", "--set-xmark", "0x4000/0x4000"},
		{"-A", "KUBE-POSTROUTING", "-m", "mark", "--mark", "0x4000/0x4000", "-j", "MASQUERADE"},
		{"-A", "PREROUTING", "-j", "KUBE-SERVICES"},
		{"-A", "OUTPUT", "-j", "KUBE-SERVICES"},
		{"-A", "POSTROUTING", "-j", "KUBE-POSTROUTING"},
	} {
		framework.Run(t, iptables, append([]string{"-w", "-t", "nat"}, rule...)...)
	}
	framework.Sysctl(t, "net.ipv4.vs.conntrack", "1")
	framework.Sysctl(t, "net.ipv4.ip_forward", "1")
}

// expectBackend makes one exchange and checks who answered.
func expectBackend(t *testing.T, c framework.Client, proto framework.Proto, target, want string) {
	t.Helper()
	reply, err := c.Exchange(proto, target)
	if err != nil {
		t.Fatal(err)
	}
	if reply.Backend != want {
		t.Errorf("%s %s: answered by %q, want %q", proto, target, reply.Backend, want)
	}
}

// expectSource checks the client address an HTTP backend saw.
func expectSource(t *testing.T, c framework.Client, target, wantIP string) {
	t.Helper()
	reply, err := c.HTTPGet(target)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(reply.Source, wantIP+":") {
		t.Errorf("http %s: backend saw source %q, want %s", target, reply.Source, wantIP)
	}
}

// expectBoth makes six exchanges and checks that both backends answered.
// UDP is not held to strict alternation: IPVS keeps a UDP connection entry
// for 5 minutes, and a client port the kernel hands out again (seen once in
// our runs) sticks to the backend that entry names.
func expectBoth(t *testing.T, c framework.Client, proto framework.Proto, target, first, second string) {
	t.Helper()
	seen := map[string]int{}
	for i := 0; i < 6; i++ {
		reply, err := c.Exchange(proto, target)
		if err != nil {
			t.Fatalf("exchange %d (so far %v): %v", i, seen, err)
		}
		seen[reply.Backend]++
	}
	if seen[first] == 0 || seen[second] == 0 || len(seen) != 2 {
		t.Fatalf("%s %s: answers %v, want both %s and %s", proto, target, seen, first, second)
	}
	t.Logf("%s %s answered by %v", proto, target, seen)
}

// expectAlternation makes four exchanges through an rr virtual server with
// two real servers and checks that the answers alternate.
func expectAlternation(t *testing.T, c framework.Client, proto framework.Proto, target string) {
	t.Helper()
	var seq []string
	for i := 0; i < 4; i++ {
		reply, err := c.Exchange(proto, target)
		if err != nil {
			t.Fatalf("exchange %d (so far %v): %v", i, seq, err)
		}
		seq = append(seq, reply.Backend)
	}
	for i := 1; i < len(seq); i++ {
		if seq[i] == seq[i-1] {
			t.Fatalf("%s %s: answers %v do not alternate", proto, target, seq)
		}
	}
	t.Logf("%s %s answered by %v", proto, target, seq)
}
