"""Static reading of an ASL definition: the error names its Retry/Catch can match, the worst-case
duration of its retries, and how many EC2 calls run one after another before the first ReplaceRoute.
Used by tests/infra and by `make bench-failover`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterator

# What Step Functions can raise into a Task/Parallel/Map state of these state machines: the States.*
# errors of the ASL specification that a Retrier/Catcher may name, and, for AWS SDK integrations,
# `<Service>.<ErrorName>` in PascalCase - EC2 models no exception types, so every EC2 error (throttling
# included) is `Ec2.Ec2Exception` (AWS Step Functions developer guide, "AWS SDK service integrations",
# error handling). States.Runtime is deliberately absent: it cannot be retried or caught.
STATES_ERRORS = {"States.ALL", "States.Timeout", "States.TaskFailed", "States.Permissions",
                 "States.HeartbeatTimeout", "States.ResultPathMatchFailure", "States.ParameterPathFailure",
                 "States.BranchFailed", "States.NoChoiceMatched", "States.IntrinsicFailure",
                 "States.ExceedToleratedFailureThreshold", "States.ItemReaderFailed", "States.ResultWriterFailed"}
SDK_ERRORS = {"Ec2.Ec2Exception"}


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def walk_states(states: dict) -> Iterator[tuple[str, dict]]:
    """Every state, nested Parallel branches and Map processors included."""
    for name, st in states.items():
        yield name, st
        for branch in st.get("Branches", []):
            yield from walk_states(branch["States"])
        proc = st.get("ItemProcessor") or st.get("Iterator")
        if proc:
            yield from walk_states(proc["States"])


def fail_error_names(definition: dict) -> set[str]:
    return {st["Error"] for _, st in walk_states(definition["States"]) if st["Type"] == "Fail" and "Error" in st}


def error_equals(definition: dict) -> list[tuple[str, str, str]]:
    """(state, "Retry"|"Catch", error name) for every ErrorEquals entry."""
    out = []
    for name, st in walk_states(definition["States"]):
        for kind in ("Retry", "Catch"):
            for rule in st.get(kind, []):
                out += [(name, kind, e) for e in rule["ErrorEquals"]]
    return out


def retry_delays(rule: dict) -> list[float]:
    """The longest wait before each retry of one Retrier (full jitter waits at most this)."""
    interval, rate = rule.get("IntervalSeconds", 1), rule.get("BackoffRate", 2.0)
    cap = rule.get("MaxDelaySeconds", math.inf)
    return [min(cap, interval * rate ** n) for n in range(rule.get("MaxAttempts", 3))]


def task_worst_seconds(st: dict) -> float:
    """Worst case of one Task: every Retrier used to its end (each keeps its own count, so errors that
    alternate between Retriers can use all of them), every attempt running into TimeoutSeconds."""
    rules = st.get("Retry", [])
    attempts = 1 + sum(r.get("MaxAttempts", 3) for r in rules)
    waits = sum(sum(retry_delays(r)) for r in rules)
    return attempts * st.get("TimeoutSeconds", 60) + waits


def _next(st: dict) -> list[str]:
    if st["Type"] == "Choice":
        return [c["Next"] for c in st["Choices"]] + ([st["Default"]] if "Default" in st else [])
    return [st["Next"]] if "Next" in st else []


def worst_seconds(states: dict, start: str) -> float:
    """Longest path in seconds, Map iterations taken as one concurrent wave (≤ MaxConcurrency items)."""
    st = states[start]
    own = 0.0
    if st["Type"] == "Task":
        own = task_worst_seconds(st)
    elif st["Type"] == "Parallel":
        own = max(worst_seconds(b["States"], b["StartAt"]) for b in st["Branches"])
    elif st["Type"] == "Map":
        proc = st.get("ItemProcessor") or st["Iterator"]
        own = worst_seconds(proc["States"], proc["StartAt"])
    return own + max((worst_seconds(states, n) for n in _next(st)), default=0.0)


def _task_depth(states: dict, start: str) -> int:
    st = states[start]
    own = 1 if st["Type"] == "Task" else 0
    if st["Type"] == "Parallel":
        own = max(_task_depth(b["States"], b["StartAt"]) for b in st["Branches"])
    elif st["Type"] == "Map":
        proc = st.get("ItemProcessor") or st["Iterator"]
        own = _task_depth(proc["States"], proc["StartAt"])
    return own + max((_task_depth(states, n) for n in _next(st)), default=0)


def sequential_calls_to(states: dict, start: str, api: str = "replaceRoute") -> int | None:
    """The most EC2 calls made one after another up to and including the first `api` call, over every
    path that reaches one (a Parallel counts as its deepest branch); None when no path does."""
    st = states[start]
    if st["Type"] == "Task" and st["Resource"].endswith(f":{api}"):
        return 1
    if st["Type"] == "Map":
        proc = st.get("ItemProcessor") or st["Iterator"]
        inner = sequential_calls_to(proc["States"], proc["StartAt"], api)
        if inner is not None:
            return inner
    own = 0
    if st["Type"] == "Task":
        own = 1
    elif st["Type"] == "Parallel":
        own = max(_task_depth(b["States"], b["StartAt"]) for b in st["Branches"])
    elif st["Type"] == "Map":
        proc = st.get("ItemProcessor") or st["Iterator"]
        own = _task_depth(proc["States"], proc["StartAt"])
    found = [r for r in (sequential_calls_to(states, n, api) for n in _next(st)) if r is not None]
    return own + max(found) if found else None


def definition_summary(definition: dict) -> dict[str, Any]:
    return {"sequential_ec2_calls_to_first_replace_route": sequential_calls_to(definition["States"], definition["StartAt"]),
            "worst_case_seconds": worst_seconds(definition["States"], definition["StartAt"]),
            "timeout_seconds": definition.get("TimeoutSeconds")}
