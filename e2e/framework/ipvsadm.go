package framework

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// VirtualServer is one virtual server as `ipvsadm -Ln` prints it, e.g.
//
//	TCP  10.96.0.10:80 mh (mh-port) persistent 10800
//	  -> 10.244.1.2:8080              Masq    1      0          0
type VirtualServer struct {
	// Proto is "TCP", "UDP", "SCTP" (or "FWM").
	Proto string
	// Addr is "IP:port" ("[IPv6]:port" for IPv6).
	Addr string
	// Scheduler is the scheduler's name, e.g. "rr".
	Scheduler string
	// SchedFlags are the scheduler flags ipvsadm prints in parentheses,
	// e.g. "mh-port"; empty if none.
	SchedFlags string
	// Persistent is the persistence timeout in seconds; 0 if not persistent.
	Persistent int
	// Line is the virtual server's line as printed, trimmed.
	Line string
	// RealServers are its real servers in ipvsadm's order.
	RealServers []RealServer
}

// RealServer is one real server line of `ipvsadm -Ln`.
type RealServer struct {
	// Addr is "IP:port".
	Addr string
	// Forward is "Masq", "Route", "Tunnel" or "Local".
	Forward                       string
	Weight, ActiveConn, InActConn int
}

// RealServer returns the real server with address addr ("IP:port"), or nil
// (also when v is nil).
func (v *VirtualServer) RealServer(addr string) *RealServer {
	if v == nil {
		return nil
	}
	for i := range v.RealServers {
		if v.RealServers[i].Addr == addr {
			return &v.RealServers[i]
		}
	}
	return nil
}

// RealServerAddrs returns the real servers' addresses in ipvsadm's order.
func (v *VirtualServer) RealServerAddrs() []string {
	out := make([]string, 0, len(v.RealServers))
	for _, rs := range v.RealServers {
		out = append(out, rs.Addr)
	}
	return out
}

// IPVSServices returns the virtual servers of `ipvsadm -Ln`; it fails the
// test if ipvsadm fails or prints something it cannot parse.
func IPVSServices(t testing.TB) []VirtualServer {
	t.Helper()
	vss, err := parseIPVSADM(Run(t, IPVSAdmBin, "-Ln"))
	if err != nil {
		t.Fatal(err)
	}
	return vss
}

// IPVSService returns the virtual server proto ("TCP", "UDP") addr
// ("IP:port") from `ipvsadm -Ln`, or nil if there is none.
func IPVSService(t testing.TB, proto, addr string) *VirtualServer {
	t.Helper()
	return FindVirtualServer(IPVSServices(t), proto, addr)
}

// FindVirtualServer returns the virtual server proto addr in vss, or nil.
func FindVirtualServer(vss []VirtualServer, proto, addr string) *VirtualServer {
	for i := range vss {
		if vss[i].Proto == proto && vss[i].Addr == addr {
			return &vss[i]
		}
	}
	return nil
}

// IPVSTotalConns returns the number of connections virtual server proto addr
// has scheduled since it was created (the Conns column of
// `ipvsadm -Ln --stats --exact`). The kernel refreshes these counters every
// 2 s, so the value may lag behind.
func IPVSTotalConns(t testing.TB, proto, addr string) uint64 {
	t.Helper()
	flag := map[string]string{"TCP": "-t", "UDP": "-u", "SCTP": "--sctp-service"}[proto]
	if flag == "" {
		t.Fatalf("IPVSTotalConns: unknown protocol %q", proto)
	}
	out := Run(t, IPVSAdmBin, "-Ln", "--stats", "--exact", flag, addr)
	n, err := parseTotalConns(out, proto, addr)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// parseIPVSADM parses `ipvsadm -Ln` output.
func parseIPVSADM(out string) ([]VirtualServer, error) {
	var vss []VirtualServer
	scanner := bufio.NewScanner(strings.NewReader(out))
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0 || strings.HasPrefix(line, "IP Virtual Server") ||
			strings.HasPrefix(line, "Prot ") || strings.HasPrefix(line, "-> RemoteAddress"):
		case fields[0] == "->":
			if len(vss) == 0 || len(fields) < 6 {
				return nil, fmt.Errorf("ipvsadm -Ln: unexpected real server line %q", line)
			}
			rs := RealServer{Addr: fields[1], Forward: fields[2]}
			nums := []*int{&rs.Weight, &rs.ActiveConn, &rs.InActConn}
			for i, p := range nums {
				n, err := strconv.Atoi(fields[3+i])
				if err != nil {
					return nil, fmt.Errorf("ipvsadm -Ln: real server line %q: %w", line, err)
				}
				*p = n
			}
			last := &vss[len(vss)-1]
			last.RealServers = append(last.RealServers, rs)
		default:
			vs, err := parseVirtualServerLine(line, fields)
			if err != nil {
				return nil, err
			}
			vss = append(vss, vs)
		}
	}
	return vss, nil
}

// parseVirtualServerLine parses "TCP  10.96.0.10:80 sh (sh-port) persistent 60".
func parseVirtualServerLine(line string, fields []string) (VirtualServer, error) {
	if len(fields) < 3 {
		return VirtualServer{}, fmt.Errorf("ipvsadm -Ln: unexpected line %q", line)
	}
	vs := VirtualServer{Proto: fields[0], Addr: fields[1], Scheduler: fields[2], Line: line}
	for i := 3; i < len(fields); i++ {
		f := fields[i]
		switch {
		case strings.HasPrefix(f, "(") && strings.HasSuffix(f, ")"):
			vs.SchedFlags = strings.Trim(f, "()")
		case f == "persistent" && i+1 < len(fields):
			n, err := strconv.Atoi(fields[i+1])
			if err != nil {
				return VirtualServer{}, fmt.Errorf("ipvsadm -Ln: line %q: persistence %w", line, err)
			}
			vs.Persistent = n
			i++
		}
	}
	return vs, nil
}

// parseTotalConns takes the Conns column of the virtual server's line in
// `ipvsadm -Ln --stats --exact` output.
func parseTotalConns(out, proto, addr string) (uint64, error) {
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 3 && fields[0] == proto && fields[1] == addr {
			return strconv.ParseUint(fields[2], 10, 64)
		}
	}
	return 0, fmt.Errorf("ipvsadm --stats: no virtual server %s %s in:\n%s", proto, addr, indent(out))
}

// Conn is one entry of IPVS's connection table as `ipvsadm -Lnc` prints it:
//
//	pro expire state       source             virtual            destination
//	TCP 179:59 ASSURED     10.250.0.2:0       10.96.0.10:80      10.244.2.2:8080
//
// Persistence templates have source port 0 (and state NONE or ASSURED).
type Conn struct {
	Proto, Expire, State         string
	Source, Virtual, Destination string
}

// IPVSConns returns IPVS's connection table (`ipvsadm -Lnc`).
func IPVSConns(t testing.TB) []Conn {
	t.Helper()
	return parseConns(Run(t, IPVSAdmBin, "-Lnc"))
}

func parseConns(out string) []Conn {
	var conns []Conn
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 6 || f[0] == "pro" {
			continue
		}
		conns = append(conns, Conn{Proto: f[0], Expire: f[1], State: f[2], Source: f[3], Virtual: f[4], Destination: f[5]})
	}
	return conns
}
