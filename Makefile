# ipvs-proxy build and test entry points. `make test` is what CI runs.
GO      ?= go
OUT     ?= _output
BIN     := $(OUT)/bin

export CGO_ENABLED ?= 0

# The release (VERSION file) and git commit, stamped into the binary: ipvs-proxy version.
LDFLAGS  = $(shell scripts/lib/version.sh ldflags)

.PHONY: all build test quick verify update unit lint e2e cluster-e2e conformance demo bench image clean

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ipvs-proxy ./cmd/ipvs-proxy

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

## cluster-e2e: a real cluster (control plane on the host, a user-mode Linux node with containerd and a kubelet);
## deploys manifests/ with the image of make image as the README says. CLUSTER_RUN=regexp selects scenarios.
cluster-e2e:
	scripts/cluster.sh

## conformance: Kubernetes' e2e suite (Services, sig-network conformance) against ipvs-proxy on that cluster;
## result in docs/conformance.md. CONFORMANCE_SET=ci runs the handful make test runs.
conformance:
	scripts/conformance.sh

## demo: boots the VM and runs ipvs-proxy on examples/, showing ipvsadm -Ln and traffic through the VIPs.
demo:
	scripts/demo.sh

## bench: the scale benchmark in the VM (see docs/benchmarks.md).
bench:
	scripts/bench.sh

## image: the DaemonSet's image as an OCI archive, _output/image/ipvs-proxy.oci.tar, without a Docker daemon
## (manifests/Dockerfile builds the same one with Docker). Tagged with VERSION, the tag the manifests pin.
image:
	scripts/image/build.sh

clean:
	rm -rf $(OUT)
