package framework

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
)

// NodeIP is the root namespace's address as the other namespaces see it: the
// next hop of their default routes and the source of traffic the root
// namespace sends them. It sits on the root end of every veth.
const NodeIP = "10.10.0.1"

// NodeIP6 is NodeIP's IPv6 counterpart, on the root end of the veths of
// namespaces that have an IPv6 address.
const NodeIP6 = "fd00:10::1"

// maxNameLen keeps "ve-<name>" within the kernel's 15-byte interface names.
const maxNameLen = 12

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// Namespace is a network namespace joined to the root namespace by a veth
// pair (see the package doc for the addressing plan).
type Namespace struct {
	// Name is the namespace's name (as in `ip netns`).
	Name string
	// IP is the namespace's IPv4 address, on its eth0.
	IP string
	// IP6 is its IPv6 address, if it has one (NewDualStackClientNS).
	IP6 string
	// HostVeth is the root namespace's end of the veth pair: "ve-<Name>".
	HostVeth string
}

// NewClientNS creates network namespace name with address ip, routed through
// the root namespace, for clients that need their own source address. The
// namespace is deleted when the test ends.
func NewClientNS(t testing.TB, name, ip string) *Namespace {
	t.Helper()
	return NewDualStackClientNS(t, name, ip, "")
}

// NewDualStackClientNS is NewClientNS with an IPv6 address ip6 as well
// (routed through the root namespace's NodeIP6); "" gives none.
func NewDualStackClientNS(t testing.TB, name, ip, ip6 string) *Namespace {
	t.Helper()
	ns, err := newNamespace(name, ip, ip6)
	t.Cleanup(func() { deleteNamespace(name) })
	if err != nil {
		t.Fatalf("create namespace %s (%s): %v", name, ip, err)
	}
	return ns
}

// NewNamespace is NewClientNS for a program without a testing.TB (the
// benchmark): the caller deletes it with DeleteNamespace.
func NewNamespace(name, ip string) (*Namespace, error) {
	ns, err := newNamespace(name, ip, "")
	if err != nil {
		deleteNamespace(name)
		return nil, fmt.Errorf("create namespace %s (%s): %w", name, ip, err)
	}
	return ns, nil
}

// NewNodeNamespace creates namespace name standing for a whole node on its
// own, joined to nothing: lo up and a dummy eth0 holding NodeIP/24. The
// benchmark programs each repetition into a fresh one (the kernel keeps
// IPVS, ipsets, addresses and rules per namespace, and deleted real servers
// in a per-namespace trash list that slows later adds). A namespace of that
// name is deleted first. The caller deletes it with DeleteNamespace.
func NewNodeNamespace(name string) (*Namespace, error) {
	deleteNamespace(name)
	err := ipBatch("", []string{"netns add " + name})
	if err == nil {
		err = ipBatch(name, []string{"link set lo up", "link add eth0 type dummy", "addr add " + NodeIP + "/24 dev eth0", "link set eth0 up"})
	}
	if err != nil {
		deleteNamespace(name)
		return nil, fmt.Errorf("create node namespace %s: %w", name, err)
	}
	return &Namespace{Name: name, IP: NodeIP}, nil
}

// DeleteNamespace kills the processes in a namespace and deletes it with
// its veth (see NewClientNS); a missing namespace is fine.
func DeleteNamespace(name string) { deleteNamespace(name) }

// Path is the namespace's file, for opening sockets in it.
func (n *Namespace) Path() string { return filepath.Join(netnsDir, n.Name) }

// Client returns a client that sends from this namespace (and so from its IP).
func (n *Namespace) Client() Client {
	return Client{NS: n.Name}
}

// Run runs a command inside the namespace and returns its output; it fails
// the test if the command fails.
func (n *Namespace) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	return RunIn(t, n.Name, name, args...)
}

// newNamespace builds the namespace, its veth pair, addresses and routes.
// Each iproute2 process costs ~0.1 s under emulation, so the steps run as two
// `ip -batch` calls: one in the root namespace, one inside. On error the
// caller deletes what was made.
func newNamespace(name, ip, ip6 string) (*Namespace, error) {
	if len(name) > maxNameLen || !validName.MatchString(name) {
		return nil, fmt.Errorf("namespace name %q: want at most %d of [a-z0-9-]", name, maxNameLen)
	}
	if parsed := net.ParseIP(ip); parsed == nil || parsed.To4() == nil {
		return nil, fmt.Errorf("namespace %s: %q is not an IPv4 address", name, ip)
	}
	if parsed := net.ParseIP(ip6); ip6 != "" && (parsed == nil || parsed.To4() != nil) {
		return nil, fmt.Errorf("namespace %s: %q is not an IPv6 address", name, ip6)
	}
	ns := &Namespace{Name: name, IP: ip, IP6: ip6, HostVeth: "ve-" + name}
	if err := writeSysctl("net.ipv4.ip_forward", "1"); err != nil {
		return nil, err
	}
	root := []string{
		"netns add " + name,
		"link add " + ns.HostVeth + " type veth peer name eth0 netns " + name,
		"addr add " + NodeIP + "/32 dev " + ns.HostVeth,
		"link set " + ns.HostVeth + " up",
		"route add " + ip + "/32 dev " + ns.HostVeth + " src " + NodeIP,
	}
	if ip6 != "" {
		if err := writeSysctl("net.ipv6.conf.all.forwarding", "1"); err != nil {
			return nil, err
		}
		// nodad: the address is usable at once, not after duplicate detection
		root = append(root, "addr add "+NodeIP6+"/128 dev "+ns.HostVeth+" nodad",
			"route add "+ip6+"/128 dev "+ns.HostVeth+" src "+NodeIP6)
	}
	if err := ipBatch("", root); err != nil {
		return nil, err
	}
	mac, err := hostVethMAC(ns.HostVeth)
	if err != nil {
		return nil, err
	}
	inside := []string{
		"link set lo up",
		"addr add " + ip + "/32 dev eth0",
		"link set eth0 up",
		"route add " + NodeIP + " dev eth0 scope link",
		"route add default via " + NodeIP + " dev eth0 src " + ip,
		// The gateway's MAC is pinned, so the namespace never depends on the
		// root namespace answering ARP (arp_ignore=1 on the node prevents it).
		"neigh replace " + NodeIP + " lladdr " + mac + " dev eth0 nud permanent",
	}
	if ip6 != "" {
		inside = append(inside, "addr add "+ip6+"/128 dev eth0 nodad",
			"route add "+NodeIP6+" dev eth0",
			"route add default via "+NodeIP6+" dev eth0 src "+ip6,
			"neigh replace "+NodeIP6+" lladdr "+mac+" dev eth0 nud permanent")
	}
	if err := ipBatch(name, inside); err != nil {
		return nil, err
	}
	return ns, nil
}

// ipBatch runs iproute2 commands (without the leading "ip") in one process,
// inside namespace ns ("" is the root namespace).
func ipBatch(ns string, commands []string) error {
	args := []string{"-batch", "-"}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	script := strings.Join(commands, "\n") + "\n"
	if _, err := outputWithInput(script, IPBin, args...); err != nil {
		return fmt.Errorf("%w\n  commands:\n    %s", err, strings.Join(commands, "\n    "))
	}
	return nil
}

func hostVethMAC(dev string) (string, error) {
	iface, err := net.InterfaceByName(dev)
	if err != nil {
		return "", fmt.Errorf("look up %s: %w", dev, err)
	}
	return iface.HardwareAddr.String(), nil
}

// deleteLink deletes a link of the root namespace if it exists.
func deleteLink(name string) error {
	link, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil // gone already
	}
	if err != nil {
		return fmt.Errorf("look up link %s: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// netnsDir is where iproute2 keeps named namespaces (bind mounts).
const netnsDir = "/run/netns"

// namespaceNames lists the named network namespaces.
func namespaceNames() []string {
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// deleteNamespace deletes the namespace's veth pair, kills every process left
// in the namespace and deletes it, as `ip netns pids` and `ip netns delete`
// would, without their process start cost. The veth is deleted explicitly
// because a namespace is torn down asynchronously: the next scenario may want
// the same name at once. Missing namespaces are fine. The test process itself
// is spared, in case one of its threads is still inside.
func deleteNamespace(name string) {
	_ = deleteLink("ve-" + name) // best effort: the namespace's deletion takes it too
	path := filepath.Join(netnsDir, name)
	var target syscall.Stat_t
	if err := syscall.Stat(path, &target); err != nil {
		return
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	for _, p := range procs {
		var st syscall.Stat_t
		if syscall.Stat(p, &st) != nil || st.Ino != target.Ino || st.Dev != target.Dev {
			continue
		}
		pid, err := strconv.Atoi(strings.Split(p, "/")[2])
		if err == nil && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	_ = syscall.Unmount(path, syscall.MNT_DETACH)
	_ = os.Remove(path)
}
