#!/usr/bin/env bash
# make e2e: runs the end-to-end scenarios (package ./e2e) inside the qemu
# guest, all in one boot, against the real ipvs-proxy binary.
#
# Environment:
#   E2E_RUN           test name regexp (go test -run), default: all
#   E2E_TIMEOUT       go test -timeout inside the guest, default 15m
#   E2E_VM_ARGS       extra scripts/vm/run.sh arguments, e.g. "--net user --smp 2"
#
# Daemon and backend logs of each test are kept in _output/e2e/share/artifacts,
# the guest console in _output/vm/e2e-console.log.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export PATH="/usr/local/go/bin:$PATH"

run_regexp=${E2E_RUN:-.}
test_timeout=${E2E_TIMEOUT:-15m}
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

phase deps scripts/vm/deps.sh
phase image image
phase build build

# In the guest, the binaries run from tmpfs: executing from the 9p share costs
# ~0.5 s per process start (no page cache), and backends are re-executions
# of the test binary.
guest_script='
set -e
mkdir -p /tmp/bin
cp /mnt/host/e2e.test /mnt/host/ipvs-proxy /tmp/bin/
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
