#!/usr/bin/env bash
# Builds real Kubernetes binaries for tests and benchmarks from the Go module proxy, through the wrapper module
# beside this script (see go.mod there for why it exists).
#
#   scripts/k8s/build.sh [NAME|cluster|all]...   (default: kube-apiserver etcd)
#
# NAME is kube-apiserver, etcd, kube-proxy, kube-controller-manager, kube-scheduler, kubelet, kubectl, kubeadm,
# agnhost, coredns or e2e.test (Kubernetes' end-to-end suite, `go test -c k8s.io/kubernetes/test/e2e`, for make
# conformance: the largest of all, built only when asked), e2e-rootfs (the file system of that suite's test images:
# Debian's shell, curl, nc, ip, dig... under agnhost and in jessie-dnsutils, as in the upstream images); cluster is
# what the cluster harness (e2e/cluster) needs: the API server and etcd, the controller manager, the scheduler, the
# kubelet, kubectl, agnhost, CoreDNS (built in its own wrapper module, coredns/) and e2e-rootfs.
#
# Output: $IPVS_PROXY_CACHE/k8s/<kubernetes version>/bin/<name> (scripts/lib/cache.sh: ~/.cache/ipvs-proxy). A binary that is
# already there is not built again; delete it (or the version directory) to force a rebuild.
# Static (CGO_ENABLED=0), stripped and -trimpath. A cold build of kube-apiserver and etcd takes 5-8 minutes on
# 2 cores and about 2 GB of memory; kube-proxy is only for the benchmark, and the cluster harness's binaries only for
# it, so they are built only when asked. kubectl (server-side dry runs of the manifests and the Helm chart in make
# unit) shares most of their dependencies.
#
# Environment: K8S_BUILD_P (default 2) caps parallel compile jobs, and so memory use.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../lib/cache.sh
source "$root/scripts/lib/cache.sh"
cd "$here"

# Build exactly what go.mod/go.sum say, with the installed toolchain, whatever the caller's Go settings are.
# -mod=mod lets a toolchain that wants more go.sum lines than the one that wrote it fetch them instead of failing.
export GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0
export GOFLAGS="-mod=mod -buildvcs=false"

usage() {
	echo "usage: $0 [NAME|cluster|all]... (see the comment at the top)" >&2
	exit 2
}

cluster=(kube-apiserver etcd kube-controller-manager kube-scheduler kubelet kubectl agnhost coredns e2e-rootfs)
targets=()
for arg in "$@"; do
	case "$arg" in
	kube-apiserver | etcd | kube-proxy | kube-controller-manager | kube-scheduler | kubelet | kubectl | kubeadm | agnhost | coredns | e2e.test | e2e-rootfs)
		targets+=("$arg")
		;;
	cluster) targets+=("${cluster[@]}") ;;
	all) targets+=("${cluster[@]}" kube-proxy) ;;
	-h | --help) usage ;;
	*)
		echo "unknown target: $arg" >&2
		usage
		;;
	esac
done
if [ ${#targets[@]} -eq 0 ]; then
	targets=(kube-apiserver etcd)
fi

version=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
# The release's tag time, not the build time, so that rebuilds are identical.
build_date=$(go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
bin="$IPVS_PROXY_CACHE/k8s/$version/bin"
mkdir -p "$bin"

# What hack/lib/version.sh stamps into a release build; without it /version reports v0.0.0. The module proxy
# does not carry the release's git commit, so gitCommit stays empty.
major=${version#v}
major=${major%%.*}
minor=${version#v*.}
minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
	ldflags+=" -X $pkg.gitCommit= -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

package_of() {
	case "$1" in
	kube-apiserver) echo k8s.io/kubernetes/cmd/kube-apiserver ;;
	kube-proxy | kube-controller-manager | kube-scheduler | kubelet | kubectl | kubeadm) echo "k8s.io/kubernetes/cmd/$1" ;;
	agnhost) echo k8s.io/kubernetes/test/images/agnhost ;;
	coredns) echo github.com/ipvs-proxy/ipvs-proxy/scripts/k8s/coredns ;;
	etcd) echo go.etcd.io/etcd/server/v3 ;;
	e2e.test) echo k8s.io/kubernetes/test/e2e ;;
	esac
}

# The version of what is built, for messages: etcd's is the one k8s.io/kubernetes requires.
version_of() {
	case "$1" in
	etcd) go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3 ;;
	coredns) (cd coredns && go list -m -f '{{.Version}}' github.com/coredns/coredns) ;;
	*) echo "$version" ;;
	esac
}

# The test images' tools from Debian packages (scripts/image/rootfs.sh): what upstream's agnhost Dockerfile adds to
# its base (curl, netcat-openbsd, iproute2, bind tools, bash) and what the suite's probe scripts run (awk, hostname,
# grep, sed). The links are the ones update-alternatives and dash's maintainer scripts would make.
e2e_packages="bash dash coreutils hostname mawk grep sed findutils curl netcat-openbsd iproute2 bind9-dnsutils
iputils-ping netbase"
build_e2e_rootfs() {
	local out=$1 tmp="$1.tmp.$$"
	rm -rf "$tmp"
	ROOTFS_PACKAGES="${e2e_packages//$'\n'/ }" "$root/scripts/image/rootfs.sh" "$tmp"
	ln -sf dash "$tmp/usr/bin/sh"
	ln -sf mawk "$tmp/usr/bin/awk"
	ln -sf nc.openbsd "$tmp/usr/bin/nc"
	# agnhost porter's TLS pair, which upstream's Dockerfile adds at / (the Proxy specs ask porter for TLS).
	cp "$(go list -m -f '{{.Dir}}' k8s.io/kubernetes)"/test/images/agnhost/porter/localhost.{crt,key} "$tmp/"
	rm -rf "$out"
	mv "$tmp" "$out"
}

for name in "${targets[@]}"; do
	out="$bin/$name"
	if [[ "$name" == e2e-rootfs ]]; then
		out="$IPVS_PROXY_CACHE/k8s/$version/rootfs/e2e"
		if [ -d "$out" ]; then
			echo "$name: already built ($out)"
		else
			mkdir -p "$(dirname "$out")"
			start=$(date +%s)
			build_e2e_rootfs "$out"
			echo "$name: built in $(($(date +%s) - start))s, $(du -sm "$out" | cut -f1) MB: $out"
		fi
		continue
	fi
	label="$name $(version_of "$name")"
	if [ -x "$out" ]; then
		echo "$label: already built ($out)"
		continue
	fi
	pkg=$(package_of "$name")
	echo "$label: building $pkg ..."
	start=$(date +%s)
	# Build to a temporary name so that an interrupted build never leaves a binary that looks finished.
	tmp="$out.tmp.$$"
	trap 'rm -f "$tmp"' EXIT
	dir=.
	[[ "$name" == coredns ]] && dir=coredns # its own module: other client library versions
	build=(build)
	[[ "$name" == *.test ]] && build=(test -c -vet=off) # a test binary: go build would compile only the non-test files
	(cd "$dir" && go "${build[@]}" -p "${K8S_BUILD_P:-2}" -trimpath -ldflags "$ldflags" -o "$tmp" "$pkg")
	mv -f "$tmp" "$out"
	trap - EXIT
	size=$(du -m "$out" | cut -f1)
	echo "$label: built in $(($(date +%s) - start))s, ${size} MB: $out"
done
