#!/usr/bin/env bash
# image-kernel.sh VMLINUZ OUT: extracts the uncompressed ELF kernel from a
# bzImage, the way the kernel's scripts/extract-vmlinux does: find the magic
# bytes of a compressed stream, decompress from there, keep the first result
# that is an ELF file. Booting the ELF directly saves the guest ~5 s of
# decompression under software emulation.
set -euo pipefail

die() {
	echo "image-kernel: error: $*" >&2
	exit 1
}

(($# == 2)) || die "usage: image-kernel.sh VMLINUZ OUT"
in=$1 out=$2

# is_elf FILE: true when FILE starts with the ELF magic.
is_elf() {
	[[ "$(head -c 4 "$1" | od -An -tx1 | tr -d ' \n')" == 7f454c46 ]]
}

# try MAGIC NAME COMMAND...: decompresses from each offset where MAGIC (a
# grep -P byte pattern) occurs; trailing data after the stream makes the
# decompressors complain, so their status is ignored and the output checked.
try() {
	local magic=$1 name=$2 offset
	shift 2
	command -v "$1" >/dev/null || return 1
	for offset in $(LC_ALL=C grep -obUaP "$magic" "$in" | cut -d: -f1 | head -5); do
		tail -c "+$((offset + 1))" "$in" | "$@" >"$out" 2>/dev/null || true
		if [[ -s "$out" ]] && is_elf "$out"; then
			echo "image-kernel: $name stream at offset $offset -> $(($(stat -c %s "$out") / 1048576)) MiB ELF" >&2
			return 0
		fi
	done
	return 1
}

try '\xfd7zXZ\x00' xz xz -dc --single-stream ||
	try '\x28\xb5\x2f\xfd' zstd zstd -dc ||
	try '\x1f\x8b\x08' gzip gzip -dc ||
	try '\x02\x21\x4c\x18' lz4 lz4 -dc ||
	die "no ELF kernel found in $in (tried xz, zstd, gzip, lz4)"
