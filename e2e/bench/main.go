// Command bench is the scale benchmark behind `make bench` (scripts/bench.sh).
//
//	bench guest [flags]    in the VM: every measurement in one boot, results as JSON
//	bench report [flags]   on the host: the results as Markdown for docs/benchmarks.md
//	bench floor [flags]    the floor loader, run by guest in a fresh namespace
//	bench load [flags]     the datapath's client, run by guest
//
// The guest part generates N Services x 10 endpoints (a mix of ClusterIP,
// NodePort, UDP and ClientIP-affinity Services, endpoints on other nodes)
// and measures, per N: cold starts of ipvs-proxy against the floor loader
// and against ipvsadm -R, ipset restore and ip -batch (each repetition in a
// fresh network namespace); single changes on an idle daemon, timed by its
// sync events; the idle periodic resync; and, under a netlink monitor, the
// requests each of them sends. Then requests/second through a VIP against
// direct, and ipvs-proxy beside kube-proxy in ipvs mode against a real API
// server on the host. Processes, namespaces, backends and the sync events
// come from e2e/framework, as in the end-to-end scenarios.
package main

import (
	"fmt"
	"log"
	"os"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/framework"
)

func main() {
	if code, ok := framework.PlayRole(); ok {
		os.Exit(code) // a backend re-executed by the framework
	}
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("bench: ")
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench guest|report|floor|load [flags]")
		os.Exit(2)
	}
	commands := map[string]func([]string) error{
		"guest":  guestCmd,
		"report": func(args []string) error { return reportCmd(args, os.Stdout) },
		"floor":  floorCmd,
		"load":   loadCmd,
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "bench: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	if err := cmd(os.Args[2:]); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}
