#!/usr/bin/env bash
# make cluster-e2e: the scenarios that run ipvs-proxy the way users run it, as the DaemonSet of manifests/ on a
# real Kubernetes node (package e2e/cluster): a control plane on this host, nodes in user-mode Linux with
# containerd and a kubelet, the image that make image builds.
#
# Environment:
#   CLUSTER_RUN       test name regexp (go test -run), default: all
#   CLUSTER_TIMEOUT   go test -timeout, default 40m
#
# Builds what it needs (idempotent): Debian packages (scripts/cluster/deps.sh), the Kubernetes binaries
# (scripts/k8s/build.sh cluster, cached in ~/.cache/ipvs-proxy), the image (make image), the test binary.
# Logs: _output/cluster/TEST/ (control plane in logs/, each node's console, agent, containerd and kubelet logs in
# node-N/); see docs/testing.md.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export PATH="/usr/local/go/bin:$PATH"

timings=()
phase() {
	local name=$1 start=$SECONDS status=0
	shift
	echo "cluster: == $name"
	"$@" || status=$?
	timings+=("$(printf '%-12s %4ds' "$name" $((SECONDS - start)))")
	return "$status"
}
trap 'echo "cluster: wall time per phase:"; printf "  %s\n" "${timings[@]}"' EXIT

phase deps scripts/cluster/deps.sh
phase k8s scripts/k8s/build.sh cluster
phase image scripts/image/build.sh
phase build env CGO_ENABLED=0 go test -c -o _output/cluster.test ./e2e/cluster
phase tests env IPVS_PROXY_CLUSTER=1 _output/cluster.test -test.v -test.timeout "${CLUSTER_TIMEOUT:-40m}" \
	-test.run "${CLUSTER_RUN:-.}"
