# Failure-injection lab (tests/lab/, a package run from the repository root), its benchmark (tests/bench/)
# and narrated demo (tests/demo/): included by the root Makefile. Needs root; skips otherwise.
#   make lab          a short narrated run: healthy -> blackhole -> healed (LAB_MODE=..., LAB_HOLD=1)
#   make lab-smoke    one healthy period + one hard failure with the debug binary (part of `make test`)
#   make lab-selftest the lab itself without the checker (every fault observable, clean teardown)
#   make bench        the full benchmark -> BENCHMARKS.md + docs/bench/outage-timeline.png (resumable); its
#                     modes include `replacement` (a planned NAT replacement, tests/lab/replacement.py) and
#                     the closed loop (loop_*: egress downtime, tests/lab/closedloop.py; BENCH_MODES=closed-loop
#                     alone, BENCH_LOOP_TRIALS per mode, BENCH_LOOP_ANCHOR_TRIALS of them with the anchors)
#   make bench-recovery  the closed loop's fallback and damping (tests/lab/loop_recovery.py; needs a checker
#                     with canaries): BENCH_RECOVERY_SCENARIOS (repair,flapping,gray,soak), flapping for BENCH_FLAP_MIN min
#                     (BENCH_FLAP_PERIOD s down, as many up), the soak BENCH_RECOVERY_SOAK_MIN min per loss level (5 %,
#                     20 %; BENCH_RECOVERY_SOAK_DNS vpc|beyond-nat: where the private host resolves), gray = MASQUERADE removed for good on a managed NAT layer (replaced, no human step),
#                     each scenario in a lab and moto of its own;
#                     records go to BENCH_OUT's results.jsonl, rendered by bench-report
#   make bench-bg     the same in the background (log: $(BENCH_OUT)/bench.log); bench-report re-renders
#   make lab-clean    remove labs left behind by a killed run
#   make lab-pytest   the lab's pytest suite: configure-nat.sh in throwaway namespaces (root parts skip
#                     otherwise) and the reader of the checker's --print-config (part of `make test`)
# Knobs: BENCH_TRIALS, BENCH_SOAK_MIN, BENCH_EXPOSURE, BENCH_CONFIGS, BENCH_MODES, BENCH_OUT, BENCH_JOBS (labs
# running trials in parallel, each its own lab; with 3 the full run is about 70 min on 2 cores), and
# BENCH_EXTRA='--extra-config NAME:VAR=V,VAR=V --md out/x.md' to compare a tuning without touching BENCHMARKS.md
# (bench-report takes the same BENCH_EXTRA: only its --md matters there).
LAB_PY      = $(VENV)/bin/python
LAB_MODE   ?= blackhole
LAB_HOLD   ?= 0
BENCH_TRIALS   ?= 20
BENCH_SOAK_MIN ?= 10
BENCH_EXPOSURE ?= 30
BENCH_CONFIGS  ?= default,alternat,python
BENCH_MODES    ?= all
BENCH_OUT      ?= out/bench
BENCH_JOBS     ?= 3
BENCH_EXTRA    ?=
BENCH_LOOP_TRIALS        ?= 10
BENCH_LOOP_ANCHOR_TRIALS ?= 3
BENCH_FLAP_MIN           ?= 10
BENCH_FLAP_PERIOD        ?= 1
BENCH_RECOVERY_SCENARIOS ?= repair,flapping,gray,soak
BENCH_RECOVERY_SOAK_MIN  ?= 5
BENCH_RECOVERY_SOAK_DNS  ?= vpc
BENCH_ARGS      = --trials $(BENCH_TRIALS) --soak-min $(BENCH_SOAK_MIN) --exposure $(BENCH_EXPOSURE) \
                  --configs $(BENCH_CONFIGS) --modes $(BENCH_MODES) --jobs $(BENCH_JOBS) --out $(BENCH_OUT) \
                  --loop-trials $(BENCH_LOOP_TRIALS) --loop-anchor-trials $(BENCH_LOOP_ANCHOR_TRIALS) $(BENCH_EXTRA)

.PHONY: lab lab-smoke lab-selftest lab-clean lab-pytest bench bench-bg bench-report bench-recovery

lab: deps venv release
	$(LAB_PY) -m tests.demo lab --binary $(BIN_RELEASE) --mode $(LAB_MODE) $(if $(filter 1,$(LAB_HOLD)),--hold)

lab-smoke: deps venv build
	$(LAB_PY) -m tests.lab.smoke $(BIN_DEBUG)

lab-selftest: deps venv
	$(LAB_PY) -m tests.lab.selftest

lab-pytest: deps venv
	$(LAB_PY) -m pytest -q -rs tests/lab

lab-clean:
	$(LAB_PY) -m tests.lab.cleanup

bench: deps venv release
	$(LAB_PY) -m tests.bench.detection run --binary $(BIN_RELEASE) $(BENCH_ARGS)

bench-recovery: deps venv release
	$(LAB_PY) -m tests.lab.loop_recovery $(BIN_RELEASE) --out $(BENCH_OUT) --scenario $(BENCH_RECOVERY_SCENARIOS) \
	  --flap-min $(BENCH_FLAP_MIN) --flap-period $(BENCH_FLAP_PERIOD) --soak-min $(BENCH_RECOVERY_SOAK_MIN) \
	  --soak-dns $(BENCH_RECOVERY_SOAK_DNS)

bench-bg: deps venv release
	@mkdir -p $(BENCH_OUT)
	setsid nohup $(LAB_PY) -m tests.bench.detection run --binary $(BIN_RELEASE) $(BENCH_ARGS) \
	  >>$(BENCH_OUT)/bench.log 2>&1 </dev/null & echo $$! >$(BENCH_OUT)/bench.pid
	@echo "bench running in the background (pid $$(cat $(BENCH_OUT)/bench.pid)); tail -f $(BENCH_OUT)/bench.log"
	@echo "stop: kill -TERM $$(cat $(BENCH_OUT)/bench.pid)   resume: the same make command"

bench-report: venv
	$(LAB_PY) -m tests.bench.detection report --out $(BENCH_OUT) $(BENCH_EXTRA)

EXTRA_TESTS += lab-pytest lab-smoke
