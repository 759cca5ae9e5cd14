# berth: build, test, bench, lint. `make test` is what CI runs.
GO ?= go
export PATH := /usr/local/go/bin:$(PATH)

.PHONY: build test unit e2e bench lint clean

# Static: no dynamic loader on each of the two execs per container start
# (about 2 ms), and the same binary runs inside containers as --init.
BUILD_FLAGS ?= -tags osusergo,netgo -ldflags '-extldflags "-static"'

build:
	$(GO) build $(BUILD_FLAGS) -o bin/berth ./cmd/berth
	ln -sf berth bin/berth-runtime

# All tests: unit tests next to the code and the end-to-end tests that run
# real containers (as root; they skip otherwise).
test: build
	BERTH_BINARY=$(CURDIR)/bin/berth $(GO) test -count=1 -timeout 40m ./...

unit:
	$(GO) test -count=1 ./internal/...

e2e: build
	BERTH_BINARY=$(CURDIR)/bin/berth $(GO) test -count=1 -timeout 30m -v ./test/e2e/

bench: build
	BERTH=$(CURDIR)/bin/berth ./bench/runtime.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
