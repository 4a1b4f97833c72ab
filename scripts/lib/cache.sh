# Sourced by the build scripts: where built artefacts that are expensive to make (Kubernetes binaries, the VM
# image, container images) are cached. Outside the checkout, so that every clone and worktree on a machine
# shares them and CI on the same machine starts warm; a machine without it builds everything (the scripts never
# depend on the cache being there). Override with IPVS_PROXY_CACHE.
IPVS_PROXY_CACHE=${IPVS_PROXY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ipvs-proxy}
export IPVS_PROXY_CACHE
