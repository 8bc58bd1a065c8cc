# hbd — build, run, test. Every module of the workspace (root, sdk, examples)
# is built, vetted and tested.
SHELL := /bin/bash
GO ?= go
MODULES := github.com/hbdmon/hbd/... github.com/hbdmon/hbd/sdk/... github.com/hbdmon/hbd/examples/...
NOTIFIERS := $(notdir $(wildcard notifiers/*))
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/hbdmon/hbd/core/daemon.Version=$(VERSION)
TEST_FLAGS ?= -race -timeout 20m

.PHONY: build run test test-deps lint bench proto clean fuzz

build:
	@mkdir -p bin/plugins
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/hbd ./core/cmd/hbd
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/hbc ./core/cmd/hbc
	@for n in $(NOTIFIERS); do \
		echo "$(GO) build -o bin/plugins/hbd-notifier-$$n ./notifiers/$$n/cmd/hbd-notifier-$$n"; \
		$(GO) build -o bin/plugins/hbd-notifier-$$n ./notifiers/$$n/cmd/hbd-notifier-$$n || exit 1; \
	done

# run: the daemon on the example config plus a local agent reporting this
# machine, so the dashboards at http://127.0.0.1:50004/live show real data.
run: build
	@mkdir -p -m 700 data
	@echo "hbd: dashboards at http://127.0.0.1:50004/live (Ctrl-C stops both)"
	@bin/hbd serve -config examples/hbd.yaml & hbd=$$!; \
	trap 'kill $$hbd 2>/dev/null; wait $$hbd' EXIT INT TERM; \
	for i in $$(seq 50); do curl -fs http://127.0.0.1:50004/healthz >/dev/null 2>&1 && break; sleep 0.1; done; \
	bin/hbc -config examples/hbc.yaml

# test-deps installs what the browser tests need on a fresh Debian machine.
test-deps:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium for the browser tests"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: test-deps
	$(GO) test $(TEST_FLAGS) $(MODULES)
	$(MAKE) --no-print-directory fuzz

# fuzz runs every fuzz target briefly (their seed corpora also run as
# plain tests in `go test`); FUZZTIME=1m for a longer hunt.
FUZZTIME ?= 5s
FUZZ_TARGETS := FuzzDecode:./core/heartbeat FuzzBatch:./core/protocol FuzzVerify:./core/protocol FuzzCompile:./core/glob FuzzParse:./core/config FuzzChannelBody:./core/api
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; pkg=$${t#*:}; \
		echo "fuzz $$name $$pkg ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(MODULES)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s $(MODULES)

proto:
	cd sdk && $(GO) generate ./...

clean:
	rm -rf bin
