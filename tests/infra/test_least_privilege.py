"""IAM least privilege as a sweep over everything the templates create (infra/template.yaml and every
nested infra/checker.yaml, recovery.yaml, housekeeping.yaml): the exact statements are pinned in
test_template.py and the nested templates' own tests; this catches what those pins cannot see - a new role, policy or inline grant anywhere, wildcards, Not* elements,
AWS-managed policies, and "*" resources on anything but the few actions that allow nothing else."""

from __future__ import annotations

from template_eval import INFRA, Stack

PARAMS = {"VpcId": "vpc-0123", "PrivateSubnetIds": ["subnet-0a1", "subnet-0b2"], "AvailabilityZones": ["us-east-1a", "us-east-1b"]}

# Actions with no resource-level permissions (or vended-logs APIs that require "*"): the only ones
# allowed on Resource "*".
STAR_RESOURCE_OK = {
    "ec2:DescribeRouteTables", "ec2:DescribeNatGateways", "ec2:DescribeNetworkInterfaces", "ec2:DescribeInstances",
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    # The recovery and the housekeeping (nested, on by default): reads without resource-level
    # permissions, and PutMetricData, which has none either but is narrowed by its namespace (below).
    "ec2:DescribeTags", "ec2:DescribeInstanceStatus", "autoscaling:DescribeAutoScalingGroups",
    "cloudwatch:GetMetricData", "cloudwatch:PutMetricData",
}
# Who may hold permissions at all.
GRANTEES = {"Checker", "FailoverStateMachine", "FallbackStateMachine", "RecoveryStateMachine", "HousekeepingStateMachine"}


def stacks() -> list[Stack]:
    root = Stack(INFRA / "template.yaml", PARAMS)
    return [root, *root.created_children()]


def as_list(x) -> list:
    return x if isinstance(x, list) else [x]


def statements() -> list[tuple[str, dict]]:
    out = []
    for st in stacks():
        for logical, res in st.resources().items():
            props = res["Properties"]
            docs = []
            if res["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
                docs.append(props["PolicyDocument"])
            if res["Type"] == "AWS::IAM::Role":
                docs += [p["PolicyDocument"] for p in props.get("Policies", [])]
            for p in as_list(props.get("Policies", [])):
                if isinstance(p, dict) and "Statement" in p:
                    docs.append(p)
            out += [(logical, s) for d in docs for s in as_list(d["Statement"])]
    return out


def test_only_the_checker_and_the_state_machines_hold_permissions():
    for st in stacks():
        for logical, res in st.resources().items():
            assert res["Type"] not in ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group", "AWS::IAM::Policy"), logical
            if "Policies" in res["Properties"] and res["Type"] != "AWS::IAM::Role":
                assert logical in GRANTEES, f"{logical} ({res['Type']}) grants permissions"
            assert "Role" not in res["Properties"] or res["Type"] != "AWS::Serverless::Function", \
                f"{logical}: a hand-made role escapes these checks"


def test_no_wildcard_actions_no_not_elements_no_aws_managed_policies():
    found = statements()
    assert len(found) >= 5, "the sweep must see the checker's and the state machines' statements"
    for logical, s in found:
        assert s["Effect"] == "Allow", (logical, s)
        assert not {"NotAction", "NotResource", "NotPrincipal"} & s.keys(), (logical, s)
        for action in as_list(s["Action"]):
            assert "*" not in action, f"{logical}: wildcard action {action}"
    for st in stacks():
        for logical, res in st.resources().items():
            for p in as_list(res["Properties"].get("Policies", [])):
                assert not (isinstance(p, str) and ":iam::aws:policy/" in p), f"{logical}: AWS-managed policy {p}"
                assert not isinstance(p, dict) or "Statement" in p, f"{logical}: SAM policy template {p}"


def test_star_resources_only_where_aws_allows_nothing_narrower():
    for logical, s in statements():
        if "*" in as_list(s["Resource"]):
            extra = set(as_list(s["Action"])) - STAR_RESOURCE_OK
            assert not extra, f"{logical}: {sorted(extra)} on Resource '*'"
            if "cloudwatch:PutMetricData" in as_list(s["Action"]):
                assert list(s["Condition"]["StringEquals"]) == ["cloudwatch:namespace"], (logical, s)


# ------------------------------------------------------------------------------------------------
# The whole deployment with the managed NAT layer (nat.yaml, one nat-az.yaml per AZ) and the NAT
# workflows (nat-workflows.yaml, also with its image pipeline): every role and inline grant there.

MANAGED_PARAMS = {**PARAMS, "PublicSubnetIds": ["subnet-1a1", "subnet-1b2"], "VpcCidr": "10.0.0.0/16"}
WORKFLOWS_WITH_PIPELINE = {
    "DeploymentName": "nat-watchdog",
    "FailoverStateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:nat-watchdog-failover",
    "FallbackStateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:nat-watchdog-fallback",
    "StateMachineLogGroupArn": "arn:aws:logs:us-east-1:123456789012:log-group:x:*",
    "ImagePipeline": "true", "ImagePipelineSubnetId": "subnet-0abc", "ImagePipelineSecurityGroupId": "sg-0abc",
    "NatScriptS3Uri": "s3://my-bucket/nat/configure-nat.sh"}

# Resource "*" only for these, each for the reason given (the AWS Service Authorization Reference
# lists no resource type for them, or the API requires "*").
STAR_RESOURCE_WHY = {
    **{a: "EC2 Describe* actions have no resource-level permissions" for a in (
        "ec2:DescribeRouteTables", "ec2:DescribeTags", "ec2:DescribeNatGateways", "ec2:DescribeInstances",
        "ec2:DescribeInstanceStatus", "ec2:DescribeNetworkInterfaces", "ec2:DescribeLaunchTemplateVersions")},
    "autoscaling:DescribeAutoScalingGroups": "Auto Scaling Describe* actions have no resource-level permissions",
    "cloudwatch:GetMetricData": "GetMetricData has no resource-level permissions",
    "cloudwatch:PutMetricData": "PutMetricData has no resource-level permissions; narrowed by cloudwatch:namespace",
    **{a: "CloudWatch Logs vended delivery (Step Functions logging) requires Resource \"*\"" for a in (
        "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups")},
    **{a: "X-Ray tracing actions have no resource-level permissions" for a in (
        "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets")},
    # The image pipeline's build instance (option): the SSM agent's channel.
    "ssm:UpdateInstanceInformation": "the SSM agent registers the build instance, whose id the template cannot know",
    **{a: "the SSM agent's messaging APIs have no resource-level permissions" for a in (
        "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel", "ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage",
        "ec2messages:FailMessage", "ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply")},
}
# Everyone who holds permissions in the full deployment, and the service each role is for.
FULL_GRANTEES = {"Checker": None, "RouteSwitchPolicy": None, "FailoverStateMachine": None, "FallbackStateMachine": None,
                 "LifecycleStateMachine": None, "ReplaceStateMachine": None, "MaintenanceStateMachine": None,
                 "InterruptionStateMachine": None, "RecoveryStateMachine": None, "HousekeepingStateMachine": None,
                 "NatInstanceRole": "ec2", "DeletionGuardRole": "lambda",
                 "ImageBuilderInstanceRole": "ec2"}
# Actions that change something and may name a wildcard ARN (".../*") only under a Condition that
# narrows them to this deployment (tags, the launch template, the service a role is passed to).
SCOPED_BY_CONDITION = {
    "autoscaling:CompleteLifecycleAction", "autoscaling:TerminateInstanceInAutoScalingGroup",
    "autoscaling:UpdateAutoScalingGroup", "ec2:CreateTags", "ec2:CreateLaunchTemplateVersion",
    "ec2:ModifyLaunchTemplate", "ec2:RunInstances", "ec2:AttachNetworkInterface", "ec2:ReplaceRoute",
    "ec2:CreateRoute", "autoscaling:SetInstanceHealth", "iam:PassRole"}


def all_stacks(stack: Stack) -> list[Stack]:
    out = [stack]
    for child in stack.created_children():
        out += all_stacks(child)
    return out


def full_deployment() -> list[Stack]:
    return [*all_stacks(Stack(INFRA / "template.yaml", MANAGED_PARAMS)),
            Stack(INFRA / "nat-workflows.yaml", WORKFLOWS_WITH_PIPELINE, name="nat-watchdog-NatWorkflows-XYZ")]


def grants(stacks: list[Stack]) -> list[tuple[str, str, dict]]:
    """(template file, logical id, statement) of every inline grant and every role's policies."""
    out = []
    for st in stacks:
        for logical, res in st.resources().items():
            props = res["Properties"]
            docs = [p["PolicyDocument"] for p in props.get("Policies", [])
                    if res["Type"] == "AWS::IAM::Role"]
            docs += [p for p in as_list(props.get("Policies", [])) if isinstance(p, dict) and "Statement" in p]
            if res["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
                docs.append(props["PolicyDocument"])
            out += [(st.path.name, logical, s) for d in docs for s in as_list(d["Statement"])]
    return out


def test_the_sweep_reaches_every_role_of_the_nat_layer_and_the_nat_workflows():
    stacks = full_deployment()
    assert {st.path.name for st in stacks} >= {"template.yaml", "checker.yaml", "nat.yaml", "nat-az.yaml",
                                               "nat-workflows.yaml", "recovery.yaml", "housekeeping.yaml"}
    holders = {}
    for st in stacks:
        for logical, res in st.resources().items():
            if res["Type"] in ("AWS::IAM::User", "AWS::IAM::Group", "AWS::IAM::Policy"):
                raise AssertionError(f"{st.path.name}:{logical} ({res['Type']}) is not expected")
            if res["Type"] in ("AWS::IAM::Role", "AWS::IAM::ManagedPolicy") or "Policies" in res["Properties"]:
                holders[logical] = res
    assert set(holders) == set(FULL_GRANTEES), sorted(set(holders) ^ set(FULL_GRANTEES))
    for logical, service in FULL_GRANTEES.items():
        if service is None:
            continue
        trust = holders[logical]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert len(trust) == 1 and trust[0]["Action"] == "sts:AssumeRole", logical
        assert trust[0]["Principal"]["Service"].startswith(f"{service}."), (logical, trust)
    # Failover and Fallback hold exactly the stack's RouteSwitchPolicy (swept as RouteSwitchPolicy).
    for logical in ("FailoverStateMachine", "FallbackStateMachine"):
        assert [p.rsplit("/", 1)[1] for p in holders[logical]["Properties"]["Policies"]] == ["nat-watchdog-RouteSwitchPolicy"]
    assert {logical for _, logical, _ in grants(stacks)} == set(FULL_GRANTEES) - {"FailoverStateMachine", "FallbackStateMachine"}


def test_the_nat_layer_and_workflows_grant_no_wildcard_action_and_star_only_where_nothing_narrower_exists():
    for path, logical, s in grants(full_deployment()):
        where = f"{path}:{logical} {s.get('Sid', '')}"
        assert s["Effect"] == "Allow", where
        assert not {"NotAction", "NotResource", "NotPrincipal"} & s.keys(), where
        actions = set(as_list(s["Action"]))
        assert not any("*" in a for a in actions), where
        resources = as_list(s["Resource"])
        if "*" in resources:
            assert resources == ["*"], f"{where}: '*' mixed with ARNs"
            assert actions <= set(STAR_RESOURCE_WHY), f"{where}: {sorted(actions - set(STAR_RESOURCE_WHY))} on '*'"
        for action in actions & SCOPED_BY_CONDITION:
            if any(r.endswith("*") for r in resources):
                assert s.get("Condition"), f"{where}: {action} on {resources} without a Condition"
        if "cloudwatch:PutMetricData" in actions:
            assert s["Condition"] == {"StringEquals": {"cloudwatch:namespace": "NatEgressWatchdog"}}, where
        if "iam:PassRole" in actions:
            assert s["Condition"]["StringEquals"]["iam:PassedToService"].startswith("ec2."), where
            assert all(":role/nat-watchdog/nat-watchdog/" in r for r in resources), where
