package desired

import (
	"strconv"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// Per-Service annotations that refine IPVS scheduling.
const (
	AnnotationScheduler          = "ipvs-proxy.io/scheduler"
	AnnotationSchedulerFlags     = "ipvs-proxy.io/scheduler-flags"
	AnnotationPersistenceNetmask = "ipvs-proxy.io/persistence-netmask"
)

// schedSettings is how a Service's virtual servers schedule.
type schedSettings struct {
	name  string
	flags uint32
	// bits4/bits6 are the persistence netmask prefix lengths (0: one address).
	bits4, bits6 int
}

// AnnotatedScheduler returns the scheduler a Service's annotation names, if
// it is one IPVS knows (whether this node's kernel has it is another matter:
// see Input.MissingSchedulers).
func AnnotatedScheduler(ann map[string]string) (string, bool) {
	v, ok := ann[AnnotationScheduler]
	v = strings.TrimSpace(v)
	return v, ok && state.ValidScheduler(v)
}

// schedulerFor applies the annotations over the node default. An invalid
// annotation never falls back silently: it is reported and ignored, and the
// Service keeps the node's default for that setting. A scheduler this
// node's kernel lacks is refused the same way: the kernel would refuse every
// operation of the Service.
func schedulerFor(def string, missing map[string]bool, ann map[string]string, errs *objErrs) schedSettings {
	s := schedSettings{name: def}
	if v, ok := ann[AnnotationScheduler]; ok {
		v = strings.TrimSpace(v)
		switch {
		case !state.ValidScheduler(v):
			errs.add("metadata.annotations["+AnnotationScheduler+"]", "unknown scheduler %q (allowed: %s); using the default %q",
				v, strings.Join(state.Schedulers, ", "), def)
		case missing[v]:
			errs.add("metadata.annotations["+AnnotationScheduler+"]", "this node's kernel has no scheduler %q (load it with `modprobe ip_vs_%s`); using the default %q",
				v, v, def)
		default:
			s.name = v
		}
	}
	if v, ok := ann[AnnotationSchedulerFlags]; ok {
		flags, bad := parseSchedFlags(s.name, v)
		if bad != "" {
			errs.add("metadata.annotations["+AnnotationSchedulerFlags+"]", "%s; no scheduler flags set", bad)
		} else {
			s.flags = flags
		}
	} else if s.name == "mh" {
		s.flags = state.FlagSched2 // kube-proxy always hashes the source port with mh
	}
	if v, ok := ann[AnnotationPersistenceNetmask]; ok {
		b4, b6, bad := parseNetmask(v)
		if bad != "" {
			errs.add("metadata.annotations["+AnnotationPersistenceNetmask+"]", "%s; using one client address", bad)
		} else {
			s.bits4, s.bits6 = b4, b6
		}
	}
	return s
}

// parseSchedFlags parses "mh-fallback,mh-port"; flags must match the scheduler.
func parseSchedFlags(sched, v string) (uint32, string) {
	var flags uint32
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		prefix, kind, ok := strings.Cut(f, "-")
		if !ok || (prefix != "sh" && prefix != "mh") || (kind != "fallback" && kind != "port") {
			return 0, strconv.Quote(f) + " is not a scheduler flag (allowed: sh-fallback, sh-port, mh-fallback, mh-port)"
		}
		if prefix != sched {
			return 0, strconv.Quote(f) + " needs scheduler " + prefix + ", the Service uses " + sched
		}
		if kind == "fallback" {
			flags |= state.FlagSched1
		} else {
			flags |= state.FlagSched2
		}
	}
	return flags, ""
}

// parseNetmask parses "24" (IPv4 prefix length) or "24,64" (IPv4, IPv6).
func parseNetmask(v string) (int, int, string) {
	parts := strings.Split(v, ",")
	if len(parts) > 2 {
		return 0, 0, strconv.Quote(v) + " is not a prefix length or IPv4,IPv6 pair such as \"24,64\""
	}
	out := [2]int{32, 128}
	for i, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 || n > out[i] {
			return 0, 0, strconv.Quote(v) + " is not a prefix length or IPv4,IPv6 pair such as \"24,64\""
		}
		out[i] = n
	}
	return out[0], out[1], ""
}
