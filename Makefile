# ipvs-proxy build and test entry points. `make test` is what CI runs.
GO      ?= go
OUT     ?= _output
BIN     := $(OUT)/bin

export CGO_ENABLED ?= 0

IMAGE   ?= ghcr.io/ipvs-proxy/ipvs-proxy:dev

# Version stamping: `ipvs-proxy version`, the startup line and ipvsproxy_build_info say what was built.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X github.com/ipvs-proxy/ipvs-proxy/internal/cli.Version=$(VERSION) -X github.com/ipvs-proxy/ipvs-proxy/internal/cli.Commit=$(COMMIT)

.PHONY: all build test quick verify update unit lint e2e demo bench image clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ipvs-proxy ./cmd/ipvs-proxy

## test: everything CI runs: static checks, unit tests (race), then the VM end-to-end suite.
test: lint unit e2e

## quick: vet and the race unit tests of internal/, no root, no apt, no VM, no API server: the tier to run while editing.
quick:
	$(GO) vet ./...
	CGO_ENABLED=1 $(GO) test -race -short ./internal/...

## verify: the static checks CI runs (gofmt, vet for every build tag, golangci-lint).
verify: lint

## update: rewrite the golden files (plan scenarios, status reports) from what the code now produces; review the diff.
update:
	$(GO) test ./internal/cli/ ./internal/status/ -run 'TestPlanGolden|TestStatusReport' -update

lint:
	scripts/lint.sh

unit:
	scripts/unit.sh

## e2e: boots the qemu VM and runs the end-to-end scenarios against real IPVS. E2E_RUN=regexp selects scenarios.
e2e:
	scripts/e2e.sh

## demo: boots the VM and runs ipvs-proxy on examples/, showing ipvsadm -Ln and traffic through the VIPs.
demo:
	scripts/demo.sh

## bench: the scale benchmark in the VM (see docs/benchmarks.md).
bench:
	scripts/bench.sh

## image: the DaemonSet's container image (needs docker or another builder; none runs on this project's dev machines).
image:
	@command -v docker >/dev/null || { echo "make image: no docker here; build manifests/Dockerfile where a container builder runs"; exit 1; }
	docker build -f manifests/Dockerfile -t $(IMAGE) .

clean:
	rm -rf $(OUT)
