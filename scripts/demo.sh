#!/usr/bin/env bash
# make demo: boots the qemu guest (a real kernel with IPVS), starts a backend
# in a network namespace for every endpoint of the manifests in examples/,
# runs ipvs-proxy in standalone mode on them and shows what it did:
# ipvsadm -Ln, ip addr show kube-ipvs0, and requests through every Service
# address with the backend that answered each.
#
# Environment:
#   DEMO_MANIFESTS    the manifest directory (default examples/; its
#                     config.yaml, if any, is passed as --config)
#
# The guest's console is kept in _output/vm/demo-console.log, the daemon's log
# in _output/demo/share/artifacts/TestDemo/.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export PATH="/usr/local/go/bin:$PATH"

manifests=${DEMO_MANIFESTS:-examples}
[[ -d "$manifests" ]] || {
	echo "demo: no manifest directory $manifests" >&2
	exit 2
}
out="$root/_output/demo"
share="$out/share"
mkdir -p "$out"

# step runs a preparation step in this shell, its output in a log shown only
# if it fails.
step() {
	local what=$1 log="$out/prepare.log" start=$SECONDS
	shift
	printf 'demo: %-40s' "$what"
	if ! "$@" >"$log" 2>&1; then
		echo "failed"
		cat "$log" >&2
		exit 1
	fi
	echo "done ($((SECONDS - start))s)"
}

image() {
	VM_IMAGE_DIR=$(scripts/vm/image.sh)
	export VM_IMAGE_DIR # run.sh uses it as is
}

build() {
	rm -rf "$share"
	mkdir -p "$share/artifacts"
	CGO_ENABLED=0 go build -o "$share/ipvs-proxy" ./cmd/ipvs-proxy
	CGO_ENABLED=0 go test -c -o "$share/e2e.test" ./e2e
	cp -r "$manifests" "$share/$(basename "$manifests")"
}

step "host packages (qemu, ipvsadm, ...)" scripts/vm/deps.sh
step "VM image (Debian's kernel)" image
step "build ipvs-proxy and the test backends" build

# The binaries run from tmpfs (executing from the 9p share is slow); the
# demo is the e2e test binary's TestDemo, which runs only with
# IPVS_PROXY_DEMO set. Without -test.v it prints only the demo itself.
guest_script='
set -e
mkdir -p /tmp/bin
cp /mnt/host/e2e.test /mnt/host/ipvs-proxy /tmp/bin/
export IPVS_PROXY_E2E=1 IPVS_PROXY_BIN=/tmp/bin/ipvs-proxy IPVS_PROXY_E2E_ARTIFACTS=/mnt/host/artifacts
export IPVS_PROXY_DEMO=/mnt/host/'"$(basename "$manifests")"'
cd /tmp
exec /tmp/bin/e2e.test -test.run "^TestDemo$" -test.timeout 5m
'

echo "demo: booting the VM; everything below runs inside it"
status=0
scripts/vm/run.sh --share "$share" --name demo --timeout 360 -- bash -c "$guest_script" || status=$?
if ((status == 0)); then
	config=""
	[[ -f "$manifests/config.yaml" ]] && config=" --config $manifests/config.yaml"
	echo "demo: done. On a node with IPVS: ipvs-proxy run --manifests $manifests/$config --node-name node-1"
else
	echo "demo: failed (status $status); console: _output/vm/demo-console.log" >&2
fi
exit "$status"
