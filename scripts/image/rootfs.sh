#!/usr/bin/env bash
# Assembles the root file system of ipvs-proxy's image from Debian packages, without a base image:
#
#   scripts/image/rootfs.sh DIR
#
# The tools the daemon runs and `kubectl exec` debugging wants: iptables (both backends: iptables-nft-* and
# iptables-legacy-*; the daemon picks the one the node uses), ipset, ipvsadm and nft, with their dependency
# closure (Depends and Pre-Depends), at the versions apt's package lists name. Each .deb is unpacked with
# dpkg-deb -x: no maintainer script runs, so the symlinks update-alternatives would make (iptables -> iptables-nft)
# are made here, and the tree is merged into /usr as Debian's own root is. Documentation is left out.
# DIR/usr/share/ipvs-proxy/packages lists "name version" of every package unpacked.
#
# Used by make image (scripts/image/build.sh) and by manifests/Dockerfile's build stage, so that both images hold
# the same files. Downloads are cached in $IPVS_PROXY_CACHE/image/debs.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../lib/cache.sh
source "$root/scripts/lib/cache.sh"

(($# == 1)) || {
	echo "usage: $0 DIR" >&2
	exit 2
}
out=$1
debs="$IPVS_PROXY_CACHE/image/debs"

# ROOTFS_PACKAGES replaces the list: scripts/k8s/build.sh makes the e2e suite's test images' file system with it.
read -r -a wanted <<<"${ROOTFS_PACKAGES:-iptables ipset ipvsadm nftables netbase}"
# Dependencies that only an init system or dpkg itself uses: ipvsadm's init script helpers.
skipped=' lsb-base sysvinit-utils '

log() { echo "rootfs: $*" >&2; }

# closure prints the wanted packages and everything they depend on, one per line (virtual packages, <name>, left
# out: what provides them is wanted by name).
closure() {
	apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
		--no-enhances "${wanted[@]}" | grep -v -e "^ " -e "^<" | sort -u
}

packages=()
while read -r p; do
	[[ "$skipped" == *" $p "* ]] || packages+=("$p")
done < <(closure)
if ((${#packages[@]} < ${#wanted[@]})); then
	log "apt knows too few packages (${packages[*]}): apt-get update"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	packages=()
	while read -r p; do
		[[ "$skipped" == *" $p "* ]] || packages+=("$p")
	done < <(closure)
fi

# One apt-cache call for every candidate version, one apt-get download for what the cache lacks.
declare -A version
while read -r p v; do
	version[$p]=$v
done < <(apt-cache policy "${packages[@]}" | awk '/^[^ ]/ {p = $1; sub(":$", "", p)} /^  Candidate:/ {print p, $2}')
mkdir -p "$debs"
deb_of() { find "$debs" -maxdepth 1 -name "${1}_${version[$1]//:/%3a}_*.deb" | head -1; }
missing=()
for p in "${packages[@]}"; do
	[[ -n "${version[$p]:-}" && "${version[$p]}" != "(none)" ]] || {
		log "no candidate version of $p"
		exit 1
	}
	[[ -n "$(deb_of "$p")" ]] || missing+=("$p=${version[$p]}")
done
if ((${#missing[@]})); then
	log "downloading ${#missing[@]} packages"
	(cd "$debs" && apt-get download -q "${missing[@]}" >download.log 2>&1) || {
		cat "$debs/download.log" >&2
		log "apt-get download failed"
		exit 1
	}
fi

rm -rf "$out"
mkdir -p "$out/usr/share/ipvs-proxy"
for p in "${packages[@]}"; do
	dpkg-deb -x "$(deb_of "$p")" "$out"
	echo "$p ${version[$p]}" >>"$out/usr/share/ipvs-proxy/packages"
done

# Merge /bin, /sbin, /lib and /lib64 into /usr, as on a Debian 12 system.
for d in bin sbin lib lib64; do
	if [[ -d "$out/$d" && ! -L "$out/$d" ]]; then
		mkdir -p "$out/usr/$d"
		cp -a "$out/$d/." "$out/usr/$d/"
		rm -rf "${out:?}/$d"
	fi
	mkdir -p "$out/usr/$d"
	ln -s "usr/$d" "$out/$d"
done

# What update-alternatives would have made: the nft backend, Debian's default, answers to the plain names.
for t in iptables ip6tables; do
	for s in "" -save -restore; do
		[[ ! -e "$out/usr/sbin/$t-nft$s" ]] || ln -sf "$t-nft$s" "$out/usr/sbin/$t$s"
	done
done

rm -rf "$out"/usr/share/{doc,man,info,lintian,locale,bug} "$out"/etc/init.d "$out"/etc/default
# glibc's iconv modules (8 MB): nothing in the image converts character sets.
rm -rf "$out"/usr/lib/x86_64-linux-gnu/gconv
mkdir -p "$out/tmp" "$out/run" "$out/var/lib/kube-proxy" "$out/etc"
chmod 1777 "$out/tmp"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$out/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$out/etc/group"
printf 'hosts: files dns\n' >"$out/etc/nsswitch.conf"
log "${#packages[@]} packages, $(du -sh "$out" | cut -f1): ${packages[*]}"
