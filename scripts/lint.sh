#!/usr/bin/env bash
# make lint: formatting and vet, for every build tag the project uses.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/usr/local/go/bin:$PATH"

unformatted=$(git ls-files '*.go' | xargs gofmt -l)
if [[ -n "$unformatted" ]]; then
	echo "lint: not gofmt'ed:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
go vet -tags privileged ./...

# golangci-lint, pinned, built once into the machine's cache (scripts/lib/cache.sh): a cold build takes minutes
# and CI on the same machine would otherwise pay it every run.
# shellcheck source=lib/cache.sh
source scripts/lib/cache.sh
golangci_version=v2.15.0
golangci="$IPVS_PROXY_CACHE/tools/golangci-lint-$golangci_version/golangci-lint"
if ! [[ -x $golangci ]]; then
	echo "lint: building golangci-lint $golangci_version"
	mkdir -p "$(dirname "$golangci")"
	GOBIN="$(dirname "$golangci")/tmp.$$" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$golangci_version"
	mv -f "$(dirname "$golangci")/tmp.$$/golangci-lint" "$golangci"
	rmdir "$(dirname "$golangci")/tmp.$$"
fi
# Several checkouts (worktrees) may lint at once on one machine: the lock golangci-lint takes would fail them.
"$golangci" run --allow-parallel-runners --build-tags privileged ./...
echo "lint: ok"
