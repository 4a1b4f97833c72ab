#!/usr/bin/env bash
# Installs the Debian packages a cluster node (user-mode Linux on this host's root) and the harness need. Does
# nothing when all are installed. containerd's package enables a systemd unit; where systemd runs it would start
# a containerd on the host too, which the harness does not use.
set -euo pipefail

packages=(
	user-mode-linux              # the node's kernel (linux.uml) and its modules: IPVS, bridge, overlay, ...
	containerd crun runc         # the container runtime; crun is the OCI runtime the nodes use (see nodefiles.go)
	containernetworking-plugins  # bridge, host-local, loopback
	iptables ipset ipvsadm conntrack iproute2 kmod curl
	e2fsprogs util-linux         # mkfs.ext4 for the node disks; unshare
)

# shellcheck source=../lib/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/apt.sh"
apt_ensure "cluster deps" "${packages[@]}"
