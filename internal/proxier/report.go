package proxier

import (
	"slices"

	"go.uber.org/zap"
)

// reportErrors logs and reports a Service's errors when they change: its
// invalid fields, the virtual servers it lost to another Service, and the
// kernel's refusals of its operations.
func (p *Proxier) reportErrors(key string) {
	invalid := p.index.Errors(key)
	errs := append(slices.Clone(invalid), p.failureErrors(key)...)
	if sameErrors(errs, p.errs[key]) {
		return
	}
	for _, e := range invalid {
		if !slices.ContainsFunc(p.errs[key], func(o error) bool { return o.Error() == e.Error() }) {
			p.log.Warn("invalid object", zap.String("service", key), zap.Error(e))
		}
	}
	if len(errs) == 0 {
		delete(p.errs, key)
	} else {
		p.errs[key] = errs
	}
	if p.cfg.Reporter != nil {
		p.cfg.Reporter.ServiceErrors(key, errs)
	}
	if m := p.cfg.Metrics; m != nil {
		n := 0
		for k, e := range p.errs {
			n += len(e) - len(p.failureErrors(k))
		}
		m.InvalidObjs.Set(float64(n))
	}
}
