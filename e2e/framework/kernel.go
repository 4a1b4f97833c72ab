package framework

import (
	"bufio"
	"strings"
	"testing"
)

// IPVSADM runs ipvsadm with args (e.g. "-Ln") and returns its output; it fails
// the test if ipvsadm fails.
func IPVSADM(t testing.TB, args ...string) string {
	t.Helper()
	return Run(t, IPVSAdmBin, args...)
}

// IPSetList returns `ipset list NAME`; it fails the test if the set does not
// exist.
func IPSetList(t testing.TB, name string) string {
	t.Helper()
	return Run(t, IPSetBin, "list", name)
}

// IPSetMembers returns the members of set name as ipset prints them
// (e.g. "10.96.0.10,tcp:80"), sorted as ipset sorts them. With the
// nftables backend they are the elements of the nft set that stands for
// the ipset, written the same way (see NFTSetName).
func IPSetMembers(t testing.TB, name string) []string {
	t.Helper()
	if rulesBackend == NFTables {
		return nftSetMembers(t, name)
	}
	return parseIPSetMembers(Run(t, IPSetBin, "list", "-sorted", name))
}

// IPSetOnly returns the members of ipset name, whatever the rules backend
// (for sets of other programs).
func IPSetOnly(t testing.TB, name string) []string {
	t.Helper()
	return parseIPSetMembers(Run(t, IPSetBin, "list", "-sorted", name))
}

// parseIPSetMembers takes the lines after "Members:" in `ipset list` output.
func parseIPSetMembers(out string) []string {
	var members []string
	inMembers := false
	scanner := bufio.NewScanner(strings.NewReader(out))
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		switch {
		case line == "Members:":
			inMembers = true
		case inMembers && line != "":
			members = append(members, line)
		}
	}
	return members
}

// AddrShow returns `ip addr show dev DEV`; it fails the test if the link does
// not exist.
func AddrShow(t testing.TB, dev string) string {
	t.Helper()
	return Run(t, IPBin, "addr", "show", "dev", dev)
}

// Addrs returns the IPv4 and IPv6 addresses on dev in CIDR form
// (e.g. "10.96.0.10/32"), in the kernel's order.
func Addrs(t testing.TB, dev string) []string {
	t.Helper()
	return parseAddrs(Run(t, IPBin, "-o", "addr", "show", "dev", dev))
}

// parseAddrs takes the address field of `ip -o addr show` lines.
func parseAddrs(out string) []string {
	var addrs []string
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		for i := 0; i+1 < len(fields); i++ {
			if fields[i] == "inet" || fields[i] == "inet6" {
				addrs = append(addrs, fields[i+1])
				break
			}
		}
	}
	return addrs
}

// IPTablesSave returns `iptables-save` (all tables) of the default backend,
// nft, as Debian's alternatives chose it.
func IPTablesSave(t testing.TB) string {
	t.Helper()
	return Run(t, "/usr/sbin/iptables-save")
}
