// Package cli implements ipvs-proxy's subcommands.
package cli

import (
	"fmt"
	"io"
	"runtime"
)

// Version and GitCommit are stamped at build time (scripts/lib/version.sh ldflags): the release, from the VERSION
// file, and the git commit it was built from.
var (
	Version   = "dev"
	GitCommit = "unknown"
)

// Main runs the subcommand named by args[0] and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "plan":
		return planCmd(args[1:], stdout, stderr)
	case "run":
		return runCmd(args[1:], stdout, stderr)
	case "cleanup":
		return cleanupCmd(args[1:], stdout, stderr)
	case "status":
		return statusCmd(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "ipvs-proxy %s (commit %s, %s)\n", Version, GitCommit, runtime.Version())
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "ipvs-proxy: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: ipvs-proxy COMMAND [flags]

Commands:
  run       program Services into IPVS (from an API server, or --manifests DIR)
  plan      print the desired kernel state for a manifest directory, kernel-free
  cleanup   remove everything ipvs-proxy programmed (IPVS, kube-ipvs0, KUBE-* sets and chains)
  status    show the running daemon's virtual servers, annotated
  version   print the version

Run "ipvs-proxy COMMAND --help" for a command's flags.
`)
}
