#!/usr/bin/env bash
# Installs the host packages the VM harness needs: qemu, and the userspace
# tools that scripts/vm/image.sh copies into the guest, and gcc for the race
# detector (scripts/unit.sh). Does nothing (and
# never touches apt) when all of them are already installed.
set -euo pipefail

packages=(
	qemu-system-x86 # qemu-system-x86_64 and qboot.rom
	busybox-static  # the guest's shell and core utilities
	ipvsadm ipset iptables iproute2 conntrack
	nftables # nft: the nftables rules backend (knftables runs it)
	kmod     # depmod on the host, modprobe in the guest
	cpio     # packs the initramfs
	xz-utils # unpacks the kernel image and the .deb
	zstd     # in case the kernel image is zstd-compressed
	gcc libc6-dev # cgo, which go test -race needs (scripts/unit.sh)
)

# shellcheck source=../lib/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/apt.sh"
apt_ensure "deps" "${packages[@]}"
