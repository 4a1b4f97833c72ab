package cli

import (
	"fmt"
	"io"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newLogger builds the one logger the daemon passes down: console text or
// JSON lines on w, at info or debug.
func newLogger(w io.Writer, format string, verbosity int) (*zap.Logger, error) {
	level := zapcore.InfoLevel
	if verbosity >= 4 {
		level = zapcore.DebugLevel
	}
	ecfg := zap.NewProductionEncoderConfig()
	ecfg.EncodeTime = zapcore.ISO8601TimeEncoder
	ecfg.EncodeDuration = zapcore.StringDurationEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(ecfg)
	case "text", "":
		ecfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ecfg)
	default:
		return nil, fmt.Errorf("--log-format: %q is not text or json", format)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), level)), nil
}
