"""The very ASL files of infra/statemachines, created in moto through the API with real execution on,
run against an emulated VPC with three AZs (two managed private route tables each, plus one unmanaged
table that must never change)."""

from __future__ import annotations

import json

import pytest

from moto_env import (TAG_NAT_INSTANCE_FOR, build_vpc, create_state_machines, default_route_targets,
                      load_definition, run_execution, wait_execution)

AZS = ["us-east-1a", "us-east-1b", "us-east-1c"]


@pytest.fixture()
def env(moto):
    moto.reset()
    session = moto.session()
    ec2 = session.client("ec2")
    sfn = session.client("stepfunctions")
    vpc = build_vpc(ec2, AZS)
    arns = create_state_machines(session)
    return {"ec2": ec2, "sfn": sfn, "vpc": vpc, "arns": arns, "session": session}


def managed_tables(vpc, azs=AZS):
    return [rtb for az in azs for rtb in vpc[az]["route_table_ids"]]


def targets(env):
    vpc = env["vpc"]
    ids = managed_tables(vpc) + [vpc[AZS[0]]["unmanaged_route_table_id"]]
    return default_route_targets(env["ec2"], ids)


def expected_on_instances(vpc, azs=AZS):
    return {rtb: vpc[az]["nat_eni_id"] for az in azs for rtb in vpc[az]["route_table_ids"]}


def expected_on_standby(vpc, azs=AZS):
    return {rtb: vpc[az]["standby_nat_gateway_id"] for az in azs for rtb in vpc[az]["route_table_ids"]}


def run(env, machine, payload):
    result = run_execution(env["sfn"], env["arns"][machine], payload)
    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    return result["outputJson"]


def actions(output):
    return {r["routeTableId"]: r["action"] for r in output["routeTables"]}


def test_failover_one_az_moves_only_that_az(env):
    vpc = env["vpc"]
    unmanaged = vpc[AZS[0]]["unmanaged_route_table_id"]
    before = targets(env)
    assert before == {**expected_on_instances(vpc), unmanaged: vpc[AZS[0]]["nat_eni_id"]}

    out = run(env, "failover", {"availabilityZone": "us-east-1b", "subnetId": "subnet-x",
                                "detectedAt": "2026-11-22T20:01:13.412Z", "failedTargets": []})

    after = targets(env)
    assert after == {**before, **expected_on_standby(vpc, ["us-east-1b"])}
    assert out["scope"] == "us-east-1b"
    assert actions(out) == {rtb: "replaced" for rtb in vpc["us-east-1b"]["route_table_ids"]}


def test_failover_all_azs_with_empty_input(env):
    vpc = env["vpc"]
    unmanaged = vpc[AZS[0]]["unmanaged_route_table_id"]

    out = run(env, "failover", {})

    assert targets(env) == {**expected_on_standby(vpc), unmanaged: vpc[AZS[0]]["nat_eni_id"]}
    assert out["scope"] == "all"
    assert set(actions(out)) == set(managed_tables(vpc))


def test_failover_twice_is_idempotent(env):
    vpc = env["vpc"]
    first = run(env, "failover", {"availabilityZone": "us-east-1a"})
    after_first = targets(env)
    second = run(env, "failover", {"availabilityZone": "us-east-1a"})

    assert targets(env) == after_first
    assert set(actions(first).values()) == {"replaced"}
    # A rerun replaces each route with the target it already has (EC2 accepts that unchanged): the
    # lookups keep no route lists, so there is nothing to compare against, and nothing moves.
    assert actions(second) == {rtb: "replaced" for rtb in vpc["us-east-1a"]["route_table_ids"]}
    assert {r["natGatewayId"] for r in second["routeTables"]} == {vpc["us-east-1a"]["standby_nat_gateway_id"]}


def test_failover_uses_fallback_gateway_when_az_has_no_standby(moto):
    moto.reset()
    session = moto.session()
    ec2, sfn = session.client("ec2"), session.client("stepfunctions")
    vpc = build_vpc(ec2, AZS)
    # AZ c loses its standby tag; the configured fallback gateway (AZ a's) takes its tables.
    ec2.delete_tags(Resources=[vpc["us-east-1c"]["standby_nat_gateway_id"]],
                    Tags=[{"Key": "nat-watchdog:standby-for"}])
    fallback_gw = vpc["us-east-1a"]["standby_nat_gateway_id"]
    arns = create_state_machines(session, fallback_nat_gateway_id=fallback_gw, name_prefix="with-fallback")

    result = run_execution(sfn, arns["failover"], {"availabilityZone": "us-east-1c"})

    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    assert default_route_targets(ec2, vpc["us-east-1c"]["route_table_ids"]) == {
        rtb: fallback_gw for rtb in vpc["us-east-1c"]["route_table_ids"]}


def test_failover_without_standby_or_fallback_fails_loudly(env):
    vpc = env["vpc"]
    env["ec2"].delete_tags(Resources=[vpc["us-east-1c"]["standby_nat_gateway_id"]],
                           Tags=[{"Key": "nat-watchdog:standby-for"}])
    before = targets(env)

    result = run_execution(env["sfn"], env["arns"]["failover"], {"availabilityZone": "us-east-1c"})

    assert result["status"] == "FAILED"
    assert result.get("error") == "SomeRouteTablesFailed"
    assert targets(env) == before


def test_failover_all_azs_still_moves_the_healthy_ones_when_one_az_cannot(env):
    """One misconfigured AZ must not stop the Failover of the others; the execution still fails."""
    vpc = env["vpc"]
    env["ec2"].delete_tags(Resources=[vpc["us-east-1c"]["standby_nat_gateway_id"]],
                           Tags=[{"Key": "nat-watchdog:standby-for"}])
    before = targets(env)

    result = run_execution(env["sfn"], env["arns"]["failover"], {})

    assert result["status"] == "FAILED"
    assert result.get("error") == "SomeRouteTablesFailed"
    report = {r["routeTableId"]: r for r in json.loads(result["cause"])}
    for rtb in vpc["us-east-1c"]["route_table_ids"]:
        assert report[rtb]["action"] == "error" and report[rtb]["error"] == "NoStandbyNatGateway"
    assert targets(env) == {**before, **expected_on_standby(vpc, ["us-east-1a", "us-east-1b"])}


@pytest.mark.parametrize("payload", [{"availabilityZone": "us-west-2a"}, {"availabilityZone": ""}])
def test_failover_unknown_or_empty_az_changes_nothing(env, payload):
    before = targets(env)
    result = run_execution(env["sfn"], env["arns"]["failover"], payload)
    assert result["status"] == "FAILED"
    assert targets(env) == before


def test_fallback_returns_routes_to_nat_instances(env):
    vpc = env["vpc"]
    run(env, "failover", {})
    assert set(targets(env).values()) > set(expected_on_standby(vpc).values())

    out = run(env, "fallback", {})

    assert targets(env) == {**expected_on_instances(vpc),
                            vpc[AZS[0]]["unmanaged_route_table_id"]: vpc[AZS[0]]["nat_eni_id"]}
    assert set(actions(out).values()) == {"replaced"}
    again = run(env, "fallback", {})
    assert set(actions(again).values()) == {"replaced"}
    assert targets(env) == {**expected_on_instances(vpc),
                            vpc[AZS[0]]["unmanaged_route_table_id"]: vpc[AZS[0]]["nat_eni_id"]}


def test_fallback_one_az(env):
    vpc = env["vpc"]
    run(env, "failover", {})
    run(env, "fallback", {"availabilityZone": "us-east-1a"})
    assert default_route_targets(env["ec2"], managed_tables(vpc)) == {
        **expected_on_standby(vpc), **expected_on_instances(vpc, ["us-east-1a"])}


def test_fallback_without_running_nat_instance_replaces_nothing(env):
    vpc = env["vpc"]
    run(env, "failover", {})
    env["ec2"].stop_instances(InstanceIds=[vpc["us-east-1b"]["nat_instance_id"]])
    # AZ c's instance is running but no longer tagged as a NAT instance: it does not count either.
    env["ec2"].delete_tags(Resources=[vpc["us-east-1c"]["nat_instance_id"]], Tags=[{"Key": TAG_NAT_INSTANCE_FOR}])
    before = targets(env)

    out = run(env, "fallback", {})

    after = targets(env)
    assert after == {**before, **expected_on_instances(vpc, ["us-east-1a"])}
    acts = actions(out)
    for az in ("us-east-1b", "us-east-1c"):
        for rtb in vpc[az]["route_table_ids"]:
            assert acts[rtb] == "skipped-no-running-nat-instance"
            assert after[rtb] == vpc[az]["standby_nat_gateway_id"]


def test_fallback_needs_no_input(env):
    # StartExecution without `input` at all (AWS defaults it to {}).
    arn = env["sfn"].start_execution(stateMachineArn=env["arns"]["fallback"], name="no-input")["executionArn"]
    result = wait_execution(env["sfn"], arn)
    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    assert set(actions(json.loads(result["output"])).values()) == {"replaced"}
    assert targets(env) == {**expected_on_instances(env["vpc"]),
                            env["vpc"][AZS[0]]["unmanaged_route_table_id"]: env["vpc"][AZS[0]]["nat_eni_id"]}


@pytest.mark.parametrize("machine", ["failover", "fallback"])
def test_asl_passes_cfn_lint_state_machine_schema(machine):
    """cfn-lint checks inline definitions only; the ASL files go in through DefinitionUri, so lint them
    here inline (rule E3601, the Amazon States Language schema)."""
    cfnlint_api = pytest.importorskip("cfnlint.api")
    definition = json.loads(load_definition(machine, {"FallbackNatGatewayId": "nat-0123456789abcdef0",
                                                           "VpcId": "vpc-0123456789abcdef0"}))
    template = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"StateMachine": {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {"RoleArn": "arn:aws:iam::123456789012:role/x", "Definition": definition}}}}
    matches = cfnlint_api.lint(json.dumps(template), config=cfnlint_api.ManualArgs(regions=["us-east-1"]))
    assert [str(m) for m in matches] == []


def test_fallback_skips_an_az_whose_stable_eni_exists_but_is_not_attached(env):
    """A managed stable ENI that is not in use (its instance is being replaced) forwards nothing; the
    running NAT instance's primary ENI is not the AZ's path either (its source/destination check is on
    in the managed layer): the AZ stays on its gateway, reported, and the others fall back."""
    vpc, ec2 = env["vpc"], env["ec2"]
    eni = ec2.create_network_interface(
        SubnetId=vpc["us-east-1b"]["public_subnet_id"],
        TagSpecifications=[{"ResourceType": "network-interface",
                            "Tags": [{"Key": "nat-watchdog:nat-eni-for", "Value": "us-east-1b"}]}],
    )["NetworkInterface"]["NetworkInterfaceId"]
    assert ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]["Status"] == "available"
    run(env, "failover", {})

    out = run(env, "fallback", {})

    acts = actions(out)
    assert {acts[rtb] for rtb in vpc["us-east-1b"]["route_table_ids"]} == {"skipped-stable-eni-not-attached"}
    assert default_route_targets(ec2, managed_tables(vpc)) == {
        **expected_on_standby(vpc, ["us-east-1b"]), **expected_on_instances(vpc, ["us-east-1a", "us-east-1c"])}

    # Once attached (the new instance booted), the stable ENI is the target.
    ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=vpc["us-east-1b"]["nat_instance_id"], DeviceIndex=1)
    again = run(env, "fallback", {"availabilityZone": "us-east-1b"})
    assert {r["targetKind"] for r in again["routeTables"]} == {"managed-eni"}
    assert default_route_targets(ec2, vpc["us-east-1b"]["route_table_ids"]) == {
        rtb: eni for rtb in vpc["us-east-1b"]["route_table_ids"]}
