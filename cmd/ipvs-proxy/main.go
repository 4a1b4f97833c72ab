// Command ipvs-proxy programs a node's Kubernetes Service load balancing into
// the Linux kernel's IPVS.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "ipvs-proxy: not implemented yet")
	os.Exit(2)
}
