# trace-capture: a thin layer over the go command. `go test ./...` alone
# stays authoritative; these targets add the checks CI runs.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
BIN       := bin/trace-capture
FUZZTIME  ?= 15s
# Caches of real components and peers live outside the repo.
export TRACE_CAPTURE_CACHE ?= $(HOME)/.cache/trace-capture

.PHONY: all build test unit vet check-deps fuzz bench golden tidy-check ci demo e2e

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
test: vet check-deps unit fuzz

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
