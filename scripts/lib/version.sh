#!/usr/bin/env bash
# The version stamped into ipvs-proxy, for the Makefile, make image and the Dockerfile:
#   version.sh version   the release this tree is: the VERSION file at the root (v0.1.0), which is also the image
#                        tag the manifests pin (a test checks that they agree);
#   version.sh commit    git's commit, 12 hex digits, "-dirty" with uncommitted changes, "unknown" outside git;
#   version.sh ldflags   the -ldflags that stamp both (read by `ipvs-proxy version`).
# VERSION and GIT_COMMIT in the environment override what is read (the Dockerfile's build arguments: its build
# context has no .git).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

version() { echo "${VERSION:-$(tr -d '[:space:]' <"$root/VERSION")}"; }

commit() {
	if [[ -n "${GIT_COMMIT:-}" ]]; then
		echo "$GIT_COMMIT"
	elif c=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null); then
		git -C "$root" diff --quiet HEAD 2>/dev/null || c+=-dirty
		echo "$c"
	else
		echo unknown
	fi
}

case "${1:-}" in
version) version ;;
commit) commit ;;
ldflags)
	pkg=github.com/ipvs-proxy/ipvs-proxy/internal/cli
	echo "-s -w -X $pkg.Version=$(version) -X $pkg.Commit=$(commit)"
	;;
*)
	echo "usage: $0 version|commit|ldflags" >&2
	exit 2
	;;
esac
