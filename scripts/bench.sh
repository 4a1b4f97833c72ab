#!/usr/bin/env bash
# make bench: the scale benchmark (see docs/benchmarks.md). Not part of CI.
#
# Boots the qemu guest once (2 vCPUs as in /work/shared/BENCH-NOTES.md; 6 GiB,
# which 30,000 Services need) with a real kube-apiserver and etcd on the host,
# and runs `bench guest` (e2e/bench) there: cold starts of ipvs-proxy against
# the floor loader and ipvsadm -R / ipset restore / ip -batch, single changes,
# idle resyncs, the netlink monitor's counts, the datapath, and kube-proxy
# v1.34.4 in ipvs mode against the same objects. Then runs the compute and
# plan Go benchmarks on the host and writes the tables into docs/benchmarks.md
# between its "generated" markers.
#
# Environment:
#   BENCH_GUEST_ARGS  extra `bench guest` flags, e.g. "-n 100,1000 -api-n 1000"
#   BENCH_TIMEOUT     guest time limit in seconds (default 14400)
#   BENCH_MEM         guest memory in MiB (default 6144)
#   BENCH_DOC         the document to update (default docs/benchmarks.md; "-" prints only)
#
# Output: _output/bench/share/results.json, the daemons' logs in
# _output/bench/share/artifacts, the guest console in _output/vm/bench-console.log.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/cache.sh
source "$root/scripts/lib/cache.sh"
cd "$root"
export PATH="/usr/local/go/bin:$PATH"

share="$root/_output/bench/share"
doc=${BENCH_DOC:-docs/benchmarks.md}
read -r -a guest_args <<<"${BENCH_GUEST_ARGS:-}"

timings=()
phase() {
	local name=$1 start=$SECONDS status=0
	shift
	echo "bench: == $name"
	"$@" || status=$?
	timings+=("$(printf '%-12s %5ds' "$name" $((SECONDS - start)))")
	return "$status"
}

apiserver_pid=""
finish() {
	if [[ -n "$apiserver_pid" ]]; then
		kill "$apiserver_pid" 2>/dev/null || true
		wait "$apiserver_pid" 2>/dev/null || true
	fi
	echo "bench: wall time per phase:"
	printf '  %s\n' "${timings[@]}"
}
trap finish EXIT

image() {
	VM_IMAGE_DIR=$(scripts/vm/image.sh)
	export VM_IMAGE_DIR
}

build() {
	rm -rf "$share"
	mkdir -p "$share/bin" "$share/artifacts"
	CGO_ENABLED=0 go build -o "$share/bin/ipvs-proxy" ./cmd/ipvs-proxy
	CGO_ENABLED=0 go build -o "$share/bin/bench" ./e2e/bench
	scripts/k8s/build.sh kube-apiserver etcd kube-proxy
	local version
	version=$(cd scripts/k8s && GOWORK=off GOFLAGS=-mod=mod go list -m -f '{{.Version}}' k8s.io/kubernetes)
	cp "$IPVS_PROXY_CACHE/k8s/$version/bin/kube-proxy" "$share/bin/"
	CGO_ENABLED=0 go build -o "$root/_output/bin/testapiserver" ./internal/testenv/apiserver/testapiserver
}

apiserver() {
	mkdir -p "$share/k8s"
	"$root/_output/bin/testapiserver" --dir "$share/k8s" >"$share/artifacts/apiserver.log" 2>&1 &
	apiserver_pid=$!
	for _ in $(seq 120); do
		grep -q '^ready' "$share/artifacts/apiserver.log" && return 0
		if ! kill -0 "$apiserver_pid" 2>/dev/null; then
			tail -20 "$share/artifacts/apiserver.log" >&2
			return 1
		fi
		sleep 0.5
	done
	echo "bench: the API server did not become ready" >&2
	return 1
}

# The guest copies the binaries to tmpfs: executing from 9p costs ~0.5 s per start.
guest_script='
set -e
mkdir -p /tmp/bin
cp /mnt/host/bin/* /tmp/bin/
exec /tmp/bin/bench guest -out /mnt/host/results.json -logs /mnt/host/artifacts \
	-kubeconfig /mnt/host/k8s/kubeconfig-guest "$@"
'

gobench() {
	# Compute and plan at 10,000 Services; -run ^$ skips the unit tests.
	go test -run '^$' -bench . -benchmem -benchtime 3x ./internal/desired ./internal/plan | tee "$share/gobench.txt"
}

report() {
	local host args=()
	host="$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
	[[ "$doc" == "-" ]] || args=(-doc "$doc")
	"$share/bin/bench" report -results "$share/results.json" -gobench "$share/gobench.txt" \
		-command "make bench${BENCH_GUEST_ARGS:+ BENCH_GUEST_ARGS=\"$BENCH_GUEST_ARGS\"}" -host "$host" "${args[@]}"
	[[ "$doc" == "-" ]] || echo "bench: tables written into $doc"
}

phase deps scripts/vm/deps.sh
phase image image
phase build build
phase apiserver apiserver
status=0
phase guest scripts/vm/run.sh --share "$share" --name bench --smp 2 --mem "${BENCH_MEM:-6144}" --net user \
	--timeout "${BENCH_TIMEOUT:-14400}" -- bash -c "$guest_script" bench "${guest_args[@]}" || status=$?
phase gobench gobench
if [[ -s "$share/results.json" ]]; then
	phase report report
fi
exit "$status"
