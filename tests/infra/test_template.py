"""infra/template.yaml evaluated offline (template_eval) and judged by moto and by the contracts:
the dashboard body is accepted by PutDashboard, every alarm by PutMetricAlarm, metric names match
docs/CONTRACTS.md, the timing arithmetic leaves no probing gap, IAM is as narrow as promised and the
ASL placeholders are exactly the template's DefinitionSubstitutions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from moto_env import STATEMACHINES_DIR
from template_eval import INFRA, Stack

ROOT = Path(__file__).resolve().parents[2]
SUBNETS = ["subnet-0a1", "subnet-0b2", "subnet-0c3", "subnet-0d4", "subnet-0e5", "subnet-0f6"]
AZS = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1e", "us-east-1f"]


CHILD_PARAMS = {"SubnetId": "subnet-1", "AvailabilityZone": "x", "SecurityGroupId": "sg-1",
                "FailoverStateMachineArn": "arn", "CheckUrls": "", "CheckInterval": 1,
                "RequestTimeout": 1, "UnhealthyThreshold": 1, "HealthyThreshold": 1, "Quorum": 1,
                "DegradedWindow": "", "DegradedThreshold": "", "MetricsNamespace": "N", "LogRetentionDays": 1,
                "TimeoutSeconds": 80, "ReservedConcurrency": "2", "MetricsFlushInterval": 20,
                "AlarmTopicArn": "", "DeploymentName": "p"}


def stack(n: int, **extra) -> Stack:
    params = {"VpcId": "vpc-0123", "PrivateSubnetIds": SUBNETS[:n], "AvailabilityZones": AZS[:n], **extra}
    return Stack(INFRA / "template.yaml", params)


def contract_metric_names() -> set[str]:
    text = (ROOT / "docs" / "CONTRACTS.md").read_text()
    emf = text.split("## EMF", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`([A-Z][A-Za-z]+)`", emf))


def checkers(st: Stack) -> list[Stack]:
    """The nested checker stacks (Checker1..6) that these parameters create; the other nested stacks
    (Recovery, Housekeeping, NAT layer, NAT workflows) have their own tests."""
    return [st.child(logical) for logical in st.resources("AWS::Serverless::Application") if logical.startswith("Checker")]


def alarms(st: Stack) -> dict[str, dict]:
    """The root's alarms and every checker's (those of Recovery and Housekeeping: their own tests)."""
    out = {k: v["Properties"] for k, v in st.resources("AWS::CloudWatch::Alarm").items()}
    for i, child in enumerate(checkers(st), 1):
        out.update({f"Checker{i}.{k}": v["Properties"]
                    for k, v in child.resources("AWS::CloudWatch::Alarm").items()})
    return out


@pytest.mark.parametrize("n", [2, 3, 6])
def test_one_checker_per_subnet(n):
    st = stack(n)
    children = checkers(st)
    assert [c.params["SubnetId"] for c in children] == SUBNETS[:n]
    assert [c.params["AvailabilityZone"] for c in children] == AZS[:n]
    for child in children:
        fn = child.resources("AWS::Serverless::Function")["Checker"]
        props = fn["Properties"]
        assert props["Runtime"] == "provided.al2023" and props["Architectures"] == ["arm64"]
        assert props["MemorySize"] == 128 and props["Handler"] == "bootstrap"
        assert fn["Metadata"]["BuildMethod"] == "rust-cargolambda"
        assert fn["Metadata"]["BuildProperties"]["Binary"] == "connectivity-checker"
        assert (INFRA / props["CodeUri"] / "Cargo.toml").is_file()
        assert props["VpcConfig"]["SubnetIds"] == [child.params["SubnetId"]]
        env = props["Environment"]["Variables"]
        assert env["AVAILABILITY_ZONE"] == child.params["AvailabilityZone"]
        assert env["SUBNET_ID"] == child.params["SubnetId"]
        assert env["FAILOVER_STATE_MACHINE_ARN"].endswith(":stateMachine:nat-watchdog-failover")
        assert "CHECK_URLS" not in env  # empty parameter: the checker's own defaults
        assert "DEGRADED_WINDOW" not in env and "DEGRADED_THRESHOLD" not in env


def test_checker_environment_names_are_the_contracts():
    contracts = (ROOT / "docs" / "CONTRACTS.md").read_text()
    env = stack(2, CheckUrls="https://a.example/,https://b.example/", DegradedWindow="50",
                DegradedThreshold="10").child("Checker1") \
        .resources("AWS::Serverless::Function")["Checker"]["Properties"]["Environment"]["Variables"]
    for name in env:
        assert f"| `{name}` |" in contracts, name
    assert env["CHECK_URLS"] == "https://a.example/,https://b.example/"
    assert (env["DEGRADED_WINDOW"], env["DEGRADED_THRESHOLD"]) == ("50", "10")


def test_timing_leaves_no_probing_gap_and_no_pile_up():
    st = stack(2)
    child = st.child("Checker1")
    fn = child.resources("AWS::Serverless::Function")["Checker"]["Properties"]
    timeout = float(fn["Timeout"])
    period = 60.0
    assert fn["Events"]["EveryMinute"]["Properties"]["Schedule"] == "rate(1 minute)"
    shutdown_reserve = 1.0
    # The overlap (window - period) only absorbs a late start: EventBridge delay + a cold start.
    window = timeout - float(st.params["RequestTimeout"]) - shutdown_reserve
    assert 2.0 <= window - period <= 5.0, window  # defaults: 65 - 0.6 - 1 - 60 = 3.4 s
    # The least the parameters allow still probes for longer than the period.
    least = (float(st.template["Parameters"]["CheckerTimeoutSeconds"]["MinValue"])
             - float(st.template["Parameters"]["RequestTimeout"]["MaxValue"]) - shutdown_reserve)
    assert least > period, least
    assert -(-window // period) == int(fn["ReservedConcurrentExecutions"]) == 2
    # Throttled events are retried by Lambda until the event age; failed runs are not re-run.
    assert fn["EventInvokeConfig"] == {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}
    # EventBridge retries a failed delivery, bounded by the same 60 s age.
    policy = fn["Events"]["EveryMinute"]["Properties"]["RetryPolicy"]
    assert policy["MaximumEventAgeInSeconds"] == 60 and policy["MaximumRetryAttempts"] > 0


@pytest.mark.parametrize("value,ok", [("0", True), ("1", False), ("2", True), ("3", True), ("10", True),
                                      ("1000", True), ("-1", False), ("01", False), ("", False)])
def test_reserved_concurrency_one_is_refused(value, ok):
    for path in (INFRA / "template.yaml", INFRA / "checker.yaml"):
        spec = Stack(path, {"VpcId": "vpc-1", "PrivateSubnetIds": SUBNETS[:2], "AvailabilityZones": AZS[:2],
                            **CHILD_PARAMS}).template["Parameters"]
        key = "CheckerReservedConcurrency" if path.name == "template.yaml" else "ReservedConcurrency"
        assert bool(re.fullmatch(spec[key]["AllowedPattern"], value)) is ok, (path.name, value)


def test_rules_refuse_a_subnet_of_another_vpc_and_an_endpoint_without_the_vpc_cidr():
    vpc_of = {"subnet-0a1": "vpc-0123", "subnet-0b2": "vpc-0123", "subnet-0c3": "vpc-other"}

    def lookup(param_type, attribute, values):
        assert (param_type, attribute) == ("AWS::EC2::Subnet::Id", "VpcId")
        return [vpc_of[v] for v in values]

    assert stack(2, VpcCidr="10.0.0.0/16").failed_rules(lookup) == []
    wrong = Stack(INFRA / "template.yaml", {"VpcId": "vpc-0123", "PrivateSubnetIds": ["subnet-0a1", "subnet-0c3"],
                                            "AvailabilityZones": AZS[:2], "VpcCidr": "10.0.0.0/16"})
    assert wrong.failed_rules(lookup) == ["Every subnet of PrivateSubnetIds must be in VpcId."]
    (missing,) = stack(2).failed_rules(lookup)
    assert missing.startswith("VpcCidr is required")
    assert stack(2, CreateStepFunctionsEndpoint="false").failed_rules(lookup) == []


def test_reserved_concurrency_can_be_left_unreserved():
    fn = stack(2, CheckerReservedConcurrency="0").child("Checker1") \
        .resources("AWS::Serverless::Function")["Checker"]["Properties"]
    assert "ReservedConcurrentExecutions" not in fn


def test_checker_may_only_start_the_failover():
    st = stack(2)
    failover_arn = st.ref("FailoverStateMachine")
    fn = st.child("Checker1").resources("AWS::Serverless::Function")["Checker"]["Properties"]
    statements = [s for p in fn["Policies"] for s in p["Statement"]]
    # ...and describe the Failover's own executions (an existing name: this incident's or an earlier one's?)
    executions = failover_arn.replace(":stateMachine:", ":execution:") + ":*"
    assert statements == [{"Sid": "StartFailoverOnly", "Effect": "Allow", "Action": "states:StartExecution",
                           "Resource": failover_arn},
                          {"Sid": "DescribeFailoverExecutions", "Effect": "Allow", "Action": "states:DescribeExecution",
                           "Resource": executions}]


def test_state_machines_replace_routes_only_in_managed_tables():
    st = stack(3)
    doc = st.resources("AWS::IAM::ManagedPolicy")["RouteSwitchPolicy"]["Properties"]["PolicyDocument"]
    mutating = [s for s in doc["Statement"] if any(not a.startswith(("ec2:Describe", "logs:", "xray:"))
                                                   for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))]
    assert len(mutating) == 1
    stmt = mutating[0]
    assert stmt["Action"] == "ec2:ReplaceRoute"
    assert stmt["Resource"] == "arn:aws:ec2:us-east-1:123456789012:route-table/*"
    assert stmt["Condition"]["StringEquals"]["ec2:ResourceTag/nat-watchdog:az"] == AZS[:3]
    assert stmt["Condition"]["StringEquals"]["ec2:Vpc"].endswith(":vpc/vpc-0123")
    for sm in st.resources("AWS::Serverless::StateMachine").values():
        assert sm["Properties"]["Policies"] == [st.ref("RouteSwitchPolicy")]


def test_asl_placeholders_are_the_definition_substitutions():
    st = stack(2, FallbackNatGatewayId="nat-0fallback")
    for logical, sm in st.resources("AWS::Serverless::StateMachine").items():
        props = sm["Properties"]
        asl = (INFRA / props["DefinitionUri"]).read_text()
        assert (INFRA / props["DefinitionUri"]).parent == STATEMACHINES_DIR
        placeholders = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", asl))
        assert placeholders == set(props.get("DefinitionSubstitutions", {})), logical
        resources = set(re.findall(r'"Resource": "([^"]+)"', asl))
        assert resources and all(r.startswith("arn:aws:states:::aws-sdk:ec2:") for r in resources), resources


def test_step_functions_endpoint_is_optional():
    with_ep = stack(2).resources()
    assert with_ep["StepFunctionsEndpoint"]["Properties"]["PrivateDnsEnabled"] is True
    assert with_ep["StepFunctionsEndpoint"]["Properties"]["ServiceName"] == "com.amazonaws.us-east-1.states"
    ingress = with_ep["EndpointSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert [(r["FromPort"], r.get("SourceSecurityGroupId")) for r in ingress] == [(443, st_sg())]
    without = stack(2, CreateStepFunctionsEndpoint="false").resources()
    assert "StepFunctionsEndpoint" not in without and "EndpointSecurityGroup" not in without
    assert "CheckerSecurityGroup" in without


def st_sg() -> str:
    return stack(2).ref("CheckerSecurityGroup")


def test_checker_security_group_has_no_ingress():
    sg = stack(2).resources()["CheckerSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in sg
    assert {r["FromPort"] for r in sg["SecurityGroupEgress"]} == {80, 443}


@pytest.mark.parametrize("n", [2, 3, 6])
def test_dashboard_body_is_accepted_by_put_dashboard(moto, n):
    st = stack(n)
    props = st.resources("AWS::CloudWatch::Dashboard")["Dashboard"]["Properties"]
    body = props["DashboardBody"]
    widgets = json.loads(body)["widgets"]
    assert len(widgets) == 3 + 6 + 5 * n
    titles = [w["properties"].get("title", "") for w in widgets]
    # The "Egress per AZ" row: one SEARCH over [AvailabilityZone] per widget, of metrics that the state
    # machines publish or read (recovery: OnGateway, GatewaySeconds, AutoFallbackSuspended and the
    # checkers' NatPathUnhealthy; housekeeping: Paused), in the stack's namespace.
    asl = "".join(p.read_text() for p in STATEMACHINES_DIR.glob("*.asl.json"))
    searched = []
    for w in widgets[4:9]:
        [[query]] = w["properties"]["metrics"]
        m = re.fullmatch(r"""SEARCH\('\{"(.+)",AvailabilityZone\} MetricName="([A-Za-z]+)"', 'Maximum', (60|300)\)""",
                         query["expression"])
        assert m and m.group(1) == st.params["MetricsNamespace"], query
        assert f'"MetricName": "{m.group(2)}"' in asl, m.group(2)
        searched.append(m.group(2))
    assert searched == ["OnGateway", "GatewaySeconds", "NatPathUnhealthy", "AutoFallbackSuspended", "Paused"]
    assert sum(w["width"] for w in widgets[4:9]) == 24
    for az in AZS[:n]:
        for what in ("probe success %", "probe latency (ms)", "failures by cause", "verdict and failovers"):
            assert f"{az} {what}" in titles
    namespace = st.params["MetricsNamespace"]
    used = {m[1] for w in widgets if w["type"] == "metric" for m in w["properties"]["metrics"]
            if isinstance(m[0], str) and m[0] == namespace}
    assert used <= contract_metric_names(), used - contract_metric_names()
    assert not used & {"Heartbeat", "ProbeSuccess"}, "retired metrics"
    # Each AZ's row shows its NAT-instance path beside the default path's verdict.
    for az in AZS[:n]:
        verdict = next(w for w in widgets if w["properties"].get("title") == f"{az} verdict and failovers")
        lines = {(m[1], m[-1].get("stat")) for m in verdict["properties"]["metrics"] if isinstance(m[0], str)}
        assert {("Unhealthy", "Maximum"), ("NatPathUnhealthy", "Maximum"), ("Unhealthy", "SampleCount")} <= lines, lines
    for w in widgets:
        if w["type"] == "metric":
            for m in w["properties"]["metrics"]:
                if m[0] == "AWS/States":
                    assert m[3] in (st.ref("FailoverStateMachine"), st.ref("FallbackStateMachine"))

    cw = moto.session().client("cloudwatch")
    answer = cw.put_dashboard(DashboardName=props["DashboardName"], DashboardBody=body)
    assert answer.get("DashboardValidationMessages", []) == []
    assert json.loads(cw.get_dashboard(DashboardName=props["DashboardName"])["DashboardBody"]) == json.loads(body)


def test_alarms_cover_the_runbook_and_are_accepted_by_put_metric_alarm(moto):
    st = stack(3, AlarmTopicArn="arn:aws:sns:us-east-1:123456789012:oncall")
    all_alarms = alarms(st)
    kinds = {name.split(".")[-1] for name in all_alarms}
    assert kinds == {"ConnectivityDegradedAlarm", "FailoverTriggeredAlarm", "FailoverTriggerFailedAlarm",
                     "CheckerSilentAlarm", "CheckerErrorsAlarm", "CheckerThrottlesAlarm",
                     "FailoverExecutionFailedAlarm", "FallbackExecutionFailedAlarm"}
    assert len(all_alarms) == 2 + 6 * 3
    names = contract_metric_names()
    cw = moto.session().client("cloudwatch")
    for logical, props in all_alarms.items():
        assert len(props["AlarmDescription"]) <= 1024, logical
        assert re.search(r"[Ff]irst check|Act now", props["AlarmDescription"]), logical
        anchor = props["AlarmName"].removeprefix(f"{st.name}-")
        anchor = next((anchor.removeprefix(f"{az}-") for az in AZS if anchor.startswith(f"{az}-")), anchor)
        assert props["AlarmDescription"].endswith(f"Runbook: docs/RUNBOOK.md#{anchor}"), logical
        assert props["AlarmActions"] == ["arn:aws:sns:us-east-1:123456789012:oncall"], logical
        for metric in [props] + [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]:
            if metric.get("Namespace") == st.params["MetricsNamespace"]:
                assert metric["MetricName"] in names, (logical, metric["MetricName"])
        cw.put_metric_alarm(**props)
    described = cw.describe_alarms(AlarmNamePrefix=st.name)["MetricAlarms"]
    assert {a["AlarmName"] for a in described} == {p["AlarmName"] for p in all_alarms.values()}

    by_kind = {name.split(".")[-1]: props for name, props in all_alarms.items() if name.startswith("Checker1.")}
    degraded = by_kind["ConnectivityDegradedAlarm"]
    assert (degraded["DatapointsToAlarm"], degraded["EvaluationPeriods"]) == (1, 2)
    # Standard resolution: no alarm period below 60 s (a high-resolution alarm costs 3x).
    for logical, props in all_alarms.items():
        periods = [props.get("Period")] + [m["MetricStat"]["Period"] for m in props.get("Metrics", []) if "MetricStat" in m]
        assert all(p is None or p >= 60 for p in periods), logical
    # Counts are written only when non-zero: every health count in metric math is FILLed.
    assert "FILL(fail, 0)" in degraded["Metrics"][0]["Expression"] and "FILL(ok, 0)" in degraded["Metrics"][0]["Expression"]
    # The successful probes are the SampleCount of ProbeLatency (one value per successful probe).
    ok = next(m["MetricStat"] for m in degraded["Metrics"] if m["Id"] == "ok")
    assert (ok["Metric"]["MetricName"], ok["Stat"]) == ("ProbeLatency", "SampleCount")
    fail = next(m["MetricStat"] for m in degraded["Metrics"] if m["Id"] == "fail")
    assert (fail["Metric"]["MetricName"], fail["Stat"]) == ("ProbeFailure", "Sum")
    # Liveness is the SampleCount of Unhealthy (one value per round); no data at all is breaching.
    silent = by_kind["CheckerSilentAlarm"]
    assert (silent["MetricName"], silent["Statistic"]) == ("Unhealthy", "SampleCount")
    assert silent["TreatMissingData"] == "breaching"
    retired = {"Heartbeat", "ProbeSuccess"}
    for logical, props in all_alarms.items():
        for metric in [props] + [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]:
            assert metric.get("MetricName") not in retired, logical


def test_alarms_without_topic_have_no_actions():
    for logical, props in alarms(stack(2)).items():
        assert "AlarmActions" not in props and "OKActions" not in props, logical


def test_every_checkov_skip_is_justified():
    for path in (INFRA / "template.yaml", INFRA / "checker.yaml"):
        st = Stack(path, {"VpcId": "vpc-1", "PrivateSubnetIds": SUBNETS[:2], "AvailabilityZones": AZS[:2],
                          **({} if path.name == "template.yaml" else CHILD_PARAMS)})
        for logical, res in st.template["Resources"].items():
            for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert len(skip.get("comment", "")) > 40, (path.name, logical, skip)


def test_state_machine_policy_allows_exactly_the_ec2_calls_the_asl_makes():
    st = stack(2)
    doc = st.resources("AWS::IAM::ManagedPolicy")["RouteSwitchPolicy"]["Properties"]["PolicyDocument"]
    granted = {a for s in doc["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
               if a.startswith("ec2:")}
    used = set()
    for sm in st.resources("AWS::Serverless::StateMachine").values():
        asl = (INFRA / sm["Properties"]["DefinitionUri"]).read_text()
        used |= {"ec2:" + api[0].upper() + api[1:] for api in re.findall(r'"arn:aws:states:::aws-sdk:ec2:([A-Za-z]+)"', asl)}
    assert used == granted


def test_health_metrics_are_queried_by_availability_zone_alone():
    st = stack(3)
    namespace = st.params["MetricsNamespace"]
    for logical, props in alarms(st).items():
        for metric in [props] + [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]:
            if metric.get("Namespace") == namespace:
                assert [d["Name"] for d in metric["Dimensions"]] == ["AvailabilityZone"], logical
    widgets = json.loads(st.resources("AWS::CloudWatch::Dashboard")["Dashboard"]["Properties"]["DashboardBody"])["widgets"]
    for w in widgets:
        for m in w.get("properties", {}).get("metrics", []):
            if m and m[0] == namespace:
                assert m[2] == "AvailabilityZone" and not isinstance(m[4], str), m
        for m in w.get("properties", {}).get("metrics", []):
            # Health counts are written only when non-zero: math over them FILLs. A SEARCH of the
            # state machines' gauges does not (missing = no watch running, not 0).
            if m and isinstance(m[0], dict) and "expression" in m[0] and not m[0]["expression"].startswith("SEARCH("):
                assert "FILL(" in m[0]["expression"], m


def test_every_alarm_has_a_runbook_section():
    runbook = ROOT / "docs" / "RUNBOOK.md"
    if not runbook.is_file():
        pytest.skip("docs/RUNBOOK.md is not on this branch (written elsewhere); anchors checked by the description test")
    headings = set(re.findall(r"^## (.+)$", runbook.read_text(), flags=re.M))
    for props in alarms(stack(3)).values():
        assert props["AlarmDescription"].rsplit("#", 1)[1] in headings, props["AlarmName"]


def test_endpoint_admits_the_vpc_and_log_groups_are_retained():
    res = stack(2, VpcCidr="10.0.0.0/16", EndpointExtraIngressCidr="10.1.0.0/16").resources()
    assert res["EndpointVpcIngress"]["Properties"]["CidrIp"] == "10.0.0.0/16"
    assert res["EndpointVpcIngress"]["Properties"]["FromPort"] == 443
    assert res["EndpointExtraIngress"]["Properties"]["CidrIp"] == "10.1.0.0/16"
    without = stack(2, CreateStepFunctionsEndpoint="false", VpcCidr="10.0.0.0/16").resources()
    assert "EndpointVpcIngress" not in without
    for path in (INFRA / "template.yaml", INFRA / "checker.yaml"):
        template = Stack(path, {"VpcId": "vpc-1", "PrivateSubnetIds": SUBNETS[:2], "AvailabilityZones": AZS[:2],
                                **CHILD_PARAMS}).template
        for logical, res in template["Resources"].items():
            if res["Type"] == "AWS::Logs::LogGroup":
                assert (res.get("DeletionPolicy"), res.get("UpdateReplacePolicy")) == ("Retain", "Retain"), logical
