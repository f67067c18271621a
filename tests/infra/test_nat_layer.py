"""The managed NAT layer (infra/nat.yaml, infra/nat-az.yaml, infra/nat-instance/): the templates
evaluated offline (template_eval), the per-AZ resources created in moto from those evaluated
properties, a replacement in moto (terminate -> a new instance, routes untouched), the instance
role's reach, the boot script against fake AWS/IMDS commands, the embedded user data against its
source files, and the deletion guard's code against moto.

moto's CloudFormation creates nat-az.yaml as it is (one test below) but drops properties that
matter here (ENI tags and SourceDestCheck, the EIP association to an ENI, the lifecycle hooks), and
does not expand the SAM nested applications of nat.yaml. So the templates are evaluated as
CloudFormation would (tests/infra/template_eval.py) and each resource is created through the
matching EC2 / Auto Scaling / IAM API call. moto gaps met on the way (emulated here, never asserted):
LifecycleHookSpecificationList of CreateAutoScalingGroup is ignored (the hook is put with
PutLifecycleHook); a terminated instance keeps its secondary ENI attached (AWS detaches it; the test
detaches it); instances do not take MetadataOptions from the launch template (IMDSv2 is asserted on
the launch template).
"""

from __future__ import annotations

import base64
import fnmatch
import gzip
import json
import os
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest

from moto_env import build_vpc, default_route_targets
from template_eval import INFRA, Stack, load

sys.path.insert(0, str(INFRA / "nat-instance"))
import render_userdata  # noqa: E402

ROOT = INFRA.parent
NAT_INSTANCE = INFRA / "nat-instance"
PRIVATE = ["subnet-0a1", "subnet-0b2", "subnet-0c3", "subnet-0d4", "subnet-0e5", "subnet-0f6"]
PUBLIC = ["subnet-1a1", "subnet-1b2", "subnet-1c3", "subnet-1d4", "subnet-1e5", "subnet-1f6"]
AZS = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1e", "us-east-1f"]
DEPLOYMENT = "nat-watchdog"
ACCOUNT = "123456789012"
TAG_ENI_FOR = "nat-watchdog:nat-eni-for"
TAG_INSTANCE_FOR = "nat-watchdog:nat-instance-for"
TAG_DEPLOYMENT = "nat-watchdog:deployment"
TAG_STANDBY_FOR = "nat-watchdog:standby-for"


def parent(n: int, managed: bool = True, **extra) -> Stack:
    params = {"VpcId": "vpc-0123", "PrivateSubnetIds": PRIVATE[:n], "AvailabilityZones": AZS[:n], **extra}
    if managed:
        params.setdefault("PublicSubnetIds", PUBLIC[:n])
        params.setdefault("VpcCidr", "10.0.0.0/16")
    return Stack(INFRA / "template.yaml", params, name=DEPLOYMENT)


def nat_stack(n: int = 3, **extra) -> Stack:
    return parent(n, **extra).child("NatLayer")


def az_stacks(nat: Stack) -> list[Stack]:
    return nat.created_children()


def statements(role: dict) -> list[dict]:
    return [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


# ------------------------------------------------------------------------------------------------
# Mode switch: what an existing stack gets, what a new one gets


def test_an_existing_stack_updated_without_public_subnets_gets_no_nat_layer_and_nothing_else_changes():
    before = parent(3, managed=False)
    assert not before.condition("CreateNatLayer")
    assert "NatLayer" not in before.resources()
    created = {k: v["Type"] for k, v in before.resources().items()}
    assert not any(t.startswith(("AWS::EC2::NetworkInterface", "AWS::AutoScaling", "AWS::EC2::NatGateway"))
                   for t in created.values())
    # The new parameters all have defaults: an update that does not mention them is valid.
    for name in ("PublicSubnetIds", "VpcCidr", "NatInstanceType", "NatUseSpot", "NatElasticIp", "StandbyMode"):
        assert "Default" in before.template["Parameters"][name], name
    assert before.params["PublicSubnetIds"] == [""]


def test_a_new_deployment_with_public_subnets_gets_one_nat_stack_per_az():
    for n in (2, 3, 6):
        top = parent(n)
        assert top.condition("CreateNatLayer")
        nat = top.child("NatLayer")
        assert nat.params["DeploymentName"] == DEPLOYMENT
        children = az_stacks(nat)
        assert [c.params["AvailabilityZone"] for c in children] == AZS[:n]
        assert [c.params["PublicSubnetId"] for c in children] == PUBLIC[:n]


def test_the_nat_layer_never_creates_or_changes_a_route():
    for path in ("nat.yaml", "nat-az.yaml"):
        template = load(INFRA / path)
        kinds = {r["Type"] for r in template["Resources"].values()}
        assert not kinds & {"AWS::EC2::Route", "AWS::EC2::RouteTable", "AWS::EC2::SubnetRouteTableAssociation",
                            "AWS::EC2::Instance"}, path
    for az in az_stacks(nat_stack(2)):
        for stmt in statements(az.resources()["NatInstanceRole"]):
            actions = [stmt["Action"]] if isinstance(stmt["Action"], str) else stmt["Action"]
            assert not any("Route" in a for a in actions), stmt


def test_no_update_policy_replaces_running_instances():
    group = load(INFRA / "nat-az.yaml")["Resources"]["NatGroup"]
    assert "UpdatePolicy" not in group and "CreationPolicy" not in group


# ------------------------------------------------------------------------------------------------
# Per-AZ resources, offline


def test_per_az_resources_are_tagged_by_the_contract():
    nat = nat_stack(3)
    for az_name, az in zip(AZS, az_stacks(nat)):
        res = az.resources()
        eni = res["NatEni"]["Properties"]
        tags = {t["Key"]: t["Value"] for t in eni["Tags"]}
        assert tags[TAG_ENI_FOR] == az_name and tags[TAG_DEPLOYMENT] == DEPLOYMENT
        assert eni["SourceDestCheck"] is False
        group = res["NatGroup"]["Properties"]
        assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == ("1", "1", "1")
        assert group["AutoScalingGroupName"] == f"{DEPLOYMENT}-nat-{az_name}"  # the workflows' name prefix
        assert group["VPCZoneIdentifier"] == [az.params["PublicSubnetId"]]
        gtags = {t["Key"]: (t["Value"], t["PropagateAtLaunch"]) for t in group["Tags"]}
        assert gtags[TAG_INSTANCE_FOR] == (az_name, True) and gtags[TAG_DEPLOYMENT] == (DEPLOYMENT, True)
        [hook] = group["LifecycleHookSpecificationList"]
        assert hook["LifecycleHookName"] == "nat-watchdog-terminate"
        assert hook["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
        assert hook["DefaultResult"] == "CONTINUE"
        lt_tags = {t["Key"]: t["Value"] for t in res["NatLaunchTemplate"]["Properties"]["TagSpecifications"][0]["Tags"]}
        assert lt_tags[TAG_DEPLOYMENT] == DEPLOYMENT


def test_launch_template_is_arm64_al2023_from_ssm_imdsv2_only():
    nat = nat_stack(2)
    image = nat.template["Parameters"]["ImageId"]
    assert image["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert image["Default"] == "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
    az = az_stacks(nat)[0]
    assert az.params["InstanceType"] == "t4g.nano" and az.params["ImageId"] == image["Default"]
    data = az.resources()["NatLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"] == {"HttpEndpoint": "enabled", "HttpTokens": "required", "HttpPutResponseHopLimit": 1}
    assert "InstanceMarketOptions" not in data
    assert data["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
    pattern = re.compile(az.template["Parameters"]["InstanceType"]["AllowedPattern"])
    for ok in ("t4g.nano", "t4g.micro", "c7gn.medium", "c6g.large", "m7g.xlarge"):
        assert pattern.match(ok), ok
    for x86 in ("t3.nano", "t3a.micro", "c5n.large", "m7i.large"):
        assert not pattern.match(x86), x86


def test_spot_is_optional():
    data = az_stacks(nat_stack(2, NatUseSpot="true"))[0].resources()["NatLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["InstanceMarketOptions"]["MarketType"] == "spot"
    assert data["InstanceMarketOptions"]["SpotOptions"]["InstanceInterruptionBehavior"] == "terminate"


def test_elastic_ip_is_optional_and_decides_the_egress_interface():
    with_eip = az_stacks(nat_stack(2))[0]
    assert {"NatEip", "NatEipAssociation"} <= set(with_eip.resources())
    assert "NAT_EGRESS=eni" in rendered_user_data(with_eip)
    without = az_stacks(nat_stack(2, NatElasticIp="false"))[0]
    assert not {"NatEip", "NatEipAssociation"} & set(without.resources())
    assert "NAT_EGRESS=primary" in rendered_user_data(without)


@pytest.mark.parametrize("mode", ["per-az", "shared", "none"])
def test_standby_mode_creates_the_gateways_the_contract_names(mode):
    nat = nat_stack(3, StandbyMode=mode)
    shared = nat.resources("AWS::EC2::NatGateway")
    per_az = {az.params["AvailabilityZone"]: az.resources("AWS::EC2::NatGateway") for az in az_stacks(nat)}
    if mode == "per-az":
        assert not shared
        for az_name, gws in per_az.items():
            [gw] = gws.values()
            tags = {t["Key"]: t["Value"] for t in gw["Properties"]["Tags"]}
            assert tags[TAG_STANDBY_FOR] == az_name and tags[TAG_DEPLOYMENT] == DEPLOYMENT
    elif mode == "shared":
        assert not any(per_az.values())
        [gw] = shared.values()
        tags = {t["Key"]: t["Value"] for t in gw["Properties"]["Tags"]}
        assert tags[TAG_STANDBY_FOR] == "shared" and gw["Properties"]["SubnetId"] == PUBLIC[0]
    else:
        assert not shared and not any(per_az.values())
        assert not nat.resources("AWS::EC2::EIP") and not any(az.resources("AWS::EC2::EIP").get("StandbyEip")
                                                              for az in az_stacks(nat))


def test_security_group_admits_only_the_vpc():
    sg = nat_stack(2).resources("AWS::EC2::SecurityGroup")["NatSecurityGroup"]["Properties"]
    assert sg["SecurityGroupIngress"] == [{"Description": sg["SecurityGroupIngress"][0]["Description"],
                                           "IpProtocol": "-1", "CidrIp": "10.0.0.0/16"}]


def test_lifecycle_wait_covers_a_failover_and_the_new_instance_outwaits_it():
    failover = json.loads((INFRA / "statemachines" / "failover.asl.json").read_text())
    az = az_stacks(nat_stack(2))[0]
    heartbeat = int(az.params["LifecycleHeartbeatSeconds"])
    drain = 60
    assert heartbeat >= int(failover.get("TimeoutSeconds", 300)) + drain
    assert int(az.params["AttachWaitSeconds"]) > heartbeat


# ------------------------------------------------------------------------------------------------
# The instance role: its own AZ's ENI, nothing else


def _allowed(stmts: list[dict], action: str, arn: str, tags: dict[str, str]) -> bool:
    """Allow-only IAM evaluation, enough for these policies: Action, Resource (wildcards) and
    StringEquals on ec2:ResourceTag/<key>."""
    for s in stmts:
        actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
        resources = [s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]
        if s["Effect"] != "Allow" or not any(fnmatch.fnmatchcase(action, a) for a in actions):
            continue
        if not any(fnmatch.fnmatchcase(arn, r) for r in resources):
            continue
        conditions = s.get("Condition", {})
        assert set(conditions) <= {"StringEquals"}, conditions
        if all(tags.get(k.split("/", 1)[1]) == v for k, v in conditions.get("StringEquals", {}).items()):
            return True
    return False


def test_instance_role_may_attach_only_its_own_azs_eni_to_its_own_azs_instances():
    nat = nat_stack(3)
    azs = az_stacks(nat)
    enis = {az.params["AvailabilityZone"]: az.ref("NatEni") for az in azs}
    arn = f"arn:aws:ec2:us-east-1:{ACCOUNT}"
    for az in azs:
        me = az.params["AvailabilityZone"]
        stmts = statements(az.resources()["NatInstanceRole"])
        mine = {TAG_INSTANCE_FOR: me, TAG_DEPLOYMENT: DEPLOYMENT}
        assert _allowed(stmts, "ec2:AttachNetworkInterface", f"{arn}:network-interface/{enis[me]}", {})
        assert _allowed(stmts, "ec2:AttachNetworkInterface", f"{arn}:instance/i-0new", mine)
        for other, eni in enis.items():
            if other != me:
                assert not _allowed(stmts, "ec2:AttachNetworkInterface", f"{arn}:network-interface/{eni}",
                                    {TAG_ENI_FOR: other, TAG_DEPLOYMENT: DEPLOYMENT})
                assert not _allowed(stmts, "ec2:AttachNetworkInterface", f"{arn}:instance/i-0other",
                                    {TAG_INSTANCE_FOR: other, TAG_DEPLOYMENT: DEPLOYMENT})
        # A user's own NAT instance of the same AZ (no deployment tag) or another deployment's.
        assert not _allowed(stmts, "ec2:AttachNetworkInterface", f"{arn}:instance/i-0user", {TAG_INSTANCE_FOR: me})
        assert not _allowed(stmts, "ec2:AttachNetworkInterface", f"{arn}:instance/i-0x",
                            {TAG_INSTANCE_FOR: me, TAG_DEPLOYMENT: "another"})
        # A user's ENI in the same subnet.
        assert not _allowed(stmts, "ec2:AttachNetworkInterface", f"{arn}:network-interface/eni-0user", {})
        # The EIP lives on the ENI: no address call at all, no detaching, no instance changes.
        for action in ("ec2:AssociateAddress", "ec2:DisassociateAddress", "ec2:DetachNetworkInterface",
                       "ec2:ModifyInstanceAttribute", "ec2:ModifyNetworkInterfaceAttribute",
                       "ec2:ReplaceRoute", "ec2:CreateRoute", "ec2:TerminateInstances"):
            assert not _allowed(stmts, action, f"{arn}:*", mine), action
        # Marking itself unhealthy: its own group only.
        group = f"arn:aws:autoscaling:us-east-1:{ACCOUNT}:autoScalingGroup:uuid:autoScalingGroupName"
        assert _allowed(stmts, "autoscaling:SetInstanceHealth", f"{group}/{DEPLOYMENT}-nat-{me}", {})
        assert not _allowed(stmts, "autoscaling:SetInstanceHealth", f"{group}/{DEPLOYMENT}-nat-us-east-1z", {})
        wildcard = [s for s in stmts if s["Resource"] == "*"]
        assert [s["Action"] for s in wildcard] == ["ec2:DescribeNetworkInterfaces"]


# ------------------------------------------------------------------------------------------------
# User data: one copy of each script


def rendered_user_data(az: Stack) -> str:
    data = az.resources()["NatLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    return data["UserData"]["Fn::Base64"]  # template_eval joins, leaves the Base64 to CloudFormation


def test_embedded_user_data_is_exactly_the_files():
    template = load(INFRA / "nat-az.yaml")
    pieces = template["Resources"]["NatLaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Join"]
    assert pieces[0] == ""
    assert pieces[1] == render_userdata.pieces(), \
        "infra/nat-az.yaml user data differs from infra/nat-instance/*: run python3 infra/nat-instance/render_userdata.py"
    assert subprocess.run([sys.executable, str(NAT_INSTANCE / "render_userdata.py"), "--check"],
                          capture_output=True).returncode == 0


def _files_in_user_data(text: str) -> dict[str, str]:
    out = {}
    for m in re.finditer(r"install -m \d+ /dev/stdin (\S+) <<'(\w+)'\n(.*?)\n\2\n", text, re.S):
        out[m.group(1)] = m.group(3) + "\n"
    for m in re.finditer(r"base64 -d <<'(\w+)' \| gunzip > (\S+)\n(.*?)\1\n", text, re.S):
        out[m.group(2)] = gzip.decompress(base64.b64decode(m.group(3))).decode()
    return out


@pytest.mark.parametrize("compressed", [False, True])
def test_rendered_user_data_is_valid_bash_and_installs_every_file(compressed):
    text = "".join(p if isinstance(p, str) else "X" for p in render_userdata.pieces(compressed=compressed))
    subprocess.run(["bash", "-n"], input=text.encode(), check=True)
    files = _files_in_user_data(text)
    for name, dest, _mode in render_userdata.FILES:
        assert files[dest] == (NAT_INSTANCE / name).read_text(), dest
    assert "systemctl enable nat-watchdog-nat.service" in text


def test_user_data_fits_and_the_compressed_form_is_used_only_when_needed(monkeypatch):
    az = az_stacks(nat_stack(2))[0]
    assert len(rendered_user_data(az).encode()) <= render_userdata.USER_DATA_LIMIT
    plain = render_userdata.user_data_size(render_userdata.pieces(compressed=False))
    assert ("base64 -d" in rendered_user_data(az)) == (plain > render_userdata.USER_DATA_LIMIT)
    monkeypatch.setattr(render_userdata, "USER_DATA_LIMIT", plain - 1)
    assert any("base64 -d" in p for p in render_userdata.pieces() if isinstance(p, str))
    monkeypatch.setattr(render_userdata, "USER_DATA_LIMIT", plain)
    assert not any("base64 -d" in p for p in render_userdata.pieces() if isinstance(p, str))


def test_boot_files_are_valid_bash():
    for name in ("nat-boot.sh", "configure-nat.sh"):
        subprocess.run(["bash", "-n", str(NAT_INSTANCE / name)], check=True)
        assert os.access(NAT_INSTANCE / name, os.X_OK), name
    unit = (NAT_INSTANCE / "nat-watchdog-nat.service").read_text()
    assert "ExecStart=/usr/local/sbin/nat-boot.sh" in unit and "EnvironmentFile=/etc/nat-watchdog/nat.env" in unit


# ------------------------------------------------------------------------------------------------
# nat-boot.sh against fake aws / curl / ip / sysctl (no root, no network)

_FAKE_AWS = r"""#!/bin/bash
# Fake AWS CLI: the ENI is held by $(cat holder) for $(cat held_polls) more looks, then by nobody.
cd "$FAKE_DIR"
echo "aws $*" >> calls
case "$*" in
  *describe-network-interfaces*Attachment.InstanceId*)
    n=$(cat held_polls)
    if [ "$n" -gt 0 ]; then echo $((n - 1)) > held_polls; cat holder; else cat holder_after; fi ;;
  *describe-network-interfaces*MacAddress*) echo 00:00:00:00:00:00 ;;
  *describe-network-interfaces*PrivateIpAddress*) echo 127.0.0.1 ;;
  *attach-network-interface*) echo i-0new > holder_after; echo 0 > held_polls ;;
  *set-instance-health*) ;;
  *) echo "fake aws: unexpected $*" >&2; exit 1 ;;
esac
"""
_FAKE_CURL = r"""#!/bin/bash
url=${!#}
case "$url" in
  */api/token) echo token ;;
  */meta-data/instance-id) echo i-0new ;;
  */meta-data/mac) cat /sys/class/net/$FAKE_PRIMARY/address ;;
  */subnet-ipv4-cidr-block) echo 10.0.0.0/24 ;;
  *) exit 22 ;;
esac
"""
_FAKE_IP = r"""#!/bin/bash
if [ "$1" = -4 ]; then exec /usr/sbin/ip "$@"; fi
echo "ip $*" >> "$FAKE_DIR/calls"
[ "$1 $2" = "rule del" ] && exit 2 || exit 0
"""
_FAKE_LOG = """#!/bin/bash
echo "$(basename "$0") $*" >> "$FAKE_DIR/calls"
"""


def _primary_interface() -> str | None:
    for dev in sorted(Path("/sys/class/net").iterdir()):
        addr = (dev / "address").read_text().strip() if (dev / "address").exists() else ""
        if dev.name != "lo" and addr and addr != "00:00:00:00:00:00":
            return dev.name
    return None


def run_boot(tmp_path: Path, held_polls: int, wait: int, egress: str = "eni") -> tuple[int, list[str], str]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, body in (("aws", _FAKE_AWS), ("curl", _FAKE_CURL), ("ip", _FAKE_IP), ("sysctl", _FAKE_LOG),
                       ("nft", _FAKE_LOG), ("configure-nat", _FAKE_LOG)):
        (bindir / name).write_text(body)
        (bindir / name).chmod(0o755)
    (tmp_path / "holder").write_text("i-0old\n")
    (tmp_path / "holder_after").write_text("None\n")
    (tmp_path / "held_polls").write_text(f"{held_polls}\n")
    (tmp_path / "calls").write_text("")
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "FAKE_DIR": str(tmp_path), "FAKE_PRIMARY": _primary_interface(),
           "NAT_ENI_ID": "eni-0stable", "NAT_SOURCE_CIDR": "10.0.0.0/16", "NAT_EGRESS": egress,
           "AWS_REGION": "us-east-1", "ATTACH_WAIT_SECONDS": str(wait), "ATTACH_POLL_SECONDS": "0",
           "CONFIGURE_NAT": str(bindir / "configure-nat")}
    proc = subprocess.run(["bash", str(NAT_INSTANCE / "nat-boot.sh")], env=env, capture_output=True, text=True,
                          timeout=60)
    return proc.returncode, (tmp_path / "calls").read_text().splitlines(), proc.stderr


needs_primary = pytest.mark.skipif(_primary_interface() is None or not Path("/usr/sbin/ip").exists(),
                                   reason="needs a non-loopback interface and /usr/sbin/ip to stand in for the primary ENI")


@needs_primary
def test_boot_waits_while_the_previous_instance_holds_the_eni_then_attaches_it_as_device_1(tmp_path):
    rc, calls, err = run_boot(tmp_path, held_polls=3, wait=60)
    assert rc == 0, err
    attaches = [c for c in calls if "attach-network-interface" in c]
    assert attaches == ["aws ec2 attach-network-interface --network-interface-id eni-0stable "
                        "--instance-id i-0new --device-index 1"]
    looks_before_attach = [c for c in calls[:calls.index(attaches[0])] if "Attachment.InstanceId" in c]
    assert len(looks_before_attach) == 4  # held, held, held, free
    assert "still held by i-0old" in err
    # The loopback interface stands in for the stable ENI (fake MAC 00:..:00, 127.0.0.1).
    assert "ip rule add priority 1000 iif lo lookup 4242" in calls
    assert "ip route replace default via 10.0.0.1 dev lo table 4242" in calls
    assert calls[-1] == "configure-nat --egress-if lo --source-cidr 10.0.0.0/16"
    assert not any("set-instance-health" in c for c in calls)


@needs_primary
def test_boot_without_eip_translates_out_of_the_primary_interface_and_returns_replies_by_the_eni(tmp_path):
    rc, calls, err = run_boot(tmp_path, held_polls=0, wait=60, egress="primary")
    assert rc == 0, err
    primary = _primary_interface()
    assert f"ip rule add priority 1000 iif {primary} to 10.0.0.0/16 lookup 4242" in calls
    assert calls[-1] == f"configure-nat --egress-if {primary} --source-cidr 10.0.0.0/16"


@needs_primary
def test_boot_gives_up_and_marks_itself_unhealthy_when_the_eni_is_never_released(tmp_path):
    rc, calls, err = run_boot(tmp_path, held_polls=10_000, wait=0)
    assert rc == 1
    assert not any("attach-network-interface" in c for c in calls)
    assert "aws autoscaling set-instance-health --instance-id i-0new --health-status Unhealthy " \
           "--no-should-respect-grace-period" in calls
    assert "not attached after 0 s" in err


def test_boot_refuses_a_bad_egress_mode(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "NAT_ENI_ID": "eni-1", "NAT_SOURCE_CIDR": "10.0.0.0/16",
           "AWS_REGION": "us-east-1", "NAT_EGRESS": "both"}
    proc = subprocess.run(["bash", str(NAT_INSTANCE / "nat-boot.sh")], env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and "NAT_EGRESS must be eni or primary" in proc.stderr
    del env["NAT_ENI_ID"]
    proc = subprocess.run(["bash", str(NAT_INSTANCE / "nat-boot.sh")], env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "NAT_ENI_ID is not set" in proc.stderr


# ------------------------------------------------------------------------------------------------
# The layer in moto


class LiveStack(Stack):
    """A template_eval.Stack whose references resolve to what was created in moto."""

    def __init__(self, base: Stack, overrides: dict[str, Any] | None = None):
        self.__dict__.update(base.__dict__)
        self.params = {**base.params, **(overrides or {})}
        self._conditions = {}
        self.physical: dict[str, str] = {}
        self.attrs: dict[tuple[str, str], Any] = {}

    def resource_ref(self, logical: str) -> str:
        return self.physical[logical] if logical in self.physical else super().resource_ref(logical)

    def get_att(self, logical: str, attr: str) -> Any:
        return self.attrs[(logical, attr)] if (logical, attr) in self.attrs else super().get_att(logical, attr)

    def eval(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1 and "Fn::Base64" in node:
            return base64.b64encode(str(self.eval(node["Fn::Base64"])).encode()).decode()
        return super().eval(node)


def _tag_spec(kind: str, tags: list[dict]) -> list[dict]:
    return [{"ResourceType": kind, "Tags": [{"Key": t["Key"], "Value": t["Value"]} for t in tags]}]


def create_az_layer(session, az: LiveStack) -> dict[str, Any]:
    """Create nat-az.yaml's resources in moto from their evaluated properties, in dependency order."""
    ec2, asg, iam = session.client("ec2"), session.client("autoscaling"), session.client("iam")
    res = lambda logical: az.resources()[logical]["Properties"]  # noqa: E731 - evaluated after each step
    created = set(az.resources())

    p = res("NatEni")
    eni = ec2.create_network_interface(SubnetId=p["SubnetId"], Description=p["Description"], Groups=p["GroupSet"],
                                       TagSpecifications=_tag_spec("network-interface", p["Tags"]))
    az.physical["NatEni"] = eni_id = eni["NetworkInterface"]["NetworkInterfaceId"]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni_id, SourceDestCheck={"Value": p["SourceDestCheck"]})

    if "NatEip" in created:
        p = res("NatEip")
        eip = ec2.allocate_address(Domain=p["Domain"], TagSpecifications=_tag_spec("elastic-ip", p["Tags"]))
        az.physical["NatEip"] = eip["PublicIp"]
        az.attrs[("NatEip", "AllocationId")] = eip["AllocationId"]
        p = res("NatEipAssociation")
        ec2.associate_address(AllocationId=p["AllocationId"], NetworkInterfaceId=p["NetworkInterfaceId"])

    p = res("NatInstanceRole")
    role_name = f"{az.name}-NatInstanceRole"
    iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(p["AssumeRolePolicyDocument"]))
    for policy in p["Policies"]:
        iam.put_role_policy(RoleName=role_name, PolicyName=policy["PolicyName"],
                            PolicyDocument=json.dumps(policy["PolicyDocument"]))
    az.physical["NatInstanceRole"] = role_name
    profile = iam.create_instance_profile(InstanceProfileName=f"{az.name}-NatInstanceProfile")["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName=profile["InstanceProfileName"], RoleName=role_name)
    az.attrs[("NatInstanceProfile", "Arn")] = profile["Arn"]

    p = res("NatLaunchTemplate")
    lt = ec2.create_launch_template(LaunchTemplateName=p["LaunchTemplateName"], LaunchTemplateData=p["LaunchTemplateData"],
                                    TagSpecifications=p["TagSpecifications"])["LaunchTemplate"]
    az.physical["NatLaunchTemplate"] = lt["LaunchTemplateId"]
    az.attrs[("NatLaunchTemplate", "LatestVersionNumber")] = str(lt["LatestVersionNumber"])

    p = res("NatGroup")
    group = p["AutoScalingGroupName"]
    asg.create_auto_scaling_group(
        AutoScalingGroupName=group, MinSize=int(p["MinSize"]), MaxSize=int(p["MaxSize"]),
        DesiredCapacity=int(p["DesiredCapacity"]), VPCZoneIdentifier=",".join(p["VPCZoneIdentifier"]),
        LaunchTemplate=p["LaunchTemplate"], HealthCheckType=p["HealthCheckType"],
        HealthCheckGracePeriod=int(p["HealthCheckGracePeriod"]),
        Tags=[{**t, "ResourceId": group, "ResourceType": "auto-scaling-group"} for t in p["Tags"]])
    for hook in p["LifecycleHookSpecificationList"]:  # moto ignores the list in CreateAutoScalingGroup
        asg.put_lifecycle_hook(AutoScalingGroupName=group, **{**hook, "HeartbeatTimeout": int(hook["HeartbeatTimeout"])})
    az.physical["NatGroup"] = group

    if "StandbyNatGateway" in created:
        p = res("StandbyEip")
        eip = ec2.allocate_address(Domain="vpc", TagSpecifications=_tag_spec("elastic-ip", p["Tags"]))
        az.attrs[("StandbyEip", "AllocationId")] = eip["AllocationId"]
        p = res("StandbyNatGateway")
        gw = ec2.create_nat_gateway(SubnetId=p["SubnetId"], AllocationId=p["AllocationId"],
                                    TagSpecifications=_tag_spec("natgateway", p["Tags"]))
        az.physical["StandbyNatGateway"] = gw["NatGateway"]["NatGatewayId"]
    return {"eni_id": eni_id, "group": group, "launch_template_id": lt["LaunchTemplateId"],
            "eip": az.physical.get("NatEip"), "standby": az.physical.get("StandbyNatGateway")}


def group_instances(asg, group: str) -> list[str]:
    [g] = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    return [i["InstanceId"] for i in g["Instances"] if i["LifecycleState"] == "InService"]


def boot(ec2, eni_id: str, instance_id: str) -> None:
    """What nat-boot.sh does with the EC2 API: attach the stable ENI as device 1 once it is free."""
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
    assert eni.get("Attachment", {}).get("Status") in (None, "detached"), "the ENI is still held"
    ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=instance_id, DeviceIndex=1)


def release_after_termination(ec2, eni_id: str, instance_id: str) -> None:
    """AWS detaches a secondary ENI (DeleteOnTermination false) when its instance terminates; moto does not."""
    state = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "terminated"
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
    if eni.get("Attachment", {}).get("InstanceId") == instance_id:
        assert eni["Attachment"]["DeleteOnTermination"] is False
        ec2.detach_network_interface(AttachmentId=eni["Attachment"]["AttachmentId"])


@pytest.fixture
def live(moto):
    """A VPC as a user has it (their own tagged NAT instances, routes to them, standby gateways:
    moto_env.build_vpc) plus the managed layer created from the templates for the same subnets."""
    moto.reset()
    session = moto.session()
    ec2 = session.client("ec2")
    azs = AZS[:2]
    vpc = build_vpc(ec2, azs)
    image = "ami-12c6146b"  # one of moto's images (the SSM parameter is resolved by CloudFormation)
    base = parent(2, PublicSubnetIds=[vpc[a]["public_subnet_id"] for a in azs], VpcCidr="10.0.0.0/16",
                  VpcId=vpc[azs[0]]["vpc_id"])
    nat = base.child("NatLayer")
    sg = nat.resources()["NatSecurityGroup"]["Properties"]
    sg_id = ec2.create_security_group(GroupName=f"{DEPLOYMENT}-nat", Description=sg["GroupDescription"],
                                      VpcId=sg["VpcId"])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg_id, IpPermissions=[
        {"IpProtocol": r["IpProtocol"], "IpRanges": [{"CidrIp": r["CidrIp"]}]} for r in sg["SecurityGroupIngress"]])
    layers = {}
    for child in az_stacks(nat):
        az = LiveStack(child, {"SecurityGroupId": sg_id, "ImageId": image})
        layers[az.params["AvailabilityZone"]] = create_az_layer(session, az)
    return session, vpc, layers


def test_layer_in_moto_groups_templates_enis_eips_and_hooks(live):
    session, vpc, layers = live
    ec2, asg = session.client("ec2"), session.client("autoscaling")
    for az_name, layer in layers.items():
        eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[layer["eni_id"]])["NetworkInterfaces"][0]
        assert eni["SubnetId"] == vpc[az_name]["public_subnet_id"] and eni["SourceDestCheck"] is False
        assert {t["Key"]: t["Value"] for t in eni["TagSet"]}[TAG_ENI_FOR] == az_name
        assert eni["Association"]["PublicIp"] == layer["eip"]  # the EIP sits on the ENI, not on an instance
        [g] = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[layer["group"]])["AutoScalingGroups"]
        assert (g["MinSize"], g["MaxSize"], g["DesiredCapacity"]) == (1, 1, 1)
        assert g["LaunchTemplate"]["LaunchTemplateId"] == layer["launch_template_id"]
        [hook] = asg.describe_lifecycle_hooks(AutoScalingGroupName=layer["group"])["LifecycleHooks"]
        assert (hook["LifecycleHookName"], hook["LifecycleTransition"], hook["DefaultResult"]) == \
            ("nat-watchdog-terminate", "autoscaling:EC2_INSTANCE_TERMINATING", "CONTINUE")
        [version] = ec2.describe_launch_template_versions(LaunchTemplateId=layer["launch_template_id"])["LaunchTemplateVersions"]
        data = version["LaunchTemplateData"]
        assert data["MetadataOptions"]["HttpTokens"] == "required"
        assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
        assert data["InstanceType"] == "t4g.nano"
        assert f"NAT_ENI_ID={layer['eni_id']}\n" in base64.b64decode(data["UserData"]).decode()
        [instance_id] = group_instances(asg, layer["group"])
        inst = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
        assert tags[TAG_INSTANCE_FOR] == az_name and tags[TAG_DEPLOYMENT] == DEPLOYMENT
        gw = ec2.describe_nat_gateways(NatGatewayIds=[layer["standby"]])["NatGateways"][0]
        assert {t["Key"]: t["Value"] for t in gw["Tags"]}[TAG_STANDBY_FOR] == az_name


def test_creating_the_layer_leaves_the_users_nat_instances_and_routes_alone(moto):
    moto.reset()
    session = moto.session()
    ec2 = session.client("ec2")
    vpc = build_vpc(ec2, AZS[:2])
    tables = [t for a in AZS[:2] for t in vpc[a]["route_table_ids"]] + [vpc[AZS[0]]["unmanaged_route_table_id"]]
    routes_before = default_route_targets(ec2, tables)
    users = [vpc[a]["nat_instance_id"] for a in AZS[:2]]
    base = parent(2, PublicSubnetIds=[vpc[a]["public_subnet_id"] for a in AZS[:2]], VpcId=vpc[AZS[0]]["vpc_id"])
    for child in az_stacks(base.child("NatLayer")):
        sg_id = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
        create_az_layer(session, LiveStack(child, {"SecurityGroupId": sg_id, "ImageId": "ami-12c6146b"}))
    assert default_route_targets(ec2, tables) == routes_before
    states = {i["InstanceId"]: i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=users)["Reservations"]
              for i in r["Instances"]}
    assert states == {i: "running" for i in users}


def test_terminating_a_nat_instance_launches_a_new_one_that_takes_the_eni_and_routes_never_move(live):
    session, vpc, layers = live
    ec2, asg = session.client("ec2"), session.client("autoscaling")
    az_name = AZS[0]
    layer = layers[az_name]
    [first] = group_instances(asg, layer["group"])
    boot(ec2, layer["eni_id"], first)
    # The managed route tables target the stable ENI (after the migration, README).
    tables = vpc[az_name]["route_table_ids"]
    for rtb in tables:
        ec2.replace_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=layer["eni_id"])
    before = default_route_targets(ec2, tables + [vpc[AZS[1]]["route_table_ids"][0]])
    assert all(before[t] == layer["eni_id"] for t in tables)

    asg.terminate_instance_in_auto_scaling_group(InstanceId=first, ShouldDecrementDesiredCapacity=False)
    [second] = group_instances(asg, layer["group"])
    assert second != first
    with pytest.raises(AssertionError, match="still held"):
        boot(ec2, layer["eni_id"], second)  # the old instance has not released it yet: the boot waits
    release_after_termination(ec2, layer["eni_id"], first)
    boot(ec2, layer["eni_id"], second)

    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[layer["eni_id"]])["NetworkInterfaces"][0]
    assert eni["Attachment"]["InstanceId"] == second and eni["Attachment"]["DeviceIndex"] == 1
    assert eni["Association"]["PublicIp"] == layer["eip"]  # same egress address
    assert default_route_targets(ec2, tables + [vpc[AZS[1]]["route_table_ids"][0]]) == before


def test_nat_az_template_as_is_creates_in_motos_cloudformation(moto):
    """moto's CloudFormation takes nat-az.yaml unchanged (plain CloudFormation, no SAM) and creates
    every resource; it drops some properties (ENI tags and SourceDestCheck, the EIP association to
    an ENI, the lifecycle hooks), which is why the tests above build the resources from the
    evaluated properties instead."""
    moto.reset()
    session = moto.session()
    ec2, cfn, asg = session.client("ec2"), session.client("cloudformation"), session.client("autoscaling")
    vpc = build_vpc(ec2, AZS[:2])
    child = az_stacks(nat_stack(2, PublicSubnetIds=[vpc[a]["public_subnet_id"] for a in AZS[:2]]))[0]
    params = {**child.params, "SecurityGroupId": ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"],
              "ImageId": "ami-12c6146b"}
    cfn.create_stack(StackName="nat-az-1", TemplateBody=(INFRA / "nat-az.yaml").read_text(), Capabilities=["CAPABILITY_IAM"],
                     Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in params.items()])
    [stack] = cfn.describe_stacks(StackName="nat-az-1")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["NatGroupName"] == f"{DEPLOYMENT}-nat-{AZS[0]}"
    assert outputs["NatEniId"].startswith("eni-") and outputs["StandbyNatGatewayId"].startswith("nat-")
    [g] = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[outputs["NatGroupName"]])["AutoScalingGroups"]
    assert g["VPCZoneIdentifier"] == vpc[AZS[0]]["public_subnet_id"] and len(g["Instances"]) == 1
    [version] = ec2.describe_launch_template_versions(
        LaunchTemplateId=g["LaunchTemplate"]["LaunchTemplateId"])["LaunchTemplateVersions"]
    assert g["LaunchTemplate"]["Version"] == str(version["VersionNumber"])
    data = version["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required" and data["IamInstanceProfile"]["Arn"]
    assert f"NAT_ENI_ID={outputs['NatEniId']}\n" in base64.b64decode(data["UserData"]).decode()


# ------------------------------------------------------------------------------------------------
# Deletion guard (the inline Lambda code of nat.yaml, run against moto)


def guard_module(monkeypatch, moto) -> tuple[types.ModuleType, list[dict]]:
    code = load(INFRA / "nat.yaml")["Resources"]["DeletionGuardFunction"]["Properties"]["Code"]["ZipFile"]
    sent: list[dict] = []
    fake = types.ModuleType("cfnresponse")
    fake.SUCCESS, fake.FAILED = "SUCCESS", "FAILED"
    fake.send = lambda event, context, status, data, physical=None, noEcho=False, reason=None: sent.append(
        {"status": status, "physical": physical, "reason": reason})
    monkeypatch.setitem(sys.modules, "cfnresponse", fake)
    for k, v in moto.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_DEFAULT_REGION", moto.region)
    module = types.ModuleType("deletion_guard")
    exec(compile(textwrap.dedent(code), "nat.yaml:DeletionGuardFunction", "exec"), module.__dict__)  # noqa: S102
    return module, sent


def guard_event(kind: str, vpc_id: str, targets: list[str], old: list[str] | None = None, mode: str = "enforce") -> dict:
    event = {"RequestType": kind, "LogicalResourceId": "DeletionGuardCheck",
             "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/nat-watchdog-NatLayer/abc",
             "ResourceProperties": {"Mode": mode, "VpcId": vpc_id, "Targets": targets,
                                    "FailoverStateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:nat-watchdog-failover"}}
    if kind != "Create":
        event["PhysicalResourceId"] = "DeletionGuardCheck-abc"
    if old is not None:
        event["OldResourceProperties"] = {**event["ResourceProperties"], "Targets": old}
    return event


def test_guard_template_wiring_refers_to_every_nat_device():
    nat = nat_stack(3, StandbyMode="shared")
    guard = nat.resources()["DeletionGuardCheck"]["Properties"]
    targets = [t for t in guard["Targets"] if t]
    for az in range(1, 4):
        assert f"nat-watchdog-NatLayer-XYZ-NatAz{az}-XYZ-NatEni" in targets
    assert nat.ref("SharedStandbyNatGateway") in targets
    assert guard["Mode"] == "enforce"
    # template.yaml makes the layer depend on the Failover, so the Failover outlives a refused deletion.
    assert parent(2).template["Resources"]["NatLayer"]["Properties"]["Parameters"]["FailoverStateMachineArn"] == \
        {"Ref": "FailoverStateMachine"}


def test_guard_refuses_deletion_while_a_route_targets_a_stable_eni_or_standby_and_names_the_tables(moto, monkeypatch):
    moto.reset()
    ec2 = moto.session().client("ec2")
    vpc = build_vpc(ec2, AZS[:2])
    a = vpc[AZS[0]]
    eni = ec2.create_network_interface(SubnetId=a["public_subnet_id"])["NetworkInterface"]["NetworkInterfaceId"]
    rtb = a["route_table_ids"][0]
    ec2.replace_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=eni)
    guard, sent = guard_module(monkeypatch, moto)
    standby_b = vpc[AZS[1]]["standby_nat_gateway_id"]

    guard.handler(guard_event("Delete", a["vpc_id"], [eni, "", standby_b]), None)
    assert sent[-1]["status"] == "FAILED"
    assert rtb in sent[-1]["reason"] and eni in sent[-1]["reason"] and "infra/README.md" in sent[-1]["reason"]
    assert sent[-1]["physical"] == "DeletionGuardCheck-abc"

    # Routes moved to a gateway that stays (the user's own): the deletion proceeds.
    ec2.replace_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=a["standby_nat_gateway_id"])
    guard.handler(guard_event("Delete", a["vpc_id"], [eni, standby_b]), None)
    assert sent[-1]["status"] == "SUCCESS"

    # A standby gateway of the layer that a route uses (after a Failover) also blocks.
    rtb_b = vpc[AZS[1]]["route_table_ids"][1]
    ec2.replace_route(RouteTableId=rtb_b, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=standby_b)
    guard.handler(guard_event("Delete", a["vpc_id"], [eni, standby_b]), None)
    assert sent[-1]["status"] == "FAILED" and rtb_b in sent[-1]["reason"]

    # DeletionGuard=off lets it go.
    guard.handler(guard_event("Delete", a["vpc_id"], [eni, standby_b], mode="off"), None)
    assert sent[-1]["status"] == "SUCCESS"


def test_guard_refuses_an_update_that_drops_a_device_still_in_use_and_lets_others_through(moto, monkeypatch):
    moto.reset()
    ec2 = moto.session().client("ec2")
    vpc = build_vpc(ec2, AZS[:2], with_unmanaged=False)
    a = vpc[AZS[0]]
    used = ec2.create_network_interface(SubnetId=a["public_subnet_id"])["NetworkInterface"]["NetworkInterfaceId"]
    unused = ec2.create_network_interface(SubnetId=a["public_subnet_id"])["NetworkInterface"]["NetworkInterfaceId"]
    ec2.replace_route(RouteTableId=a["route_table_ids"][0], DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=used)
    guard, sent = guard_module(monkeypatch, moto)
    guard.handler(guard_event("Create", a["vpc_id"], [used, unused]), None)
    assert sent[-1]["status"] == "SUCCESS" and sent[-1]["physical"].startswith("DeletionGuardCheck-")
    guard.handler(guard_event("Update", a["vpc_id"], [used], old=[used, unused]), None)
    assert sent[-1]["status"] == "SUCCESS"
    guard.handler(guard_event("Update", a["vpc_id"], [unused], old=[used, unused]), None)
    assert sent[-1]["status"] == "FAILED" and used in sent[-1]["reason"]


def test_guard_reports_a_failure_to_check_instead_of_leaving_cloudformation_waiting(moto, monkeypatch):
    guard, sent = guard_module(monkeypatch, moto)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: the call fails
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    guard.handler(guard_event("Delete", "vpc-1", ["eni-1"]), None)
    assert sent[-1]["status"] == "FAILED" and "Could not check the routes" in sent[-1]["reason"]


# ------------------------------------------------------------------------------------------------
# Docs


def test_readme_section_lists_the_parameters_and_the_generated_cost_table():
    readme = (INFRA / "README.md").read_text()
    section = readme.split("## Managed NAT instances", 1)[1].split("\n## ", 1)[0]
    params = parent(2).template["Parameters"]
    for name in ("PublicSubnetIds", "VpcCidr", "NatInstanceType", "NatUseSpot", "NatElasticIp", "StandbyMode",
                 "NatDeletionGuard"):
        assert f"| `{name}` | " in section and name in params, name
    cost = subprocess.run([sys.executable, str(NAT_INSTANCE / "nat_cost.py")], capture_output=True, text=True,
                          check=True).stdout
    assert cost in section, "infra/README.md cost table is stale: paste python3 infra/nat-instance/nat_cost.py"
    assert "resets every tracked" in section and "render_userdata.py" in section
