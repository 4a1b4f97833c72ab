#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_TIME (default 15s). A failing input is
# written by Go under the package's testdata/fuzz/FuzzX/: commit it and it
# becomes a regression case that every `go test` runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/usr/local/go/bin:$PATH"
fuzztime=${FUZZ_TIME:-15s}
for target in internal/config:FuzzParse internal/manifest:FuzzRead internal/desired:FuzzBuild; do
	pkg=${target%%:*} name=${target##*:}
	echo "fuzz: $name ($pkg) for $fuzztime"
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "./$pkg"
done
