// Command ipvs-proxy programs a node's Kubernetes Service load balancing into
// the Linux kernel's IPVS. See `ipvs-proxy help`.
package main

import (
	"os"

	"github.com/ipvs-proxy/ipvs-proxy/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
