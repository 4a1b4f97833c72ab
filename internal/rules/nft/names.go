// Package nft is the nftables counterpart of package rules: ipvs-proxy's own
// table in each IP family (`ip ipvs-proxy`, `ip6 ipvs-proxy`) with one nft
// set in place of each ipset and one chain in place of each iptables chain.
// It builds the wanted table and turns set members into nft elements and
// back. It is pure: running nft is the kernel layer's job.
//
// Every set keeps the name of the ipset it stands for, lower-cased and
// without its KUBE- prefix (KUBE-CLUSTER-IP is cluster-ip, in both
// families' tables), and the ipset's dimensions as a concatenated type
// (hash:ip,port,ip is ipv4_addr . inet_proto . inet_service . ipv4_addr).
//
// nft gives rules back only in a form of its own (`0x00004000` for `0x4000`,
// `tcp dport` for `meta l4proto tcp th dport`, and it varies between nft
// versions), so a rule is recognized by its comment: a digest of the rule as
// written. A chain whose comments differ from the wanted ones is rewritten.
package nft

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// TableName is the name of ipvs-proxy's table in each family.
const TableName = "ipvs-proxy"

// Family is the nftables family of an IP family's table: "ip" or "ip6".
func Family(f state.Family) string {
	if f == state.IPv6 {
		return "ip6"
	}
	return "ip"
}

// SetName is the nft set that stands for the ipset of that (IPv4) name.
func SetName(ipset string) string {
	return strings.ToLower(strings.TrimPrefix(ipset, "KUBE-"))
}

// Names maps the sets of the state (named as the ipsets of each family)
// to nft sets and back.
type Names struct {
	toNFT   map[string]string
	fromNFT map[state.Family]map[string]state.SetSpec
}

// NewNames pairs the two families' set catalogs, which list the same sets
// in the same order: IPv6 ipset names are cut to 31 characters, so the nft
// name comes from the IPv4 one.
func NewNames(v4, v6 []state.SetSpec) *Names {
	n := &Names{toNFT: map[string]string{}, fromNFT: map[state.Family]map[string]state.SetSpec{state.IPv4: {}, state.IPv6: {}}}
	for i, s := range v4 {
		name := SetName(s.Name)
		n.toNFT[s.Name] = name
		n.fromNFT[state.IPv4][name] = s
		if i < len(v6) {
			n.toNFT[v6[i].Name] = name
			n.fromNFT[state.IPv6][name] = v6[i]
		}
	}
	return n
}

// NFT returns the nft set name of a state set, "" if it is not one of ours.
func (n *Names) NFT(set string) string { return n.toNFT[set] }

// Spec returns the state set that nft set name of family f stands for.
func (n *Names) Spec(f state.Family, name string) (state.SetSpec, bool) {
	s, ok := n.fromNFT[f][name]
	return s, ok
}

// SetType returns the nft type and flags of a set that stands for an ipset of
// spec's type. An ipset whose members carry a mark (SetSpec.Marks) is an nft
// map from the member to the mark: its type ends in ": mark" (see IsMap).
func SetType(spec state.SetSpec) (string, []string) {
	typ, flags := keyType(spec)
	if spec.Marks {
		typ += " : mark"
	}
	return typ, flags
}

// IsMap says whether the nft object that stands for the ipset is a map.
func IsMap(spec state.SetSpec) bool { return spec.Marks }

func keyType(spec state.SetSpec) (string, []string) {
	addr := "ipv4_addr"
	if spec.Family == state.IPv6 {
		addr = "ipv6_addr"
	}
	const port = "inet_proto . inet_service"
	switch spec.Type {
	case state.HashNet:
		return addr, []string{"interval"}
	case state.HashIP:
		return addr, nil
	case state.HashIPPort:
		return addr + " . " + port, nil
	case state.HashIPPortIP:
		return addr + " . " + port + " . " + addr, nil
	case state.HashIPPortNet:
		return addr + " . " + port + " . " + addr, []string{"interval"}
	case state.BitmapPort:
		return "inet_service", nil
	}
	return "", nil
}

// Key renders a set member as an nft element key.
func Key(t state.SetType, e state.SetEntry) []string {
	port := []string{e.Proto.String(), strconv.Itoa(int(e.Port))}
	switch t {
	case state.HashIP:
		return []string{e.Addr.String()}
	case state.HashIPPort:
		return append([]string{e.Addr.String()}, port...)
	case state.HashIPPortIP:
		return append(append([]string{e.Addr.String()}, port...), e.Addr2.String())
	case state.HashIPPortNet:
		return append(append([]string{e.Addr.String()}, port...), e.Net.String())
	case state.HashNet:
		return []string{e.Net.String()}
	case state.BitmapPort:
		return []string{strconv.Itoa(int(e.Port))}
	}
	return nil
}

// Value renders the value of a map element: the member's mark.
func Value(e state.SetEntry) []string {
	return []string{"0x" + strconv.FormatUint(uint64(e.Mark), 16)}
}

// ParseValue reads a map element's value back into e: the mark, and the
// mask it was set under. The map holds the mark alone; the rule sets it
// under the in-cluster mark mask (rules.InClusterMarkMask), whose 14 bits
// are either 0-13 or 16-29, so the mark says which.
func ParseValue(e state.SetEntry, value []string) (state.SetEntry, error) {
	if len(value) != 1 {
		return e, fmt.Errorf("map value %q: want one mark", value)
	}
	m, err := strconv.ParseUint(value[0], 0, 32)
	if err != nil || m == 0 {
		return e, fmt.Errorf("map value %q: not a mark", value[0])
	}
	e.Mark, e.MarkMask = uint32(m), markMaskOf(uint32(m))
	return e, nil
}

// markMaskOf is the in-cluster mark mask a mark was set under.
func markMaskOf(mark uint32) uint32 {
	const low = 1<<14 - 1
	if mark <= low {
		return low
	}
	return low << 16
}

// ParseKey reads back an element key of a set standing for an ipset of type t.
func ParseKey(t state.SetType, key []string) (state.SetEntry, error) {
	var e state.SetEntry
	want := map[state.SetType]int{state.HashIP: 1, state.HashIPPort: 3, state.HashIPPortIP: 4, state.HashIPPortNet: 4, state.HashNet: 1, state.BitmapPort: 1}[t]
	if want == 0 || len(key) != want {
		return e, fmt.Errorf("element %q: want %d fields for a set of type %s", strings.Join(key, " . "), want, t)
	}
	var err error
	switch t {
	case state.BitmapPort:
		e.Port, err = parsePort(key[0])
		return e, err
	case state.HashNet:
		e.Net, err = parseNet(key[0])
		return e, err
	}
	if e.Addr, err = netip.ParseAddr(key[0]); err != nil {
		return e, fmt.Errorf("element %q: %w", strings.Join(key, " . "), err)
	}
	if t == state.HashIP {
		return e, nil
	}
	if e.Proto, err = parseProto(key[1]); err != nil {
		return e, err
	}
	if e.Port, err = parsePort(key[2]); err != nil {
		return e, err
	}
	switch t {
	case state.HashIPPortIP:
		e.Addr2, err = netip.ParseAddr(key[3])
	case state.HashIPPortNet:
		e.Net, err = parseNet(key[3])
	}
	return e, err
}

func parsePort(s string) (uint16, error) {
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("port %q: %w", s, err)
	}
	return uint16(p), nil
}

func parseProto(s string) (state.Protocol, error) {
	for _, p := range []state.Protocol{state.TCP, state.UDP, state.SCTP} {
		if s == p.String() || s == strconv.Itoa(int(p)) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("protocol %q: not tcp, udp or sctp", s)
}

// parseNet reads a prefix; nft lists a one-address prefix as the bare address.
func parseNet(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return state.HostPrefix(a), nil
	}
	return netip.ParsePrefix(s)
}

// ruleID is the digest of a rule's text that its comment carries.
func ruleID(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:4])
}
