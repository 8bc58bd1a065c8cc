# hbd — build, run, test. Every module of the workspace (root, sdk) is
# built, vetted and tested.
SHELL := /bin/bash
GO ?= go
MODULES := github.com/hbdmon/hbd/... github.com/hbdmon/hbd/sdk/...
# Every notifiers/<name> with a cmd/hbd-notifier-<name> main is a plugin.
NOTIFIERS := $(patsubst notifiers/%/cmd,%,$(wildcard notifiers/*/cmd))
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/hbdmon/hbd/core/daemon.Version=$(VERSION)
TEST_FLAGS ?= -race -timeout 20m
# BUILD_FLAGS and EXTRA_LDFLAGS are added to every `go build` (make
# package: -trimpath, -s -w).
BUILD_FLAGS ?=
EXTRA_LDFLAGS ?=

.PHONY: build run test test-deps lint bench bench-load bench-ha proto clean fuzz vulncheck install package vendor-ui

build:
	@mkdir -p bin/plugins
	$(GO) build $(BUILD_FLAGS) -ldflags "$(LDFLAGS) $(EXTRA_LDFLAGS)" -o bin/hbd ./core/cmd/hbd
	$(GO) build $(BUILD_FLAGS) -ldflags "-X main.version=$(VERSION) $(EXTRA_LDFLAGS)" -o bin/hbc ./core/cmd/hbc
	@for n in $(NOTIFIERS); do \
		echo "$(GO) build $(BUILD_FLAGS) -o bin/plugins/hbd-notifier-$$n ./notifiers/$$n/cmd/hbd-notifier-$$n"; \
		$(GO) build $(BUILD_FLAGS) -ldflags "$(EXTRA_LDFLAGS)" -o bin/plugins/hbd-notifier-$$n ./notifiers/$$n/cmd/hbd-notifier-$$n || exit 1; \
	done

# run: the daemon on the example config plus a local agent reporting this
# machine, so the dashboards at http://127.0.0.1:50004/live show real data.
# HBD_HBD_PORT (and the other HBD_ overrides) move the daemon; the agent
# follows HBD_HBD_PORT and HBD_HB_PORT.
run: build
	@mkdir -p -m 700 data
	@port=$${HBD_HBD_PORT:-50004}; hb=$${HBD_HB_PORT:-50003}; \
	echo "hbd: dashboards at http://127.0.0.1:$$port/live (Ctrl-C stops both)"; \
	bin/hbd serve -config examples/hbd.yaml & hbd=$$!; \
	trap 'kill $$hbd 2>/dev/null; wait $$hbd' EXIT INT TERM; \
	for i in $$(seq 50); do curl -fs http://127.0.0.1:$$port/healthz >/dev/null 2>&1 && break; sleep 0.1; done; \
	HBC_API_URL=http://127.0.0.1:$$port HBC_SERVER_IPV4=127.0.0.1:$$hb HBC_SERVER_IPV6="[::1]:$$hb" \
	bin/hbc -config examples/hbc.yaml

# test-deps installs what the tests need on a fresh Debian machine:
# chromium for the browser tests, PostgreSQL's server binaries (initdb,
# postgres) for the PostgreSQL store tests, which start their own server.
test-deps:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium for the browser tests"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }
	@{ command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || { \
		echo "installing postgresql for the PostgreSQL store tests"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; }

# PG_STORE_PACKAGES run a second time with their stores on PostgreSQL
# (the store package itself runs every case on both backends).
PG_STORE_PACKAGES := ./core/alert/... ./core/auth/... ./core/channels/... ./core/dispatch/... ./core/heartbeat/...

test: test-deps
	$(GO) test $(TEST_FLAGS) $(MODULES)
	HBD_TEST_STORE=postgres $(GO) test $(TEST_FLAGS) $(PG_STORE_PACKAGES)
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

# vendor-ui refreshes the web UI's third-party files (uPlot, and axe-core
# for the browser tests) from the npm registry at the versions pinned in
# webui/vendor/refresh.sh. The files are committed; nothing is fetched at
# build or run time.
vendor-ui:
	webui/vendor/refresh.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(MODULES)
	@$(MAKE) --no-print-directory vulncheck || echo "govulncheck: known vulnerabilities reported above (see docs/SECURITY.md); not failing the build"

# vulncheck runs govulncheck against the Go vulnerability database of the
# pinned golang.org/x/vulndb module (from the Go module proxy; the database
# server itself is not reachable from these machines). It exits non-zero
# when the code reaches a known vulnerability.
VULNDB_VERSION ?= v0.0.0-20261105234957-e22db6528018
GOVULNCHECK_VERSION ?= v1.9.0
vulncheck:
	@set -e; db=$$(mktemp -d); \
	src=$$(cd $$db && $(GO) mod download -json golang.org/x/vulndb@$(VULNDB_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	(cd $$src && $(GO) run ./cmd/indexdb -vulns $$src/data/osv -out $$db/db); \
	rc=0; for m in . sdk; do \
		echo "govulncheck $$m"; \
		(cd $$m && $(GO) run golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION) -db file://$$db/db ./...) || rc=1; \
	done; rm -rf $$db; exit $$rc

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s $(MODULES)

# bench-load: the fleet-scale scenario of issue 12 against a real daemon.
# It builds hbd and hbd-load, starts hbd (open mode, enroll_key, dynamic
# hosts, a temporary data_dir) and runs hbd-load's phases: seed the fleet
# (10,000 hosts, 4 plugins each), heartbeats as fast as acks come back,
# ingestion at BENCH_INGEST_RATE samples/s, readers (64 connections on
# each per-host endpoint, 8 on /api/0/alerts?limit=100) and 1,000 live
# feed clients (5 of them stalling halfway), each for DURATION, with the
# fleet's heartbeats and 10,000 samples/s alongside. The figures go to
# BENCH_OUT (JSON) and the terminal, the daemon's log beside it. DURATION=10m for the long run (four
# timed phases: about 45 minutes); BENCH_FLAGS passes more hbd-load flags.
BENCH_HOSTS ?= 10000
DURATION ?= 60s
BENCH_INGEST_RATE ?= 50000
BENCH_PORT ?= 51404
BENCH_HB_PORT ?= 51403
BENCH_OUT ?= bench-load.json
BENCH_FLAGS ?=
bench-load:
	@set -e; dir=$$(mktemp -d /tmp/hbd-bench-load.XXXXXX); pid=; \
	trap 'if [ -n "$$pid" ]; then kill $$pid 2>/dev/null; wait $$pid 2>/dev/null || true; fi; rm -rf $$dir' EXIT INT TERM; \
	$(GO) build -ldflags "$(LDFLAGS)" -o $$dir/hbd ./core/cmd/hbd; \
	$(GO) build -o $$dir/hbd-load ./core/cmd/hbd-load; \
	mkdir -m 700 $$dir/data $$dir/plugins; \
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > $$dir/enroll.key; \
	{ echo 'hbd_host: 127.0.0.1'; echo 'hbd_port: $(BENCH_PORT)'; echo 'ws_port: 0'; \
	  echo 'hb_port: $(BENCH_HB_PORT)'; echo 'hb_listen4: 127.0.0.1'; echo 'hb_listen6: "::1"'; \
	  echo "data_dir: $$dir/data"; echo "plugins_dir: $$dir/plugins"; echo 'log_level: warn'; \
	  echo "enroll_key: \"$$(cat $$dir/enroll.key)\""; echo 'watch_dynamic: true'; \
	  echo 'max_dynamic_hosts: $(BENCH_HOSTS)'; echo 'thresholds:'; \
	  echo '  "cpu_monitor.cpu_percent": {warning: 80, critical: 95}'; } > $$dir/hbd.yaml; \
	if cp $$dir/hbd.yaml $$dir/try.yaml && echo 'ws_max_clients: 2000' >> $$dir/try.yaml && \
	   $$dir/hbd check-config -config $$dir/try.yaml >/dev/null 2>&1; then mv $$dir/try.yaml $$dir/hbd.yaml; fi; \
	$$dir/hbd serve -config $$dir/hbd.yaml 2> $$dir/hbd.log & pid=$$!; \
	for i in $$(seq 100); do curl -fs http://127.0.0.1:$(BENCH_PORT)/healthz >/dev/null 2>&1 && break; sleep 0.1; done; \
	curl -fs http://127.0.0.1:$(BENCH_PORT)/healthz >/dev/null || { cat $$dir/hbd.log; exit 1; }; \
	echo "bench-load: hbd $(VERSION) (pid $$pid), $(BENCH_HOSTS) hosts, $(DURATION) per phase"; \
	$$dir/hbd-load -url http://127.0.0.1:$(BENCH_PORT) -hb4 127.0.0.1:$(BENCH_HB_PORT) -hb6 '[::1]:$(BENCH_HB_PORT)' \
	  -enroll-key-file $$dir/enroll.key -pid $$pid -hosts $(BENCH_HOSTS) -duration $(DURATION) \
	  -ingest-rate $(BENCH_INGEST_RATE) -json $(BENCH_OUT) $(BENCH_FLAGS); \
	kill -TERM $$pid; wait $$pid || true; pid=; \
	grep -E '\[(ERROR|WARN)\]' $$dir/hbd.log | grep -v 'OPEN MODE\|open to other users' | sed -E 's/^[^ ]+ +//; s/: [a-z_]+=.*//' | sort | uniq -c | sort -rn | head -20 || true; \
	grep -F '[ERROR]' $$dir/hbd.log | head -5 || true; \
	cp $$dir/hbd.log $(basename $(BENCH_OUT)).log; \
	echo "bench-load: figures in $(BENCH_OUT), the daemon's log in $(basename $(BENCH_OUT)).log (above: its warnings and errors counted, the first errors)"

# bench-ha: the two-daemon PostgreSQL scenario of issue 15 (core/loadgen
# TestBenchHA, which does nothing without -ha, so `make test` skips it):
# a real PostgreSQL in a scratch directory (core/testutil/pgtest, fsync on
# unless HBD_PGTEST_FSYNC=off), two `hbd serve` with cluster enabled on
# it, HA_HOSTS hosts beating to both, batches spread over both; a
# HA_DURATION throughput phase, then HA_KILLS kill -9 of the leader (each
# restarted), then every acknowledged sample looked up in PostgreSQL.
# Quick check: make bench-ha HA_HOSTS=1000 HA_DURATION=10s HA_KILLS=2.
HA_HOSTS ?= 10000
HA_DURATION ?= 60s
HA_KILLS ?= 10
HA_FLAGS ?=
bench-ha:
	HBD_PGTEST_FSYNC=$${HBD_PGTEST_FSYNC:-on} $(GO) test ./core/loadgen/ -run '^TestBenchHA$$' -count=1 -timeout 120m -v \
	  -args -ha -ha.hosts $(HA_HOSTS) -ha.duration $(HA_DURATION) -ha.kills $(HA_KILLS) $(HA_FLAGS)

# install: the binaries, the notifier plugins, the systemd units, the docs
# and (only where none exists yet) the configs. PREFIX=/usr/local and
# SYSCONFDIR=/etc by default; DESTDIR stages into another root. As root
# without DESTDIR it also creates the system users hbd and hbc. See
# docs/INSTALL.md.
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
BINDIR ?= $(PREFIX)/bin
PLUGINDIR ?= $(PREFIX)/lib/hbd/plugins
UNITDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR ?= $(PREFIX)/share/doc/hbd
DESTDIR ?=
INSTALL_SUBST = sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@PLUGINDIR@|$(PLUGINDIR)|g'
install: build
	install -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(PLUGINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)/examples
	install -m 0755 bin/hbd bin/hbc $(DESTDIR)$(BINDIR)/
	install -m 0755 bin/plugins/hbd-notifier-* $(DESTDIR)$(PLUGINDIR)/
	for u in hbd hbc; do $(INSTALL_SUBST) packaging/systemd/$$u.service > $(DESTDIR)$(UNITDIR)/$$u.service; \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.service; done
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 examples/hbd.yaml examples/hbc.yaml $(DESTDIR)$(DOCDIR)/examples/
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then for u in hbd hbc; do \
		sed 's/@NAME@/'$$u'/g' packaging/scripts/preinst.sh | sh || exit 1; done; fi
	@for u in hbd hbc; do f=$(DESTDIR)$(SYSCONFDIR)/$$u/$$u.yaml; \
		install -d -m 0755 $$(dirname $$f); \
		if [ -e $$f ]; then echo "install: $$f exists, kept (the new default: $(DOCDIR)/$$u.yaml.default)"; \
			$(INSTALL_SUBST) packaging/$$u.yaml > $(DESTDIR)$(DOCDIR)/$$u.yaml.default; \
		else $(INSTALL_SUBST) packaging/$$u.yaml > $$f; chmod 0640 $$f; \
			if getent group $$u >/dev/null && [ -z "$(DESTDIR)" ]; then chgrp $$u $$f; fi; fi; done

# package: .deb and .rpm of hbd and hbc in PKG_OUT, built by nfpm (from
# the Go module proxy) from the tree `make install PREFIX=/usr` stages.
NFPM_VERSION ?= v2.45.2
PKG_OUT ?= dist
PKG_ARCH ?= $(shell $(GO) env GOARCH)
PKG_VERSION ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null) && echo $${v\#v} || \
	git log -1 --format='0.0.0~git%cd.%h' --date=format:%Y%m%d 2>/dev/null || echo 0.0.0~dev)
PKG_FORMATS ?= deb rpm
package:
	@set -e; stage=$$(mktemp -d); trap 'rm -rf $$stage' EXIT; \
	CGO_ENABLED=0 $(MAKE) --no-print-directory install PREFIX=/usr SYSCONFDIR=/etc \
		BUILD_FLAGS=-trimpath EXTRA_LDFLAGS='-s -w' \
		UNITDIR=/usr/lib/systemd/system DESTDIR=$$stage/root >/dev/null; \
	mkdir -p $$stage/scripts $(PKG_OUT); \
	for u in hbd hbc; do for s in preinst postinst prerm postrm; do \
		if [ $$u = hbd ]; then first="enables and starts hbd"; start="systemctl enable --now hbd.service || true"; data="the database"; \
		else first="leaves hbc stopped until /etc/hbc/hbc.yaml is filled in"; start="echo 'hbc: fill in /etc/hbc/hbc.yaml (hbd add-host prints it), then: systemctl enable --now hbc'"; data="the spool"; fi; \
		sed -e "s#@NAME@#$$u#g" -e "s#@FIRST@#$$first#g" -e "s#@START@#$$start#g" -e "s#@DATA@#$$data#g" \
			packaging/scripts/$$s.sh > $$stage/scripts/$$u-$$s.sh; done; done; \
	out=$$(cd $(PKG_OUT) && pwd); \
	for u in hbd hbc; do for f in $(PKG_FORMATS); do \
		(cd $$stage && PKG_ARCH=$(PKG_ARCH) PKG_VERSION='$(PKG_VERSION)' \
			$(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION) package \
			-f $(CURDIR)/packaging/nfpm-$$u.yaml -p $$f -t $$out/) || exit 1; \
	done; done; ls -l $(PKG_OUT)

proto:
	cd sdk && $(GO) generate ./...

clean:
	rm -rf bin dist
