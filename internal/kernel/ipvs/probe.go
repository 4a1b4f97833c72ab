package ipvs

import (
	"errors"
	"net/netip"
	"syscall"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// probeKey is a virtual server no packet can match (destination 0.0.0.0),
// created for an instant to make the kernel load a scheduler module.
var probeKey = state.VSKey{Proto: state.TCP, Addr: netip.IPv4Unspecified(), Port: 1}

// CheckScheduler asks the kernel whether it can use a scheduler: it creates
// and at once deletes a virtual server with it, which makes the kernel load
// the module (ip_vs_NAME) if it can. This works where /lib/modules is not
// visible, as in a container. The error names the modprobe line.
//
// Equivalent to: ipvsadm -A -t 0.0.0.0:1 -s NAME && ipvsadm -D -t 0.0.0.0:1
func (v *IPVS) CheckScheduler(name string) error {
	vs := state.VirtualServer{Key: probeKey, Scheduler: name}
	errs := v.Exec([]kernel.IPVSOp{{Cmd: kernel.AddService, VS: vs}, {Cmd: kernel.DelService, VS: vs}})
	switch {
	case errs[0] == nil, errors.Is(errs[0], syscall.EEXIST):
		return nil
	default:
		return errs[0]
	}
}
