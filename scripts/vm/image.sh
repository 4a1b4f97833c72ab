#!/usr/bin/env bash
# Builds the e2e guest: Debian's kernel as an uncompressed ELF vmlinux and an
# uncompressed cpio initramfs with busybox, bash, iproute2, ipvsadm, ipset,
# iptables (nft and legacy), conntrack, kmod, the network kernel modules and
# scripts/vm/init as /init.
#
# Output: .cache/vm/<key>/{vmlinux,initramfs.cpio,kernel-release}, where key is
# the kernel package version plus a hash of the image inputs (image*.sh, the
# guest init, the versions of the host packages copied in). A cached image is
# reused as is. The image directory is printed on stdout; progress on stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache="$root/.cache/vm"

log() { echo "image: $*" >&2; }
die() {
	echo "image: error: $*" >&2
	exit 1
}

# Host packages whose files go into the initramfs; their versions are part of
# the cache key.
guest_packages=(busybox-static bash iproute2 ipvsadm ipset iptables conntrack kmod libc6)

# kernel_package names the linux-image package linux-image-amd64 points at.
kernel_package() {
	local pkg
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	if [[ -z "$pkg" ]]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	fi
	[[ -n "$pkg" ]] || die "apt-cache names no linux-image-6.x package for linux-image-amd64"
	echo "$pkg"
}

inputs_hash() {
	{
		cat "$here"/image*.sh "$here/init"
		dpkg-query -W -f='${Package} ${Version}\n' "${guest_packages[@]}"
	} | sha256sum | cut -c1-12
}

# fetch_kernel downloads the kernel .deb into .cache/vm/debs (once) and
# prints its path.
fetch_kernel() {
	local pkg=$1 version=$2 debs="$cache/debs"
	mkdir -p "$debs"
	local deb="$debs/${pkg}_${version}_amd64.deb"
	if [[ ! -s "$deb" ]]; then
		log "downloading $pkg $version"
		# apt's sandbox user cannot write here; the download is done as root.
		(cd "$debs" && apt-get download -q "$pkg=$version" 2>&1 | grep -v 'unsandboxed' >&2) ||
			die "apt-get download $pkg=$version failed"
		local got
		got=$(ls "$debs/${pkg}_"*"_amd64.deb" 2>/dev/null | grep -F "_${version//:/%3a}_" | head -1 || true)
		[[ -n "$got" ]] || die "downloaded .deb for $pkg $version not found in $debs"
		[[ "$got" == "$deb" ]] || mv "$got" "$deb"
	fi
	echo "$deb"
}

main() {
	"$here/deps.sh" >&2
	local pkg version key dir
	pkg=$(kernel_package)
	version=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
	[[ -n "$version" && "$version" != "(none)" ]] || die "no candidate version for $pkg"
	key="${pkg#linux-image-}_${version}_$(inputs_hash)"
	dir="$cache/$key"
	if [[ -s "$dir/vmlinux" && -s "$dir/initramfs.cpio" ]]; then
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

	# Publish atomically and drop images built from older inputs.
	rm -rf "$dir"
	mv "$work/out" "$dir"
	find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name debs ! -name "$key" ! -name 'build.*' -exec rm -rf {} +
	find "$cache/debs" -name '*.deb' ! -name "$(basename "$deb")" -delete
	log "built $dir ($(du -sh "$dir" | cut -f1))"
	echo "$dir"
}

main "$@"
