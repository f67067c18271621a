"""The state machines in moto (real executions) against what the shared contracts promise: only this
VPC is touched, the pause tag is honoured, the AZ's own standby is preferred over a shared one and the
managed stable ENI over the instance's, optional input fields are ignored, and an EC2 error is retried
by the Ec2.Ec2Exception Retrier and, when it persists, caught and reported."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from moto_env import (TAG_ROUTE_TABLE_AZ, build_vpc, create_state_machines, default_route_targets, run_execution)

AZS = ["us-east-1a", "us-east-1b"]
PAUSE = "nat-watchdog:paused-until"


@pytest.fixture()
def world(moto):
    """Two VPCs tagged exactly alike (staging and production, say), each with its own deployment."""
    moto.reset()
    session = moto.session()
    ec2, sfn = session.client("ec2"), session.client("stepfunctions")
    prod = build_vpc(ec2, AZS, cidr="10.0.0.0/16")
    staging = build_vpc(ec2, AZS, cidr="10.1.0.0/16")
    arns = {"prod": create_state_machines(session, name_prefix="prod", vpc_id=prod[AZS[0]]["vpc_id"]),
            "staging": create_state_machines(session, name_prefix="staging", vpc_id=staging[AZS[0]]["vpc_id"])}
    return {"ec2": ec2, "sfn": sfn, "vpc": {"prod": prod, "staging": staging}, "arns": arns, "moto": moto}


def tables(vpc, azs=AZS):
    return [rtb for az in azs for rtb in vpc[az]["route_table_ids"]]


def targets(w, which):
    return default_route_targets(w["ec2"], tables(w["vpc"][which]))


def run(w, deployment, machine, payload):
    return run_execution(w["sfn"], w["arns"][deployment][machine], payload, timeout=90)


def ok(result):
    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    return {r["routeTableId"]: r for r in result["outputJson"]["routeTables"]}


def on_standby(vpc, azs=AZS):
    return {rtb: vpc[az]["standby_nat_gateway_id"] for az in azs for rtb in vpc[az]["route_table_ids"]}


def on_instances(vpc, azs=AZS):
    return {rtb: vpc[az]["nat_eni_id"] for az in azs for rtb in vpc[az]["route_table_ids"]}


def test_two_vpcs_tagged_alike_each_deployment_touches_only_its_own(world):
    w = world
    prod, staging = w["vpc"]["prod"], w["vpc"]["staging"]

    report = ok(run(w, "prod", "failover", {}))

    assert set(report) == set(tables(prod))
    assert targets(w, "prod") == on_standby(prod)
    assert targets(w, "staging") == on_instances(staging)  # untouched, although tagged the same way

    ok(run(w, "staging", "failover", {"availabilityZone": "us-east-1a"}))
    assert targets(w, "staging") == {**on_instances(staging), **on_standby(staging, ["us-east-1a"])}

    report = ok(run(w, "prod", "fallback", {}))
    assert set(report) == set(tables(prod))
    assert targets(w, "prod") == on_instances(prod)
    assert targets(w, "staging") == {**on_instances(staging), **on_standby(staging, ["us-east-1a"])}


def test_the_standby_of_another_vpc_is_never_chosen(world):
    """prod's AZ b has no standby of its own; staging's (same tags, other VPC) must not be taken."""
    w = world
    prod = w["vpc"]["prod"]
    w["ec2"].delete_tags(Resources=[prod["us-east-1b"]["standby_nat_gateway_id"]],
                         Tags=[{"Key": "nat-watchdog:standby-for"}])
    result = run(w, "prod", "failover", {"availabilityZone": "us-east-1b"})
    assert result["status"] == "FAILED" and result["error"] == "SomeRouteTablesFailed"
    assert {r["error"] for r in json.loads(result["cause"])} == {"NoStandbyNatGateway"}
    assert targets(w, "prod") == on_instances(prod)


def _pause(w, rtbs, until: str):
    w["ec2"].create_tags(Resources=rtbs, Tags=[{"Key": PAUSE, "Value": until},
                                               {"Key": "nat-watchdog:paused-reason", "Value": "maintenance"}])


def _rfc3339(delta: timedelta) -> str:
    return (datetime.now(timezone.utc) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_paused_az_is_skipped_by_automatic_runs_and_moved_by_a_manual_one(world):
    w = world
    prod = w["vpc"]["prod"]
    paused = prod["us-east-1b"]["route_table_ids"]
    _pause(w, paused, _rfc3339(timedelta(hours=2)))

    report = ok(run(w, "prod", "failover", {}))
    assert {rtb: report[rtb]["action"] for rtb in paused} == {rtb: "skipped-paused" for rtb in paused}
    assert targets(w, "prod") == {**on_instances(prod), **on_standby(prod, ["us-east-1a"])}

    for trigger in ("lifecycle", "replace", "maintenance", "fallback-auto", "checker"):
        report = ok(run(w, "prod", "failover", {"availabilityZone": "us-east-1b", "trigger": trigger}))
        assert {r["action"] for r in report.values()} == {"skipped-paused"}, trigger

    report = ok(run(w, "prod", "failover", {"availabilityZone": "us-east-1b", "trigger": "manual",
                                            "reason": "on-call moved it by hand"}))
    assert {r["action"] for r in report.values()} == {"replaced"}
    assert targets(w, "prod") == on_standby(prod)

    report = ok(run(w, "prod", "fallback", {"trigger": "fallback-auto"}))
    assert {rtb: report[rtb]["action"] for rtb in paused} == {rtb: "skipped-paused" for rtb in paused}
    assert targets(w, "prod") == {**on_standby(prod), **on_instances(prod, ["us-east-1a"])}


@pytest.mark.parametrize("until", [_rfc3339(timedelta(hours=-1)), "next tuesday", "2026-11-23"])
def test_a_past_or_unreadable_pause_does_not_stop_the_failover(world, until):
    w = world
    prod = w["vpc"]["prod"]
    _pause(w, prod["us-east-1a"]["route_table_ids"], until)
    report = ok(run(w, "prod", "failover", {"availabilityZone": "us-east-1a"}))
    assert {r["action"] for r in report.values()} == {"replaced"}


def test_contract_input_fields_are_accepted_and_ignored(world):
    w = world
    prod = w["vpc"]["prod"]
    payload = {"availabilityZone": "us-east-1a", "subnetId": prod["us-east-1a"]["private_subnet_id"],
               "detectedAt": "2026-11-23T14:00:01.250Z", "outageStartedAt": "2026-11-23T13:59:59.000Z",
               "failedTargets": [{"url": "https://a.example/", "cause": "connect_timeout"}],
               "rule": "consecutive", "trigger": "checker", "reason": "3 bad rounds", "somethingNew": {"x": [1]}}
    report = ok(run(w, "prod", "failover", payload))
    assert set(report) == set(prod["us-east-1a"]["route_table_ids"])
    report = ok(run(w, "prod", "fallback", {**payload, "trigger": "fallback-auto"}))
    assert {r["action"] for r in report.values()} == {"replaced"}


def _shared_gateway(w, vpc, az="us-east-1a") -> str:
    ec2 = w["ec2"]
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    return ec2.create_nat_gateway(SubnetId=vpc[az]["public_subnet_id"], AllocationId=alloc, TagSpecifications=[
        {"ResourceType": "natgateway", "Tags": [{"Key": "nat-watchdog:standby-for", "Value": "shared"}]}],
    )["NatGateway"]["NatGatewayId"]


def test_own_standby_first_then_a_shared_one(world):
    w = world
    prod = w["vpc"]["prod"]
    shared = _shared_gateway(w, prod)
    w["ec2"].delete_tags(Resources=[prod["us-east-1b"]["standby_nat_gateway_id"]],
                         Tags=[{"Key": "nat-watchdog:standby-for"}])

    report = ok(run(w, "prod", "failover", {}))

    assert targets(w, "prod") == {**on_standby(prod, ["us-east-1a"]),
                                  **{rtb: shared for rtb in prod["us-east-1b"]["route_table_ids"]}}
    kinds = {report[rtb]["gatewayKind"] for rtb in prod["us-east-1a"]["route_table_ids"]}
    assert kinds == {"standby-for-az"}
    assert {report[rtb]["gatewayKind"] for rtb in prod["us-east-1b"]["route_table_ids"]} == {"shared"}


def _managed_eni(w, vpc, az, attach: bool) -> str:
    ec2 = w["ec2"]
    eni = ec2.create_network_interface(SubnetId=vpc[az]["public_subnet_id"], TagSpecifications=[
        {"ResourceType": "network-interface", "Tags": [{"Key": "nat-watchdog:nat-eni-for", "Value": az}]}],
    )["NetworkInterface"]["NetworkInterfaceId"]
    if attach:
        ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=vpc[az]["nat_instance_id"], DeviceIndex=1)
    return eni


def test_fallback_prefers_the_managed_eni_and_never_a_detached_one(world):
    """A detached stable ENI is no target, and its AZ is not pointed at the instance's primary ENI
    either (its source/destination check is on in the managed layer): it stays on its gateway."""
    w = world
    prod = w["vpc"]["prod"]
    ok(run(w, "prod", "failover", {}))
    attached = _managed_eni(w, prod, "us-east-1a", attach=True)
    _managed_eni(w, prod, "us-east-1b", attach=False)  # detached: status available

    report = ok(run(w, "prod", "fallback", {}))

    assert targets(w, "prod") == {**on_standby(prod, ["us-east-1b"]),
                                  **{rtb: attached for rtb in prod["us-east-1a"]["route_table_ids"]}}
    assert {report[rtb]["targetKind"] for rtb in prod["us-east-1a"]["route_table_ids"]} == {"managed-eni"}
    assert {report[rtb]["action"] for rtb in prod["us-east-1b"]["route_table_ids"]} == {"skipped-stable-eni-not-attached"}


def _task_failures(sfn, execution_arn, api):
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    scheduled = [e for e in events if e["type"] == "TaskScheduled"
                 and e["taskScheduledEventDetails"]["resource"] == api]
    failed = [e["taskFailedEventDetails"] for e in events if e["type"] == "TaskFailed"
              and e["taskFailedEventDetails"]["resource"] == api]
    return scheduled, failed


def test_a_throttled_ec2_call_is_retried_by_the_ec2exception_retrier(world):
    """Two throttles (the code AWS sends, status 503) on ReplaceRoute; the third attempt succeeds."""
    w = world
    prod = w["vpc"]["prod"]
    w["moto"].inject_ec2_fault("replaceRoute", times=2)
    rtb = prod["us-east-1a"]["route_table_ids"][0]
    w["ec2"].delete_tags(Resources=[prod["us-east-1a"]["route_table_ids"][1]], Tags=[{"Key": TAG_ROUTE_TABLE_AZ}])

    result = run(w, "prod", "failover", {"availabilityZone": "us-east-1a"})

    assert ok(result) == {rtb: {"routeTableId": rtb, "availabilityZone": "us-east-1a", "action": "replaced",
                                "natGatewayId": prod["us-east-1a"]["standby_nat_gateway_id"],
                                "gatewayKind": "standby-for-az"}}
    scheduled, failed = _task_failures(w["sfn"], result["executionArn"], "replaceRoute")
    assert len(scheduled) == 3 and len(failed) == 2
    # The name AWS gives every EC2 error: moto names it ec2.ec2Exception, moto_aws_compat.py restores it.
    assert {f["error"] for f in failed} == {"Ec2.Ec2Exception"}
    assert all("Request limit exceeded" in f["cause"] and "503" in f["cause"] for f in failed)


def test_an_ec2_error_that_persists_is_retried_to_the_end_then_caught_and_reported(world):
    """Every ReplaceRoute fails (UnauthorizedOperation): 1 + 6 attempts (the Ec2.Ec2Exception Retrier,
    jittered waits of at most 1+2+4+8+8+8 s), then the Catcher records the table as an error; the other
    AZ is still moved."""
    w = world
    prod = w["vpc"]["prod"]
    for az in AZS:
        w["ec2"].delete_tags(Resources=[prod[az]["route_table_ids"][1]], Tags=[{"Key": TAG_ROUTE_TABLE_AZ}])
    failing = prod["us-east-1b"]["route_table_ids"][0]
    w["moto"].inject_ec2_fault("replaceRoute", times=99, code="UnauthorizedOperation", status=403,
                               message="You are not authorized to perform this operation.",
                               match={"RouteTableId": failing})

    result = run(w, "prod", "failover", {})

    assert result["status"] == "FAILED" and result["error"] == "SomeRouteTablesFailed"
    report = {r["routeTableId"]: r for r in json.loads(result["cause"])}
    errors = [r for r in report.values() if r["action"] == "error"]
    assert [r["routeTableId"] for r in errors] == [failing] and errors[0]["error"] == "Ec2.Ec2Exception"
    assert "not authorized" in errors[0]["cause"]
    assert [r["action"] for r in report.values()].count("replaced") == 1
    scheduled, failed = _task_failures(w["sfn"], result["executionArn"], "replaceRoute")
    assert len(failed) == 7 and len(scheduled) == 8  # 7 for the failing table, 1 for the other
    assert targets(w, "prod")[failing] == prod["us-east-1b"]["nat_eni_id"]


def test_the_bridge_moto_aws_compat_restores_the_aws_error_name(moto):
    """Why moto_aws_compat.py exists: plain moto 5.2.5 names an EC2 error `ec2.ec2Exception`, AWS names
    it `Ec2.Ec2Exception`. A real EC2 error (a route table that does not exist), raised by moto itself."""
    from moto_env import MotoServer

    definition = json.dumps({"StartAt": "Replace", "States": {"Replace": {
        "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:ec2:replaceRoute",
        "Parameters": {"RouteTableId": "rtb-0000000000000dead", "DestinationCidrBlock": "0.0.0.0/0",
                       "NatGatewayId": "nat-0000000000000dead"}, "End": True}}})

    def error_name(server) -> str:
        sfn = server.session().client("stepfunctions")
        arn = sfn.create_state_machine(name=f"bridge-{server.aws_compat}", definition=definition,
                                       roleArn="arn:aws:iam::123456789012:role/x")["stateMachineArn"]
        result = run_execution(sfn, arn, {})
        assert result["status"] == "FAILED" and "does not exist" in result["cause"], result
        return result["error"]

    moto.reset()
    assert error_name(moto) == "Ec2.Ec2Exception"
    with MotoServer(aws_compat=False) as plain:
        assert error_name(plain) == "ec2.ec2Exception"
