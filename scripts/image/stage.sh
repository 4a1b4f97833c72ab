#!/usr/bin/env bash
# The build stage of manifests/Dockerfile, which runs it as `scripts/image/stage.sh /`; make image
# (scripts/image/build.sh) runs it on this machine into a directory and packs the Dockerfile's last stage from
# there. Makes, under DIR:
#   out/ipvs-proxy   the daemon, static, stamped with the version (scripts/lib/version.sh);
#   rootfs/          the image's root file system from Debian packages (scripts/image/rootfs.sh).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
(($# == 1)) || {
	echo "usage: $0 DIR" >&2
	exit 2
}
dir=$1
mkdir -p "$dir/out"
(cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags "$(scripts/lib/version.sh ldflags)" \
	-o "$dir/out/ipvs-proxy" ./cmd/ipvs-proxy)
"$here/rootfs.sh" "$dir/rootfs"
