#!/usr/bin/env bash
# Builds the command-line tools that make unit uses to check the packaging, and links them into
# _output/tools/bin/ of this checkout, where the tests look for them (charts/, manifests/):
#   helm      from the Go module proxy, through the wrapper module beside this script (go.mod pins the version);
#   kubectl   from the Go module proxy, through scripts/k8s/build.sh (the Kubernetes release the tests run);
#   promtool  from Debian's prometheus package, unpacked rather than installed (installing it would also set up
#             and start a Prometheus server).
# Each is cached in $IPVS_PROXY_CACHE (scripts/lib/cache.sh) and built only when missing: cold, helm takes about
# 3 minutes on 2 cores, kubectl about 2 (its dependencies are mostly kube-apiserver's), promtool a 30 MB download.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../lib/cache.sh
source "$root/scripts/lib/cache.sh"
export PATH="/usr/local/go/bin:$PATH"
bin="$root/_output/tools/bin"
mkdir -p "$bin" "$IPVS_PROXY_CACHE/tools"

link() { ln -sfn "$2" "$bin/$1"; }

# helm: version from the wrapper module; built to a temporary name so that an interrupted build leaves nothing.
build_helm() {
	local version out
	version=$(cd "$here" && GOWORK=off GOFLAGS=-mod=mod go list -m -f '{{.Version}}' helm.sh/helm/v3)
	out="$IPVS_PROXY_CACHE/tools/helm-$version/helm"
	if [[ ! -x "$out" ]]; then
		echo "tools: building helm $version ..."
		mkdir -p "$(dirname "$out")"
		(cd "$here" && GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" \
			go build -p "${K8S_BUILD_P:-2}" -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$version" \
			-o "$out.tmp.$$" helm.sh/helm/v3/cmd/helm)
		mv -f "$out.tmp.$$" "$out"
	fi
	link helm "$out"
	echo "tools: helm $version: $out"
}

build_kubectl() {
	"$root/scripts/k8s/build.sh" kubectl >/dev/null
	local version
	version=$(cd "$root/scripts/k8s" && GOWORK=off GOFLAGS=-mod=mod go list -m -f '{{.Version}}' k8s.io/kubernetes)
	link kubectl "$IPVS_PROXY_CACHE/k8s/$version/bin/kubectl"
	echo "tools: kubectl $version: $IPVS_PROXY_CACHE/k8s/$version/bin/kubectl"
}

# promtool: the candidate version of Debian's package; apt's lists are refreshed once if it cannot be found.
build_promtool() {
	local version out tmp deb
	version=$(apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ {print $2}')
	if [[ -z "$version" || "$version" == "(none)" ]]; then
		apt-get update -qq
		version=$(apt-cache policy prometheus | awk '/Candidate:/ {print $2}')
	fi
	out="$IPVS_PROXY_CACHE/tools/promtool-${version//[:~]/_}/promtool"
	if [[ ! -x "$out" ]]; then
		echo "tools: unpacking promtool from Debian's prometheus $version ..."
		tmp=$(mktemp -d)
		trap 'rm -rf "$tmp"' RETURN
		(cd "$tmp" && apt-get download -qq "prometheus=$version" >/dev/null)
		deb=$(echo "$tmp"/prometheus_*.deb)
		dpkg-deb -x "$deb" "$tmp/root"
		mkdir -p "$(dirname "$out")"
		cp "$tmp/root/usr/bin/promtool" "$out.tmp.$$"
		mv -f "$out.tmp.$$" "$out"
	fi
	link promtool "$out"
	echo "tools: promtool $version: $out"
}

targets=("$@")
if ((${#targets[@]} == 0)); then
	targets=(helm kubectl promtool)
fi
for t in "${targets[@]}"; do
	case "$t" in
	helm) build_helm ;;
	kubectl) build_kubectl ;;
	promtool) build_promtool ;;
	*)
		echo "usage: $0 [helm|kubectl|promtool]..." >&2
		exit 2
		;;
	esac
done
