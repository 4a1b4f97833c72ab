#!/usr/bin/env bash
# make unit: everything that runs on the host.
#   1. unit tests of every package with the race detector (no root needed);
#   2. privileged tests of the kernel layer (ipset, iptables, links, conntrack,
#      pipelined netlink) as root, each in a fresh network namespace;
#   3. tests against a real kube-apiserver and etcd, built from the Go module
#      proxy by scripts/k8s/build.sh (about 7 minutes cold, cached after);
#   4. the packaging checked with the operator's tools (helm lint and template, kubectl apply --dry-run=server
#      of the chart and of every kustomization against that API server, promtool check/test rules), built by
#      scripts/tools/build.sh (helm about 3 minutes cold, cached after);
#   5. a short run of every fuzz target.
# Environment: UNIT_SKIP_K8S=1 skips building the API server and the tools (their tests then skip).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/usr/local/go/bin:$PATH"

step() { echo "unit: == $*"; }

step "host packages (iptables, ipset)"
scripts/vm/deps.sh

if [[ "${UNIT_SKIP_K8S:-}" != 1 ]]; then
	step "kube-apiserver and etcd"
	scripts/k8s/build.sh
	step "helm, kubectl and promtool"
	scripts/tools/build.sh
	export IPVS_PROXY_REQUIRE_K8S=1 IPVS_PROXY_REQUIRE_TOOLS=1
fi

step "go test -race ./..."
# The race detector needs cgo; the Makefile builds static binaries (CGO_ENABLED=0) otherwise.
export CGO_ENABLED=1
go test -race -count=1 ./...

if [[ $(id -u) == 0 ]]; then
	step "privileged kernel tests"
	go test -race -count=1 -tags privileged ./internal/kernel/...
else
	echo "unit: not root: skipping the privileged kernel tests" >&2
fi

if [[ -x scripts/fuzz.sh ]]; then
	step "fuzz"
	scripts/fuzz.sh
fi
echo "unit: ok"
