"""The recovery controller (infra/statemachines/nat-recovery.asl.json) executed in moto against the
managed NAT layer of tests/support/moto_env.py (build_workflows_nat_layer), with the Failover and
Fallback of infra/statemachines as they are deployed, plus the IAM, alarms and wiring of
infra/recovery.yaml.

The checker is emulated by a thread that publishes `NatPathUnhealthy` (dimension AvailabilityZone,
high resolution) every 0.2 s, as the engine does after each canary round. moto delivers no
EventBridge events: the dispatch tests start the state machine with the event 'Step Functions
Execution Status Change' as AWS documents it (moto_env.failover_succeeded_event). The server is the
recording one (moto_env.recovery_moto_server): it records SetInstanceHealth and replaces an instance
marked Unhealthy, as Auto Scaling does. Waits are shortened by substitution only (CheckPeriodSeconds
1 and holds of a few seconds): the states are the deployed ones."""

from __future__ import annotations

import json
import re
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest

from moto_env import (STATEMACHINES_DIR, TAG_DEPLOYMENT, TAG_PAUSED_UNTIL, build_workflows_nat_layer,
                      create_recovery_state_machine, create_state_machines, default_route_targets,
                      failover_succeeded_event, read_workflow_calls, recovery_moto_server,
                      reset_recording_server, run_execution, serving, wait_execution, workflows_in_service_instances)
from template_eval import INFRA, Stack

AZS = ["us-east-1a", "us-east-1b"]
AZ = "us-east-1a"
DEPLOYMENT = "natrec"
NAMESPACE = "NatEgressWatchdogTest"
FAST = {"CheckPeriodSeconds": 1, "FallbackHoldSeconds": 3, "FallbackHoldCapSeconds": 60,
        "MaxAutoFallbacksPerDay": 3, "RepairAfterSeconds": 100000, "MaxRepairsPerHour": 2,
        "MaxLifetimeSeconds": 8}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serving(recovery_moto_server(tmp_path_factory.mktemp("natrec")))


@pytest.fixture()
def env(server):
    """Two AZs of the managed NAT layer; AZ us-east-1a failed over to its standby gateway."""
    moto, record = server
    session, ec2, asg, sfn = reset_recording_server(moto, record)
    layer = build_workflows_nat_layer(ec2, asg, AZS, deployment=DEPLOYMENT)
    arns = create_state_machines(sfn)
    failover = run_execution(sfn, arns["failover"], {"availabilityZone": AZ})
    assert failover["status"] == "SUCCEEDED", failover
    e = {"moto": moto, "session": session, "ec2": ec2, "asg": asg, "sfn": sfn,
         "cw": session.client("cloudwatch"), "layer": layer, "arns": arns, "record": record,
         "failover": failover}
    assert on_gateway(e, AZ)
    return e


# ------------------------------------------------------------------------------------------ helpers

def recovery(env, **knobs):
    return create_recovery_state_machine(env["sfn"], env["arns"]["fallback"], deployment=DEPLOYMENT,
                                         namespace=NAMESPACE, **{**FAST, **knobs})


def watch(env, arn, az=AZ, timeout=60):
    return run_execution(env["sfn"], arn, {"watch": {"availabilityZone": az,
                                                      "failoverExecutionArn": env["failover"]["executionArn"]}},
                         timeout=timeout)


def on_gateway(env, az):
    targets = set(default_route_targets(env["ec2"], env["layer"][az]["route_table_ids"]).values())
    return targets == {env["layer"][az]["standby_nat_gateway_id"]}


def fallback_executions(env):
    sfn = env["sfn"]
    out = []
    for e in sfn.list_executions(stateMachineArn=env["arns"]["fallback"])["executions"]:
        out.append(json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"]))
    return out


def calls(env, name):
    return [c for c in read_workflow_calls(env["record"]) if c["call"] == name]


def metric_values(env, metric, az=AZ, hours=25):
    """Every datum of `metric` (per AZ, or without dimension for az=None), newest last."""
    now = datetime.now(timezone.utc)
    stat = {"Metric": {"Namespace": NAMESPACE, "MetricName": metric,
                       "Dimensions": [{"Name": "AvailabilityZone", "Value": az}] if az else []},
            "Period": 1, "Stat": "Sum"}
    out = env["cw"].get_metric_data(MetricDataQueries=[{"Id": "m", "MetricStat": stat}],
                                    StartTime=now - timedelta(hours=hours), EndTime=now + timedelta(minutes=1))
    return out["MetricDataResults"][0]["Values"]


def dimensionless(env, metric):
    listed = env["cw"].list_metrics(Namespace=NAMESPACE, MetricName=metric)["Metrics"]
    return [m for m in listed if not m.get("Dimensions")]


def put_auto_fallbacks(env, ages: list[timedelta], az=AZ):
    now = datetime.now(timezone.utc)
    env["cw"].put_metric_data(Namespace=NAMESPACE, MetricData=[
        {"MetricName": "AutoFallback", "Dimensions": [{"Name": "AvailabilityZone", "Value": az}],
         "Value": 1, "Unit": "Count", "Timestamp": now - age} for age in ages])


@contextmanager
def checker(env, values, az=AZ):
    """Emulates the checker: NatPathUnhealthy (1/0) for `az` every 0.2 s; `values` is a callable
    returning the next value (None: publish nothing this round)."""
    cw = env["session"].client("cloudwatch")
    stop = threading.Event()

    def run():
        while not stop.is_set():
            v = values()
            if v is not None:
                cw.put_metric_data(Namespace=NAMESPACE, MetricData=[{
                    "MetricName": "NatPathUnhealthy", "Dimensions": [{"Name": "AvailabilityZone", "Value": az}],
                    "Value": v, "Unit": "None", "StorageResolution": 1}])
            stop.wait(0.2)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(timeout=10)


def healthy():
    return 0


def unhealthy():
    return 1


def alternating():
    state = {"n": 0}

    def next_value():
        state["n"] += 1
        return state["n"] % 2
    return next_value


def states_entered(env, execution_arn):
    events = env["sfn"].get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def wait_for_state(env, execution_arn, state, count=1, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if states_entered(env, execution_arn).count(state) >= count:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{execution_arn} did not enter {state} {count} times")


# ------------------------------------------------------------------------------------------ dispatch

def test_a_succeeded_failover_starts_one_watch_named_after_it_and_a_duplicate_event_starts_nothing(env):
    arn = recovery(env, MaxLifetimeSeconds=30)
    event = failover_succeeded_event(env["failover"]["executionArn"], env["arns"]["failover"],
                                     {"availabilityZone": AZ, "trigger": "checker", "subnetId": "subnet-1"})
    first = run_execution(env["sfn"], arn, event)
    assert first["status"] == "SUCCEEDED", first
    [started] = first["outputJson"]["watches"]
    assert started["availabilityZone"] == AZ and started["action"] == "watching"
    try:
        second = run_execution(env["sfn"], arn, event)
        assert second["status"] == "SUCCEEDED", second
        [again] = second["outputJson"]["watches"]
        # AWS returns the running execution for the same name and input; moto refuses the name: either
        # way nothing new starts.
        assert again["action"] in ("already-watched", "watching")
        assert again.get("executionArn", started["executionArn"]) == started["executionArn"]
        watches = [e for e in env["sfn"].list_executions(stateMachineArn=arn)["executions"]
                   if e["executionArn"] not in (first["executionArn"], second["executionArn"])]
        assert [w["executionArn"] for w in watches] == [started["executionArn"]]
        name = started["executionArn"].rsplit(":", 1)[1]
        assert name.startswith(f"{AZ}-") and len(name) <= 80 and re.fullmatch(r"[A-Za-z0-9_-]+", name)
    finally:
        env["sfn"].stop_execution(executionArn=started["executionArn"])


def test_a_failover_of_every_az_is_watched_per_az_and_an_az_not_on_a_gateway_ends_at_once(env):
    arn = recovery(env)
    event = failover_succeeded_event("arn:aws:states:us-east-1:123456789012:execution:nat-watchdog-failover:all",
                                     env["arns"]["failover"], {})
    result = run_execution(env["sfn"], arn, event)
    assert result["status"] == "SUCCEEDED", result
    watches = {w["availabilityZone"]: w for w in result["outputJson"]["watches"]}
    assert set(watches) == set(AZS) and {w["action"] for w in watches.values()} == {"watching"}
    other = wait_execution(env["sfn"], watches["us-east-1b"]["executionArn"], timeout=30)
    assert other["status"] == "SUCCEEDED" and other["outputJson"]["action"] == "not-on-gateway"
    env["sfn"].stop_execution(executionArn=watches[AZ]["executionArn"])


@pytest.mark.parametrize("status", ["FAILED", "TIMED_OUT"])
def test_events_of_failovers_that_did_not_succeed_start_nothing(env, status):
    arn = recovery(env)
    event = failover_succeeded_event(env["failover"]["executionArn"], env["arns"]["failover"],
                                     {"availabilityZone": AZ}, status=status)
    result = run_execution(env["sfn"], arn, event)
    assert result["outputJson"] == {"action": "ignored-status", "status": status}
    assert len(env["sfn"].list_executions(stateMachineArn=arn)["executions"]) == 1


@pytest.mark.parametrize("trigger", ["manual", "lifecycle", "replace", "maintenance"])
def test_failovers_of_a_person_or_of_the_nat_workflows_are_not_watched(env, trigger):
    """They are ended by whoever started them (the workflows fall back themselves)."""
    arn = recovery(env)
    event = failover_succeeded_event(env["failover"]["executionArn"], env["arns"]["failover"],
                                     {"availabilityZone": AZ, "trigger": trigger})
    result = run_execution(env["sfn"], arn, event)
    assert result["outputJson"]["action"] == "ignored-trigger" and result["outputJson"]["trigger"] == trigger
    assert len(env["sfn"].list_executions(stateMachineArn=arn)["executions"]) == 1


def test_input_that_is_neither_an_event_nor_a_watch_is_refused(env):
    result = run_execution(env["sfn"], recovery(env), {"availabilityZone": AZ})
    assert result["status"] == "FAILED" and result["error"] == "InvalidInput"


# ------------------------------------------------------------------------------------------ fallback

def test_falls_back_once_the_path_has_been_healthy_for_the_whole_hold(env):
    arn = recovery(env)
    with checker(env, healthy):
        result = watch(env, arn)

    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    out = result["outputJson"]
    assert out["action"] == "fell-back" and out["holdSeconds"] == 3 and out["autoFallbacks24h"] == 0
    [started] = fallback_executions(env)
    assert started["availabilityZone"] == AZ and started["trigger"] == "fallback-auto"
    assert "healthy for 3 s" in started["reason"]
    assert not on_gateway(env, AZ)
    assert metric_values(env, "AutoFallback") == [1.0]
    # The first check has no window (unknown); then three healthy one-second windows = the hold.
    entered = states_entered(env, result["executionArn"])
    assert entered.count("PathHealthy") == 3 and entered.count("Tick") == 4
    assert entered.index("Fallback") > max(i for i, s in enumerate(entered) if s == "ReadRoutes")
    assert metric_values(env, "OnGateway") == [1.0] * 4
    assert dimensionless(env, "GatewaySeconds") and dimensionless(env, "AutoFallbackSuspended")


def test_a_fallback_that_moved_nothing_is_no_fallback_the_watch_holds_again_and_continues(env):
    """The stable ENI is detached (a replacement under way) when the hold is over: the Fallback skips
    the AZ (skipped-stable-eni-not-attached), so no AutoFallback is recorded and the watch continues as
    a new execution (its own Fallback name), which falls back once the ENI is attached again."""
    layer = env["layer"][AZ]
    eni = env["ec2"].describe_network_interfaces(NetworkInterfaceIds=[layer["nat_eni_id"]])["NetworkInterfaces"][0]
    env["ec2"].detach_network_interface(AttachmentId=eni["Attachment"]["AttachmentId"], Force=True)
    arn = recovery(env, MaxLifetimeSeconds=60)
    with checker(env, healthy):
        first = watch(env, arn)
        assert first["outputJson"]["action"] == "continued", first["outputJson"]
        assert "FallbackDeferred" in states_entered(env, first["executionArn"])
        assert on_gateway(env, AZ) and metric_values(env, "AutoFallback") == []
        env["ec2"].attach_network_interface(NetworkInterfaceId=layer["nat_eni_id"], InstanceId=layer["instance_id"],
                                            DeviceIndex=1)
        second = wait_execution(env["sfn"], first["outputJson"]["nextExecution"], timeout=60)

    assert second["outputJson"]["action"] == "fell-back", second["outputJson"]
    assert not on_gateway(env, AZ)
    assert metric_values(env, "AutoFallback") == [1.0]
    assert [e["trigger"] for e in fallback_executions(env)] == ["fallback-auto", "fallback-auto"]


def test_a_long_watch_continues_as_a_new_execution_carrying_its_counters_and_hold(env):
    """MaxIterationsPerExecution 3: the first execution hands over after three periods, the next one
    goes on from its counters (healthy seconds, elapsed time, hold) and falls back."""
    put_auto_fallbacks(env, [timedelta(minutes=30)])
    arn = recovery(env, FallbackHoldSeconds=3, MaxIterationsPerExecution=3, MaxLifetimeSeconds=30)
    with checker(env, healthy):
        first = watch(env, arn)
        assert first["outputJson"]["action"] == "continued", first["outputJson"]
        chain = [first]
        while chain[-1]["outputJson"]["action"] == "continued":
            chain.append(wait_execution(env["sfn"], chain[-1]["outputJson"]["nextExecution"], timeout=60))

    last = chain[-1]["outputJson"]
    assert last["action"] == "fell-back" and last["holdSeconds"] == 6 and last["autoFallbacks24h"] == 1
    base = chain[0]["executionArn"].rsplit(":", 1)[1]
    assert [c["executionArn"].rsplit(":", 1)[1] for c in chain[1:]] == [f"{base}-g{n}" for n in range(2, len(chain) + 1)]
    # Elapsed time and the healthy streak carried over: no execution alone waited the whole hold.
    assert last["gatewaySeconds"] > 3
    assert "ReadAutoFallbacks" not in states_entered(env, chain[-1]["executionArn"])
    assert len(fallback_executions(env)) == 1
    # The budget behind MaxIterationsPerExecution=300: a period costs at most ~60 events, so 300 of them
    # plus the start stay far below the 25,000 events of one execution.
    events = env["sfn"].get_execution_history(executionArn=chain[0]["executionArn"], maxResults=1000)["events"]
    per_period = len(events) / 3
    assert per_period < 80 and 300 * per_period < 25000, per_period


@pytest.mark.parametrize("path", [unhealthy, alternating(), None], ids=["unhealthy", "intermittent", "missing"])
def test_never_falls_back_while_any_period_is_unhealthy_or_missing(env, path):
    arn = recovery(env, MaxLifetimeSeconds=6)
    with checker(env, path or (lambda: None)):
        result = watch(env, arn)

    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    assert result["outputJson"]["action"] == "lifetime-exceeded"
    assert fallback_executions(env) == []
    assert on_gateway(env, AZ)
    entered = states_entered(env, result["executionArn"])
    assert "PathHealthy" not in entered and "Fallback" not in entered
    assert entered.count("Tick") == 6
    assert metric_values(env, "RecoveryGaveUp") == [1.0] and dimensionless(env, "RecoveryGaveUp")


def test_a_gap_in_the_checkers_data_restarts_the_hold(env):
    """Healthy, then 2.5 s without data, then healthy: the hold counts from after the gap. (Windows lag
    one period, so the gap is seen a period after it began; the hold of 4 s is longer than that.)"""
    arn = recovery(env, FallbackHoldSeconds=4, MaxLifetimeSeconds=20)
    gap = {"until": 0.0}

    def values():
        return None if time.monotonic() < gap["until"] else 0

    with checker(env, values):
        execution = env["sfn"].start_execution(stateMachineArn=arn, name="gap", input=json.dumps(
            {"watch": {"availabilityZone": AZ}}))["executionArn"]
        wait_for_state(env, execution, "PathHealthy", count=1)
        gap["until"] = time.monotonic() + 2.5
        result = wait_execution(env["sfn"], execution, timeout=60)

    assert result["outputJson"]["action"] == "fell-back"
    entered = [s for s in states_entered(env, execution) if s in ("PathHealthy", "PathUnknown", "PathUnhealthy")]
    last_unknown = max(i for i, s in enumerate(entered) if s == "PathUnknown")
    assert last_unknown > entered.index("PathHealthy")  # the gap was seen after healthy windows
    assert entered[last_unknown + 1:] == ["PathHealthy"] * 4  # and the full hold came after it


# ------------------------------------------------------------------------------------------ damping

@pytest.mark.parametrize("prior,knobs,hold", [
    (0, {}, 2), (1, {}, 4), (2, {}, 8),
    (3, {"MaxAutoFallbacksPerDay": 5}, 10),   # 2 x 2^3 = 16, capped at 10
    (4, {"MaxAutoFallbacksPerDay": 5}, 10),
], ids=["k0", "k1", "k2", "k3-capped", "k4-capped"])
def test_the_hold_doubles_with_each_automatic_fallback_in_24h_and_is_capped(env, prior, knobs, hold):
    """The watch of an AZ that is not on a gateway ends at its first check and reports the hold it
    computed. Automatic fallbacks older than 24 h and those of other AZs do not count."""
    put_auto_fallbacks(env, [timedelta(minutes=3 + 7 * i) for i in range(prior)] + [timedelta(hours=25)])
    put_auto_fallbacks(env, [timedelta(minutes=2)], az="us-east-1b")
    arn = recovery(env, FallbackHoldSeconds=2, FallbackHoldCapSeconds=10, **knobs)

    result = watch(env, arn, az="us-east-1b")

    assert result["outputJson"]["action"] == "not-on-gateway"
    # us-east-1b itself has one automatic fallback: the prior ones above belong to us-east-1a.
    assert result["outputJson"]["autoFallbacks24h"] == 1
    result = watch_az_a_not_on_gateway(env, arn)
    assert result["outputJson"]["autoFallbacks24h"] == prior
    assert result["outputJson"]["holdSeconds"] == hold
    assert result["outputJson"]["suspended"] is False


def watch_az_a_not_on_gateway(env, arn):
    run_execution(env["sfn"], env["arns"]["fallback"], {"availabilityZone": AZ, "trigger": "manual"})
    assert not on_gateway(env, AZ)
    return watch(env, arn)


def test_after_n_automatic_fallbacks_in_24h_it_suspends_keeps_watching_and_never_falls_back(env):
    put_auto_fallbacks(env, [timedelta(minutes=5), timedelta(hours=3), timedelta(hours=20)])
    arn = recovery(env, MaxLifetimeSeconds=5)
    with checker(env, healthy):
        result = watch(env, arn)

    out = result["outputJson"]
    assert out["action"] == "lifetime-exceeded" and out["suspended"] is True and out["autoFallbacks24h"] == 3
    assert fallback_executions(env) == []
    assert on_gateway(env, AZ)
    assert metric_values(env, "AutoFallbackSuspended") == [1.0] * 5
    assert dimensionless(env, "AutoFallbackSuspended")
    assert "PathHealthy" in states_entered(env, result["executionArn"])  # healthy, yet no fallback


# ------------------------------------------------------------------------------------------ pause, manual

@pytest.mark.parametrize("until,falls_back", [(timedelta(hours=2), False), (timedelta(minutes=-5), True)],
                         ids=["paused", "expired-pause"])
def test_a_paused_az_is_not_fallen_back(env, until, falls_back):
    env["ec2"].create_tags(Resources=env["layer"][AZ]["route_table_ids"], Tags=[
        {"Key": TAG_PAUSED_UNTIL, "Value": (datetime.now(timezone.utc) + until).strftime("%Y-%m-%dT%H:%M:%SZ")}])
    arn = recovery(env, MaxLifetimeSeconds=6)
    with checker(env, healthy):
        result = watch(env, arn)

    assert result["outputJson"]["action"] == ("fell-back" if falls_back else "lifetime-exceeded")
    assert len(fallback_executions(env)) == int(falls_back)
    assert on_gateway(env, AZ) is not falls_back


def test_a_manual_fallback_in_the_meantime_ends_the_watch_without_acting(env):
    arn = recovery(env, MaxLifetimeSeconds=60)
    with checker(env, unhealthy):
        execution = env["sfn"].start_execution(stateMachineArn=arn, name="manual", input=json.dumps(
            {"watch": {"availabilityZone": AZ}}))["executionArn"]
        wait_for_state(env, execution, "PathUnhealthy")
        manual = run_execution(env["sfn"], env["arns"]["fallback"], {"availabilityZone": AZ, "trigger": "manual"})
        assert manual["status"] == "SUCCEEDED"
        result = wait_execution(env["sfn"], execution, timeout=30)

    assert result["outputJson"]["action"] == "not-on-gateway"
    assert [e["trigger"] for e in fallback_executions(env)] == ["manual"]
    assert calls(env, "SetInstanceHealth") == []


# ------------------------------------------------------------------------------------------ repair

def test_a_gray_failure_is_repaired_in_its_group_at_most_k_times_per_hour_then_alarms(env):
    layer = env["layer"][AZ]
    first = layer["instance_id"]
    arn = recovery(env, RepairAfterSeconds=2, MaxRepairsPerHour=2, MaxLifetimeSeconds=10)
    with checker(env, unhealthy):
        result = watch(env, arn)

    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    assert result["outputJson"]["action"] == "lifetime-exceeded" and result["outputJson"]["repairs"] == 2
    repairs = calls(env, "SetInstanceHealth")
    assert len(repairs) == 2
    assert repairs[0]["args"]["instanceId"] == first
    for r in repairs:
        assert r["args"]["group"] == layer["group_name"]
        assert r["args"]["healthStatus"] == "Unhealthy"
        assert r["args"]["shouldRespectGracePeriod"] in (False, "false")
    # Each repair hit the instance in service at that moment: the second one is the replacement.
    assert repairs[1]["args"]["instanceId"] != first
    now_serving = workflows_in_service_instances(env["asg"], layer["group_name"])
    assert len(now_serving) == 1 and now_serving[0] not in {r["args"]["instanceId"] for r in repairs}
    assert metric_values(env, "NatInstanceRepaired") == [1.0, 1.0]
    assert metric_values(env, "NatRepairLimited") and dimensionless(env, "NatRepairLimited")
    other = env["layer"]["us-east-1b"]
    assert workflows_in_service_instances(env["asg"], other["group_name"]) == [other["instance_id"]]
    assert fallback_executions(env) == []


def test_repairs_of_the_last_hour_by_earlier_watches_count_toward_the_limit(env):
    env["cw"].put_metric_data(Namespace=NAMESPACE, MetricData=[
        {"MetricName": "NatInstanceRepaired", "Dimensions": [{"Name": "AvailabilityZone", "Value": AZ}],
         "Value": 1, "Unit": "Count", "StorageResolution": 1,
         "Timestamp": datetime.now(timezone.utc) - timedelta(minutes=m)} for m in (10, 50)])
    arn = recovery(env, RepairAfterSeconds=2, MaxRepairsPerHour=2, MaxLifetimeSeconds=5)
    with checker(env, unhealthy):
        result = watch(env, arn)

    assert result["outputJson"]["repairs"] == 0
    assert calls(env, "SetInstanceHealth") == []
    assert metric_values(env, "NatRepairLimited")


def test_after_a_repair_the_watch_falls_back_once_the_new_instance_serves(env):
    arn = recovery(env, RepairAfterSeconds=2, FallbackHoldSeconds=2, MaxLifetimeSeconds=30)
    repaired = {"done": False}

    def values():
        if not repaired["done"] and calls(env, "SetInstanceHealth"):
            repaired["done"] = True
        return 0 if repaired["done"] else 1

    with checker(env, values):
        result = watch(env, arn)

    assert result["outputJson"]["action"] == "fell-back" and result["outputJson"]["repairs"] == 1
    new = workflows_in_service_instances(env["asg"], env["layer"][AZ]["group_name"])
    assert new != [env["layer"][AZ]["instance_id"]]
    assert not on_gateway(env, AZ)


def test_bring_your_own_nat_instance_only_raises_repair_needed(env):
    layer = env["layer"][AZ]
    env["asg"].delete_tags(Tags=[{"ResourceId": layer["group_name"], "ResourceType": "auto-scaling-group",
                                  "Key": TAG_DEPLOYMENT}])
    arn = recovery(env, RepairAfterSeconds=2, MaxLifetimeSeconds=5)
    with checker(env, unhealthy):
        result = watch(env, arn)

    assert result["outputJson"]["repairs"] == 0
    assert calls(env, "SetInstanceHealth") == []
    assert metric_values(env, "NatRepairNeeded")
    assert dimensionless(env, "NatRepairNeeded")
    assert workflows_in_service_instances(env["asg"], layer["group_name"]) == [layer["instance_id"]]


def test_an_instance_that_ec2_already_sees_as_broken_is_left_to_ec2_and_auto_scaling(env):
    layer = env["layer"][AZ]
    env["ec2"].stop_instances(InstanceIds=[layer["instance_id"]])
    arn = recovery(env, RepairAfterSeconds=2, MaxLifetimeSeconds=5)
    with checker(env, unhealthy):
        result = watch(env, arn)

    assert result["outputJson"]["repairs"] == 0
    assert calls(env, "SetInstanceHealth") == []
    assert "RepairSkipped" in states_entered(env, result["executionArn"])


# ------------------------------------------------------------------------------------------ template

RECOVERY_PARAMS = {
    "DeploymentName": "prod-nat",
    "FailoverStateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:prod-nat-failover",
    "FallbackStateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:prod-nat-fallback",
    "StateMachineLogGroupArn": "arn:aws:logs:us-east-1:123456789012:log-group:x:*",
    "MetricsNamespace": "ProdNat"}
ASL = STATEMACHINES_DIR / "nat-recovery.asl.json"


def recovery_stack(**extra: str) -> Stack:
    return Stack(INFRA / "recovery.yaml", {**RECOVERY_PARAMS, **extra}, name="prod-nat-Recovery-1")


def as_list(x):
    return x if isinstance(x, list) else [x]


def test_the_role_holds_only_what_the_state_machine_uses_and_mutates_only_this_deployment():
    machine = recovery_stack().resources()["RecoveryStateMachine"]["Properties"]
    found = [s for p in machine["Policies"] for s in p["Statement"]]
    star_ok = {"ec2:DescribeRouteTables", "ec2:DescribeTags", "ec2:DescribeInstanceStatus", "autoscaling:DescribeAutoScalingGroups",
               "cloudwatch:GetMetricData", "cloudwatch:PutMetricData",
               "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
               "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies",
               "logs:DescribeLogGroups", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
               "xray:GetSamplingRules", "xray:GetSamplingTargets"}
    for s in found:
        assert s["Effect"] == "Allow" and not {"NotAction", "NotResource"} & s.keys()
        actions = set(as_list(s["Action"]))
        assert not any("*" in a for a in actions), s
        if "*" in as_list(s["Resource"]):
            assert actions <= star_ok, s
        if "cloudwatch:PutMetricData" in actions:
            assert s["Condition"] == {"StringEquals": {"cloudwatch:namespace": "ProdNat"}}
        if "autoscaling:SetInstanceHealth" in actions:
            assert s["Condition"] == {"StringEquals": {"autoscaling:ResourceTag/nat-watchdog:deployment": "prod-nat"}}
    used = {a for s in found for a in as_list(s["Action"])}
    assert not used & {"ec2:ReplaceRoute", "ec2:CreateRoute", "autoscaling:TerminateInstanceInAutoScalingGroup",
                       "ec2:TerminateInstances"}
    started = {r for s in found if "states:StartExecution" in as_list(s["Action"]) for r in as_list(s["Resource"])}
    assert {r.rsplit(":", 1)[1] for r in started} == {"prod-nat-fallback", "prod-nat-nat-recovery"}
    assert machine["Name"] == "prod-nat-nat-recovery"
    text = ASL.read_text()
    for service, api in re.findall(r"arn:aws:states:::aws-sdk:([a-z0-9]+):([A-Za-z]+)", text):
        prefix = {"sfn": "states"}.get(service, service)
        assert f"{prefix}:{api[0].upper()}{api[1:]}" in used, f"the ASL calls {service}:{api} without permission"


def test_every_placeholder_of_the_definition_is_substituted_and_the_defaults_are_the_documented_ones():
    props = recovery_stack().resources()["RecoveryStateMachine"]["Properties"]
    placeholders = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", ASL.read_text()))
    assert placeholders == set(props["DefinitionSubstitutions"])
    subs = props["DefinitionSubstitutions"]
    assert {k: str(subs[k]) for k in ("FallbackHoldSeconds", "FallbackHoldCapSeconds", "MaxAutoFallbacksPerDay",
                                      "RepairAfterSeconds", "MaxRepairsPerHour", "MaxLifetimeSeconds")} == {
        "FallbackHoldSeconds": "300", "FallbackHoldCapSeconds": "3600", "MaxAutoFallbacksPerDay": "3",
        "RepairAfterSeconds": "300", "MaxRepairsPerHour": "2", "MaxLifetimeSeconds": "86400"}
    # The hard timeout of the state machine is above the longest lifetime the parameter allows.
    assert json.loads(ASL.read_text())["TimeoutSeconds"] > 86400


def test_the_rule_starts_the_recovery_on_succeeded_failovers_only():
    rule = recovery_stack().resources()["RecoveryStateMachine"]["Properties"]["Events"]["FailoverSucceeded"]
    pattern = rule["Properties"]["Pattern"]
    assert pattern == {"source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"],
                       "detail": {"status": ["SUCCEEDED"], "stateMachineArn": [RECOVERY_PARAMS["FailoverStateMachineArn"]]}}


def test_alarms_name_their_runbook_read_what_the_state_machine_publishes_and_are_accepted(moto):
    resources = recovery_stack().resources("AWS::CloudWatch::Alarm")
    text = ASL.read_text()
    cw = moto.session().client("cloudwatch")
    anchors = set()
    for logical, res in resources.items():
        props = dict(res["Properties"])
        name = props["AlarmName"]
        assert name.startswith("prod-nat-"), logical
        anchor = name.removeprefix("prod-nat-")
        assert props["AlarmDescription"].rstrip().endswith(f"Runbook: docs/RUNBOOK.md#{anchor}"), logical
        anchors.add(anchor)
        if props.get("Namespace") == "ProdNat":
            assert f'"MetricName": "{props["MetricName"]}"' in text, logical
            assert not props.get("Dimensions")  # the dimensionless copy the state machine publishes
        props.pop("AlarmActions", None)
        props["Threshold"] = float(props["Threshold"])  # a Number parameter: CloudFormation converts it
        cw.put_metric_alarm(**props)
    assert anchors == {"auto-fallback-suspended", "nat-repair-limited", "nat-repair-needed", "recovery-gave-up",
                       "az-on-gateway-too-long", "recovery-execution-failed"}
    assert {a["AlarmName"] for a in cw.describe_alarms(AlarmNamePrefix="prod-nat-")["MetricAlarms"]} >= {
        f"prod-nat-{a}" for a in anchors}


def test_the_root_template_nests_the_recovery_by_default_and_not_when_disabled_or_without_canaries():
    params = {"VpcId": "vpc-0123", "PrivateSubnetIds": ["subnet-0a1", "subnet-0b2"],
              "AvailabilityZones": ["us-east-1a", "us-east-1b"]}
    assert "Recovery" not in Stack(INFRA / "template.yaml", {**params, "EnableAutoRecovery": "false"}).resources()
    assert "Recovery" not in Stack(INFRA / "template.yaml", {**params, "CanaryAddresses": ""}).resources()
    assert "Recovery" in Stack(INFRA / "template.yaml", params).resources()
    root = Stack(INFRA / "template.yaml", {**params, "FallbackHoldSeconds": 600})
    nested = root.resources()["Recovery"]["Properties"]
    assert nested["Location"] == "recovery.yaml"
    assert nested["Parameters"]["FailoverStateMachineArn"].endswith(":stateMachine:nat-watchdog-failover")
    assert nested["Parameters"]["FallbackStateMachineArn"].endswith(":stateMachine:nat-watchdog-fallback")
    assert str(nested["Parameters"]["FallbackHoldSeconds"]) == "600"
    declared = set(Stack(INFRA / "recovery.yaml", RECOVERY_PARAMS).template["Parameters"])
    assert set(nested["Parameters"]) <= declared


# ------------------------------------------------------------------------------------------ the clock

CLOCK_STATES = ("ClockNumbers", "PreviousDay", "PreviousDaySameMonth", "PreviousDayPreviousMonth", "LeapFebruary",
                "February29", "PreviousDayPreviousYear", "ClockFormat")


@pytest.mark.parametrize("at,now,hour_ago,day_ago", [
    ("2026-11-23T13:05:12.345Z", "2026-11-23T13:05:12Z", "2026-11-23T12:05:12Z", "2026-11-22T13:05:12Z"),
    ("2026-11-23T13:05:12.345678+00:00", "2026-11-23T13:05:12Z", "2026-11-23T12:05:12Z", "2026-11-22T13:05:12Z"),
    ("2026-12-01T00:30:00Z", "2026-12-01T00:30:00Z", "2026-11-30T23:30:00Z", "2026-11-30T00:30:00Z"),
    ("2027-01-01T00:00:09.1Z", "2027-01-01T00:00:09Z", "2026-12-31T23:00:09Z", "2026-12-31T00:00:09Z"),
    ("2028-03-01T08:59:59Z", "2028-03-01T08:59:59Z", "2028-03-01T07:59:59Z", "2028-02-29T08:59:59Z"),
    ("2027-03-01T08:59:59Z", "2027-03-01T08:59:59Z", "2027-03-01T07:59:59Z", "2027-02-28T08:59:59Z"),
    ("2026-08-01T01:00:00Z", "2026-08-01T01:00:00Z", "2026-08-01T00:00:00Z", "2026-07-31T01:00:00Z"),
    ("2026-10-10T10:10:10Z", "2026-10-10T10:10:10Z", "2026-10-10T09:10:10Z", "2026-10-09T10:10:10Z"),
], ids=["ms", "offset-form", "first-of-month-midnight", "new-year", "leap-march", "march", "august", "tens"])
def test_the_clock_states_compute_one_hour_and_one_day_before_an_instant(moto, at, now, hour_ago, day_ago):
    """The deployed clock states (copied from the definition, not re-implemented), fed an instant
    instead of their entered time: RFC 3339 'now', 'one hour ago' and 'one day ago'."""
    states = json.loads(ASL.read_text())["States"]
    clock = {name: dict(states[name]) for name in CLOCK_STATES}
    clock["ClockFormat"].pop("Next")
    clock["ClockFormat"]["End"] = True
    definition = {"StartAt": "Inject", "States": {
        "Inject": {"Type": "Pass", "Parameters": {"then": "test", "parts.$": "States.StringSplit($.at, '-T:.Z+')"},
                   "ResultPath": "$.clock", "Next": "ClockNumbers"}, **clock}}
    sfn = moto.session().client("stepfunctions")
    name = "clock-" + re.sub(r"[^0-9A-Za-z]", "-", at)
    arn = sfn.create_state_machine(name=name, definition=json.dumps(definition),
                                   roleArn="arn:aws:iam::123456789012:role/x")["stateMachineArn"]
    out = run_execution(sfn, arn, {"at": at})["outputJson"]["clock"]
    assert out["now"] == now and out["dayAgo"] == day_ago
    assert (out["hourAgoSameDay"] if out["hour"] > 0 else out["hourAgoPreviousDay"]) == hour_ago
