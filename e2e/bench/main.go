// Command bench is the scale benchmark behind `make bench` (scripts/bench.sh).
//
//	bench guest [flags]    in the VM: every measurement in one boot, results as JSON
//	bench report [flags]   on the host: the results as Markdown for docs/benchmarks.md
//
// The guest part generates N Services x 10 endpoints (a mix of ClusterIP,
// NodePort, UDP and ClientIP-affinity Services, endpoints on other nodes)
// and measures, per N: cold starts of ipvs-proxy against loading the same
// state with ipvsadm -R, ipset restore and ip -batch (each repetition in a
// fresh network namespace); single changes, timed by the daemon's
// sinceChange; the idle periodic resync. Then requests/second through a
// VIP against direct, and ipvs-proxy beside kube-proxy in ipvs mode against
// a real API server on the host.
package main

import (
	"fmt"
	"log"
	"os"
)

func main() {
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("bench: ")
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench guest|report [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "guest":
		err = guestCmd(os.Args[2:])
	case "report":
		err = reportCmd(os.Args[2:], os.Stdout)
	default:
		fmt.Fprintf(os.Stderr, "bench: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	if err != nil {
		log.Print(err)
		os.Exit(1)
	}
}
