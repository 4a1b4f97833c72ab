package cli

import (
	"runtime"
	"strings"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	"k8s.io/klog/v2"
)

// klogCore is a zapcore.Core that hands every entry to the logr.Logger that
// component-base's logsapi configured for klog (its text or JSON format).
// The packages keep their *zap.Logger (STYLE.md) while their lines and
// client-go's share one output, one format, one -v and one --vmodule.
//
// Levels: zap's Info and Warn become V(0) info lines (klog has no warning
// level), Error and above become klog errors, Debug becomes V(4) (this
// project's "-v 4 logs every planned operation"), and each level below Debug
// one more. zap.Error fields are passed as the error itself under klog's key
// "err".
type klogCore struct {
	sink   logr.Logger
	fields []zapcore.Field
	// maxVModule is the highest verbosity a --vmodule pattern grants: a
	// debug entry may be enabled for some file even when -v is lower, and
	// only Write knows the calling file.
	maxVModule int
}

func newKlogCore(sink logr.Logger, maxVModule int) *klogCore {
	return &klogCore{sink: sink, maxVModule: maxVModule}
}

// verbosity maps a zap level to a klog verbosity.
func verbosity(l zapcore.Level) int {
	if l >= zapcore.InfoLevel {
		return 0
	}
	return 4 + int(zapcore.DebugLevel-l)
}

// Enabled answers cheaply whether any caller could log at l; Write makes
// the exact decision (--vmodule depends on the calling file).
func (c *klogCore) Enabled(l zapcore.Level) bool {
	v := verbosity(l)
	return v == 0 || v <= c.maxVModule || klog.V(klog.Level(v)).Enabled()
}

// With returns a core that adds fields to every entry.
func (c *klogCore) With(fields []zapcore.Field) zapcore.Core {
	clone := *c
	clone.fields = append(append([]zapcore.Field(nil), c.fields...), fields...)
	return &clone
}

// Check adds the core to ce when the level may be logged.
func (c *klogCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(ent.Level) {
		return ce.AddCore(ent, c)
	}
	return ce
}

// Write hands the entry to klog's logger, attributed to the code that logged it.
func (c *klogCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	l := c.sink.WithCallDepth(callerDepth())
	if ent.LoggerName != "" {
		l = l.WithName(ent.LoggerName)
	}
	kvs, err := keysAndValues(c.fields, fields, ent.Level >= zapcore.ErrorLevel)
	if ent.Stack != "" {
		kvs = append(kvs, "stacktrace", ent.Stack)
	}
	if ent.Level >= zapcore.ErrorLevel {
		l.Error(err, ent.Message, kvs...)
		return nil
	}
	l.V(verbosity(ent.Level)).Info(ent.Message, kvs...)
	return nil
}

// Sync flushes klog's buffers.
func (c *klogCore) Sync() error {
	klog.Flush()
	return nil
}

// keysAndValues turns zap fields into logr's key/value list. With takeErr,
// the first zap.Error field is returned apart, for logr's Error.
func keysAndValues(with, fields []zapcore.Field, takeErr bool) ([]any, error) {
	var kvs []any
	var err error
	for _, list := range [][]zapcore.Field{with, fields} {
		for _, f := range list {
			switch f.Type {
			case zapcore.SkipType, zapcore.NamespaceType:
				continue
			case zapcore.ErrorType:
				e, _ := f.Interface.(error)
				key := f.Key
				if key == "error" {
					key = "err" // klog's key for errors, in both formats
				}
				if takeErr && err == nil && key == "err" {
					err = e
					continue
				}
				kvs = append(kvs, key, e)
				continue
			}
			enc := zapcore.NewMapObjectEncoder()
			f.AddTo(enc)
			if v, ok := enc.Fields[f.Key]; ok {
				kvs = append(kvs, f.Key, v)
			}
		}
	}
	return kvs, err
}

// callerDepth is the logr.Logger.WithCallDepth that makes Write's logr
// call name the code that called the *zap.Logger: Write itself (logr's
// depth 0) plus zap's own frames above it, however the call was made
// (Logger, SugaredLogger, Check). The text format names that file in its
// header and --vmodule matches it; the JSON format's caller names it.
func callerDepth() int {
	var pcs [16]uintptr
	// skip runtime.Callers, callerDepth and Write
	n := runtime.Callers(3, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	depth := 1
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "go.uber.org/zap.") && !strings.HasPrefix(f.Function, "go.uber.org/zap/") {
			return depth
		}
		depth++
		if !more {
			return depth
		}
	}
}
