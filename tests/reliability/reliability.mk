# Reliability and security pass (issue 5). Included by the root Makefile; see RELIABILITY.md.
#
#   make reliability-test   clippy over every target with unwrap/expect denied in non-test code
#                           (part of `make test`; the cargo tests of this pass run under rust-test)
#   make fuzz-install       cargo-fuzz, pinned (not part of `make test`)
#   make fuzz FUZZ_SECONDS=180
#                           each cargo-fuzz target for FUZZ_SECONDS; stable toolchain with
#                           RUSTC_BOOTSTRAP=1 (cargo-fuzz needs -Z flags); corpus and crashes in fuzz/

CARGO_FUZZ_VERSION := 0.13.2
FUZZ_SECONDS ?= 180
FUZZ_TARGETS := config_from_map emf_writer

.PHONY: reliability-test clippy fuzz-install fuzz

reliability-test: clippy
	@echo "reliability-test: passed"

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fuzz-install:
	@$(CARGO) fuzz --version 2>/dev/null | grep -q ' $(CARGO_FUZZ_VERSION)$$' \
	  || $(CARGO) install cargo-fuzz --locked --version $(CARGO_FUZZ_VERSION)

# -s none: no sanitizer (the targets are safe Rust; panics and aborts are what we look for), which
# also keeps aws-lc's C build out of ASan's way. -O: the engine as it ships.
fuzz: fuzz-install
	@for t in $(FUZZ_TARGETS); do \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -s none -O $$t -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 || exit 1; \
	done

EXTRA_TESTS += reliability-test
