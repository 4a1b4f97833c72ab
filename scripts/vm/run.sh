#!/usr/bin/env bash
# Boots the e2e guest once and runs one command in it.
#
#   run.sh --share DIR [--name NAME] [--net user] [--smp N] [--mem MB]
#          [--timeout SECONDS] -- COMMAND [ARG...]
#
# DIR is shared with the guest as /mnt/host (9p) and is the guest command's
# working directory; COMMAND runs there as root under bash, its output on the
# serial console. The console is shown live and kept in
# _output/vm/NAME-console.log. Exits with the guest command's status; a hang,
# a kernel panic or a guest that never reported a status is a failure (125)
# with the console's tail printed.
#
# Defaults: --smp 1 (the fastest boot), --mem 512, no network (--net user adds
# eth0 10.0.2.15/24 via 10.0.2.2 in the guest).
# --timeout bounds the guest command (default 600 s); qemu as a whole gets
# another 120 s for booting and powering off. The image comes from
# scripts/vm/image.sh, or from $VM_IMAGE_DIR when set.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

die() {
	echo "run.sh: error: $*" >&2
	exit 2
}

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}

share="" name=vm net="" smp=1 mem=512 timeout=600
while (($#)); do
	case "$1" in
	--share) share=${2:?}; shift 2 ;;
	--name) name=${2:?}; shift 2 ;;
	--net) net=${2:?}; shift 2 ;;
	--smp) smp=${2:?}; shift 2 ;;
	--mem) mem=${2:?}; shift 2 ;;
	--timeout) timeout=${2:?}; shift 2 ;;
	-h | --help) usage ;;
	--) shift; break ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done
(($#)) || die "no guest command given after --"
[[ -n "$share" ]] || die "--share DIR is required"
[[ -z "$net" || "$net" == user ]] || die "--net supports only 'user'"
[[ "$timeout" =~ ^[0-9]+$ ]] || die "--timeout wants whole seconds, got $timeout"
mkdir -p "$share"
share=$(cd "$share" && pwd)

image=${VM_IMAGE_DIR:-$("$here/image.sh")}
[[ -s "$image/vmlinux" && -s "$image/initramfs.cpio" ]] || die "no vmlinux/initramfs.cpio in $image"
bios=/usr/share/qemu/qboot.rom
[[ -s "$bios" ]] || die "$bios missing (scripts/vm/deps.sh installs qemu-system-x86)"

logdir="$root/_output/vm"
mkdir -p "$logdir"
log="$logdir/$name-console.log"

{
	echo '#!/usr/bin/bash'
	echo '# Written by scripts/vm/run.sh: the command the guest runs.'
	printf '%q ' "$@"
	echo
} >"$share/guest-run.sh"
rm -f "$share/exit-status"

append="console=ttyS0 panic=-1 quiet harness.timeout=$timeout"
netargs=()
if [[ "$net" == user ]]; then
	append+=" harness.net=user"
	netargs=(-netdev user,id=n0 -device virtio-net-pci,netdev=n0)
fi

qemu=(
	qemu-system-x86_64
	-accel tcg,tb-size=64 -cpu max -smp "$smp" -m "$mem"
	-nodefaults -display none -no-reboot
	-bios "$bios" -kernel "$image/vmlinux" -initrd "$image/initramfs.cpio"
	-append "$append"
	-chardev stdio,id=console,signal=off -serial chardev:console
	-virtfs "local,path=$share,mount_tag=host0,security_model=none"
	-device isa-debug-exit,iobase=0xf4,iosize=0x04
	"${netargs[@]}"
)

echo "run.sh: booting $(basename "$image") (smp $smp, ${mem} MB, timeout ${timeout}s), console in ${log#"$root"/}"
start=$SECONDS
set +e
timeout --kill-after=10 "$((timeout + 120))" "${qemu[@]}" </dev/null 2>&1 | tee "$log"
qemu_status=${PIPESTATUS[0]}
set -e
elapsed=$((SECONDS - start))

fail() {
	echo "run.sh: FAILED: $* (after ${elapsed}s); last console lines:" >&2
	tail -n 40 "$log" | sed 's/^/  | /' >&2
	echo "run.sh: full console log: $log" >&2
	exit 125
}

if [[ -s "$share/exit-status" ]]; then
	status=$(<"$share/exit-status")
	[[ "$status" =~ ^[0-9]+$ ]] || fail "unreadable exit-status '$status'"
elif ((qemu_status == 124 || qemu_status == 137)); then
	fail "the VM hung: qemu was killed after $((timeout + 120))s"
elif grep -q 'Kernel panic' "$log"; then
	fail "the guest kernel panicked"
elif ((qemu_status % 2 == 1 && qemu_status > 1)); then
	# isa-debug-exit: qemu exits with status*2+1.
	status=$(((qemu_status - 1) / 2))
else
	fail "the guest reported no exit status (qemu exited with $qemu_status)"
fi

echo "run.sh: guest command exited with status $status after ${elapsed}s"
if ((status != 0)); then
	echo "run.sh: full console log: $log" >&2
fi
exit "$status"
