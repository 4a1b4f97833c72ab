package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ipvs-proxy/ipvs-proxy/internal/config"
	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/link"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/nlbatch"
	"github.com/ipvs-proxy/ipvs-proxy/internal/manifest"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// The floor loader (`bench floor`, prebuilt, run as its own process inside
// a fresh namespace and timed from outside like the tools): the least a
// cold start can do. It reads the manifests and computes the desired state
// with ipvs-proxy's own code, encodes every request (the daemon's own
// encoders: the same bytes), then sends them as batched as netlink allows: megabytes per sendmsg, no acknowledgement
// asked for except on the last request of each socket (the kernel processes
// a sendmsg's requests before it returns and reports only failures), and
// set members packed many per request as `ipset restore` packs them. What
// it writes is what the standard tools write: the link, its addresses, the
// sets and their members, the virtual and real servers (not the rules and
// sysctls, which ipvs-proxy also writes in its cold start).

// FloorRun is what one floor load measured, printed as JSON. The floor is
// the loader process's wall time, measured from outside like the tools';
// these are its parts.
type FloorRun struct {
	// Read is reading and decoding the manifests, Compute the desired
	// state, Encode the requests.
	Read, Compute, Encode time.Duration
	// Link is the link and its addresses, Sets the sets and members, IPVS
	// the virtual and real servers; Kernel is their sum: the kernel's part.
	Link, Sets, IPVS, Kernel time.Duration
	// Requests are the netlink requests sent; Sendmsgs the system calls.
	Requests, Sendmsgs int
}

// floorIfindex is the index the loader gives kube-ipvs0 (free in a fresh
// namespace), so its addresses can go in the same batch as the link.
const floorIfindex uint32 = 100

// floorPerMessage is the most set members per request.
const floorPerMessage = 1024

// floorChunk bounds the bytes of one sendmsg (the socket's send buffer is
// forced above it).
const floorChunk = 4 << 20

func floorCmd(args []string) error {
	fs := flag.NewFlagSet("floor", flag.ExitOnError)
	dir := fs.String("manifests", "", "manifest directory")
	nodeIP := fs.String("node-ip", "10.10.0.1", "the node's address")
	node := fs.String("node-name", "node-1", "the node's name")
	_ = fs.Parse(args)
	var run FloorRun
	batches, err := floorRequests(*dir, *node, netip.MustParseAddr(*nodeIP), &run)
	if err != nil {
		return err
	}
	for i, b := range batches {
		took, sendmsgs, err := sendBatch(b.proto, b.reqs)
		if err != nil {
			return fmt.Errorf("%s: %w", b.name, err)
		}
		switch i {
		case 0:
			run.Link = took
		case 1:
			run.Sets = took
		default:
			run.IPVS = took
		}
		run.Kernel += took
		run.Requests += len(b.reqs)
		run.Sendmsgs += sendmsgs
	}
	return json.NewEncoder(os.Stdout).Encode(run)
}

// floorBatch is the requests for one netlink protocol.
type floorBatch struct {
	name  string
	proto int
	reqs  [][]byte
}

// floorRequests computes the desired state and encodes it: link and
// addresses, sets and members, IPVS.
func floorRequests(dir, nodeName string, nodeIP netip.Addr, run *FloorRun) ([]floorBatch, error) {
	start := time.Now()
	objs, err := manifest.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	run.Read = time.Since(start)
	start = time.Now()
	x, _ := desired.Build(desired.NewInput(config.Default(), desired.Node{Name: nodeName, Addresses: []netip.Addr{nodeIP},
		PrimaryAddresses: []netip.Addr{nodeIP}}), objs.Services, objs.EndpointSlices)
	s := x.State()
	run.Compute = time.Since(start)
	defer func(start time.Time) { run.Encode = time.Since(start) }(time.Now())
	route := [][]byte{newDummyLink(state.LinkName, floorIfindex)}
	addrs := make([]netip.Addr, 0, len(s.Addresses))
	for a := range s.Addresses {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	for _, a := range addrs {
		req, err := link.EncodeAddr(kernel.AddrOp{Add: true, Addr: a}, floorIfindex)
		if err != nil {
			return nil, err
		}
		route = append(route, req)
	}
	var sets [][]byte
	for _, name := range slices.Sorted(mapKeys(s.Sets)) {
		set := s.Sets[name]
		req, err := ipset.EncodeCreate(set.SetSpec)
		if err != nil {
			return nil, err
		}
		entries := slices.SortedFunc(mapKeys(set.Entries), func(a, b state.SetEntry) int { return compareLess(a.Less(b), b.Less(a)) })
		adds, err := ipset.EncodeAdds(set.SetSpec, entries, floorPerMessage)
		if err != nil {
			return nil, err
		}
		sets = append(append(sets, req), adds...)
	}
	fam, err := netlink.GenlFamilyGet("IPVS")
	if err != nil {
		return nil, fmt.Errorf("IPVS generic netlink family: %w", err)
	}
	var ipvsReqs [][]byte
	for _, k := range slices.SortedFunc(mapKeys(s.Services), func(a, b state.VSKey) int { return compareLess(a.Less(b), b.Less(a)) }) {
		svc := s.Services[k]
		req, err := ipvs.Encode(fam.ID, kernel.IPVSOp{Cmd: kernel.AddService, VS: svc.VirtualServer})
		if err != nil {
			return nil, err
		}
		ipvsReqs = append(ipvsReqs, req)
		for _, rs := range svc.RealServers {
			req, err := ipvs.Encode(fam.ID, kernel.IPVSOp{Cmd: kernel.AddDest, VS: svc.VirtualServer, RS: rs})
			if err != nil {
				return nil, err
			}
			ipvsReqs = append(ipvsReqs, req)
		}
	}
	return []floorBatch{{"link and addresses", unix.NETLINK_ROUTE, route}, {"sets", unix.NETLINK_NETFILTER, sets},
		{"IPVS", unix.NETLINK_GENERIC, ipvsReqs}}, nil
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func compareLess(less, greater bool) int {
	switch {
	case less:
		return -1
	case greater:
		return 1
	}
	return 0
}

// newDummyLink encodes `ip link add NAME index INDEX type dummy`.
func newDummyLink(name string, index uint32) []byte {
	hdr := make([]byte, unix.SizeofIfInfomsg) // family AF_UNSPEC, type, index, flags, change
	binary.NativeEndian.PutUint32(hdr[4:8], index)
	return nlbatch.NewMessage(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL).Header(hdr).
		String(unix.IFLA_IFNAME, name).
		Begin(unix.IFLA_LINKINFO).String(unix.IFLA_INFO_KIND, "dummy").End().
		Bytes()
}
