package cli

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/link"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/sysctl"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// openKernel opens the real kernel interfaces in the current network
// namespace for the rules backend rb. A kernel without IPVS is a startup
// error that says what to load.
func openKernel(log *zap.Logger, backend iptables.Backend, rb state.RulesBackend) (kernel.Kernel, func(), error) {
	if backend == "auto" {
		var why string
		backend, why = iptables.Detect(context.Background())
		log.Info("iptables backend", zap.String("backend", string(backend)), zap.String("why", why))
	}
	v := ipvs.New(ipvs.Config{})
	l := link.New(link.Config{})
	s := ipset.New(ipset.Config{})
	c := conntrack.New(conntrack.Config{})
	var closers []func() error
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i]()
		}
	}
	for _, o := range []struct {
		name  string
		open  func() error
		close func() error
	}{
		{"IPVS", v.Open, v.Close}, {"netlink (links)", l.Open, l.Close},
		{"ipset", s.Open, s.Close}, {"conntrack", c.Open, c.Close},
	} {
		if err := o.open(); err != nil {
			closeAll()
			return kernel.Kernel{}, nil, fmt.Errorf("open %s: %w", o.name, err)
		}
		closers = append(closers, o.close)
	}
	k := kernel.Kernel{IPVS: v, Link: l, IPSet: s, IPTables: iptables.New(iptables.ConfigFor(backend)), Sysctl: sysctl.New(sysctl.Config{}), Conntrack: c}
	n, err := openNFTables(log, rb)
	if err != nil {
		closeAll()
		return kernel.Kernel{}, nil, err
	}
	if n != nil {
		k.NFTables = n
	}
	if rb != state.BackendIPTables {
		k.IPSet = ipsetIfLoaded{s}
	}
	log.Debug("kernel interfaces open")
	return k, closeAll, nil
}

// checkScheduler fails at startup when the kernel cannot use the configured
// scheduler, naming the modprobe line, instead of failing every sync with a
// netlink errno. The kernel is asked directly (it loads the module if it can).
func checkScheduler(k kernel.Kernel, name string) error {
	p, ok := k.IPVS.(interface{ CheckScheduler(string) error })
	if !ok {
		return nil
	}
	if err := p.CheckScheduler(name); err != nil {
		return fmt.Errorf("ipvs.scheduler %q: %w", name, err)
	}
	return nil
}
