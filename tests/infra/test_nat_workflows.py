"""The NAT workflows (infra/statemachines/nat-*.asl.json) executed in moto against a managed NAT layer
of three AZs (tests/support/moto_env.py build_workflows_nat_layer), with the Failover and Fallback of
infra/statemachines as their nested executions, plus the IAM and wiring of infra/nat-workflows.yaml.

The moto server here is the recording one (moto_env.workflows_moto_server): it adds
CompleteLifecycleAction (moto has none; it terminates the instance and the group launches a
replacement, as Auto Scaling does after CONTINUE) and appends every CompleteLifecycleAction,
TerminateInstanceInAutoScalingGroup and ReplaceRoute, with the route state right after it, to a file.
The order of those records is what the ordering assertions read. The waits are shortened by
substitution only (PollSeconds 1, MaxPolls 5)."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from moto_env import (STATEMACHINES_DIR, TAG_DEPLOYMENT, TAG_PAUSED_UNTIL, TAG_REPLACE_EXECUTION,
                      TAG_STANDBY_FOR, TEST_TAG_NAT_BOOT, WORKFLOWS_LIFECYCLE_HOOK, build_workflows_nat_layer,
                      create_state_machines, create_workflow_state_machines, default_route_targets,
                      read_workflow_calls, reset_recording_server, run_execution, serving,
                      workflows_in_service_instances, workflows_moto_server)
from template_eval import INFRA, Stack

AZS = ["us-east-1a", "us-east-1b", "us-east-1c"]
DEPLOYMENT = "natwf"
AMI_PARAMETER = "/nat-watchdog/test/nat-ami"
NEW_AMI = "ami-0f0e0d0c0b0a09080"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serving(workflows_moto_server(tmp_path_factory.mktemp("natwf")))


@pytest.fixture()
def env(server, request):
    moto, record = server
    shared = getattr(request, "param", {}).get("shared_launch_template", False)
    numbered = getattr(request, "param", {}).get("numbered_version", False)
    session, ec2, asg, sfn = reset_recording_server(moto, record)
    layer = build_workflows_nat_layer(ec2, asg, AZS, deployment=DEPLOYMENT, shared_launch_template=shared,
                                      numbered_version=numbered)
    arns = create_state_machines(sfn)
    flows = create_workflow_state_machines(sfn, arns, deployment=DEPLOYMENT, image_parameter_name=AMI_PARAMETER)
    return {"ec2": ec2, "asg": asg, "sfn": sfn, "ssm": session.client("ssm"), "layer": layer,
            "arns": arns, "flows": flows, "record": record}


# ------------------------------------------------------------------------------------------ helpers

def calls(env, name=None):
    """The workflows' calls in order; "NatBootAttach" (the emulated boot of a new instance, not a
    workflow call) only when asked for by name."""
    return [c for c in read_workflow_calls(env["record"])
            if c["call"] == name or (name is None and c["call"] != "NatBootAttach")]


def azs_on_gateway(routes: dict) -> set[str]:
    return {r["az"] for r in routes.values() if (r["target"] or "").startswith("nat-")}


def route_targets(env, az):
    return set(default_route_targets(env["ec2"], env["layer"][az]["route_table_ids"]).values())


def enis_of(env, instance_id):
    inst = env["ec2"].describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return {n["NetworkInterfaceId"] for n in inst.get("NetworkInterfaces", [])}


def assert_on_nat_instance(env, az, instance_id):
    """The AZ's routes target the instance (its own ENI, or the AZ's stable ENI), not a gateway."""
    allowed = enis_of(env, instance_id) | {env["layer"][az]["nat_eni_id"]}
    targets = route_targets(env, az)
    assert targets and targets <= allowed, (az, targets, allowed)


def instance_state(env, instance_id):
    inst = env["ec2"].describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return inst["State"]["Name"]


def lifecycle_event(env, az, instance_id=None, group=None):
    layer = env["layer"][az]
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "EC2 Instance-terminate Lifecycle Action",
            "source": "aws.autoscaling", "region": "us-east-1", "resources": [],
            "detail": {"LifecycleActionToken": str(uuid.uuid4()), "AutoScalingGroupName": group or layer["group_name"],
                       "LifecycleHookName": WORKFLOWS_LIFECYCLE_HOOK,
                       "EC2InstanceId": instance_id or layer["instance_id"],
                       "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                       "Origin": "AutoScalingGroup", "Destination": "EC2"}}


def run(env, flow, payload, timeout=120):
    return run_execution(env["sfn"], env["flows"][flow], payload, timeout=timeout)


def pause(env, az, until: datetime):
    env["ec2"].create_tags(Resources=env["layer"][az]["route_table_ids"],
                           Tags=[{"Key": TAG_PAUSED_UNTIL, "Value": until.strftime("%Y-%m-%dT%H:%M:%SZ")},
                                 {"Key": "nat-watchdog:paused-reason", "Value": "test"}])


def sleeper(sfn, name):
    """A state machine whose executions stay RUNNING until stopped."""
    definition = {"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 600, "End": True}}}
    return sfn.create_state_machine(name=name, definition=json.dumps(definition),
                                    roleArn="arn:aws:iam::123456789012:role/x")["stateMachineArn"]


def wait_for_state_entered(sfn, execution_arn, state, timeout=30.0):
    """Until the execution's history shows `state` entered (an event, not a guess of duration)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        for e in events:
            if e.get("stateEnteredEventDetails", {}).get("name") == state:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{execution_arn} never entered {state}")


# ------------------------------------------------------------------------------------------ Lifecycle

@pytest.mark.parametrize("expired_pause", [False, True], ids=["no-pause", "expired-pause"])
def test_lifecycle_moves_the_routes_before_completing_the_action_and_back_once_the_new_instance_serves(env, expired_pause):
    az, layer = "us-east-1b", env["layer"]["us-east-1b"]
    if expired_pause:
        pause(env, az, datetime.now(timezone.utc) - timedelta(minutes=5))
    old = layer["instance_id"]

    result = run(env, "lifecycle", lifecycle_event(env, az))

    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    completes = calls(env, "CompleteLifecycleAction")
    assert len(completes) == 1
    done = completes[0]
    assert done["args"] == {"group": layer["group_name"], "hook": WORKFLOWS_LIFECYCLE_HOOK, "instanceId": old,
                            "token": lifecycle_event_token(env, result), "result": "CONTINUE"}
    # At the moment the action was completed, this AZ (and only it) was already on its standby gateway.
    at_completion = {rtb: r["target"] for rtb, r in done["routes"].items() if r["az"] == az}
    assert set(at_completion.values()) == {layer["standby_nat_gateway_id"]}
    assert azs_on_gateway(done["routes"]) == {az}
    record = calls(env)
    assert record.index(done) > 0 and record[0]["call"] == "ReplaceRoute"
    # Then back on the group's new instance, which is InService; the old one is gone.
    new = workflows_in_service_instances(env["asg"], layer["group_name"])
    assert len(new) == 1 and new[0] != old
    assert result["outputJson"] == {**result["outputJson"], "action": "replaced", "availabilityZone": az,
                                    "terminatedInstanceId": old, "newInstanceId": new[0]}
    assert_on_nat_instance(env, az, new[0])
    assert instance_state(env, old) == "terminated"
    assert record[-1]["call"] == "ReplaceRoute" and not azs_on_gateway(record[-1]["routes"])
    for other in set(AZS) - {az}:
        assert route_targets(env, other) == {env["layer"][other]["nat_eni_id"]}


def lifecycle_event_token(env, result):
    return json.loads(env["sfn"].describe_execution(executionArn=result["executionArn"])["input"])["detail"]["LifecycleActionToken"]


def test_lifecycle_still_completes_the_action_when_the_failover_fails_and_fails_with_a_clear_cause(env):
    az, layer = "us-east-1c", env["layer"]["us-east-1c"]
    env["ec2"].delete_tags(Resources=[layer["standby_nat_gateway_id"]], Tags=[{"Key": TAG_STANDBY_FOR}])

    result = run(env, "lifecycle", lifecycle_event(env, az))

    assert result["status"] == "FAILED"
    assert result["error"] == "FailoverFailed"
    assert az in result["cause"] and layer["instance_id"] in result["cause"]
    assert "lifecycle action was still completed" in result["cause"]
    completes = calls(env, "CompleteLifecycleAction")
    assert [c["args"]["instanceId"] for c in completes] == [layer["instance_id"]]
    assert completes[0]["args"]["result"] == "CONTINUE"
    # No fallback was attempted and nothing moved: the failed Failover changed no route.
    assert calls(env, "ReplaceRoute") == []
    assert route_targets(env, az) == {layer["nat_eni_id"]}


def test_lifecycle_without_a_new_instance_gives_up_after_the_bounded_wait_and_leaves_the_az_on_its_gateway(env):
    """A scale-in to zero: the instance leaves and nothing replaces it. The wait is bounded
    (MaxPolls x PollSeconds), the AZ stays on the gateway and the error says so."""
    az, layer = "us-east-1c", env["layer"]["us-east-1c"]
    env["asg"].update_auto_scaling_group(AutoScalingGroupName=layer["group_name"], MinSize=0, DesiredCapacity=0)
    assert workflows_in_service_instances(env["asg"], layer["group_name"]) == []

    result = run(env, "lifecycle", lifecycle_event(env, az))

    assert result["status"] == "FAILED"
    assert result["error"] == "NewInstanceNotServing"
    assert layer["group_name"] in result["cause"] and az in result["cause"]
    assert route_targets(env, az) == {layer["standby_nat_gateway_id"]}
    history = env["sfn"].get_execution_history(executionArn=result["executionArn"], maxResults=1000)["events"]
    polls = [e for e in history if e.get("stateEnteredEventDetails", {}).get("name") == "DescribeGroupInstances"]
    assert len(polls) == 5  # MaxPolls given to create_workflow_state_machines


def test_lifecycle_of_a_paused_az_only_completes_the_action(env):
    az, layer = "us-east-1a", env["layer"]["us-east-1a"]
    pause(env, az, datetime.now(timezone.utc) + timedelta(hours=2))

    result = run(env, "lifecycle", lifecycle_event(env, az))

    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    assert result["outputJson"]["action"] == "skipped-paused"
    assert [c["call"] for c in calls(env)] == ["CompleteLifecycleAction"]
    assert route_targets(env, az) == {layer["nat_eni_id"]}


def test_lifecycle_leaves_a_termination_by_a_running_replace_to_it(env):
    """Replace fails the AZ over itself and tags the instance with its execution before terminating
    it; the hook's flow then only completes the action (no second failover, no early fallback)."""
    az, layer = "us-east-1b", env["layer"]["us-east-1b"]
    hold = env["sfn"].start_execution(stateMachineArn=sleeper(env["sfn"], "stand-in-replace"),
                                      name="running-replace")["executionArn"]
    try:
        env["ec2"].create_tags(Resources=[layer["instance_id"]], Tags=[{"Key": TAG_REPLACE_EXECUTION, "Value": hold}])

        result = run(env, "lifecycle", lifecycle_event(env, az))
    finally:
        env["sfn"].stop_execution(executionArn=hold)

    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    assert result["outputJson"]["action"] == "completed-for-replace"
    assert [c["call"] for c in calls(env)] == ["CompleteLifecycleAction"]


def test_lifecycle_treats_the_tag_of_an_ended_replace_as_an_ordinary_termination(env):
    az, layer = "us-east-1b", env["layer"]["us-east-1b"]
    ended = env["sfn"].start_execution(stateMachineArn=sleeper(env["sfn"], "ended-replace"),
                                       name="ended-replace")["executionArn"]
    env["sfn"].stop_execution(executionArn=ended)
    env["ec2"].create_tags(Resources=[layer["instance_id"]], Tags=[{"Key": TAG_REPLACE_EXECUTION, "Value": ended}])

    result = run(env, "lifecycle", lifecycle_event(env, az))

    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    assert result["outputJson"]["action"] == "replaced"
    done = calls(env, "CompleteLifecycleAction")[0]
    assert azs_on_gateway(done["routes"]) == {az}


def test_lifecycle_ignores_a_group_of_another_deployment(env):
    layer = env["layer"]["us-east-1a"]
    env["asg"].delete_tags(Tags=[{"ResourceId": layer["group_name"], "ResourceType": "auto-scaling-group",
                                  "Key": TAG_DEPLOYMENT}])

    result = run(env, "lifecycle", lifecycle_event(env, "us-east-1a"))

    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    assert result["outputJson"]["action"] == "ignored-not-this-deployment"
    assert calls(env) == []


def hold_stable_eni(env, az):
    """The new instance's boot has not attached the AZ's stable ENI yet (the emulation leaves it)."""
    env["ec2"].create_tags(Resources=[env["layer"][az]["nat_eni_id"]], Tags=[{"Key": TEST_TAG_NAT_BOOT, "Value": "hold"}])


def attach_stable_eni(env, az, instance_id):
    """What nat-boot.sh of the new instance does: take the stable ENI as device 1."""
    ec2, eni = env["ec2"], env["layer"][az]["nat_eni_id"]
    attachment = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0].get("Attachment")
    if attachment:
        ec2.detach_network_interface(AttachmentId=attachment["AttachmentId"], Force=True)
    ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=instance_id, DeviceIndex=1)


def test_lifecycle_falls_back_only_once_the_stable_eni_is_attached_to_the_new_instance(env):
    """Between the new instance's launch and its boot attaching the stable ENI, a Fallback could point
    the routes at the new instance's primary ENI (source/dest check on: egress dead). The flow waits."""
    az, layer = "us-east-1c", env["layer"]["us-east-1c"]
    hold_stable_eni(env, az)
    sfn = env["sfn"]
    # A longer bounded wait than the fixture's, so that the test (not a timer) decides when the ENI moves.
    slow = create_workflow_state_machines(sfn, env["arns"], deployment=DEPLOYMENT, max_polls=120,
                                          image_parameter_name=AMI_PARAMETER, name_prefix="natwf-slow")
    execution = sfn.start_execution(stateMachineArn=slow["lifecycle"],
                                    input=json.dumps(lifecycle_event(env, az)))["executionArn"]

    wait_for_state_entered(sfn, execution, "StableEniAttached")
    wait_for_state_entered(sfn, execution, "WaitBeforePoll")
    new = workflows_in_service_instances(env["asg"], layer["group_name"])
    assert len(new) == 1 and new[0] != layer["instance_id"]
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    assert calls(env, "ReplaceRoute")[-1]["routes"][layer["route_table_ids"][0]]["target"].startswith("nat-")
    assert route_targets(env, az) == {layer["standby_nat_gateway_id"]}, "no Fallback before the ENI is attached"

    attach_stable_eni(env, az, new[0])
    result = wait_execution_done(sfn, execution)

    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    assert_on_nat_instance(env, az, new[0])


def test_replace_stops_when_the_stable_eni_never_reaches_the_new_instance(env):
    az = AZS[0]
    hold_stable_eni(env, az)

    result = run(env, "replace", {}, timeout=180)

    assert result["status"] == "FAILED" and result["error"] == "ReplaceTimeout", result
    assert "stable NAT ENI" in result["cause"] and az in result["cause"]
    assert route_targets(env, az) == {env["layer"][az]["standby_nat_gateway_id"]}
    assert len(calls(env, "TerminateInstanceInAutoScalingGroup")) == 1, "the AZs after it were not touched"


def wait_execution_done(sfn, execution_arn, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = sfn.describe_execution(executionArn=execution_arn)
        if d["status"] != "RUNNING":
            if d["status"] == "FAILED":
                history = sfn.get_execution_history(executionArn=execution_arn, reverseOrder=True, maxResults=5)["events"]
                for e in history:
                    if "executionFailedEventDetails" in e:
                        d.update(e["executionFailedEventDetails"])
            return d
        time.sleep(0.1)
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    last = [(e["type"], e.get("stateEnteredEventDetails", {}).get("name"),
             e.get("stateEnteredEventDetails", {}).get("input", "")[-1500:]) for e in events[-6:]]
    last = [len(events), last[-1]]
    raise TimeoutError(f"{execution_arn} still running; last events: {last}")


# ------------------------------------------------------------------------------------------ Interruption

SPOT_WARNING = "EC2 Spot Instance Interruption Warning"
REBALANCE = "EC2 Instance Rebalance Recommendation"


def interruption_event(detail_type, instance_id):
    """The EventBridge events as AWS documents them (EC2 User Guide, "Spot Instance interruption
    notices" and "EC2 instance rebalance recommendations")."""
    detail = {"instance-id": instance_id}
    if detail_type == SPOT_WARNING:
        detail["instance-action"] = "terminate"
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": "aws.ec2",
            "account": "123456789012", "time": "2026-11-23T13:00:00Z", "region": "us-east-1",
            "resources": [f"arn:aws:ec2:us-east-1:123456789012:instance/{instance_id}"], "detail": detail}


def interruption_machine(env):
    from moto_env import load_definition
    subs = {"DeploymentName": DEPLOYMENT, "FailoverStateMachineArn": env["arns"]["failover"]}
    return env["sfn"].create_state_machine(
        name=f"{DEPLOYMENT}-nat-interruption", definition=load_definition("nat-interruption", subs),
        roleArn="arn:aws:iam::123456789012:role/nat-watchdog-workflows", type="STANDARD")["stateMachineArn"]


def failover_inputs(env):
    sfn = env["sfn"]
    return [json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
            for e in sfn.list_executions(stateMachineArn=env["arns"]["failover"])["executions"]]


@pytest.mark.parametrize("detail_type", [SPOT_WARNING, REBALANCE])
def test_an_interruption_notice_fails_the_az_over_at_once_and_lifecycle_falls_back(env, detail_type):
    az, layer = "us-east-1b", env["layer"]["us-east-1b"]
    machine = interruption_machine(env)

    result = run_execution(env["sfn"], machine, interruption_event(detail_type, layer["instance_id"]), timeout=120)

    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    assert route_targets(env, az) == {layer["standby_nat_gateway_id"]}
    for other in set(AZS) - {az}:
        assert_on_nat_instance(env, other, env["layer"][other]["instance_id"])
    [failover] = failover_inputs(env)
    assert failover["availabilityZone"] == az and failover["trigger"] == "lifecycle"
    assert detail_type in failover["reason"] and layer["instance_id"] in failover["reason"]
    terminated = calls(env, "TerminateInstanceInAutoScalingGroup")
    if detail_type == REBALANCE:
        # The at-risk instance is replaced through the hook, after the routes left it.
        assert result["outputJson"]["action"] == "failed-over-and-replacing"
        assert [(c["args"]["instanceId"], str(c["args"]["decrement"]).lower()) for c in terminated] == [(layer["instance_id"], "false")]
        assert azs_on_gateway(terminated[0]["routes"]) == {az}
    else:
        # EC2 reclaims a Spot instance itself; nothing is terminated here.
        assert result["outputJson"]["action"] == "failed-over" and terminated == []

    # Then the termination hook's event (moto emits none: sent as AWS would) and the normal flow.
    back = run(env, "lifecycle", lifecycle_event(env, az), timeout=120)

    assert back["status"] == "SUCCEEDED", (back.get("error"), back.get("cause"))
    new = workflows_in_service_instances(env["asg"], layer["group_name"])
    assert len(new) == 1 and new[0] != layer["instance_id"]
    assert_on_nat_instance(env, az, new[0])


def test_an_interruption_notice_for_an_instance_of_another_deployment_changes_nothing(env):
    ec2 = env["ec2"]
    other = ec2.run_instances(ImageId=ec2.describe_instances()["Reservations"][0]["Instances"][0]["ImageId"],
                              MinCount=1, MaxCount=1, TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                  {"Key": TAG_DEPLOYMENT, "Value": "someone-else"},
                                  {"Key": "nat-watchdog:nat-instance-for", "Value": "us-east-1a"}]}])["Instances"][0]["InstanceId"]

    result = run_execution(env["sfn"], interruption_machine(env), interruption_event(REBALANCE, other), timeout=60)

    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    assert result["outputJson"]["action"] == "ignored-not-this-deployment"
    assert calls(env) == [] and failover_inputs(env) == []


def test_an_interruption_notice_leaves_a_paused_az_alone(env):
    az, layer = "us-east-1a", env["layer"]["us-east-1a"]
    pause(env, az, datetime.now(timezone.utc) + timedelta(hours=1))

    result = run_execution(env["sfn"], interruption_machine(env), interruption_event(REBALANCE, layer["instance_id"]), timeout=60)

    assert result["status"] == "SUCCEEDED" and result["outputJson"]["action"] == "skipped-paused"
    assert calls(env) == [] and failover_inputs(env) == []


# ------------------------------------------------------------------------------------------ Replace

def test_replace_goes_az_by_az_and_never_has_two_azs_on_a_gateway(env):
    old = {az: env["layer"][az]["instance_id"] for az in AZS}

    result = run(env, "replace", {})

    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    record = calls(env)
    assert record, "Replace made no call"
    for step in record:
        assert len(azs_on_gateway(step["routes"])) <= 1, step
    # Per AZ, in turn: on the gateway, then terminated, then back; the next AZ starts only after.
    terminations = [c for c in record if c["call"] == "TerminateInstanceInAutoScalingGroup"]
    order = [next(az for az in AZS if old[az] == t["args"]["instanceId"]) for t in terminations]
    assert sorted(order) == AZS
    for t in terminations:
        az = next(a for a in AZS if old[a] == t["args"]["instanceId"])
        assert azs_on_gateway(t["routes"]) == {az}
        assert t["args"]["decrement"] in (False, "false")
    gateway_spells = []
    for step in record:
        on = azs_on_gateway(step["routes"])
        if on and (not gateway_spells or gateway_spells[-1] != on):
            gateway_spells.append(on)
    assert gateway_spells == [{az} for az in order]
    assert not azs_on_gateway(record[-1]["routes"])
    outputs = {r["availabilityZone"]: r for r in result["outputJson"]["azs"]}
    for az in AZS:
        new = workflows_in_service_instances(env["asg"], env["layer"][az]["group_name"])
        assert len(new) == 1 and new[0] != old[az]
        assert outputs[az]["action"] == "replaced" and outputs[az]["newInstanceId"] == new[0]
        assert instance_state(env, old[az]) == "terminated"
        assert_on_nat_instance(env, az, new[0])
    # The instance it terminated carries the execution that owned the termination (for Lifecycle).
    tags = env["ec2"].describe_tags(Filters=[{"Name": "key", "Values": [TAG_REPLACE_EXECUTION]}])["Tags"]
    assert {t["ResourceId"] for t in tags} == set(old.values())
    assert {t["Value"] for t in tags} == {result["executionArn"]}


def test_replace_skips_a_paused_az(env):
    paused = "us-east-1a"
    pause(env, paused, datetime.now(timezone.utc) + timedelta(hours=1))
    old = env["layer"][paused]["instance_id"]

    result = run(env, "replace", {})

    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    outputs = {r["availabilityZone"]: r["action"] for r in result["outputJson"]["azs"]}
    assert outputs == {"us-east-1a": "skipped-paused", "us-east-1b": "replaced", "us-east-1c": "replaced"}
    assert old not in {c["args"]["instanceId"] for c in calls(env, "TerminateInstanceInAutoScalingGroup")}
    assert workflows_in_service_instances(env["asg"], env["layer"][paused]["group_name"]) == [old]
    paused_tables = set(env["layer"][paused]["route_table_ids"])
    assert not [c for c in calls(env, "ReplaceRoute") if c["args"]["routeTableId"] in paused_tables]


def test_replace_manual_trigger_ignores_the_pause(env):
    pause(env, "us-east-1a", datetime.now(timezone.utc) + timedelta(hours=1))

    result = run(env, "replace", {"trigger": "manual"})

    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    assert {r["action"] for r in result["outputJson"]["azs"]} == {"replaced"}


def test_replace_stops_at_the_first_az_whose_failover_fails_and_terminates_nothing_there(env):
    # Map order is the group order moto returns; whichever AZ comes first, make it the one that fails.
    first = run_first_group_az(env)
    env["ec2"].delete_tags(Resources=[env["layer"][first]["standby_nat_gateway_id"]], Tags=[{"Key": TAG_STANDBY_FOR}])

    result = run(env, "replace", {})

    assert result["status"] == "FAILED"
    assert result["error"] == "FailoverFailed" and first in result["cause"]
    assert calls(env, "TerminateInstanceInAutoScalingGroup") == []
    for az in AZS:
        assert workflows_in_service_instances(env["asg"], env["layer"][az]["group_name"]) == [env["layer"][az]["instance_id"]]


def run_first_group_az(env):
    groups = env["asg"].describe_auto_scaling_groups(
        Filters=[{"Name": f"tag:{TAG_DEPLOYMENT}", "Values": [DEPLOYMENT]}])["AutoScalingGroups"]
    return next(t["Value"] for t in groups[0]["Tags"] if t["Key"] == "nat-watchdog:nat-instance-for")


@pytest.mark.parametrize("flow,child", [("replace", "FailoverStateMachineArn"),
                                        ("maintenance", "ReplaceStateMachineArn")])
def test_a_second_concurrent_run_is_refused(env, flow, child):
    """The first run is held in its first nested execution (a stand-in that waits until stopped), so
    it is RUNNING for certain when the second one starts."""
    sfn = env["sfn"]
    env["ssm"].put_parameter(Name=AMI_PARAMETER, Value=NEW_AMI, Type="String")
    hold = sleeper(sfn, f"hold-{flow}")
    flows = create_workflow_state_machines(sfn, env["arns"], deployment=DEPLOYMENT, name_prefix=f"held-{flow}",
                                           image_parameter_name=AMI_PARAMETER, overrides={child: hold})
    first = sfn.start_execution(stateMachineArn=flows[flow], name="first", input="{}")["executionArn"]
    try:
        wait_for_state_entered(sfn, first, "Failover" if flow == "replace" else "Replace")

        second = run_execution(sfn, flows[flow], {}, name="second")

        assert second["status"] == "FAILED"
        assert second["error"] == "AlreadyRunning"
        assert "only one runs at a time" in second["cause"]
        assert sfn.describe_execution(executionArn=first)["status"] == "RUNNING"
    finally:
        sfn.stop_execution(executionArn=first)
        for e in sfn.list_executions(stateMachineArn=hold, statusFilter="RUNNING")["executions"]:
            sfn.stop_execution(executionArn=e["executionArn"])
    assert calls(env, "TerminateInstanceInAutoScalingGroup") == []


# ------------------------------------------------------------------------------------------ Maintenance

@pytest.mark.parametrize("env", [{"shared_launch_template": False}, {"shared_launch_template": True}],
                         ids=["per-az-launch-templates", "shared-launch-template"], indirect=True)
def test_maintenance_gives_the_launch_templates_the_newest_image_then_replaces_az_by_az(env):
    ec2 = env["ec2"]
    env["ssm"].put_parameter(Name=AMI_PARAMETER, Value=NEW_AMI, Type="String")
    old = {az: env["layer"][az]["instance_id"] for az in AZS}
    templates = sorted({env["layer"][az]["launch_template_id"] for az in AZS})

    result = run(env, "maintenance", {}, timeout=180)

    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    for lt in templates:
        versions = ec2.describe_launch_template_versions(LaunchTemplateId=lt)["LaunchTemplateVersions"]
        assert sorted(v["VersionNumber"] for v in versions) == [1, 2]
        latest = next(v for v in versions if v["VersionNumber"] == 2)
        assert latest["LaunchTemplateData"]["ImageId"] == NEW_AMI
        # (SourceVersion keeps the rest of the data in AWS; moto 5.2.5 ignores SourceVersion, so the
        # merge itself is not checked here.)
        assert ec2.describe_launch_templates(LaunchTemplateIds=[lt])["LaunchTemplates"][0]["DefaultVersionNumber"] == 2
    actions = sorted(r["action"] for r in result["outputJson"]["launchTemplates"])
    assert actions == (["new-version", "unchanged", "unchanged"] if len(templates) == 1 else ["new-version"] * 3)
    record = calls(env)
    for step in record:
        assert len(azs_on_gateway(step["routes"])) <= 1, step
    assert len(calls(env, "TerminateInstanceInAutoScalingGroup")) == 3
    for az in AZS:
        new = workflows_in_service_instances(env["asg"], env["layer"][az]["group_name"])
        assert len(new) == 1 and new[0] != old[az]
        image = ec2.describe_instances(InstanceIds=new)["Reservations"][0]["Instances"][0]["ImageId"]
        assert image == NEW_AMI
        assert_on_nat_instance(env, az, new[0])


def test_maintenance_with_the_image_already_in_place_creates_no_version_but_still_replaces(env):
    current = env["ec2"].describe_launch_template_versions(
        LaunchTemplateId=env["layer"]["us-east-1a"]["launch_template_id"])["LaunchTemplateVersions"][0]
    env["ssm"].put_parameter(Name=AMI_PARAMETER, Value=current["LaunchTemplateData"]["ImageId"], Type="String")

    result = run(env, "maintenance", {}, timeout=180)

    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    assert {r["action"] for r in result["outputJson"]["launchTemplates"]} == {"unchanged"}
    for az in AZS:
        lt = env["layer"][az]["launch_template_id"]
        assert len(env["ec2"].describe_launch_template_versions(LaunchTemplateId=lt)["LaunchTemplateVersions"]) == 1
    assert len(calls(env, "TerminateInstanceInAutoScalingGroup")) == 3


def group_version(env, az):
    group = env["asg"].describe_auto_scaling_groups(
        AutoScalingGroupNames=[env["layer"][az]["group_name"]])["AutoScalingGroups"][0]
    return group["LaunchTemplate"]["Version"]


@pytest.mark.parametrize("env", [{"numbered_version": True}], ids=["numbered-like-the-nat-layer"], indirect=True)
def test_maintenance_points_groups_pinned_to_a_numbered_version_at_the_new_one_then_replaces(env):
    """The NAT layer's groups, as CloudFormation makes them: version "1", not $Latest."""
    ec2 = env["ec2"]
    env["ssm"].put_parameter(Name=AMI_PARAMETER, Value=NEW_AMI, Type="String")
    old = {az: env["layer"][az]["instance_id"] for az in AZS}
    assert {group_version(env, az) for az in AZS} == {"1"}

    result = run(env, "maintenance", {}, timeout=180)

    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    reports = result["outputJson"]["launchTemplates"]
    assert [(r["action"], r["groupVersionBefore"], r["groupVersion"]) for r in reports] == [("new-version", "1", "2")] * 3
    for step in calls(env):
        assert len(azs_on_gateway(step["routes"])) <= 1, step
    for az in AZS:
        assert group_version(env, az) == "2"
        new = workflows_in_service_instances(env["asg"], env["layer"][az]["group_name"])
        assert len(new) == 1 and new[0] != old[az]
        assert ec2.describe_instances(InstanceIds=new)["Reservations"][0]["Instances"][0]["ImageId"] == NEW_AMI
        assert_on_nat_instance(env, az, new[0])


@pytest.mark.parametrize("env", [{"numbered_version": True}], ids=["numbered-like-the-nat-layer"], indirect=True)
def test_maintenance_after_a_stack_update_set_the_group_back_repoints_it_without_a_new_version(env):
    """Drift: Maintenance made version 2 (new image) and pointed the group at it; a later stack update
    that touched the group set it back to the template's version 1 (old image). The next Maintenance
    finds the image in $Latest, makes no version and points the group at 2 again."""
    ec2, az = env["ec2"], "us-east-1a"
    lt = env["layer"][az]["launch_template_id"]
    ec2.create_launch_template_version(LaunchTemplateId=lt, SourceVersion="1", LaunchTemplateData={"ImageId": NEW_AMI})
    env["ssm"].put_parameter(Name=AMI_PARAMETER, Value=NEW_AMI, Type="String")

    result = run(env, "maintenance", {}, timeout=180)

    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    report = next(r for r in result["outputJson"]["launchTemplates"] if r["launchTemplateId"] == lt)
    assert (report["action"], report["groupVersionBefore"], report["groupVersion"]) == ("unchanged", "1", "2")
    assert len(ec2.describe_launch_template_versions(LaunchTemplateId=lt)["LaunchTemplateVersions"]) == 2
    assert group_version(env, az) == "2"


# ------------------------------------------------------------------------------------------ template

WORKFLOWS_PARAMS = {
    "DeploymentName": "prod-nat",
    "FailoverStateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:prod-nat-failover",
    "FallbackStateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:prod-nat-fallback",
    "StateMachineLogGroupArn": "arn:aws:logs:us-east-1:123456789012:log-group:x:*"}


def workflows_stack(**extra: str) -> Stack:
    return Stack(INFRA / "nat-workflows.yaml", {**WORKFLOWS_PARAMS, **extra}, name="prod-nat-NatWorkflows-1")


def statements(machine: str) -> list[dict]:
    res = workflows_stack().resources()[machine]
    out = []
    for policy in res["Properties"]["Policies"]:
        out += policy["Statement"]
    return out


STAR_OK = {"ec2:DescribeInstances", "autoscaling:DescribeAutoScalingGroups", "ec2:DescribeTags", "ec2:DescribeRouteTables",
           "ec2:DescribeInstanceStatus", "ec2:DescribeLaunchTemplateVersions", "ec2:DescribeNetworkInterfaces",
           "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
           "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies",
           "logs:DescribeLogGroups", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
           "xray:GetSamplingRules", "xray:GetSamplingTargets"}
MUTATIONS = {"autoscaling:CompleteLifecycleAction", "autoscaling:TerminateInstanceInAutoScalingGroup",
             "ec2:CreateTags", "ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate",
             "autoscaling:UpdateAutoScalingGroup"}
# Auto Scaling's launch check when Maintenance points a group at a version: not launches, and narrowed
# by the launch template (tagged for the deployment) or the NAT instance roles' path.
LAUNCH_CHECK = {"ec2:RunInstances", "iam:PassRole"}


def as_list(x):
    return x if isinstance(x, list) else [x]


@pytest.mark.parametrize("machine,may_start", [
    ("LifecycleStateMachine", {"failover", "fallback"}),
    ("ReplaceStateMachine", {"failover", "fallback"}),
    ("MaintenanceStateMachine", {"nat-replace", "fallback"}),
    ("InterruptionStateMachine", {"failover"}),
])
def test_each_workflow_holds_only_what_it_uses(machine, may_start):
    found = statements(machine)
    for s in found:
        assert s["Effect"] == "Allow" and not {"NotAction", "NotResource"} & s.keys()
        actions = set(as_list(s["Action"]))
        assert not any("*" in a for a in actions), s
        if "*" in as_list(s["Resource"]):
            assert actions <= STAR_OK, s
        if actions & MUTATIONS:
            # Only this deployment's resources: the tag condition is on every mutation.
            tag_keys = {k for cond in s["Condition"].values() for k in cond}
            assert tag_keys & {"autoscaling:ResourceTag/nat-watchdog:deployment",
                               "aws:ResourceTag/nat-watchdog:deployment"}, s
            assert "prod-nat" in json.dumps(s["Condition"])
        if actions & LAUNCH_CHECK:
            assert machine == "MaintenanceStateMachine", s
            text = json.dumps(s)
            assert ("aws:ResourceTag/nat-watchdog:deployment" in text or "ec2:LaunchTemplate" in text
                    or ":role/nat-watchdog/prod-nat/*" in text), s
        if "ec2:CreateTags" in actions:
            assert s["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"] == [TAG_REPLACE_EXECUTION]
    started = [r for s in found if "states:StartExecution" in as_list(s["Action"]) for r in as_list(s["Resource"])]
    assert {r.rsplit(":", 1)[1].removeprefix("prod-nat-") for r in started} == may_start
    used = {a for s in found for a in as_list(s["Action"])}
    asl = (STATEMACHINES_DIR / {"LifecycleStateMachine": "nat-lifecycle.asl.json",
                                "ReplaceStateMachine": "nat-replace.asl.json",
                                "MaintenanceStateMachine": "nat-maintenance.asl.json",
                                "InterruptionStateMachine": "nat-interruption.asl.json"}[machine]).read_text()
    for service, api in re.findall(r"arn:aws:states:::aws-sdk:([a-z0-9]+):([A-Za-z]+)", asl):
        prefix = {"sfn": "states"}.get(service, service)
        assert f"{prefix}:{api[0].upper()}{api[1:]}" in used, f"{machine}: the ASL calls {service}:{api} without permission"


def test_every_placeholder_of_the_definitions_is_substituted_by_the_template():
    resources = workflows_stack().resources()
    for machine, res in resources.items():
        if res["Type"] != "AWS::Serverless::StateMachine":
            continue
        text = (INFRA / res["Properties"]["DefinitionUri"]).read_text()
        placeholders = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", text))
        assert placeholders == set(res["Properties"]["DefinitionSubstitutions"]), machine


def test_the_lifecycle_rule_and_the_schedule_reach_the_workflows():
    resources = workflows_stack().resources()
    rule = resources["LifecycleStateMachine"]["Properties"]["Events"]["TerminateLifecycleAction"]
    pattern = rule["Properties"]["Pattern"]
    assert pattern["detail-type"] == ["EC2 Instance-terminate Lifecycle Action"]
    assert pattern["detail"]["LifecycleHookName"] == [WORKFLOWS_LIFECYCLE_HOOK]
    assert pattern["detail"]["AutoScalingGroupName"] == [{"prefix": "prod-nat-"}]
    interruption = resources["InterruptionStateMachine"]["Properties"]["Events"]["SpotInterruptionOrRebalance"]
    assert interruption["Type"] == "EventBridgeRule"
    assert interruption["Properties"]["Pattern"] == {
        "source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance Recommendation"]}
    schedule = resources["MaintenanceStateMachine"]["Properties"]["Events"]["Every14Days"]["Properties"]
    assert schedule["ScheduleExpression"] == "rate(14 days)"
    for machine, seconds in (("nat-replace", 1800), ("nat-maintenance", 1800)):
        assert json.loads((STATEMACHINES_DIR / f"{machine}.asl.json").read_text())["TimeoutSeconds"] == seconds


def test_the_root_template_nests_the_workflows_only_when_enabled():
    params = {"VpcId": "vpc-0123", "PrivateSubnetIds": ["subnet-0a1", "subnet-0b2"],
              "AvailabilityZones": ["us-east-1a", "us-east-1b"]}
    assert "NatWorkflows" not in Stack(INFRA / "template.yaml", params).resources()
    root = Stack(INFRA / "template.yaml", {**params, "EnableNatWorkflows": "true"})
    nested = root.resources()["NatWorkflows"]["Properties"]
    assert nested["Location"] == "nat-workflows.yaml"
    assert set(nested["Parameters"]) == {"DeploymentName", "FailoverStateMachineArn", "FallbackStateMachineArn",
                                         "StateMachineLogGroupArn"}


def test_the_image_pipeline_is_an_option_whose_output_parameter_feeds_maintenance():
    """Offline only: moto has no Image Builder. The template is evaluated with the option off and on."""
    import yaml

    off = workflows_stack().resources()
    assert not [r for r in off.values() if r["Type"].startswith("AWS::ImageBuilder::")]
    public = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
    assert off["MaintenanceStateMachine"]["Properties"]["DefinitionSubstitutions"]["ImageParameterName"] == public

    on = workflows_stack(ImagePipeline="true", ImagePipelineSubnetId="subnet-0abc",
                         ImagePipelineSecurityGroupId="sg-0abc",
                         NatScriptS3Uri="s3://my-bucket/nat/configure-nat.sh").resources()
    output = "/nat-watchdog/prod-nat/nat-ami"
    distribution = on["NatImageDistribution"]["Properties"]["Distributions"][0]
    assert distribution["SsmParameterConfigurations"] == [{"ParameterName": output, "DataType": "aws:ec2:image"}]
    maintenance = on["MaintenanceStateMachine"]["Properties"]
    assert maintenance["DefinitionSubstitutions"]["ImageParameterName"] == output
    readable = [r for s in maintenance["Policies"][0]["Statement"] if s["Action"] == "ssm:GetParameter"
                for r in as_list(s["Resource"])]
    assert any(r.endswith(f":parameter{output}") for r in readable)

    recipe = on["NatImageRecipe"]["Properties"]
    assert recipe["ParentImage"].endswith(":image/amazon-linux-2023-arm64/x.x.x")
    docs = {name: yaml.safe_load(on[name]["Properties"]["Data"])
            for name in ("NatEnableComponent", "NatHardenComponent", "NatTestComponent")}
    enable = docs["NatEnableComponent"]["phases"][0]["steps"]
    download = next(s for s in enable if s["action"] == "S3Download")["inputs"][0]
    assert download == {"source": "s3://my-bucket/nat/configure-nat.sh", "destination": "/usr/local/sbin/configure-nat.sh"}
    boot = "\n".join(next(s for s in enable if s["name"] == "BootUnit")["inputs"]["commands"])
    assert 'exec /usr/local/sbin/configure-nat.sh --egress-if "$iface"' in boot
    assert "systemctl enable nat-watchdog-nat.service" in boot
    test_phase = docs["NatTestComponent"]["phases"][0]
    assert test_phase["name"] == "test" and test_phase["steps"][0]["action"] == "Reboot"
    checks = "\n".join(test_phase["steps"][1]["inputs"]["commands"])
    assert "net.ipv4.ip_forward" in checks and "masquerade" in checks
    role = on["ImageBuilderInstanceRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    script = next(s for s in role if s["Action"] == "s3:GetObject")
    assert script["Resource"] == "arn:aws:s3:::my-bucket/nat/configure-nat.sh"


def test_the_workflows_follow_the_nat_layer_unless_opted_out():
    """Without the workflows every termination of a managed instance waits the hook's 600 s with no
    failover: the layer brings them by default; "false" is an explicit opt-out, "true" also serves
    groups of your own (no managed layer)."""
    base = {"VpcId": "vpc-0123", "PrivateSubnetIds": ["subnet-0a1", "subnet-0b2"],
            "AvailabilityZones": ["us-east-1a", "us-east-1b"]}
    layer = {**base, "PublicSubnetIds": ["subnet-1a1", "subnet-1b2"], "VpcCidr": "10.0.0.0/16"}
    template = Stack(INFRA / "template.yaml", base).template
    assert set(template["Parameters"]["EnableNatWorkflows"]["AllowedValues"]) == {"auto", "true", "false"}
    cases = [(layer, {}, True), (layer, {"EnableNatWorkflows": "auto"}, True),
             (layer, {"EnableNatWorkflows": "false"}, False), (base, {}, False),
             (base, {"EnableNatWorkflows": "true"}, True), (layer, {"EnableNatWorkflows": "true"}, True)]
    for params, extra, expected in cases:
        root = Stack(INFRA / "template.yaml", {**params, **extra})
        assert ("NatWorkflows" in root.resources()) is expected, (sorted(params), extra)
        assert root.condition("CreateNatLayer") is ("PublicSubnetIds" in params)
