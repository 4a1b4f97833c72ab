package config

import (
	"reflect"
	"slices"
)

// A running daemon applies a changed file in place (the proxier recomputes
// and edits every virtual server, the sysctls, the rules and the timeouts),
// except for the fields below: they are read once, by servers, clients and
// global state set up at startup, so a change to them makes the daemon stop
// cleanly and be restarted (its kernel state stays, like on any restart).
var restartFields = []struct {
	field string
	get   func(*Config) any
}{
	{"hostnameOverride", func(c *Config) any { return c.HostnameOverride }},
	{"healthzBindAddress", func(c *Config) any { return c.HealthzBindAddress }},
	{"metricsBindAddress", func(c *Config) any { return c.MetricsBindAddress }},
	{"enableProfiling", func(c *Config) any { return c.EnableProfiling }},
	{"clientConnection.kubeconfig", func(c *Config) any { return c.Kubeconfig }},
	{"clientConnection.qps", func(c *Config) any { return c.QPS }},
	{"clientConnection.burst", func(c *Config) any { return c.Burst }},
	{"clientConnection.contentType", func(c *Config) any { return c.ContentType }},
	{"clientConnection.acceptContentTypes", func(c *Config) any { return c.AcceptContentTypes }},
	{"configSyncPeriod", func(c *Config) any { return c.ConfigSyncPeriod }},
	{"featureGates", func(c *Config) any { return c.FeatureGates }},
	// the daemon opens nft or not, and may have chosen for auto, at startup
	{"ipvsProxy.rulesBackend", func(c *Config) any { return c.RulesBackend }},
	// the format and output options are global (logsapi applies them once);
	// the verbosity changes in place
	{"logging.format", func(c *Config) any { return c.Logging.Format }},
	{"logging.flushFrequency", func(c *Config) any { return c.Logging.FlushFrequency.Duration.Duration }},
	{"logging.vmodule", func(c *Config) any { return c.Logging.VModule }},
	{"logging.options", func(c *Config) any { return c.Logging.Options }},
}

// NeedRestart lists the fields that differ between a running configuration
// and a new one and cannot be applied in place (empty: apply it live).
func NeedRestart(running, next *Config) []string {
	var out []string
	for _, f := range restartFields {
		a, b := f.get(running), f.get(next)
		if !equalValues(a, b) {
			out = append(out, f.field)
		}
	}
	return out
}

// equalValues compares field values; nil and empty maps and slices are equal
// (a file that drops an empty list has not changed it).
func equalValues(a, b any) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Kind() == vb.Kind() && (va.Kind() == reflect.Map || va.Kind() == reflect.Slice) && va.Len() == 0 && vb.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

// RestartFieldNames lists the fields whose change needs a restart (for docs and tests).
func RestartFieldNames() []string {
	out := make([]string, 0, len(restartFields))
	for _, f := range restartFields {
		out = append(out, f.field)
	}
	return slices.Clip(out)
}
