package cli

import (
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ipvs-proxy/ipvs-proxy/internal/desired"
)

// kernelRelease returns the running kernel's release (uname -r), or the
// testing override, and logs what that means for conn_reuse_mode.
func kernelRelease(f *runFlags, log *zap.Logger) string {
	release := f.kernelRelease
	if release == "" {
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			log.Warn("cannot read the kernel release; net/ipv4/vs/conn_reuse_mode is left alone", zap.Error(err))
			return ""
		}
		release = unix.ByteSliceToString(u.Release[:])
	} else {
		log.Warn("kernel release overridden for testing", zap.String("release", release))
	}
	switch v, set, tooOld := desired.ConnReuseMode(release); {
	case set:
		log.Info("kernel before 5.9: setting conn_reuse_mode as kube-proxy does (kubernetes#93297)",
			zap.String("kernel", release), zap.String(desired.SysctlConnReuseMode, v))
	case tooOld:
		log.Error("kernel before 4.1 has no conn_reuse_mode; IPVS connection reuse stays as the kernel does it",
			zap.String("kernel", release))
	}
	return release
}
