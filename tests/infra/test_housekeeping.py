"""The housekeeping (infra/statemachines/housekeeping.asl.json, infra/housekeeping.yaml) executed in moto
as EXPRESS (moto 5.2.5 creates and runs EXPRESS state machines; here through the API, as AWS would be
given them by SAM) against the emulated VPCs of tests/support/moto_env.py, plus its template: the
Paused metric of paused AZs, the canary /32 routes kept on the AZ's NAT path, the Failover and
Fallback never touching those routes, IAM, the alarm and the root template's wiring (CanaryAddresses,
CanaryUrls, recovery on by default with canaries)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from asl_paths import SDK_ERRORS, STATES_ERRORS, error_equals, fail_error_names, walk_states, worst_seconds
from moto_env import (DEFAULT_CANARY_ADDRESSES, STATEMACHINES_DIR, TAG_PAUSED_UNTIL, build_vpc,
                      build_workflows_nat_layer, create_housekeeping_state_machine, create_state_machines,
                      default_route_targets, load_definition, route_targets, run_execution)
from template_eval import INFRA, Stack

AZS = ["us-east-1a", "us-east-1b"]
NAMESPACE = "NatEgressWatchdogHk"
CANARIES = [f"{a}/32" for a in DEFAULT_CANARY_ADDRESSES]
ASL = STATEMACHINES_DIR / "housekeeping.asl.json"


def rfc3339(delta: timedelta) -> str:
    return (datetime.now(timezone.utc) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture()
def byo(moto):
    """Bring-your-own: two AZs of NAT instances (two managed tables each, plus one unmanaged table)."""
    moto.reset()
    session = moto.session()
    ec2, sfn = session.client("ec2"), session.client("stepfunctions")
    vpc = build_vpc(ec2, AZS)
    vpc_id = vpc[AZS[0]]["vpc_id"]
    return {"ec2": ec2, "sfn": sfn, "cw": session.client("cloudwatch"), "session": session, "vpc": vpc,
            "vpc_id": vpc_id,
            "arn": create_housekeeping_state_machine(sfn, vpc_id, AZS, namespace=NAMESPACE)}


@pytest.fixture()
def managed(moto):
    """The managed NAT layer: per AZ a stable ENI (route target) attached to the group's instance."""
    moto.reset()
    session = moto.session()
    ec2, sfn = session.client("ec2"), session.client("stepfunctions")
    layer = build_workflows_nat_layer(ec2, session.client("autoscaling"), AZS)
    vpc_id = layer[AZS[0]]["vpc_id"]
    return {"ec2": ec2, "sfn": sfn, "cw": session.client("cloudwatch"), "session": session, "vpc": layer,
            "vpc_id": vpc_id,
            "arn": create_housekeeping_state_machine(sfn, vpc_id, AZS, namespace=NAMESPACE)}


def housekeep(env, arn=None):
    result = run_execution(env["sfn"], arn or env["arn"], {"source": "aws.events", "detail-type": "Scheduled Event"})
    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    return result["outputJson"]


def tables(env, azs=AZS):
    return [rtb for az in azs for rtb in env["vpc"][az]["route_table_ids"]]


def canary_targets(env, ids=None):
    ids = ids or tables(env)
    return {cidr: route_targets(env["ec2"], ids, cidr) for cidr in CANARIES}


def on_nat_path(env, azs=AZS):
    return {cidr: {rtb: env["vpc"][az]["nat_eni_id"] for az in azs for rtb in env["vpc"][az]["route_table_ids"]}
            for cidr in CANARIES}


def route_actions(out):
    return {(t["routeTableId"], r["destination"]): r["action"] for t in out["canaryRoutes"] for r in t["routes"]}


def paused_values(env, az):
    now = datetime.now(timezone.utc)
    stat = {"Metric": {"Namespace": NAMESPACE, "MetricName": "Paused",
                       "Dimensions": [{"Name": "AvailabilityZone", "Value": az}] if az else []},
            "Period": 60, "Stat": "Maximum"}
    got = env["cw"].get_metric_data(MetricDataQueries=[{"Id": "p", "MetricStat": stat}],
                                    StartTime=now - timedelta(minutes=10), EndTime=now + timedelta(minutes=1))
    return got["MetricDataResults"][0]["Values"]


def pause(env, az, delta):
    env["ec2"].create_tags(Resources=env["vpc"][az]["route_table_ids"],
                           Tags=[{"Key": TAG_PAUSED_UNTIL, "Value": rfc3339(delta)}])


# ------------------------------------------------------------------------------------------ Paused

def test_a_pause_in_the_future_publishes_paused_for_that_az_and_without_dimension(byo):
    pause(byo, "us-east-1b", timedelta(hours=2))

    out = housekeep(byo)

    assert paused_values(byo, "us-east-1b") == [1.0]
    assert paused_values(byo, None) == [1.0]
    assert paused_values(byo, "us-east-1a") == []
    assert [p for p in out["paused"] if p["action"] == "published"] == [
        {"availabilityZone": "us-east-1b", "action": "published"}]
    # Two paused tables of one AZ: one datum, not two.
    listed = byo["cw"].list_metrics(Namespace=NAMESPACE, MetricName="Paused")["Metrics"]
    assert sorted(json.dumps(m["Dimensions"]) for m in listed) == sorted(
        [json.dumps([]), json.dumps([{"Name": "AvailabilityZone", "Value": "us-east-1b"}])])


@pytest.mark.parametrize("value", [rfc3339(timedelta(minutes=-5)), "tomorrow", ""], ids=["expired", "not-a-time", "empty"])
def test_an_expired_or_unreadable_pause_publishes_nothing(byo, value):
    byo["ec2"].create_tags(Resources=byo["vpc"]["us-east-1a"]["route_table_ids"],
                           Tags=[{"Key": TAG_PAUSED_UNTIL, "Value": value}])

    out = housekeep(byo)

    assert paused_values(byo, "us-east-1a") == [] and paused_values(byo, None) == []
    assert byo["cw"].list_metrics(Namespace=NAMESPACE, MetricName="Paused")["Metrics"] == []
    assert {p["action"] for p in out["paused"]} == {"not-paused"}


def test_a_pause_of_another_vpc_tagged_alike_is_not_this_deployments(byo):
    other = build_vpc(byo["ec2"], AZS, cidr="10.1.0.0/16", with_unmanaged=False)
    byo["ec2"].create_tags(Resources=other["us-east-1a"]["route_table_ids"],
                           Tags=[{"Key": TAG_PAUSED_UNTIL, "Value": rfc3339(timedelta(hours=1))}])

    housekeep(byo)

    assert paused_values(byo, "us-east-1a") == [] and paused_values(byo, None) == []


# ------------------------------------------------------------------------------------------ canary routes

def test_missing_canary_routes_are_created_to_the_nat_instances_primary_eni(byo):
    assert canary_targets(byo) == {c: {rtb: None for rtb in tables(byo)} for c in CANARIES}

    out = housekeep(byo)

    assert canary_targets(byo) == on_nat_path(byo)
    assert set(route_actions(out).values()) == {"created"}
    assert {t["targetKind"] for t in out["canaryRoutes"]} == {"instance-primary-eni"}
    # The default routes did not move, and the unmanaged table got nothing.
    assert default_route_targets(byo["ec2"], tables(byo)) == {
        rtb: byo["vpc"][az]["nat_eni_id"] for az in AZS for rtb in byo["vpc"][az]["route_table_ids"]}
    unmanaged = byo["vpc"][AZS[0]]["unmanaged_route_table_id"]
    assert canary_targets(byo, [unmanaged]) == {c: {unmanaged: None} for c in CANARIES}

    again = housekeep(byo)
    assert set(route_actions(again).values()) == {"in-place"}
    assert canary_targets(byo) == on_nat_path(byo)


def test_canary_routes_go_to_the_managed_stable_eni(managed):
    out = housekeep(managed)

    assert canary_targets(managed) == on_nat_path(managed)
    assert {t["targetKind"] for t in out["canaryRoutes"]} == {"managed-eni"}


def test_a_detached_stable_eni_is_still_the_canary_target(managed):
    """During a replacement the stable ENI is briefly detached: it is still the AZ's NAT path (the new
    instance attaches it), never the new instance's primary ENI, whose source/destination check is on."""
    layer = managed["vpc"]["us-east-1a"]
    eni = managed["ec2"].describe_network_interfaces(NetworkInterfaceIds=[layer["nat_eni_id"]])["NetworkInterfaces"][0]
    managed["ec2"].detach_network_interface(AttachmentId=eni["Attachment"]["AttachmentId"], Force=True)

    housekeep(managed)

    assert canary_targets(managed) == on_nat_path(managed)


def test_a_canary_route_with_the_wrong_target_is_replaced(byo):
    housekeep(byo)
    ec2, vpc = byo["ec2"], byo["vpc"]
    a, b = vpc["us-east-1a"], vpc["us-east-1b"]
    # One route to the gateway, one to the other AZ's NAT instance (a replaced instance looks the same).
    ec2.replace_route(RouteTableId=a["route_table_ids"][0], DestinationCidrBlock=CANARIES[0],
                      NatGatewayId=a["standby_nat_gateway_id"])
    ec2.replace_route(RouteTableId=a["route_table_ids"][1], DestinationCidrBlock=CANARIES[1],
                      NetworkInterfaceId=b["nat_eni_id"])

    out = housekeep(byo)

    assert canary_targets(byo) == on_nat_path(byo)
    acts = route_actions(out)
    assert acts.pop((a["route_table_ids"][0], CANARIES[0])) == "replaced"
    assert acts.pop((a["route_table_ids"][1], CANARIES[1])) == "replaced"
    assert set(acts.values()) == {"in-place"}


def test_another_vpc_tagged_alike_is_left_alone(byo):
    other = build_vpc(byo["ec2"], AZS, cidr="10.1.0.0/16", with_unmanaged=False)
    other_tables = [rtb for az in AZS for rtb in other[az]["route_table_ids"]]

    out = housekeep(byo)

    assert canary_targets(byo, other_tables) == {c: {rtb: None for rtb in other_tables} for c in CANARIES}
    assert {t["routeTableId"] for t in out["canaryRoutes"]} == set(tables(byo))


def test_an_az_outside_the_deployment_is_left_alone(byo):
    arn = create_housekeeping_state_machine(byo["sfn"], byo["vpc_id"], ["us-east-1a"], namespace=NAMESPACE,
                                            name="one-az-housekeeping")
    out = housekeep(byo, arn)

    assert {t["routeTableId"] for t in out["canaryRoutes"]} == set(byo["vpc"]["us-east-1a"]["route_table_ids"])
    assert canary_targets(byo, byo["vpc"]["us-east-1b"]["route_table_ids"]) == {
        c: {rtb: None for rtb in byo["vpc"]["us-east-1b"]["route_table_ids"]} for c in CANARIES}


def test_an_az_without_a_nat_path_keeps_its_canary_routes_as_they_are(byo):
    housekeep(byo)
    byo["ec2"].stop_instances(InstanceIds=[byo["vpc"]["us-east-1b"]["nat_instance_id"]])
    before = canary_targets(byo)

    out = housekeep(byo)

    assert canary_targets(byo) == before
    assert {t["action"] for t in out["canaryRoutes"] if t["availabilityZone"] == "us-east-1b"} == {"skipped-no-nat-path"}


def test_a_paused_az_still_gets_its_canary_routes(byo):
    pause(byo, "us-east-1a", timedelta(hours=1))
    housekeep(byo)
    assert canary_targets(byo) == on_nat_path(byo)


def test_without_canary_addresses_no_route_is_written_and_the_pause_still_shows(byo):
    arn = create_housekeeping_state_machine(byo["sfn"], byo["vpc_id"], AZS, canary_addresses=[],
                                            namespace=NAMESPACE, name="no-canaries")
    pause(byo, "us-east-1a", timedelta(hours=1))

    out = housekeep(byo, arn)

    assert out["canaryRoutes"] == []
    assert canary_targets(byo) == {c: {rtb: None for rtb in tables(byo)} for c in CANARIES}
    assert paused_values(byo, "us-east-1a") == [1.0]


def test_a_route_that_cannot_be_written_fails_the_run_after_the_others(moto):
    moto.reset()
    session = moto.session()
    ec2, sfn = session.client("ec2"), session.client("stepfunctions")
    vpc = build_vpc(ec2, AZS)
    arn = create_housekeeping_state_machine(sfn, vpc[AZS[0]]["vpc_id"], AZS, namespace=NAMESPACE)
    broken = vpc["us-east-1a"]["route_table_ids"][0]
    moto.inject_ec2_fault("createRoute", times=100, code="UnauthorizedOperation", status=403,
                          message="You are not authorized to perform this operation.", match={"RouteTableId": broken})

    result = run_execution(sfn, arn, {})

    assert result["status"] == "FAILED" and result["error"] == "HousekeepingIncomplete"
    report = json.loads(result["cause"])
    errors = {(t["routeTableId"], r["destination"]): r["error"] for t in report["canaryRoutes"] for r in t["routes"]
              if r["action"] == "error"}
    assert errors == {(broken, c): "Ec2.Ec2Exception" for c in CANARIES}
    others = [rtb for az in AZS for rtb in vpc[az]["route_table_ids"] if rtb != broken]
    assert {c: route_targets(ec2, others, c) for c in CANARIES} == {
        c: {rtb: vpc[az]["nat_eni_id"] for az in AZS for rtb in vpc[az]["route_table_ids"] if rtb != broken}
        for c in CANARIES}


# ------------------------------------------------------------------------------------------ Failover / Fallback

def test_failover_and_fallback_never_touch_the_canary_routes(byo):
    housekeep(byo)
    arns = create_state_machines(byo["session"], vpc_id=byo["vpc_id"])
    expected = on_nat_path(byo)

    failover = run_execution(byo["sfn"], arns["failover"], {})
    assert failover["status"] == "SUCCEEDED", failover
    assert default_route_targets(byo["ec2"], tables(byo)) == {
        rtb: byo["vpc"][az]["standby_nat_gateway_id"] for az in AZS for rtb in byo["vpc"][az]["route_table_ids"]}
    assert canary_targets(byo) == expected

    fallback = run_execution(byo["sfn"], arns["fallback"], {"availabilityZone": "us-east-1a"})
    assert fallback["status"] == "SUCCEEDED", fallback
    assert canary_targets(byo) == expected


# ------------------------------------------------------------------------------------------ the definition

def definition() -> dict:
    return json.loads(load_definition("housekeeping", {"VpcId": "vpc-0123456789abcdef0", "AvailabilityZones": "a,b",
                                                       "MetricsNamespace": "N", "CanaryCidrs": "1.2.3.4/32"}))


def test_every_error_name_is_one_step_functions_can_raise_and_ec2_calls_retry_like_the_failover():
    d = definition()
    cloudwatch = {"CloudWatch.LimitExceededException", "CloudWatch.ThrottlingException", "CloudWatch.SdkClientException",
                  "CloudWatch.CloudWatchException", "CloudWatch.InternalServiceException"}
    allowed = STATES_ERRORS | SDK_ERRORS | cloudwatch | fail_error_names(d)
    assert [e for e in error_equals(d) if e[2] not in allowed] == []
    tasks = [(n, st) for n, st in walk_states(d["States"]) if st["Type"] == "Task"]
    ec2 = [(n, st) for n, st in tasks if ":ec2:" in st["Resource"]]
    assert {st["Resource"].rsplit(":", 1)[1] for _, st in tasks} == {
        "describeRouteTables", "describeNetworkInterfaces", "describeInstances", "createRoute", "replaceRoute",
        "putMetricData"}
    for name, st in ec2:
        first = st["Retry"][0]
        assert {"Ec2.Ec2Exception", "States.Timeout"} <= set(first["ErrorEquals"]), name
        assert first["MaxAttempts"] >= 6 and first["JitterStrategy"] == "FULL", name
        assert first["BackoffRate"] >= 2 and first.get("MaxDelaySeconds", 0) >= 8, name
        assert st["TimeoutSeconds"] <= 10, name


def test_every_lookup_is_filtered_on_the_vpc_and_writes_are_canary_routes_only():
    d = definition()
    scope = d["States"]["Scope"]["Parameters"]
    vpc = {"Name": "vpc-id", "Values": ["vpc-0123456789abcdef0"]}
    for key in ("tableFilters", "eniFilters", "instanceFilters"):
        assert vpc in scope[key], key
    for name, st in walk_states(d["States"]):
        if st["Type"] == "Task" and ":describe" in st["Resource"]:
            params = st["Parameters"]
            assert params.get("Filters.$", "").startswith("$.") and params["Filters.$"][2:] in scope or vpc in params["Filters"], name
        if st["Type"] == "Task" and st["Resource"].endswith(("createRoute", "replaceRoute")):
            # The destination is a canary, never 0.0.0.0/0; the target an ENI.
            assert st["Parameters"] == {"RouteTableId.$": "$.routeTableId", "DestinationCidrBlock.$": "$.cidr",
                                        "NetworkInterfaceId.$": "$.eni"}, name
    each = d["States"]["Work"]["Branches"][1]["States"]["EachTable"]["ItemProcessor"]["States"]["EachCanary"]
    assert each["ItemsPath"] == "$.canaryCidrs" and each["ItemSelector"]["cidr.$"] == "$$.Map.Item.Value"
    def without_comments(node):
        if isinstance(node, dict):
            return {k: without_comments(v) for k, v in node.items() if k != "Comment"}
        return [without_comments(v) for v in node] if isinstance(node, list) else node
    assert "0.0.0.0/0" not in json.dumps(without_comments(d))


def test_the_paused_metric_fits_the_express_limit_even_when_every_call_is_retried():
    d = definition()
    assert d["TimeoutSeconds"] <= 300  # an Express execution may run 5 minutes
    only_discover = {k: v for k, v in d["States"]["Discover"].items() if k != "Next"}
    discover = worst_seconds({"Discover": {**only_discover, "End": True}}, "Discover")
    paused = d["States"]["Work"]["Branches"][0]
    total = discover + worst_seconds(paused["States"], paused["StartAt"])
    assert total <= d["TimeoutSeconds"], total
    assert f"(Discover {discover:.0f} s + PutMetricData {total - discover:.0f} s = {total:.0f} s)" in d["Comment"]


# ------------------------------------------------------------------------------------------ templates

ROOT_PARAMS = {"VpcId": "vpc-0123", "PrivateSubnetIds": ["subnet-0a1", "subnet-0b2"], "AvailabilityZones": AZS}


def root(**extra) -> Stack:
    return Stack(INFRA / "template.yaml", {**ROOT_PARAMS, **extra})


def test_the_root_template_nests_the_housekeeping_with_the_deployments_vpc_azs_and_canaries():
    st = root(CanaryAddresses="203.0.113.7,198.51.100.9", MetricsNamespace="Ns")
    hk = st.child("Housekeeping")
    machine = hk.resources()["HousekeepingStateMachine"]["Properties"]
    assert machine["Type"] == "EXPRESS" and machine["Name"] == "nat-watchdog-housekeeping"
    assert machine["DefinitionSubstitutions"] == {"VpcId": "vpc-0123", "AvailabilityZones": "us-east-1a,us-east-1b",
                                                  "MetricsNamespace": "Ns",
                                                  "CanaryCidrs": "203.0.113.7/32,198.51.100.9/32"}
    placeholders = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", ASL.read_text()))
    assert placeholders == set(machine["DefinitionSubstitutions"])
    assert machine["Events"]["EveryFiveMinutes"]["Properties"]["Schedule"] == "rate(5 minutes)"
    assert (INFRA / machine["DefinitionUri"]) == ASL
    for checker in ("Checker1", "Checker2"):
        assert st.child(checker).params["CanaryUrls"] == "https://203.0.113.7/,https://198.51.100.9/"
    empty = root(CanaryAddresses="")
    assert empty.child("Housekeeping").resources()["HousekeepingStateMachine"]["Properties"][
        "DefinitionSubstitutions"]["CanaryCidrs"] == ""
    assert empty.child("Checker1").params["CanaryUrls"] == ""


def test_the_default_canaries_are_the_contracts_and_reach_every_checker():
    st = root()
    assert st.params["CanaryAddresses"] == ",".join(DEFAULT_CANARY_ADDRESSES)
    assert st.child("Checker2").params["CanaryUrls"] == ",".join(f"https://{a}/" for a in DEFAULT_CANARY_ADDRESSES)


@pytest.mark.parametrize("value,ok", [
    ("162.159.36.1,149.112.112.10", True), ("", True), ("203.0.113.7", True),
    ("203.0.113.7,198.51.100.9,192.0.2.1,8.8.8.80", True),
    ("1.1.1.1", False), ("162.159.36.1,8.8.8.8", False), ("8.8.4.4", False), ("9.9.9.9", False),
    ("208.67.222.222", False), ("10.0.0.5", False), ("172.20.1.1", False), ("192.168.0.1", False),
    ("127.0.0.1", False), ("169.254.169.254", False), ("100.64.1.1", False), ("224.0.0.251", False),
    ("1.2.3", False), ("203.0.113.7, 198.51.100.9", False), ("256.1.1.1", False), ("2001:db8::1", False),
    ("203.0.113.1,203.0.113.2,203.0.113.3,203.0.113.4,203.0.113.5", False),
])
def test_canary_addresses_are_public_ipv4_nobody_uses_by_address(value, ok):
    pattern = root().template["Parameters"]["CanaryAddresses"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is ok, value
    # The nested template's looser pattern never refuses what the root accepted.
    if ok:
        nested = Stack(INFRA / "housekeeping.yaml", {"DeploymentName": "d", "VpcId": "vpc-1", "AvailabilityZones": "a",
                                                     "StateMachineLogGroupArn": "x"}).template
        assert re.fullmatch(nested["Parameters"]["CanaryAddresses"]["AllowedPattern"], value)


def test_recovery_is_on_by_default_with_canaries_and_left_out_without_them():
    st = root()
    assert "Recovery" in st.resources()
    outputs = {k for k, v in st.template["Outputs"].items() if "Condition" not in v or st.condition(v["Condition"])}
    assert {"RecoveryStateMachineArn", "HousekeepingStateMachineArn"} <= outputs
    assert st.eval(st.template["Outputs"]["RecoveryStateMachineArn"]["Value"]).endswith(":stateMachine:nat-watchdog-nat-recovery")
    assert st.eval(st.template["Outputs"]["HousekeepingStateMachineArn"]["Value"]).endswith(
        ":stateMachine:nat-watchdog-housekeeping")
    for off in (root(CanaryAddresses=""), root(EnableAutoRecovery="false")):
        assert "Recovery" not in off.resources()
        assert not off.condition(off.template["Outputs"]["RecoveryStateMachineArn"]["Condition"])
        assert "Housekeeping" in off.resources()


def test_the_role_writes_only_routes_of_this_vpcs_managed_tables_and_publishes_in_its_namespace():
    hk = root(MetricsNamespace="Ns").child("Housekeeping")
    statements = [s for p in hk.resources()["HousekeepingStateMachine"]["Properties"]["Policies"] for s in p["Statement"]]
    by_sid = {s["Sid"]: s for s in statements}
    write = by_sid["CanaryRoutesOfManagedTablesOnly"]
    assert write["Action"] == ["ec2:CreateRoute", "ec2:ReplaceRoute"]
    assert write["Resource"] == "arn:aws:ec2:us-east-1:123456789012:route-table/*"
    assert write["Condition"]["StringEquals"] == {"ec2:ResourceTag/nat-watchdog:az": AZS,
                                                  "ec2:Vpc": "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-0123"}
    assert by_sid["PublishInTheDeploymentsNamespaceOnly"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Ns"}}
    granted = {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
               if a.startswith(("ec2:", "cloudwatch:"))}
    used = {f"{svc}:{api[0].upper()}{api[1:]}" for svc, api in
            re.findall(r'"arn:aws:states:::aws-sdk:(ec2|cloudwatch):([A-Za-z]+)"', ASL.read_text())}
    assert used == granted


def test_the_paused_alarm_reads_what_the_housekeeping_publishes_and_is_accepted(moto):
    hk = root(MetricsNamespace="Ns", AlarmTopicArn="arn:aws:sns:us-east-1:123456789012:oncall").child("Housekeeping")
    props = dict(hk.resources("AWS::CloudWatch::Alarm")["PausedAlarm"]["Properties"])
    assert props["AlarmName"] == "nat-watchdog-paused"
    assert props["AlarmDescription"].endswith("Runbook: docs/RUNBOOK.md#paused")
    assert (props["Namespace"], props["MetricName"], props.get("Dimensions")) == ("Ns", "Paused", None)
    assert props["TreatMissingData"] == "notBreaching" and props["Threshold"] == 1
    assert props["Period"] >= 300  # a run every 5 minutes: every period of the alarm sees one
    assert '"MetricName": "Paused"' in ASL.read_text()
    cw = moto.session().client("cloudwatch")
    cw.put_metric_alarm(**props)
    assert [a["AlarmName"] for a in cw.describe_alarms(AlarmNames=["nat-watchdog-paused"])["MetricAlarms"]] == [
        "nat-watchdog-paused"]


def test_the_definition_passes_cfn_lint_state_machine_schema():
    """cfn-lint checks inline definitions only (rule E3601, the Amazon States Language schema)."""
    cfnlint_api = pytest.importorskip("cfnlint.api")
    template = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"StateMachine": {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {"RoleArn": "arn:aws:iam::123456789012:role/x", "StateMachineType": "EXPRESS",
                       "Definition": definition()}}}}
    matches = cfnlint_api.lint(json.dumps(template), config=cfnlint_api.ManualArgs(regions=["us-east-1"]))
    assert [str(m) for m in matches] == []
