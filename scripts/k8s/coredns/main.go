// Command coredns is CoreDNS with the plugins a kubeadm cluster's Corefile uses (see plugins below), built
// from the module proxy by scripts/k8s/build.sh for the cluster harness's DNS scenario. The full CoreDNS binary
// links every plugin (cloud DNS providers included) and takes several times longer to build.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	// The plugins of kubeadm's Corefile, in CoreDNS's own order (plugin.cfg).
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

// plugins is the order in which the plugins handle a query; the same relative order as CoreDNS's plugin.cfg.
var plugins = []string{
	"prometheus", "errors", "log", "health", "ready", "loadbalance", "cache", "reload", "loop", "kubernetes", "forward",
}

func init() { dnsserver.Directives = plugins }

func main() { coremain.Run() }
