#!/usr/bin/env bash
# image-initramfs.sh KERNEL_ROOT RELEASE INIT OUT: packs the guest's root file
# system as an uncompressed newc cpio (the kernel unpacks it without a
# decompressor, which matters under software emulation).
#
# Layout (merged /usr, like Debian: /bin, /sbin, /lib, /lib64 are symlinks):
#   /usr/bin, /usr/sbin     real tools copied from the host, with their shared
#                           libraries found by ldd
#   /usr/lib/busybox        busybox applets, last in PATH, without "ip" (busybox's
#                           ip has no netns); /usr/bin/sh is bash
#   /usr/lib/<triplet>/xtables  iptables extensions
#   /lib/modules/RELEASE    the network, netfilter, IPVS, 9p and virtio modules
#                           with their dependencies, indexed by depmod
#   /init                   scripts/vm/init
set -euo pipefail

die() {
	echo "image-initramfs: error: $*" >&2
	exit 1
}

(($# == 4)) || die "usage: image-initramfs.sh KERNEL_ROOT RELEASE INIT OUT"
kroot=$1 release=$2 init=$3 out=$4

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)

# Modules wanted in the guest (paths relative to lib/modules/RELEASE, as in
# modules.dep); their dependencies come along. libcrc32c (used by conntrack,
# nf_tables, IPVS) asks the crypto API for crc32c at load time, which loads it
# through an alias, not a dependency: it is listed by hand. sctp is for the
# SCTP Services' traffic (IPVS and conntrack handle SCTP themselves); nlmon
# lets the benchmark count netlink messages from outside the daemon.
module_paths='^kernel/(net/(netfilter|ipv4|ipv6|bridge|9p|llc|802|sctp)/|fs/9p/|drivers/virtio/|drivers/net/(dummy|veth|virtio_net|net_failover|nlmon)\.ko|net/core/failover\.ko|crypto/crc32c_generic\.ko|arch/x86/crypto/crc32c-intel\.ko)'

elfs=() # every dynamically linked file copied, for ldd

# copy FILE...: copies host files to the same path in the image, following
# symlinks (the image's /bin, /lib... symlinks route merged-/usr paths).
copy() {
	local f
	for f in "$@"; do
		[[ -e "$f" ]] || die "missing host file $f (is its package installed? run scripts/vm/deps.sh)"
		mkdir -p "$stage$(dirname "$f")"
		cp -L "$f" "$stage$f"
		elfs+=("$f")
	done
}

# link TARGET NAME: a symlink in the image.
link() {
	mkdir -p "$stage$(dirname "$2")"
	ln -sfn "$1" "$stage$2"
}

layout() {
	mkdir -p "$stage"/{usr/bin,usr/sbin,usr/lib/busybox,usr/lib64,etc,proc,sys,dev,tmp,run,root,mnt/host,var}
	for d in bin sbin lib lib64; do
		ln -s "usr/$d" "$stage/$d"
	done
	ln -s ../run "$stage/var/run"
	cp "$init" "$stage/init"
	chmod 0755 "$stage/init"
}

tools() {
	copy /usr/bin/busybox /usr/bin/bash
	link bash /usr/bin/sh
	local applet
	for applet in $(/usr/bin/busybox --list); do
		[[ "$applet" == ip ]] && continue
		link /usr/bin/busybox "/usr/lib/busybox/$applet"
	done

	copy /usr/bin/ip /usr/sbin/tc /usr/sbin/bridge /usr/bin/ss
	copy /usr/sbin/ipvsadm /usr/sbin/ipvsadm-save /usr/sbin/ipvsadm-restore
	copy /usr/sbin/ipset /usr/sbin/conntrack /usr/sbin/nft
	copy /usr/bin/kmod
	local k
	for k in modprobe insmod rmmod lsmod modinfo depmod; do
		link ../bin/kmod "/usr/sbin/$k"
	done
}

# iptables: both multi-call binaries, every name that points at them, and
# iptables/ip6tables(-save,-restore) pointing where Debian's alternatives do.
iptables_tools() {
	copy /usr/sbin/xtables-nft-multi /usr/sbin/xtables-legacy-multi
	local f target
	for f in /usr/sbin/iptables* /usr/sbin/ip6tables*; do
		[[ -L "$f" ]] || continue
		target=$(readlink -f "$f")
		case "$(basename "$target")" in
		xtables-nft-multi | xtables-legacy-multi) ;;
		*) continue ;; # iptables-apply and other scripts: not needed
		esac
		if [[ "$(readlink "$f")" == /etc/alternatives/* ]]; then
			# e.g. iptables -> iptables-nft, as update-alternatives chose.
			target=$(readlink /etc/alternatives/"$(basename "$f")")
			link "$(basename "$target")" "$f"
		else
			link "$(readlink "$f")" "$f"
		fi
	done
	echo "image-initramfs: iptables -> $(readlink "$stage/usr/sbin/iptables")" >&2
	copy "/usr/lib/$triplet/xtables/"*.so
}

# libraries: the shared objects every copied ELF needs, by ldd.
libraries() {
	local lib
	for lib in $(ldd "${elfs[@]}" 2>/dev/null | awk '
		$2 == "=>" && $3 ~ /^\// {print $3}
		$1 ~ /^\// && $2 ~ /^\(/ {print $1}' | sort -u); do
		[[ -e "$stage$lib" ]] || copy "$lib"
	done
}

etc_files() {
	cp /etc/protocols /etc/services "$stage/etc/" 2>/dev/null || true
	[[ -d /etc/iproute2 ]] && cp -r /etc/iproute2 "$stage/etc/"
	echo 'root:x:0:0:root:/root:/usr/bin/bash' >"$stage/etc/passwd"
	echo 'root:x:0:' >"$stage/etc/group"
	printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$stage/etc/hosts"
	echo 'hosts: files' >"$stage/etc/nsswitch.conf"
}

modules() {
	local src="$kroot/lib/modules/$release" dst="$stage/lib/modules/$release"
	[[ -s "$src/modules.dep" ]] || die "no modules.dep in $src (depmod -b first)"
	local paths
	paths=$(awk -v re="$module_paths" '{
		sub(":", "", $1)
		if ($1 ~ re) for (i = 1; i <= NF; i++) print $i
	}' "$src/modules.dep" | sort -u)
	[[ -n "$paths" ]] || die "no wanted module in $src/modules.dep"
	local p
	for p in $paths; do
		mkdir -p "$dst/$(dirname "$p")"
		cp "$src/$p" "$dst/$p"
	done
	cp "$src"/modules.{order,builtin,builtin.modinfo} "$dst/"
	depmod -b "$stage" "$release"
	echo "image-initramfs: $(wc -w <<<"$paths") modules" >&2
}

layout
tools
iptables_tools
libraries
etc_files
modules
(cd "$stage" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) >"$out"
echo "image-initramfs: $(($(stat -c %s "$out") / 1048576)) MiB cpio" >&2
