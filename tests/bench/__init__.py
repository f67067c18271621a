"""Benchmarks: the detection benchmark on the failure-injection lab (detection, report -> BENCHMARKS.md)
and the footprint of the release checker (footprint -> docs/bench/footprint.md). Not tests: they
measure; run from the repository root with `python -m tests.bench.<module>` (the Makefile does)."""
