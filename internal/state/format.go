package state

import (
	"io"
	"strings"
)

// WriteIPVS writes the virtual and real servers in `ipvsadm -Sn` syntax, each
// virtual server followed by its real servers, in key order.
func (s *State) WriteIPVS(w io.Writer) error {
	var b strings.Builder
	for _, k := range s.SortedServices() {
		svc := s.Services[k]
		b.WriteString(svc.Ipvsadm())
		b.WriteByte('\n')
		for _, rs := range svc.SortedRealServers() {
			b.WriteString(rs.Ipvsadm(k))
			b.WriteByte('\n')
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteSetMembers writes every set member as an `ipset save` add line
// ("add KUBE-CLUSTER-IP 10.96.0.10,udp:53"), sets in name order.
func (s *State) WriteSetMembers(w io.Writer) error {
	var b strings.Builder
	for _, name := range s.SortedSetNames() {
		set := s.Sets[name]
		for _, e := range set.SortedEntries() {
			b.WriteString("add " + name + " " + e.Format(set.Type) + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteAddresses writes the kube-ipvs0 addresses, one prefix per line.
func (s *State) WriteAddresses(w io.Writer) error {
	var b strings.Builder
	for _, a := range s.SortedAddresses() {
		b.WriteString(HostPrefix(a).String() + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
