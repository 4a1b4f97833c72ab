package contract

import (
	"bytes"
	"net/netip"
	"syscall"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// IPVS runs the IPVS contract. open returns the implementation over an
// empty table, once per case.
func IPVS(t *testing.T, open func(t *testing.T) kernel.IPVS) {
	a := vs("10.96.0.1", "rr")
	b := vs("10.96.0.2", "rr")
	for _, c := range []struct {
		name string
		ops  []kernel.IPVSOp
		want []want
		dump string
	}{
		{"add twice", []kernel.IPVSOp{svcOp(kernel.AddService, a), svcOp(kernel.AddService, a)},
			[]want{none, is(syscall.EEXIST)}, "-A -t 10.96.0.1:80 -s rr"},
		{"no such virtual server", []kernel.IPVSOp{svcOp(kernel.EditService, b), svcOp(kernel.DelService, b),
			rsOp(kernel.AddDest, b, 1, 1), rsOp(kernel.EditDest, b, 1, 1), rsOp(kernel.DelDest, b, 1, 1)},
			[]want{is(syscall.ESRCH), is(syscall.ESRCH), is(syscall.ESRCH), is(syscall.ESRCH), is(syscall.ESRCH)}, ""},
		{"real servers", []kernel.IPVSOp{svcOp(kernel.AddService, a), rsOp(kernel.AddDest, a, 1, 1), rsOp(kernel.AddDest, a, 1, 1),
			rsOp(kernel.EditDest, a, 9, 1), rsOp(kernel.DelDest, a, 9, 1), rsOp(kernel.AddDest, a, 2, 1)},
			[]want{none, none, is(syscall.EEXIST), is(syscall.ENOENT), is(syscall.ENOENT), none},
			"-A -t 10.96.0.1:80 -s rr\n-a -t 10.96.0.1:80 -r 10.244.0.1:8080 -m -w 1\n-a -t 10.96.0.1:80 -r 10.244.0.2:8080 -m -w 1"},
		{"edit in place", []kernel.IPVSOp{svcOp(kernel.AddService, a), rsOp(kernel.AddDest, a, 1, 1),
			svcOp(kernel.EditService, vs("10.96.0.1", "wrr")), rsOp(kernel.EditDest, a, 1, 0)},
			[]want{none, none, none, none}, "-A -t 10.96.0.1:80 -s wrr\n-a -t 10.96.0.1:80 -r 10.244.0.1:8080 -m -w 0"},
		{"delete takes the real servers", []kernel.IPVSOp{svcOp(kernel.AddService, a), rsOp(kernel.AddDest, a, 1, 1),
			svcOp(kernel.DelService, a), rsOp(kernel.DelDest, a, 1, 1), svcOp(kernel.AddService, a)},
			[]want{none, none, none, is(syscall.ESRCH), none}, "-A -t 10.96.0.1:80 -s rr"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := open(t)
			check(t, "Exec", v.Exec(c.ops), c.want)
			sameLines(t, "Dump", dumpIPVS(t, v), c.dump)
		})
	}
}

func vs(addr, sched string) state.VirtualServer {
	return state.VirtualServer{Key: state.VSKey{Proto: state.TCP, Addr: netip.MustParseAddr(addr), Port: 80}, Scheduler: sched}
}

func svcOp(cmd kernel.IPVSCmd, v state.VirtualServer) kernel.IPVSOp {
	return kernel.IPVSOp{Cmd: cmd, VS: v}
}

func rsOp(cmd kernel.IPVSCmd, v state.VirtualServer, last byte, weight int32) kernel.IPVSOp {
	rs := state.RealServer{Key: state.RSKey{Addr: netip.AddrFrom4([4]byte{10, 244, 0, last}), Port: 8080}, Weight: weight}
	return kernel.IPVSOp{Cmd: cmd, VS: v, RS: rs}
}

// dumpIPVS renders the table in ipvsadm -Sn form.
func dumpIPVS(t *testing.T, v kernel.IPVS) string {
	t.Helper()
	svcs, err := v.Dump()
	if err != nil {
		t.Fatalf("Dump: %v", err)
	}
	s := state.New()
	s.Services = svcs
	var b bytes.Buffer
	if err := s.WriteIPVS(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
