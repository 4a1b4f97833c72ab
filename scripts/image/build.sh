#!/usr/bin/env bash
# make image: ipvs-proxy's container image, built on this machine without a Docker daemon or a registry.
#
#   scripts/image/build.sh
#
# Runs manifests/Dockerfile's build stage here (scripts/image/stage.sh) and packs the Dockerfile's last stage
# (FROM scratch, COPYs, ENTRYPOINT, CMD) from what it made with internal/ociimage/mkimage, so the image holds the
# same files as `docker build -f manifests/Dockerfile .` would. Output:
#   _output/image/ipvs-proxy.oci.tar   an OCI archive: ctr -n k8s.io images import, skopeo copy oci-archive:...
#   _output/image/ipvs-proxy.ref       its name, ghcr.io/ipvs-proxy/ipvs-proxy:<VERSION> (IMAGE_REPO overrides the
#                                      repository), the tag manifests/base/daemonset.yaml pins
# Labels: org.opencontainers.image.version and .revision (the git commit).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
export PATH="/usr/local/go/bin:$PATH"

version=$(scripts/lib/version.sh version)
commit=$(scripts/lib/version.sh commit)
ref=${IMAGE_REPO:-ghcr.io/ipvs-proxy/ipvs-proxy}:$version
out=_output/image
stage=$out/stage
rm -rf "$stage"
mkdir -p "$stage"
start=$SECONDS
scripts/image/stage.sh "$stage"
# The commit's time, not the build's: the same tree gives the same image digest.
created=$(git log -1 --format=%cI 2>/dev/null || echo 1970-01-01T00:00:00Z)
digest=$(CGO_ENABLED=0 go run ./internal/ociimage/mkimage --dockerfile manifests/Dockerfile --stage build="$stage" \
	--ref "$ref" --out "$out/ipvs-proxy.oci.tar" --created "$created" \
	--label "org.opencontainers.image.version=$version" --label "org.opencontainers.image.revision=$commit")
echo "$ref" >"$out/ipvs-proxy.ref"
echo "image: $ref $digest, $(du -h "$out/ipvs-proxy.oci.tar" | cut -f1) in $((SECONDS - start))s: $out/ipvs-proxy.oci.tar"
