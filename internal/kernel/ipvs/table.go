package ipvs

import (
	"errors"
	"fmt"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/nlbatch"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
	"golang.org/x/sys/unix"
)

// dumpAttempts bounds the retries of a dump the kernel flagged interrupted.
const dumpAttempts = 3

var _ kernel.IPVS = (*IPVS)(nil)

// Dump returns every virtual server keyed by protocol, address and port, with
// its real servers and their connection counts. Firewall-mark services are
// left out: nothing keys them. One service dump, and the real servers of all
// services from one read of /proc/net/ip_vs; a service missing there (the
// table changed in between), or every service when the listing cannot be
// read, gets a destination dump of its own.
//
// Equivalent to: ipvsadm -Ln --stats
func (v *IPVS) Dump() (map[state.VSKey]*state.Service, error) {
	sock, family, err := v.socket()
	if err != nil {
		return nil, err
	}
	// The listing is read while the service dump runs: on two CPUs the
	// two overlap (at 10,000 services, each takes seconds under emulation).
	proc := make(chan procDests, 1)
	go func() { proc <- v.readProc() }()
	var services map[state.VSKey]*state.Service
	err = retryInterrupted(func() error {
		services = map[state.VSKey]*state.Service{}
		req := nlbatch.NewMessage(family, unix.NLM_F_DUMP).Header([]byte{cmdGetService, genlVersion, 0, 0}).Bytes()
		return sock.Query(req, func(m nlbatch.Msg) error {
			vs, ok, err := parseService(m.Data)
			if ok {
				services[vs.Key] = &state.Service{VirtualServer: vs}
			}
			return err
		})
	})
	listed := <-proc
	if err != nil {
		return nil, fmt.Errorf("dump IPVS services: %w", err)
	}
	for key, svc := range services {
		if rss, ok := listed[key]; ok {
			svc.RealServers = rss
		} else if svc.RealServers, err = dumpDests(sock, family, key); err != nil {
			return nil, err
		}
	}
	return services, nil
}

// readProc returns the real servers of every service in /proc/net/ip_vs, or
// nil if it cannot be read; a listing in an unknown format is not read again.
func (v *IPVS) readProc() procDests {
	v.procMu.Lock()
	defer v.procMu.Unlock()
	if v.proc == nil {
		return nil
	}
	listed, err := readProc(v.proc)
	if errors.Is(err, errProcFormat) {
		_ = v.proc.Close()
		v.proc = nil
	}
	if err != nil {
		return nil
	}
	return listed
}

// DumpDestinations returns the real servers of the given virtual servers,
// with fresh connection counts; a virtual server that is gone has none. One
// destination dump per key.
//
// Equivalent to: ipvsadm -Ln --stats -t VIP:PORT, for each key
func (v *IPVS) DumpDestinations(keys []state.VSKey) (map[state.VSKey]map[state.RSKey]state.RealServer, error) {
	sock, family, err := v.socket()
	if err != nil {
		return nil, err
	}
	out := make(map[state.VSKey]map[state.RSKey]state.RealServer, len(keys))
	for _, key := range keys {
		if out[key], err = dumpDests(sock, family, key); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// dumpDests dumps the real servers of one virtual server. The kernel answers
// a dump for a missing service with no destinations, not an error.
func dumpDests(sock *nlbatch.Socket, family uint16, key state.VSKey) (map[state.RSKey]state.RealServer, error) {
	req, err := encodeDestDump(family, key)
	if err != nil {
		return nil, err
	}
	af := afOf(key.Addr.Unmap())
	var dests map[state.RSKey]state.RealServer
	err = retryInterrupted(func() error {
		dests = map[state.RSKey]state.RealServer{}
		return sock.Query(req, func(m nlbatch.Msg) error {
			rs, err := parseDest(m.Data, af)
			dests[rs.Key] = rs
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("dump IPVS destinations of %s: %w", key, err)
	}
	return dests, nil
}

func retryInterrupted(dump func() error) error {
	var err error
	for range dumpAttempts {
		if err = dump(); !errors.Is(err, nlbatch.ErrDumpInterrupted) {
			return err
		}
	}
	return err
}

// Exec runs the writes in order, pipelined, and returns one error per op:
// the kernel's syscall.Errno (EEXIST, ESRCH, ENOENT, ...) as the contract of
// each kernel.IPVSCmd says. An add or edit of a virtual server whose
// scheduler module is missing fails with an error naming the module
// (`modprobe ip_vs_lc`) and wrapping ENOENT.
//
// Equivalent to, per op: ipvsadm -A|-E -t VIP:PORT -s SCHED [-b FLAGS] [-p T [-M MASK]];
// ipvsadm -D -t VIP:PORT; ipvsadm -a|-e -t VIP:PORT -r RIP:PORT -m -w W;
// ipvsadm -d -t VIP:PORT -r RIP:PORT
func (v *IPVS) Exec(ops []kernel.IPVSOp) []error {
	errs := make([]error, len(ops))
	sock, family, err := v.socket()
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	reqs := make([][]byte, 0, len(ops))
	idx := make([]int, 0, len(ops))
	for i, op := range ops {
		req, err := encodeOp(family, op)
		if err != nil {
			errs[i] = err
			continue
		}
		reqs = append(reqs, req)
		idx = append(idx, i)
	}
	for k, err := range sock.Exec(reqs) {
		op := ops[idx[k]]
		if errors.Is(err, unix.ENOENT) && (op.Cmd == kernel.AddService || op.Cmd == kernel.EditService) {
			// ip_vs_scheduler_get found no module ip_vs_<sched> to load.
			err = fmt.Errorf("IPVS scheduler %q is not available: load it with `modprobe ip_vs_%s`: %w",
				op.VS.Scheduler, op.VS.Scheduler, err)
		}
		errs[idx[k]] = err
	}
	return errs
}

// Timeouts returns the connection timeouts, whole seconds.
//
// Equivalent to: ipvsadm -L --timeout
func (v *IPVS) Timeouts() (state.Timeouts, error) {
	var t state.Timeouts
	sock, family, err := v.socket()
	if err != nil {
		return t, err
	}
	req := nlbatch.NewMessage(family, 0).Header([]byte{cmdGetConfig, genlVersion, 0, 0}).Bytes()
	err = sock.Query(req, func(m nlbatch.Msg) error {
		var perr error
		t, perr = parseConfig(m.Data)
		return perr
	})
	return t, err
}

// SetTimeouts sets the non-zero timeouts and leaves the others. Durations are
// rounded up to whole seconds (the kernel's unit).
//
// Equivalent to: ipvsadm --set TCP TCPFIN UDP (0 for "unchanged")
func (v *IPVS) SetTimeouts(t state.Timeouts) error {
	sock, family, err := v.socket()
	if err != nil {
		return err
	}
	m := nlbatch.NewMessage(family, 0).Header([]byte{cmdSetConfig, genlVersion, 0, 0})
	for _, a := range []struct {
		typ uint16
		d   time.Duration
	}{{cmdAttrTimeoutTCP, t.TCP}, {cmdAttrTimeoutTCPFin, t.TCPFin}, {cmdAttrTimeoutUDP, t.UDP}} {
		if a.d < 0 {
			return fmt.Errorf("negative IPVS timeout %s", a.d)
		}
		if a.d > 0 {
			// Omitted attributes keep the kernel's value.
			m.U32(a.typ, uint32((a.d+time.Second-1)/time.Second))
		}
	}
	return sock.Exec([][]byte{m.Bytes()})[0]
}
