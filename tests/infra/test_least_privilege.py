"""IAM least privilege as a sweep over everything both templates create (infra/template.yaml and every
nested infra/checker.yaml): the exact statements are pinned in test_template.py; this catches what
those pins cannot see - a new role, policy or inline grant anywhere, wildcards, Not* elements,
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
}
# Who may hold permissions at all.
GRANTEES = {"Checker", "FailoverStateMachine", "FallbackStateMachine"}


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
