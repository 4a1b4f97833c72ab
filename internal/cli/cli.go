// Package cli implements ipvs-proxy's command line: run (the daemon), plan,
// cleanup, status, version, help and shell completion, on cobra (kube-proxy's
// command-line library). It is also the edge where logging is configured
// (logging.go) and where the daemon is assembled from the packages (daemon.go).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/internal/state"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	// exitUsage: a flag, an argument or a command was wrong.
	exitUsage = 2
	// exitRestart: the config file changed a field that needs a restart;
	// the daemon stopped cleanly (kernel state kept) so that its supervisor
	// starts it again. Not 0, so that a systemd Restart=on-failure restarts it too.
	exitRestart = 3
)

// exitCodeError carries a command's exit code; its message is printed
// unless it is empty.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitCodeError) Unwrap() error { return e.err }

// fail returns the error a command's RunE returns for a failure.
func fail(code int, format string, args ...any) error {
	return &exitCodeError{code: code, err: fmt.Errorf(format, args...)}
}

// app holds what the commands need from outside: the kernel, the signals
// that stop the daemon and the process settings' files; tests replace them.
type app struct {
	openKernel                 func(log *zap.Logger, backend iptables.Backend, rb state.RulesBackend) (kernel.Kernel, func(), error)
	signals                    func() (context.Context, context.CancelFunc)
	oomScoreFile, hashsizeFile string
}

func defaultApp() *app {
	return &app{
		oomScoreFile: oomScoreAdjFile, hashsizeFile: conntrackHashsizeFile,
		openKernel: openKernel,
		signals: func() (context.Context, context.CancelFunc) {
			return signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		},
	}
}

// Main runs the command named by args and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	return defaultApp().main(args, stdout, stderr)
}

// main runs args. Flags without a command mean `run`, so that a kube-proxy
// DaemonSet's arguments (`--config=... --hostname-override=...`) work as they are.
func (a *app) main(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && strings.HasPrefix(args[0], "-") && !isHelpOrVersion(args[0]) {
		args = append([]string{"run"}, args...)
	}
	root := a.rootCommand(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	var ec *exitCodeError
	if errors.As(err, &ec) {
		if msg := ec.Error(); msg != "" {
			fmt.Fprintf(stderr, "%s: %s\n", cmd.Name(), msg)
		}
		return ec.code
	}
	// cobra's own errors: an unknown command, flag or argument
	fmt.Fprintf(stderr, "Error: %v\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
	return exitUsage
}

func isHelpOrVersion(arg string) bool {
	switch arg {
	case "-h", "--help", "--version":
		return true
	}
	return false
}

func (a *app) rootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "ipvs-proxy",
		Short: "Kubernetes Service load balancing through the kernel's IPVS",
		Long: `ipvs-proxy programs a node's Kubernetes Services into the Linux kernel's IPVS, reading the same
KubeProxyConfiguration as kube-proxy's ipvs mode and programming the same kernel objects.

Flags without a command run the daemon: "ipvs-proxy --config FILE" is "ipvs-proxy run --config FILE".`,
		Version:       Version,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(stderr)
			_ = cmd.Usage()
			return &exitCodeError{code: exitUsage}
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("ipvs-proxy {{.Version}}\n")
	// defined here so that cobra gives it no -v: -v is the log verbosity everywhere
	root.Flags().Bool("version", false, "print the version")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })
	root.AddCommand(a.runCommand(stdout, stderr), planCommand(stdout, stderr), a.cleanupCommand(stdout, stderr),
		statusCommand(stdout), versionCommand(stdout))
	return root
}

func versionCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			commit := gitCommit()
			if commit == "" {
				commit = "unknown"
			}
			fmt.Fprintf(stdout, "ipvs-proxy %s (commit %s, %s)\n", Version, commit, runtime.Version())
			return nil
		},
	}
}
