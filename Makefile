# trace-capture: a thin layer over the go command. `go test ./...` alone
# stays authoritative; these targets add the checks CI runs.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
BIN       := bin/trace-capture
FUZZTIME  ?= 15s
# Caches of real components and peers live outside the repo.
export TRACE_CAPTURE_CACHE ?= $(HOME)/.cache/trace-capture

.PHONY: all build test unit vet check-deps fuzz bench golden tidy-check ci demo e2e components image

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/trace-capture

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

check-deps:
	./hack/check-deps.sh

unit:
	$(GO) test -timeout 20m ./...

# The README's test command: everything CI checks.
test: vet check-deps unit fuzz e2e

# Real etcd and kube-apiserver, built from the module proxy into the cache
# (versions: ETCD_VERSION, KUBE_VERSION; see hack/README.md).
components:
	@hack/build-component.sh etcd >/dev/null
	@hack/build-component.sh kube-apiserver >/dev/null

# End-to-end on real etcd + kube-apiserver (test/e2e/scenario).
e2e: build components
	E2E_TRACE_CAPTURE=$(CURDIR)/$(BIN) \
	E2E_ETCD=$$(hack/build-component.sh etcd | tail -n 1) \
	E2E_KUBE_APISERVER=$$(hack/build-component.sh kube-apiserver | tail -n 1) \
	$(GO) test -tags e2e -count=1 -timeout 30m -v ./test/e2e/scenario/

# The whole job on an embedded default: real etcd + kube-apiserver, locally.
demo:
	hack/demo.sh

fuzz:
	FUZZTIME=$(FUZZTIME) ./hack/fuzz.sh

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./receiver/ ./analyze/

golden:
	$(GO) test ./report/ ./analyze/ -update
	git diff --stat -- '*/testdata/*'

tidy-check:
	$(GO) mod tidy
	git diff --exit-code go.mod go.sum

ci: test

# The agent image, without a Docker daemon: an OCI archive of the static
# binary on an empty base (hack/image). Import it with `ctr images import`
# or push it with `skopeo copy oci-archive:bin/trace-capture-image.tar ...`.
IMAGE ?= localhost/trace-capture:$(VERSION)
image:
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/trace-capture-linux ./cmd/trace-capture
	$(GO) run ./hack/image -binary bin/trace-capture-linux -tag $(IMAGE) -o bin/trace-capture-image.tar
	@echo "image $(IMAGE): bin/trace-capture-image.tar"
