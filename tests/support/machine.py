"""The machine a measurement ran on, for the reports that state it (BENCHMARKS.md, docs/bench/*.md).
Standard library only; importable as tests.support.machine (from the repository root) or as machine
(with tests/support on sys.path, as the infra benchmarks have it)."""

from __future__ import annotations

from pathlib import Path


def cpu_model(unknown: str = "unknown") -> str:
    """The CPU's model name from /proc/cpuinfo, or `unknown` where it cannot be read."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return unknown
