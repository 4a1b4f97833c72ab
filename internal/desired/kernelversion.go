package desired

import (
	"strconv"
	"strings"
)

// SysctlConnReuseMode is IPVS's connection reuse setting.
const SysctlConnReuseMode = "net/ipv4/vs/conn_reuse_mode"

// Kernel releases that bound conn_reuse_mode handling, as in kube-proxy.
var (
	// connReuseMin is the first kernel with net/ipv4/vs/conn_reuse_mode.
	connReuseMin = [2]int{4, 1}
	// connReuseFixed is the first kernel whose connection reuse no longer
	// delays a new connection on a reused client port by a second
	// (kubernetes#93297; fixed by "ipvs: allow connection reuse for
	// unconfirmed conntrack").
	connReuseFixed = [2]int{5, 9}
)

// ConnReuseMode says what to do with conn_reuse_mode on a kernel release:
// set it to 0 on kernels from 4.1 to before 5.9, where reusing an IPVS
// connection costs a new connection a one-second SYN retransmission; leave it
// alone on newer kernels (fixed) and older ones (no such sysctl). tooOld
// reports a kernel without the sysctl, which kube-proxy logs as an error.
// An unknown release leaves it alone.
func ConnReuseMode(release string) (value string, set, tooOld bool) {
	v, ok := kernelVersion(release)
	switch {
	case !ok:
		return "", false, false
	case less(v, connReuseMin):
		return "", false, true
	case less(v, connReuseFixed):
		return "0", true, false
	}
	return "", false, false
}

// kernelVersion parses the major and minor numbers of a release such as
// "6.1.0-18-amd64".
func kernelVersion(release string) ([2]int, bool) {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return [2]int{}, false
	}
	major, err1 := strconv.Atoi(parts[0])
	digits := strings.IndexFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' })
	if digits < 0 {
		digits = len(parts[1])
	}
	minor, err2 := strconv.Atoi(parts[1][:digits])
	if err1 != nil || err2 != nil {
		return [2]int{}, false
	}
	return [2]int{major, minor}, true
}

func less(a, b [2]int) bool { return a[0] < b[0] || (a[0] == b[0] && a[1] < b[1]) }
