"""The metric budget docs/COST.md states holds for the checker as built: a real run (healthy, and with
one target refusing connections) writes no more metric x dimension combinations per AZ than the page
allows, and the page's bill meets the $8 per AZ-month goal it was written for."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cost import ALL_HEALTH_NAMES, BUDGET_ALWAYS, BUDGET_POSSIBLE, counts

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / "target" / "debug" / "connectivity-checker"


def page() -> str:
    return (ROOT / "docs" / "COST.md").read_text()


def stated_budget() -> tuple[int, int]:
    always = re.search(r"always present: \*\*at most (\d+)\*\*", page())
    possible = re.search(r"possible at all: \*\*at most (\d+)\*\*", page())
    assert always and possible, "docs/COST.md no longer states the metric budget"
    return int(always.group(1)), int(possible.group(1))


@pytest.fixture(scope="module")
def measured():
    if not BINARY.is_file():
        pytest.fail(f"{BINARY} is missing: `make build-bin` first (make infra-pytest does)")
    return counts(str(BINARY))


def test_the_page_states_the_budget_the_generator_holds():
    assert stated_budget() == (BUDGET_ALWAYS, BUDGET_POSSIBLE), "docs/COST.md is stale: run `make cost`"


def test_metric_count_per_az_is_within_the_budget_the_page_states(measured):
    always, possible = stated_budget()
    assert measured["always"] <= always, measured["healthy_metrics"]
    assert measured["possible"] <= possible, measured["failing_metrics"]
    # One dimension set: every combination is (name, [AvailabilityZone]) and the name is a health name,
    # so no run can exceed len(ALL_HEALTH_NAMES).
    for name, dims in measured["healthy_metrics"] + measured["failing_metrics"]:
        assert [k for k, _ in dims] == ["AvailabilityZone"] and name in ALL_HEALTH_NAMES, (name, dims)
    assert len(ALL_HEALTH_NAMES) <= possible


def test_failure_counters_appear_only_while_probes_fail(measured):
    healthy = {n for n, _ in measured["healthy_metrics"]}
    failing = {n for n, _ in measured["failing_metrics"]}
    assert "ProbeFailure" not in healthy and "ProbeFailureConnectRefused" in failing
    assert "NatPathProbeFailure" not in healthy and "NatPathProbeFailure" in failing
    # Liveness (SampleCount of Unhealthy), successes (SampleCount of ProbeLatency) and, with the
    # template's default canaries, the NAT-instance path's verdict: nothing else while all is well.
    assert healthy == {"Unhealthy", "ProbeLatency", "NatPathUnhealthy"}


def test_the_page_meets_the_goal_it_states():
    total = re.search(r"\*\*checker compute \+ metrics \+ alarms \+ logs \+ dashboard share\*\* \| \| \*\*\$([0-9.]+)\*\*", page())
    assert total, "docs/COST.md has no per-AZ total"
    assert float(total.group(1)) <= 8.00
    assert "Goal: ≤ $8.00 per AZ-month — met" in page()
