#!/usr/bin/env bash
# make e2e: runs the end-to-end scenarios (package ./e2e) inside the qemu
# guest, all in one boot, against the real ipvs-proxy binary.
#
# Environment:
#   E2E_RUN           test name regexp (go test -run), default: all
#   E2E_TIMEOUT       go test -timeout inside the guest, default 45m (the rule
#                     scenarios run once per rules backend)
#   E2E_VM_ARGS       extra scripts/vm/run.sh arguments, e.g. "--smp 2"
#   E2E_APISERVER     0 runs without the host API server (its scenario then skips)
#
# A real kube-apiserver and etcd (scripts/k8s/build.sh) run on the host during
# the boot; the guest reaches them at 10.0.2.2 through qemu's user networking,
# with the kubeconfig at /mnt/host/k8s/kubeconfig-guest. kube-proxy (the same
# build) runs in the guest for TestMigration.
#
# Daemon and backend logs of each test are kept in _output/e2e/share/artifacts,
# the guest console in _output/vm/e2e-console.log.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/cache.sh
source "$root/scripts/lib/cache.sh"
cd "$root"
export PATH="/usr/local/go/bin:$PATH"

run_regexp=${E2E_RUN:-.}
test_timeout=${E2E_TIMEOUT:-45m}
read -r -a vm_args <<<"${E2E_VM_ARGS:-}"
share="$root/_output/e2e/share"
console="$root/_output/vm/e2e-console.log"

timings=()
# phase NAME COMMAND...: runs a step and records its wall time.
phase() {
	local name=$1 start=$SECONDS status=0
	shift
	echo "e2e: == $name"
	"$@" || status=$?
	timings+=("$(printf '%-16s %4ds' "$name" $((SECONDS - start)))")
	return "$status"
}

print_timings() {
	echo "e2e: wall time per phase:"
	printf '  %s\n' "${timings[@]}"
}
trap print_timings EXIT

# seconds converts a Go duration like 15m or 90s to whole seconds.
seconds() {
	case "$1" in
	*h) echo $((${1%h} * 3600)) ;;
	*m) echo $((${1%m} * 60)) ;;
	*s) echo "${1%s}" ;;
	*) echo "$1" ;;
	esac
}

build() {
	rm -rf "$share"
	mkdir -p "$share/artifacts"
	CGO_ENABLED=0 go build -o "$share/ipvs-proxy" ./cmd/ipvs-proxy
	CGO_ENABLED=0 go test -c -o "$share/e2e.test" ./e2e
}

# summary reads the console: go test -v's top-level verdicts, and failed
# subtests for the record.
summary() {
	local results passed failed
	results=$(tr -d '\r' <"$console" | grep -E '^--- (PASS|FAIL|SKIP): ' || true)
	passed=$(grep -c '^--- PASS' <<<"$results" || true)
	failed=$(grep -c '^--- FAIL' <<<"$results" || true)
	if ((failed > 0)); then
		echo "e2e: failed tests:"
		tr -d '\r' <"$console" | grep -E '^ *--- FAIL: ' | sed 's/^/  /'
	fi
	if tr -d '\r' <"$console" | grep -qE '^ *--- SKIP: '; then
		echo "e2e: skipped (the reasons are in the console log):"
		tr -d '\r' <"$console" | grep -E '^ *--- SKIP: ' | sed 's/^/  /'
	fi
	echo "e2e: $passed passed, $failed failed"
	if ((passed + failed == 0)); then
		echo "e2e: no test ran (E2E_RUN='$run_regexp')" >&2
		return 1
	fi
	((failed == 0))
}

image() {
	VM_IMAGE_DIR=$(scripts/vm/image.sh)
	export VM_IMAGE_DIR # run.sh uses it as is
}

apiserver_pid=""
# apiserver starts kube-apiserver and etcd on the host's loopback for the
# guest, and waits until they are ready.
apiserver() {
	# kube-proxy: TestMigration hands the node over from it and back.
	scripts/k8s/build.sh kube-apiserver etcd kube-proxy
	local version
	version=$(cd scripts/k8s && GOWORK=off GOFLAGS=-mod=mod go list -m -f '{{.Version}}' k8s.io/kubernetes)
	cp "$IPVS_PROXY_CACHE/k8s/$version/bin/kube-proxy" "$share/"
	CGO_ENABLED=0 go build -o "$root/_output/bin/testapiserver" ./internal/testenv/apiserver/testapiserver
	mkdir -p "$share/k8s"
	"$root/_output/bin/testapiserver" --dir "$share/k8s" >"$share/artifacts/apiserver.log" 2>&1 &
	apiserver_pid=$!
	for _ in $(seq 120); do
		if grep -q '^ready' "$share/artifacts/apiserver.log"; then
			return 0
		fi
		if ! kill -0 "$apiserver_pid" 2>/dev/null; then
			tail -20 "$share/artifacts/apiserver.log" >&2
			return 1
		fi
		sleep 0.5
	done
	echo "e2e: the API server did not become ready" >&2
	return 1
}
stop_apiserver() {
	if [[ -n "$apiserver_pid" ]]; then
		kill "$apiserver_pid" 2>/dev/null || true
		wait "$apiserver_pid" 2>/dev/null || true
	fi
	print_timings
}
trap stop_apiserver EXIT

phase deps scripts/vm/deps.sh
phase image image
phase build build
if [[ "${E2E_APISERVER:-1}" != 0 ]]; then
	phase apiserver apiserver
	vm_args+=(--net user)
fi

# In the guest, the binaries run from tmpfs: executing from the 9p share costs
# ~0.5 s per process start (no page cache), and backends are re-executions
# of the test binary.
guest_script='
set -e
mkdir -p /tmp/bin
cp /mnt/host/e2e.test /mnt/host/ipvs-proxy /tmp/bin/
if [ -f /mnt/host/kube-proxy ]; then
	cp /mnt/host/kube-proxy /tmp/bin/
	export IPVS_PROXY_KUBE_PROXY_BIN=/tmp/bin/kube-proxy
fi
export IPVS_PROXY_E2E=1 IPVS_PROXY_BIN=/tmp/bin/ipvs-proxy IPVS_PROXY_E2E_ARTIFACTS=/mnt/host/artifacts
cd /tmp
exec /tmp/bin/e2e.test "$@"
'

status=0
phase boot+tests scripts/vm/run.sh --share "$share" --name e2e \
	--timeout "$(($(seconds "$test_timeout") + 60))" "${vm_args[@]}" -- \
	bash -c "$guest_script" e2e -test.v -test.timeout="$test_timeout" -test.run "$run_regexp" || status=$?

if ! summary && ((status == 0)); then
	status=1
fi
echo "e2e: logs: ${share#"$root"/}/artifacts, console: ${console#"$root"/}"
exit "$status"
