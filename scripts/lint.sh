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

# golangci-lint, pinned, built once into _output/tools
golangci=_output/tools/golangci-lint
golangci_version=v2.15.0
if ! [[ -x $golangci ]] || ! "$golangci" version 2>/dev/null | grep -q "${golangci_version#v}"; then
	echo "lint: building golangci-lint $golangci_version"
	GOBIN="$PWD/_output/tools" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$golangci_version"
fi
"$golangci" run --build-tags privileged ./...
echo "lint: ok"
