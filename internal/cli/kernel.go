package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/link"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/sysctl"
)

// openKernel opens the real kernel interfaces in the current network
// namespace. A kernel without IPVS is a startup error that says what to load.
func openKernel(log *zap.Logger) (kernel.Kernel, func(), error) {
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
	k := kernel.Kernel{IPVS: v, Link: l, IPSet: s, IPTables: iptables.New(iptables.Config{}), Sysctl: sysctl.New(sysctl.Config{}), Conntrack: c}
	log.Debug("kernel interfaces open")
	return k, closeAll, nil
}

// checkScheduler fails at startup when the configured scheduler's module is
// neither loaded nor installed, naming the modprobe line, instead of failing
// every sync with a netlink errno. When the module tree is not visible (no
// /lib/modules mount) it cannot tell and lets the kernel decide.
func checkScheduler(name string) error {
	mod := "ip_vs_" + name
	if _, err := os.Stat(filepath.Join("/sys/module", mod)); err == nil {
		return nil
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return nil
	}
	release := unix.ByteSliceToString(u.Release[:])
	dir := filepath.Join("/lib/modules", release)
	dep, err := os.ReadFile(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil // module tree not visible: cannot tell
	}
	builtin, _ := os.ReadFile(filepath.Join(dir, "modules.builtin"))
	for _, line := range strings.Split(string(dep)+"\n"+string(builtin), "\n") {
		path, _, _ := strings.Cut(line, ":")
		base := filepath.Base(strings.TrimSpace(path))
		if base == mod+".ko" || strings.HasPrefix(base, mod+".ko.") {
			return nil
		}
	}
	return fmt.Errorf("IPVS scheduler %q is not available: module %s is neither loaded nor installed for kernel %s; "+
		"run `modprobe %s` (or install it), or choose another ipvs.scheduler", name, mod, release, mod)
}
