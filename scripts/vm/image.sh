#!/usr/bin/env bash
# Builds the e2e guest: Debian's kernel as an uncompressed ELF vmlinux and an
# uncompressed cpio initramfs with busybox, bash, iproute2, ipvsadm, ipset,
# iptables (nft and legacy), nft, conntrack, kmod, the network kernel modules
# and scripts/vm/init as /init.
#
# Output: $IPVS_PROXY_CACHE/vm/<key>/{vmlinux,initramfs.cpio,kernel-release}, where key is
# the kernel package version plus a hash of the image inputs (image*.sh, the
# guest init, the versions of the host packages copied in). A cached image is
# reused as is. The image directory is printed on stdout; progress on stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../lib/cache.sh
source "$root/scripts/lib/cache.sh"
cache="$IPVS_PROXY_CACHE/vm"

log() { echo "image: [${SECONDS}s] $*" >&2; }
die() {
	echo "image: error: $*" >&2
	exit 1
}

# Host packages whose files go into the initramfs; their versions are part of
# the cache key.
guest_packages=(busybox-static bash iproute2 ipvsadm ipset iptables nftables conntrack kmod libc6)

# kernel_package prints "NAME VERSION" of the linux-image package that
# linux-image-amd64 depends on, from one apt-cache call (~1 s): the
# metapackage pins it, e.g. "linux-image-6.1.0-56-amd64 (= 6.1.192-2)".
kernel_package() {
	local found
	found=$(apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
		sed -n 's/^Depends:.*\(linux-image-[0-9][^ ,]*\) (= \([^)]*\)).*/\1 \2/p' | head -1)
	if [[ -z "$found" ]]; then
		log "no package list names linux-image-amd64: apt-get update"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		found=$(apt-cache show --no-all-versions linux-image-amd64 |
			sed -n 's/^Depends:.*\(linux-image-[0-9][^ ,]*\) (= \([^)]*\)).*/\1 \2/p' | head -1)
	fi
	[[ -n "$found" ]] || die "apt-cache names no linux-image-6.x package for linux-image-amd64"
	echo "$found"
}

inputs_hash() {
	{
		cat "$here"/image*.sh "$here/init"
		dpkg-query -W -f='${Package} ${Version}\n' "${guest_packages[@]}"
	} | sha256sum | cut -c1-12
}

# fetch_kernel downloads the kernel .deb into $cache/debs (once) and
# prints its path. A stale package list (404) gets one apt-get update.
fetch_kernel() {
	local pkg=$1 version=$2 debs="$cache/debs"
	local deb="$debs/${pkg}_${version}_amd64.deb"
	mkdir -p "$debs"
	if [[ -s "$deb" ]]; then
		echo "$deb"
		return
	fi
	log "downloading $pkg $version"
	# Run as root in a root-owned folder, apt warns that it cannot sandbox the
	# download: harmless, so its output is only shown on failure.
	if ! (cd "$debs" && apt-get download "$pkg=$version") >"$debs/download.log" 2>&1; then
		log "download failed, updating the package lists and retrying"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		if ! (cd "$debs" && apt-get download "$pkg=$version") >"$debs/download.log" 2>&1; then
			sed 's/^/  /' "$debs/download.log" >&2
			die "apt-get download $pkg=$version failed"
		fi
	fi
	[[ -s "$deb" ]] || die "apt-get download did not produce $deb"
	echo "$deb"
}

main() {
	"$here/deps.sh" >&2
	local pkg version key dir
	read -r pkg version < <(kernel_package)
	[[ -n "$pkg" && -n "$version" ]] || die "cannot tell which kernel package to use"
	key="${pkg#linux-image-}_${version}_$(inputs_hash)"
	dir="$cache/$key"
	if [[ -s "$dir/vmlinux" && -s "$dir/initramfs.cpio" ]]; then
		touch "$dir" # marks it used: see the pruning below
		log "cached $dir"
		echo "$dir"
		return
	fi

	local deb
	deb=$(fetch_kernel "$pkg" "$version")
	work=$(mktemp -d "$cache/build.XXXXXX") # global: the EXIT trap runs after main
	trap 'rm -rf "$work"' EXIT

	log "unpacking $(basename "$deb")"
	dpkg-deb -x "$deb" "$work/kernel"
	local release
	release=$(ls "$work/kernel/lib/modules")
	[[ -n "$release" ]] || die "no lib/modules/<release> in $deb"
	depmod -b "$work/kernel" "$release"

	mkdir -p "$work/out"
	"$here/image-kernel.sh" "$work/kernel/boot/vmlinuz-$release" "$work/out/vmlinux"
	"$here/image-initramfs.sh" "$work/kernel" "$release" "$here/init" "$work/out/initramfs.cpio"
	echo "$release" >"$work/out/kernel-release"

	# Publish atomically and drop images (and kernel packages) not used for two days: other checkouts on this
	# machine (worktrees, CI) may use images built from other inputs at the same time.
	rm -rf "$dir"
	mv "$work/out" "$dir"
	find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name debs ! -name "$key" ! -name 'build.*' -mtime +2 -exec rm -rf {} +
	find "$cache/debs" -name '*.deb' ! -name "$(basename "$deb")" -mtime +2 -delete
	log "built $dir ($(du -sh "$dir" | cut -f1))"
	echo "$dir"
}

main "$@"
