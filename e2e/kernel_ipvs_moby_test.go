package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	moby "github.com/moby/ipvs"
)

// mobyService is vs in moby/ipvs's terms. moby/ipvs sends Netmask in host
// order, so an IPv4 mask is given as the value whose host-order bytes are the
// mask.
func mobyService(vs state.VirtualServer) *moby.Service {
	addr := vs.Key.Addr
	s := &moby.Service{
		Address: net.IP(addr.AsSlice()), Protocol: uint16(vs.Key.Proto), Port: vs.Key.Port,
		SchedName: vs.Scheduler, Flags: vs.Flags, AddressFamily: syscall.AF_INET, Netmask: 0xffffffff,
	}
	bits := vs.PersistenceBits
	if vs.Flags&state.FlagPersistent == 0 || bits == 0 {
		bits = addr.BitLen()
	}
	if vs.Flags&state.FlagPersistent != 0 {
		s.Timeout = vs.Timeout
	}
	if addr.Is6() {
		s.AddressFamily, s.Netmask = syscall.AF_INET6, uint32(bits)
	} else {
		s.Netmask = binary.NativeEndian.Uint32(binary.BigEndian.AppendUint32(nil, ^uint32(0)<<(32-bits)))
	}
	return s
}

func mobyDest(rs state.RealServer) *moby.Destination {
	af := uint16(syscall.AF_INET)
	if rs.Key.Addr.Is6() {
		af = syscall.AF_INET6
	}
	return &moby.Destination{Address: net.IP(rs.Key.Addr.AsSlice()), Port: rs.Key.Port, Weight: int(rs.Weight), AddressFamily: af}
}

func openMoby(t testing.TB) *moby.Handle {
	t.Helper()
	h, err := moby.New("")
	if err != nil {
		t.Fatalf("moby/ipvs: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// TestKernelIPVSMobyInterop writes with one implementation and reads with the
// other, both ways: the wire formats agree.
func TestKernelIPVSMobyInterop(t *testing.T) {
	framework.ResetKernel(t)
	v := openIPVS(t, ipvs.Config{})
	h := openMoby(t)
	want := ipvsTable(24, 3)

	// Ours → moby.
	requireNoErrors(t, "add", nil, v.Exec(addOps(want)))
	svcs, err := h.GetServices()
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != len(want) {
		t.Errorf("moby sees %d services, want %d", len(svcs), len(want))
	}
	for _, s := range svcs {
		addr, _ := netip.AddrFromSlice(s.Address)
		k := state.VSKey{Proto: state.Protocol(s.Protocol), Addr: addr.Unmap(), Port: s.Port}
		w := want[k]
		if w == nil {
			t.Errorf("moby sees unexpected %s", k)
			continue
		}
		m := mobyService(w.VirtualServer)
		if s.SchedName != m.SchedName || s.Flags&^0x2 != m.Flags || s.Timeout != m.Timeout || s.Netmask != m.Netmask {
			t.Errorf("moby sees %s as sched %s flags %#x timeout %d netmask %#x; want %s %#x %d %#x",
				k, s.SchedName, s.Flags, s.Timeout, s.Netmask, m.SchedName, m.Flags, m.Timeout, m.Netmask)
		}
		dests, err := h.GetDestinations(s)
		if err != nil || len(dests) != len(w.RealServers) {
			t.Errorf("moby sees %d destinations of %s (%v), want %d", len(dests), k, err, len(w.RealServers))
		}
		for _, d := range dests {
			a, _ := netip.AddrFromSlice(d.Address)
			wr, ok := w.RealServers[state.RSKey{Addr: a.Unmap(), Port: d.Port}]
			if !ok || int(wr.Weight) != d.Weight {
				t.Errorf("moby sees destination %s:%d weight %d of %s", a, d.Port, d.Weight, k)
			}
		}
	}

	// moby → ours.
	framework.IPVSADM(t, "-C")
	for _, k := range sortedKeys(want) {
		svc := want[k]
		ms := mobyService(svc.VirtualServer)
		if err := h.NewService(ms); err != nil {
			t.Fatalf("moby NewService %s: %v", k, err)
		}
		for _, rs := range svc.SortedRealServers() {
			if err := h.NewDestination(ms, mobyDest(rs)); err != nil {
				t.Fatalf("moby NewDestination %s: %v", rs.Key, err)
			}
		}
	}
	got, err := v.Dump()
	if err != nil {
		t.Fatal(err)
	}
	if d := sameTable(got, want); len(d) > 0 {
		t.Errorf("Dump of what moby wrote differs (%d):\n%v", len(d), d[:min(len(d), 10)])
	}
}

// TestKernelIPVSThroughput measures writes per second: pipelined Exec, Exec
// with a window of one (a round trip per op), and moby/ipvs one at a time.
func TestKernelIPVSThroughput(t *testing.T) {
	framework.ResetKernel(t)
	table := ipvsTable(200, 9)
	ops := addOps(table)

	measure := func(name string, write func()) {
		framework.IPVSADM(t, "-C")
		start := time.Now()
		write()
		d := time.Since(start)
		t.Logf("%-28s %5d ops in %8s: %8.0f ops/s", name, len(ops), d.Round(time.Millisecond), float64(len(ops))/d.Seconds())
	}
	pipelined := openIPVS(t, ipvs.Config{})
	measure("pipelined (window 512)", func() { requireNoErrors(t, "pipelined", ops, pipelined.Exec(ops)) })
	for _, w := range []int{64, 8, 1} {
		small := openIPVS(t, ipvs.Config{Window: w})
		measure(fmt.Sprintf("ours, window %d", w), func() { requireNoErrors(t, "small window", ops, small.Exec(ops)) })
	}
	h := openMoby(t)
	measure("moby/ipvs one at a time", func() {
		var svc *moby.Service
		for _, op := range ops {
			var err error
			switch op.Cmd {
			case kernel.AddService:
				svc = mobyService(op.VS)
				err = h.NewService(svc)
			case kernel.AddDest:
				err = h.NewDestination(svc, mobyDest(op.RS))
			}
			if err != nil {
				t.Fatalf("moby: %v", err)
			}
		}
	})
	start := time.Now()
	got, err := pipelined.Dump()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Dump of %d services with their real servers: %s", len(got), time.Since(start).Round(time.Millisecond))
	var dels []kernel.IPVSOp
	for _, k := range sortedKeys(table) {
		dels = append(dels, kernel.IPVSOp{Cmd: kernel.DelService, VS: table[k].VirtualServer})
	}
	start = time.Now()
	requireNoErrors(t, "delete", dels, pipelined.Exec(dels))
	t.Logf("pipelined delete of %d services (with their real servers): %s", len(dels), time.Since(start).Round(time.Millisecond))
	framework.IPVSADM(t, "-C")
}
