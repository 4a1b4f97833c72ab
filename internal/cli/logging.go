package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"k8s.io/component-base/featuregate"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	_ "k8s.io/component-base/logs/json/register" // --logging-format=json, as in kube-proxy
	"k8s.io/klog/v2"
)

// Logging is configured the way kube-proxy configures it: component-base's
// logsapi owns the format (text or json), -v and --vmodule, from the config
// file's logging block with the command line's logging flags over it. klog,
// and so client-go, writes through the logger logsapi sets up; ipvs-proxy's
// own packages get a *zap.Logger whose core (klogCore) writes into the same
// logger.

// addLoggingFlags adds kube-proxy's logging flags (-v, --vmodule,
// --logging-format, ...) bound to c, and the old --log-format as a hidden alias.
func addLoggingFlags(fs *pflag.FlagSet, c *logsapi.LoggingConfiguration) {
	logsapi.AddFlags(c, fs)
	fs.StringVar(&c.Format, "log-format", c.Format, "log format: text or json")
	_ = fs.MarkDeprecated("log-format", "use --logging-format (kube-proxy's name)")
}

// mergeLogging returns the file's logging configuration with every logging
// flag given on the command line over it, like kube-proxy: `--config F -v 4`
// raises the verbosity whatever F says. --vmodule entries from the command
// line come first, so they win over the file's for the same pattern.
func mergeLogging(fs *pflag.FlagSet, file logsapi.LoggingConfiguration) (logsapi.LoggingConfiguration, error) {
	out := *file.DeepCopy()
	var target pflag.FlagSet
	addLoggingFlags(&target, &out)
	fileVModule := out.VModule
	out.VModule = nil
	var err error
	fs.Visit(func(f *pflag.Flag) {
		t := target.Lookup(f.Name)
		if t == nil || err != nil {
			return
		}
		if e := t.Value.Set(f.Value.String()); e != nil {
			err = fmt.Errorf("--%s: %w", f.Name, e)
		}
	})
	out.VModule = append(out.VModule, fileVModule...)
	return out, err
}

// loggingFeatureGate holds the logging feature gates (json is a beta
// option, on by default; split streams are alpha), set from the config
// file's featureGates for the names it knows. It returns the names it
// does not know.
func loggingFeatureGate(fromFile map[string]bool) (featuregate.FeatureGate, []string, error) {
	fg := featuregate.NewFeatureGate()
	if err := logsapi.AddFeatureGates(fg); err != nil {
		return nil, nil, err
	}
	known := fg.GetAll()
	set := map[string]bool{}
	var unknown []string
	for name, v := range fromFile {
		if _, ok := known[featuregate.Feature(name)]; ok {
			set[name] = v
		} else {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	if err := fg.SetFromMap(set); err != nil {
		return nil, nil, fmt.Errorf("featureGates: %w", err)
	}
	return fg, unknown, nil
}

// setupLogging applies c (once per process: logsapi and klog are global)
// and returns the logger for ipvs-proxy's packages. Both formats write to out.
func setupLogging(c *logsapi.LoggingConfiguration, fg featuregate.FeatureGate, out io.Writer) (*zap.Logger, error) {
	if err := logsapi.ValidateAndApplyWithOptions(c, &logsapi.LoggingOptions{ErrorStream: out, InfoStream: out}, fg); err != nil {
		return nil, fmt.Errorf("logging: %w", err)
	}
	maxV := 0
	for _, item := range c.VModule {
		maxV = max(maxV, int(item.Verbosity))
	}
	return zap.New(newKlogCore(klog.Background(), maxV)), nil
}

// setVerbosity changes -v at run time (a config reload), as kube-proxy's
// /debug/flags/v does.
func setVerbosity(v logsapi.VerbosityLevel) error {
	_, err := logs.GlogSetter(fmt.Sprint(uint32(v)))
	return err
}

// describeLogging is the logging part of the startup line.
func describeLogging(c *logsapi.LoggingConfiguration) string {
	s := fmt.Sprintf("%s, -v %d", c.Format, c.Verbosity)
	if len(c.VModule) > 0 {
		var parts []string
		for _, item := range c.VModule {
			parts = append(parts, fmt.Sprintf("%s=%d", item.FilePattern, item.Verbosity))
		}
		s += ", --vmodule " + strings.Join(parts, ",")
	}
	return s
}
