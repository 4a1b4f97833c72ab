#!/usr/bin/env bash
# make conformance: Kubernetes' own end-to-end suite (e2e.test of the cluster's Kubernetes version) against
# ipvs-proxy deployed as the README says on the cluster harness (e2e/cluster): the Service specs and the
# sig-network conformance specs that one node can run. docs/conformance.md has the result and the skips.
#
# Environment:
#   CONFORMANCE_SET   full (default: testdata/conformance/focus.txt) or ci (ci.txt, the part make test runs)
#   CONFORMANCE_OUT   where e2e.log, junit_01.xml and results.md go, default _output/conformance[-ci]
#
# Builds what it needs (idempotent, cached in ~/.cache/ipvs-proxy): the cluster's binaries and test image file
# system and e2e.test (scripts/k8s/build.sh), the image (make image); then runs TestConformance in e2e/cluster.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export PATH="/usr/local/go/bin:$PATH"
# shellcheck source=lib/cache.sh
source scripts/lib/cache.sh

set_name=${CONFORMANCE_SET:-full}
case "$set_name" in
full) focus=e2e/cluster/testdata/conformance/focus.txt out=_output/conformance ;;
ci) focus=e2e/cluster/testdata/conformance/ci.txt out=_output/conformance-ci ;;
*)
	echo "CONFORMANCE_SET must be full or ci" >&2
	exit 2
	;;
esac

timings=()
phase() {
	local name=$1 start=$SECONDS status=0
	shift
	echo "conformance: == $name"
	"$@" || status=$?
	timings+=("$(printf '%-12s %4ds' "$name" $((SECONDS - start)))")
	return "$status"
}
trap 'echo "conformance: wall time per phase:"; printf "  %s\n" "${timings[@]}"' EXIT

phase deps scripts/cluster/deps.sh
phase k8s scripts/k8s/build.sh cluster e2e.test
phase image scripts/image/build.sh
phase build env CGO_ENABLED=0 go test -c -o _output/cluster.test ./e2e/cluster
version=$(cd scripts/k8s && GOWORK=off GOFLAGS=-mod=mod go list -m -f '{{.Version}}' k8s.io/kubernetes)
phase tests env IPVS_PROXY_CLUSTER=1 CONFORMANCE_E2E_TEST="$IPVS_PROXY_CACHE/k8s/$version/bin/e2e.test" \
	CONFORMANCE_FOCUS="$root/$focus" CONFORMANCE_OUT="${CONFORMANCE_OUT:-$root/$out}" \
	_output/cluster.test -test.v -test.timeout 5h -test.run '^TestConformance$'
