"""The ASL files read as data: every error name a Retrier or Catcher waits for is one Step Functions can
raise here, throttling gets the long jittered Retrier, the execution timeout covers the worst case of
the retries, and the Failover reaches its first ReplaceRoute after at most 2 sequential EC2 calls."""

from __future__ import annotations

import json
import re

import pytest

from asl_paths import (SDK_ERRORS, STATES_ERRORS, definition_summary, error_equals, fail_error_names,
                       sequential_calls_to, task_worst_seconds, walk_states)
from moto_env import STATEMACHINES_DIR, load_definition

MACHINES = ["failover", "fallback"]


def definition(name: str) -> dict:
    return json.loads(load_definition(name, {"FallbackNatGatewayId": "", "VpcId": "vpc-0123456789abcdef0"}))


@pytest.mark.parametrize("machine", MACHINES)
def test_every_error_name_is_one_step_functions_can_raise(machine):
    d = definition(machine)
    allowed = STATES_ERRORS | SDK_ERRORS | fail_error_names(d)
    found = error_equals(d)
    assert found, "no Retry/Catch at all"
    unknown = [(state, kind, e) for state, kind, e in found if e not in allowed]
    assert unknown == [], f"names no SDK integration raises (EC2 errors are all Ec2.Ec2Exception): {unknown}"


def test_the_checker_rejects_the_names_it_is_meant_to_catch():
    """The check itself can fail: the names of the old definitions are refused."""
    allowed = STATES_ERRORS | SDK_ERRORS
    for wrong in ("Ec2.RequestLimitExceeded", "Ec2.ThrottlingException", "Ec2.InternalError",
                  "Ec2.ServiceUnavailable", "ec2.ec2Exception", "Ec2.SdkClientException"):
        assert wrong not in allowed


@pytest.mark.parametrize("machine", MACHINES)
def test_every_ec2_call_retries_ec2_errors_with_the_jittered_throttling_policy(machine):
    tasks = [(n, st) for n, st in walk_states(definition(machine)["States"]) if st["Type"] == "Task"]
    assert tasks
    for name, st in tasks:
        assert st["Resource"].startswith("arn:aws:states:::aws-sdk:ec2:"), name
        first = st["Retry"][0]
        # The name cannot tell throttling from other EC2 errors, so every Ec2Exception gets the
        # throttling-grade policy; it is the first Retrier, so no other one takes these errors first.
        assert "Ec2.Ec2Exception" in first["ErrorEquals"] and "States.Timeout" in first["ErrorEquals"], name
        assert first["MaxAttempts"] >= 6 and first["JitterStrategy"] == "FULL", name
        assert first["BackoffRate"] >= 2 and first.get("MaxDelaySeconds", 0) >= 8, name
        assert st["TimeoutSeconds"] <= 10, name


@pytest.mark.parametrize("machine", MACHINES)
def test_execution_timeout_covers_the_worst_case_of_the_retries(machine):
    d = definition(machine)
    summary = definition_summary(d)
    assert summary["worst_case_seconds"] <= d["TimeoutSeconds"], summary
    # The arithmetic stated in the definition's Comment is the one computed here.
    per_task = {task_worst_seconds(st) for _, st in walk_states(d["States"]) if st["Type"] == "Task"}
    assert per_task == {124.0}
    assert "= 124 s; 2 x 124 = 248 s" in d["Comment"] and summary["worst_case_seconds"] == 248.0


@pytest.mark.parametrize("machine", MACHINES)
def test_at_most_two_sequential_ec2_calls_before_the_first_replace_route(machine):
    d = definition(machine)
    assert sequential_calls_to(d["States"], d["StartAt"]) == 2


@pytest.mark.parametrize("machine", MACHINES)
def test_every_lookup_is_scoped_to_the_vpc(machine):
    d = definition(machine)
    filter_sets = {k: v for _, st in walk_states(d["States"]) if st["Type"] == "Pass"
                   for k, v in st.get("Parameters", {}).items() if k.endswith("Filters")}
    describes = [st for _, st in walk_states(d["States"])
                 if st["Type"] == "Task" and ":describe" in st["Resource"]]
    assert describes and filter_sets
    for st in describes:
        (key, path), = st["Parameters"].items()
        assert key in ("Filters.$", "Filter.$") and path.startswith("$."), st["Resource"]
    for name, filters in filter_sets.items():
        assert {"Name": "vpc-id", "Values": ["vpc-0123456789abcdef0"]} in filters, name


@pytest.mark.parametrize("machine", MACHINES)
def test_result_selectors_keep_no_route_lists(machine):
    text = (STATEMACHINES_DIR / f"{machine}.asl.json").read_text()
    selectors = [st["ResultSelector"] for _, st in walk_states(json.loads(text)["States"]) if "ResultSelector" in st]
    assert selectors
    for sel in selectors:
        for path in sel.values():
            assert "Routes" not in path, sel
            # A JSONPath filter that matches nothing is a States.Runtime error (uncatchable): none in
            # selectors whose input may be empty.
            assert "?(" not in path, sel
    assert not re.search(r'"Routes', text)


@pytest.mark.parametrize("path", sorted(STATEMACHINES_DIR.glob("*.asl.json")), ids=lambda p: p.name)
def test_no_state_machine_waits_for_an_ec2_or_states_error_that_cannot_happen(path):
    """Every ASL file here, including ones added later: an EC2 error is only ever Ec2.Ec2Exception,
    and a States.* name must be one of the specification's."""
    d = json.loads(re.sub(r"\$\{[A-Za-z0-9_]+\}", "x", path.read_text()))
    for state, kind, name in error_equals(d):
        if name.lower().startswith("ec2."):
            assert name == "Ec2.Ec2Exception", (path.name, state, kind, name)
        if name.startswith("States."):
            assert name in STATES_ERRORS, (path.name, state, kind, name)
