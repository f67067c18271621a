# NAT egress watchdog. `make demo` and `make test` work on a fresh Debian 12 machine with nothing else done.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON   ?= python3
VENV     := .venv
VENV_IAC := .venv-iac
PY       := $(VENV)/bin/python
CARGO    ?= cargo
BIN_DEBUG   := target/debug/connectivity-checker
BIN_RELEASE := target/release/connectivity-checker

.PHONY: help deps venv venv-iac build build-bin release test rust-test demo bench-footprint clean link-check

help:
	@echo "make demo   - the checker on emulated AWS: outage -> detection -> Failover execution -> routes moved -> nat-watchdog status"
	@echo "make test   - every test (Rust, moto integration, infra validation, lab smoke when root)"
	@echo "make bench  - failure-injection lab benchmark (root), writes BENCHMARKS.md"
	@echo "make deploy - see README 'Deploy'"
	@echo "make cost   - the monthly bill per AZ and per VPC from the template and a real EMF run, writes docs/COST.md"

# Debian packages the lab and the build need; installed only when root and missing.
DEB_PKGS := iproute2 nftables util-linux procps dnsmasq-base python3-venv time
deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: not root, cannot install:$$missing"; fi; fi

venv: $(VENV)/.installed
$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv-iac: $(VENV_IAC)/.installed
$(VENV_IAC)/.installed: requirements-iac.txt
	$(PYTHON) -m venv $(VENV_IAC)
	$(VENV_IAC)/bin/pip install -q --disable-pip-version-check -r requirements-iac.txt
	touch $@

# One debug build of the whole workspace (binaries and test binaries) per run.
build:
	$(CARGO) build --workspace --all-targets --locked

build-bin:
	$(CARGO) build --locked -p connectivity-checker -p nat-watchdog

release:
	$(CARGO) build --release --locked -p connectivity-checker

rust-test: build venv
	MOTO_SERVER_BIN=$(CURDIR)/$(VENV)/bin/moto_server $(CARGO) test --workspace --all-targets --locked

# The main job on emulated AWS: outage -> detection -> Failover execution -> routes moved.
demo: deps venv build-bin
	$(VENV)/bin/python -m tests.demo emulated --checker $(BIN_DEBUG) --watchdog target/debug/nat-watchdog

# Peak RSS and CPU of the release CLI over 60 s with 3 targets, binary sizes -> docs/bench/footprint.md
bench-footprint: venv release
	$(VENV)/bin/python -m tests.bench.footprint --binary $(BIN_RELEASE)

-include infra/infra.mk
-include tests/lab/lab.mk
-include tests/reliability/reliability.mk

# Relative links and #anchors of every Markdown file resolve (no network).
link-check: venv
	$(PY) tests/infra/check_links.py
EXTRA_TESTS += link-check

test: deps venv rust-test $(EXTRA_TESTS)
	@echo "make test: all suites passed"

clean:
	$(CARGO) clean; rm -rf .venv .venv-iac .venv-checkov .aws-sam
