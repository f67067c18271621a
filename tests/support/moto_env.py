"""Emulated AWS for the demo, the lab and the infra tests: one moto server, a VPC shaped like a
NAT-instance deployment, and the Failover/Fallback state machines created from the very ASL files the
SAM template deploys.

Importable with only boto3 (and the standard library). Usage:

    with MotoServer() as moto:
        session = moto.session()
        vpc = build_vpc(session.client("ec2"), ["us-east-1a", "us-east-1b"])
        arns = create_state_machines(session)
        execution = run_execution(session.client("stepfunctions"), arns["failover"], {"availabilityZone": "us-east-1a"})

Discovery contract (the same one the ASL and the IAM policies of infra/template.yaml rely on; keep in
sync with infra/README.md):
  * a managed private route table carries the tag  nat-watchdog:az = <AZ name>
  * the standby NAT Gateway of an AZ carries      nat-watchdog:standby-for = <AZ name>
  * the NAT instance of an AZ carries             nat-watchdog:nat-instance-for = <AZ name>
  * a standby shared by the VPC carries           nat-watchdog:standby-for = shared
  * the managed stable NAT ENI of an AZ carries   nat-watchdog:nat-eni-for = <AZ name>
and every lookup is scoped to one VPC (create_state_machines(vpc_id=...), DefinitionSubstitutions VpcId).
MotoServer runs moto through moto_aws_compat.py by default (AWS error names, $$.Execution.StartTime as
a string; EC2 fault injection for tests).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Iterator

import boto3

REPO_ROOT = Path(__file__).resolve().parents[2]
STATEMACHINES_DIR = REPO_ROOT / "infra" / "statemachines"

TAG_ROUTE_TABLE_AZ = "nat-watchdog:az"
TAG_STANDBY_FOR = "nat-watchdog:standby-for"
TAG_NAT_INSTANCE_FOR = "nat-watchdog:nat-instance-for"

DEFAULT_REGION = "us-east-1"
# moto accepts any credentials; fixed ones keep the runs reproducible and away from real accounts.
_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """A moto server on 127.0.0.1 and a free port, with Step Functions execution enabled.

    Started by start() (or `with`), stopped by stop(), which ends exactly the process it started.
    `moto_server` is looked up as MOTO_SERVER_BIN, then <repo>/.venv/bin/moto_server, then beside
    the running Python.
    """

    def __init__(self, moto_server_bin: str | None = None, region: str = DEFAULT_REGION,
                 log_path: str | os.PathLike | None = None, ready_timeout: float = 30.0,
                 aws_compat: bool = True):
        self.bin = moto_server_bin or self._find_bin()
        # aws_compat: run moto_server through moto_aws_compat.py, which restores the AWS behaviours the
        # state machines rely on (`Ec2.Ec2Exception` error names, $$.Execution.StartTime as a string).
        self.aws_compat = aws_compat
        self.region = region
        self.log_path = log_path
        self.ready_timeout = ready_timeout
        self.port: int | None = None
        self.url: str | None = None
        self.proc: subprocess.Popen | None = None
        self._log = None

    @staticmethod
    def _find_bin() -> str:
        candidates = [os.environ.get("MOTO_SERVER_BIN"), str(REPO_ROOT / ".venv" / "bin" / "moto_server"),
                      str(Path(sys.executable).parent / "moto_server")]
        for c in candidates:
            if c and os.access(c, os.X_OK):
                return c
        raise FileNotFoundError("moto_server not found: run `make venv` or set MOTO_SERVER_BIN")

    def start(self) -> "MotoServer":
        if self.proc is not None:
            return self
        last_error: Exception | None = None
        for _attempt in range(3):  # the free port may be taken between probe and bind; try another
            self.port = _free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            env = dict(os.environ)
            # moto's own aws-sdk task integrations call back into this server on MOTO_PORT.
            env["MOTO_PORT"] = str(self.port)
            if self.aws_compat:
                env["NAT_WATCHDOG_MOTO_FAULTS"] = str(self._faults_path())
            self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
            self.proc = subprocess.Popen([*self._command(), "-H", "127.0.0.1", "-p", str(self.port)],
                                         stdout=self._log, stderr=self._log, env=env,
                                         start_new_session=True)
            try:
                self._wait_ready()
                break
            except Exception as e:  # noqa: BLE001 - retried, then re-raised
                last_error = e
                self.stop()
        else:
            raise RuntimeError(f"moto_server did not start: {last_error}")
        self._post_json("/moto-api/config", {"stepfunctions": {"execute_state_machine": True}})
        return self

    def _command(self) -> list[str]:
        if not self.aws_compat:
            return [self.bin]
        # The interpreter that owns moto_server (its shebang), so the wrapper imports the same moto.
        with open(self.bin, "rb") as f:
            first = f.readline().decode(errors="replace").strip()
        python = first[2:].strip().split()[0] if first.startswith("#!") else sys.executable
        return [python, str(Path(__file__).resolve().parent / "moto_aws_compat.py")]

    def _faults_path(self) -> Path:
        return Path(os.environ.get("TMPDIR", "/tmp")) / f"nat-watchdog-moto-faults-{os.getpid()}-{id(self)}.json"

    def inject_ec2_fault(self, api: str, times: int, code: str = "RequestLimitExceeded", status: int = 503,
                         message: str = "Request limit exceeded.", match: dict | None = None) -> None:
        """The next `times` calls of EC2 `api` (as a state machine names it: "replaceRoute") made by a
        state machine fail with a botocore ClientError `code` (default: AWS's throttle); with `match`,
        only calls whose parameters include those values. Needs aws_compat."""
        if not self.aws_compat:
            raise RuntimeError("inject_ec2_fault needs MotoServer(aws_compat=True)")
        path = self._faults_path()
        try:
            faults = json.loads(path.read_text())
        except (OSError, ValueError):
            faults = {}
        faults[api] = {"code": code, "status": status, "message": message, "remaining": times,
                       "match": match or {}}
        path.write_text(json.dumps(faults))

    def clear_ec2_faults(self) -> None:
        self._faults_path().unlink(missing_ok=True)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"moto_server not ready on {self.url} after {self.ready_timeout}s")

    def _post_json(self, path: str, body: Any) -> None:
        req = urllib.request.Request(f"{self.url}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    def reset(self) -> None:
        """Forget every resource and injected fault (the execute_state_machine setting is set again)."""
        if self.aws_compat:
            self.clear_ec2_faults()
        self._post_json("/moto-api/reset", {})
        self._post_json("/moto-api/config", {"stepfunctions": {"execute_state_machine": True}})

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()  # signals this PID only
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
            self.proc = None
        if self.aws_compat:
            self.clear_ec2_faults()
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self._log = None

    def session(self) -> "_EndpointSession":
        return _EndpointSession(self.url, self.region)

    def env(self) -> dict[str, str]:
        """Environment for a child process (the checker) that should talk to this server."""
        return {"AWS_ENDPOINT_URL": self.url, "AWS_REGION": self.region,
                "AWS_ACCESS_KEY_ID": _CREDENTIALS["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": _CREDENTIALS["aws_secret_access_key"]}

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class _EndpointSession:
    """A boto3 session whose clients all point at one endpoint."""

    def __init__(self, url: str, region: str):
        self.url = url
        self.region_name = region
        self._session = boto3.session.Session(region_name=region, **_CREDENTIALS)

    def client(self, service: str, **kwargs: Any):
        kwargs.setdefault("endpoint_url", self.url)
        return self._session.client(service, **kwargs)


# --------------------------------------------------------------------------------------------------
# The emulated VPC


def _tags(pairs: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in pairs.items()]


_KNOWN_MOTO_AMI = "ami-12c6146b"  # one of moto's built-in images


def _any_image_id(ec2) -> str:
    # Asking for one known image is fast; listing all of them takes seconds in moto.
    try:
        if ec2.describe_images(ImageIds=[_KNOWN_MOTO_AMI]).get("Images"):
            return _KNOWN_MOTO_AMI
    except Exception:  # noqa: BLE001 - not there in this moto: fall back to any image
        pass
    images = ec2.describe_images(Owners=["amazon"]).get("Images", [])
    return images[0]["ImageId"] if images else _KNOWN_MOTO_AMI


def _vpc_with_public_route_table(ec2, cidr: str) -> tuple[str, str]:
    """A VPC with an internet gateway and a public route table whose 0.0.0.0/0 goes to it, as every
    emulated deployment starts; returns (vpc id, public route table id)."""
    vpc_id = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    public_rtb = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    return vpc_id, public_rtb


def _az_subnets(ec2, vpc_id: str, public_rtb: str, cidr: str, index: int, az: str) -> tuple[str, str]:
    """The public (x.y.2i.0/24, on `public_rtb`) and private (x.y.2i+1.0/24) subnets of the i-th AZ;
    returns (public subnet id, private subnet id)."""
    prefix = cidr.split(".")[0] + "." + cidr.split(".")[1]
    public = ec2.create_subnet(VpcId=vpc_id, AvailabilityZone=az,
                               CidrBlock=f"{prefix}.{index * 2}.0/24")["Subnet"]["SubnetId"]
    private = ec2.create_subnet(VpcId=vpc_id, AvailabilityZone=az,
                                CidrBlock=f"{prefix}.{index * 2 + 1}.0/24")["Subnet"]["SubnetId"]
    ec2.associate_route_table(RouteTableId=public_rtb, SubnetId=public)
    return public, private


def _standby_nat_gateway(ec2, public_subnet_id: str, az: str) -> str:
    """The AZ's standby NAT Gateway (nat-watchdog:standby-for=<AZ>) in its public subnet."""
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    return ec2.create_nat_gateway(
        SubnetId=public_subnet_id, AllocationId=alloc,
        TagSpecifications=[{"ResourceType": "natgateway",
                            "Tags": _tags({"Name": f"standby-{az}", TAG_STANDBY_FOR: az})}],
    )["NatGateway"]["NatGatewayId"]


def build_vpc(ec2, azs: list[str], route_tables_per_az: int = 2, with_unmanaged: bool = True,
              cidr: str = "10.0.0.0/16") -> dict[str, dict[str, Any]]:
    """A VPC with, in every AZ: a public subnet holding a running NAT instance and a standby NAT
    Gateway, a private subnet, and `route_tables_per_az` private route tables whose 0.0.0.0/0 goes to
    the NAT instance's primary ENI, all tagged as the state machines expect.

    `numbered_version`: the group uses the launch template's latest version NUMBER, as the NAT
    layer's CloudFormation sets it (`!GetAtt NatLaunchTemplate.LatestVersionNumber`), not `$Latest`.

    Returns {az: {"vpc_id", "public_subnet_id", "private_subnet_id", "nat_instance_id", "nat_eni_id",
    "standby_nat_gateway_id", "route_table_ids": [...]}}. With `with_unmanaged`, the first AZ's entry
    also has "unmanaged_route_table_id": an untagged table with its 0.0.0.0/0 to the same NAT
    instance, which no state machine may touch.
    """
    vpc_id, public_rtb = _vpc_with_public_route_table(ec2, cidr)
    image_id = _any_image_id(ec2)

    out: dict[str, dict[str, Any]] = {}
    for i, az in enumerate(azs):
        public, private = _az_subnets(ec2, vpc_id, public_rtb, cidr, i, az)

        inst = ec2.run_instances(
            ImageId=image_id, InstanceType="t4g.nano", MinCount=1, MaxCount=1, SubnetId=public,
            TagSpecifications=[{"ResourceType": "instance",
                                "Tags": _tags({"Name": f"nat-instance-{az}", TAG_NAT_INSTANCE_FOR: az})}],
        )["Instances"][0]
        instance_id = inst["InstanceId"]
        eni_id = inst["NetworkInterfaces"][0]["NetworkInterfaceId"]
        ec2.modify_instance_attribute(InstanceId=instance_id, SourceDestCheck={"Value": False})

        natgw = _standby_nat_gateway(ec2, public, az)

        rtbs = []
        for n in range(route_tables_per_az):
            rtb = ec2.create_route_table(
                VpcId=vpc_id,
                TagSpecifications=[{"ResourceType": "route-table",
                                    "Tags": _tags({"Name": f"private-{az}-{n}", TAG_ROUTE_TABLE_AZ: az})}],
            )["RouteTable"]["RouteTableId"]
            ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=eni_id)
            if n == 0:
                ec2.associate_route_table(RouteTableId=rtb, SubnetId=private)
            rtbs.append(rtb)

        out[az] = {"vpc_id": vpc_id, "public_subnet_id": public, "private_subnet_id": private,
                   "nat_instance_id": instance_id, "nat_eni_id": eni_id,
                   "standby_nat_gateway_id": natgw, "route_table_ids": rtbs}

    if with_unmanaged and azs:
        first = out[azs[0]]
        rtb = ec2.create_route_table(
            VpcId=vpc_id, TagSpecifications=[{"ResourceType": "route-table",
                                              "Tags": _tags({"Name": "unmanaged"})}],
        )["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0",
                         NetworkInterfaceId=first["nat_eni_id"])
        first["unmanaged_route_table_id"] = rtb
    return out


def default_route_targets(ec2, route_table_ids: list[str]) -> dict[str, str | None]:
    """{route table id: target id of its 0.0.0.0/0 (nat-…, eni-…, igw-…, i-…) or None}."""
    tables = ec2.describe_route_tables(RouteTableIds=list(route_table_ids))["RouteTables"]
    out: dict[str, str | None] = {}
    for t in tables:
        target = None
        for r in t.get("Routes", []):
            if r.get("DestinationCidrBlock") == "0.0.0.0/0":
                target = (r.get("NatGatewayId") or r.get("NetworkInterfaceId") or r.get("GatewayId")
                          or r.get("InstanceId"))
        out[t["RouteTableId"]] = target
    return out


# --------------------------------------------------------------------------------------------------
# The state machines

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def load_definition(name: str, substitutions: dict[str, str] | None = None) -> str:
    """infra/statemachines/<name>.asl.json with `${Key}` placeholders substituted exactly as
    DefinitionSubstitutions of infra/template.yaml does. Unknown placeholders are an error."""
    text = (STATEMACHINES_DIR / f"{name}.asl.json").read_text()
    subs = dict(substitutions or {})

    def repl(m: re.Match) -> str:
        key = m.group(1)
        if key not in subs:
            raise KeyError(f"{name}.asl.json: no value for placeholder ${{{key}}}")
        return subs[key]

    text = _PLACEHOLDER.sub(repl, text)
    json.loads(text)  # fail here, not in moto, when a substitution broke the JSON
    return text


def _sfn_client(session_or_clients: Any):
    if isinstance(session_or_clients, dict):
        return session_or_clients.get("stepfunctions") or session_or_clients["sfn"]
    if hasattr(session_or_clients, "client"):
        return session_or_clients.client("stepfunctions")
    return session_or_clients  # already a Step Functions client


def managed_vpc_id(ec2) -> str:
    """The one VPC holding route tables tagged nat-watchdog:az; an error when there are none or several
    (then pass vpc_id explicitly: the state machines are scoped to one VPC, as in AWS)."""
    tables = ec2.describe_route_tables(Filters=[{"Name": "tag-key", "Values": [TAG_ROUTE_TABLE_AZ]}])["RouteTables"]
    vpcs = sorted({t["VpcId"] for t in tables})
    if len(vpcs) != 1:
        raise ValueError(f"cannot tell which VPC the state machines are for: route tables tagged "
                         f"{TAG_ROUTE_TABLE_AZ} are in {vpcs or 'no VPC'}; pass vpc_id")
    return vpcs[0]


def create_state_machines(session_or_clients: Any, fallback_nat_gateway_id: str = "",
                          role_arn: str = "arn:aws:iam::123456789012:role/nat-watchdog-state-machines",
                          name_prefix: str = "nat-watchdog", vpc_id: str | None = None) -> dict[str, str]:
    """Create Failover and Fallback from infra/statemachines/*.asl.json; returns {"failover": arn,
    "fallback": arn}. `session_or_clients`: a session (anything with .client()), a dict holding a
    "stepfunctions" client, or a Step Functions client. moto does not check the role.
    `vpc_id`: the deployment's VPC (DefinitionSubstitutions VpcId); when None, the one VPC with tagged
    route tables (managed_vpc_id), looked up on the same endpoint."""
    sfn = _sfn_client(session_or_clients)
    if vpc_id is None:
        ec2 = boto3.session.Session(region_name=sfn.meta.region_name, **_CREDENTIALS).client(
            "ec2", endpoint_url=sfn.meta.endpoint_url)
        vpc_id = managed_vpc_id(ec2)
    subs = {"FallbackNatGatewayId": fallback_nat_gateway_id, "VpcId": vpc_id}
    arns = {}
    for name, sm_name in (("failover", f"{name_prefix}-failover"), ("fallback", f"{name_prefix}-fallback")):
        arns[name] = sfn.create_state_machine(name=sm_name, definition=load_definition(name, subs),
                                              roleArn=role_arn, type="STANDARD")["stateMachineArn"]
    return arns


def run_execution(sfn, state_machine_arn: str, payload: dict | None = None, name: str | None = None,
                  timeout: float = 30.0) -> dict[str, Any]:
    """Start an execution and wait for it to end; returns describe_execution (output parsed into
    "outputJson" when present)."""
    # Always named: moto 5.2.5 names every unnamed execution "None", so a second one would clash.
    arn = sfn.start_execution(stateMachineArn=state_machine_arn, input=json.dumps(payload or {}),
                              name=name or f"run-{uuid.uuid4().hex}")["executionArn"]
    return wait_execution(sfn, arn, timeout)


def wait_execution(sfn, execution_arn: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        d = sfn.describe_execution(executionArn=execution_arn)
        if d["status"] != "RUNNING":
            if d.get("output"):
                d["outputJson"] = json.loads(d["output"])
            return d
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {execution_arn} still RUNNING after {timeout}s")
        time.sleep(0.05)


# --------------------------------------------------------------------------------------------------
# The managed NAT layer as the NAT workflows see it (Lifecycle, Replace, Maintenance): per AZ a
# one-instance Auto Scaling group with a launch template and a termination lifecycle hook, a stable
# ENI the private route tables target, a standby NAT Gateway. Names carry "workflows" so they do not
# collide with the NAT layer's own builder.

TAG_DEPLOYMENT = "nat-watchdog:deployment"
TAG_NAT_ENI_FOR = "nat-watchdog:nat-eni-for"
TAG_PAUSED_UNTIL = "nat-watchdog:paused-until"
TAG_REPLACE_EXECUTION = "nat-watchdog:replace-execution"
WORKFLOWS_LIFECYCLE_HOOK = "nat-watchdog-terminate"
# Test-only tag on a stable ENI: the recording server's nat-boot emulation leaves that ENI where it is
# (the new instance's boot has not attached it yet), so a test decides when it moves.
TEST_TAG_NAT_BOOT = "moto-test:nat-boot"


def build_workflows_nat_layer(ec2, autoscaling, azs: list[str], deployment: str = "nat-watchdog",
                              image_id: str | None = None, shared_launch_template: bool = False,
                              cidr: str = "10.0.0.0/16", numbered_version: bool = False) -> dict[str, dict[str, Any]]:
    """A VPC with, in every AZ: a public subnet holding a one-instance Auto Scaling group (launch
    template version `$Latest`, tags nat-watchdog:nat-instance-for=<AZ> and nat-watchdog:deployment
    propagated to the instance, lifecycle hook `nat-watchdog-terminate` on EC2_INSTANCE_TERMINATING),
    a stable ENI (nat-watchdog:nat-eni-for=<AZ>, source/dest check off) attached to the group's
    instance as device 1, a standby NAT Gateway (nat-watchdog:standby-for=<AZ>), a private subnet and
    one private route table (nat-watchdog:az=<AZ>) whose 0.0.0.0/0 goes to the stable ENI.

    `numbered_version`: the group uses the launch template's latest version NUMBER, as the NAT
    layer's CloudFormation sets it (`!GetAtt NatLaunchTemplate.LatestVersionNumber`), not `$Latest`.

    Returns {az: {"vpc_id", "public_subnet_id", "private_subnet_id", "group_name",
    "launch_template_id", "instance_id", "nat_eni_id", "standby_nat_gateway_id",
    "route_table_ids": [...]}}.
    """
    vpc_id, public_rtb = _vpc_with_public_route_table(ec2, cidr)
    image_id = image_id or _any_image_id(ec2)
    deployment_tag = {TAG_DEPLOYMENT: deployment}

    def launch_template(name: str) -> str:
        return ec2.create_launch_template(
            LaunchTemplateName=name,
            LaunchTemplateData={"ImageId": image_id, "InstanceType": "t4g.nano",
                                "MetadataOptions": {"HttpTokens": "required"}},
            TagSpecifications=[{"ResourceType": "launch-template", "Tags": _tags(deployment_tag)}],
        )["LaunchTemplate"]["LaunchTemplateId"]

    shared_lt = launch_template(f"{deployment}-nat") if shared_launch_template else None
    out: dict[str, dict[str, Any]] = {}
    for i, az in enumerate(azs):
        public, private = _az_subnets(ec2, vpc_id, public_rtb, cidr, i, az)
        lt_id = shared_lt or launch_template(f"{deployment}-nat-{az}")

        group = f"{deployment}-nat-{az}"
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=group, MinSize=1, MaxSize=1, DesiredCapacity=1,
            LaunchTemplate={"LaunchTemplateId": lt_id, "Version": str(ec2.describe_launch_templates(
                LaunchTemplateIds=[lt_id])["LaunchTemplates"][0]["LatestVersionNumber"]) if numbered_version else "$Latest"},
            VPCZoneIdentifier=public,
            Tags=[{"Key": k, "Value": v, "PropagateAtLaunch": True, "ResourceId": group,
                   "ResourceType": "auto-scaling-group"}
                  for k, v in {"Name": f"nat-instance-{az}", TAG_NAT_INSTANCE_FOR: az, **deployment_tag}.items()],
        )
        autoscaling.put_lifecycle_hook(
            LifecycleHookName=WORKFLOWS_LIFECYCLE_HOOK, AutoScalingGroupName=group,
            LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING", HeartbeatTimeout=300,
            DefaultResult="CONTINUE")
        instance_id = workflows_in_service_instances(autoscaling, group)[0]

        eni = ec2.create_network_interface(
            SubnetId=public, Description=f"stable NAT ENI {az}",
            TagSpecifications=[{"ResourceType": "network-interface",
                                "Tags": _tags({TAG_NAT_ENI_FOR: az, **deployment_tag})}],
        )["NetworkInterface"]["NetworkInterfaceId"]
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, SourceDestCheck={"Value": False})
        ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=instance_id, DeviceIndex=1)

        natgw = _standby_nat_gateway(ec2, public, az)

        rtb = ec2.create_route_table(
            VpcId=vpc_id,
            TagSpecifications=[{"ResourceType": "route-table",
                                "Tags": _tags({"Name": f"private-{az}", TAG_ROUTE_TABLE_AZ: az, **deployment_tag})}],
        )["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=eni)
        ec2.associate_route_table(RouteTableId=rtb, SubnetId=private)

        out[az] = {"vpc_id": vpc_id, "public_subnet_id": public, "private_subnet_id": private,
                   "group_name": group, "launch_template_id": lt_id, "instance_id": instance_id,
                   "nat_eni_id": eni, "standby_nat_gateway_id": natgw, "route_table_ids": [rtb]}
    return out


def workflows_in_service_instances(autoscaling, group_name: str) -> list[str]:
    groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])["AutoScalingGroups"]
    return [i["InstanceId"] for g in groups for i in g["Instances"] if i["LifecycleState"] == "InService"]


def create_workflow_state_machines(sfn, arns: dict[str, str], deployment: str = "nat-watchdog",
                                   poll_seconds: int = 1, max_polls: int = 5,
                                   image_parameter_name: str = "/nat-watchdog/test/nat-ami",
                                   role_arn: str = "arn:aws:iam::123456789012:role/nat-watchdog-workflows",
                                   name_prefix: str | None = None,
                                   overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Create Lifecycle, Replace and Maintenance from infra/statemachines/nat-*.asl.json with the
    substitutions infra/nat-workflows.yaml gives them; `arns` holds "failover" and "fallback" (from
    create_state_machines). Returns {"lifecycle", "replace", "maintenance": arn}. The waits are
    shortened by substitution only (PollSeconds, MaxPolls): the states are the deployed ones.
    `overrides` replaces substitutions (e.g. a child state machine that blocks, for the singleton tests)."""
    prefix = name_prefix or deployment
    subs = {"DeploymentName": deployment, "FailoverStateMachineArn": arns["failover"],
            "FallbackStateMachineArn": arns["fallback"], "LifecycleHookName": WORKFLOWS_LIFECYCLE_HOOK,
            "PollSeconds": str(poll_seconds), "MaxPolls": str(max_polls),
            "ImageParameterName": image_parameter_name}
    out = {}
    for key in ("lifecycle", "replace", "maintenance"):
        if key == "maintenance":
            subs["ReplaceStateMachineArn"] = out["replace"]
        subs.update(overrides or {})
        out[key] = sfn.create_state_machine(
            name=f"{prefix}-nat-{key}", definition=load_definition(f"nat-{key}", subs),
            roleArn=role_arn, type="STANDARD")["stateMachineArn"]
    return out


# --------------------------------------------------------------------------------------------------
# A moto server that also answers CompleteLifecycleAction and records the calls the NAT workflows make.
#
# moto 5.2.5 stores lifecycle hooks but has no CompleteLifecycleAction. This server adds it, doing what
# the Auto Scaling service does after CONTINUE/ABANDON of a termination hook: the instance terminates and,
# the desired capacity being unchanged, the group launches a replacement (moto's own
# TerminateInstanceInAutoScalingGroup without decrement). It refuses, with the service's message, an
# instance that is not in the group or a hook the group does not have. Every CompleteLifecycleAction,
# TerminateInstanceInAutoScalingGroup and ReplaceRoute is appended to a JSON-lines file together with
# the 0.0.0.0/0 target of every managed route table right after the call: the tests read the order of
# events and the route state at each of them from there.
#
# It also stands in for nat-boot.sh of the replacement instance (infra/nat-instance/): right after a
# termination made the group launch a new instance, the AZ's stable ENI (nat-watchdog:nat-eni-for)
# is detached from the old instance (moto never releases it) and attached to the new one as device 1,
# recorded as "NatBootAttach". A stable ENI tagged TEST_TAG_NAT_BOOT=hold stays put: the test moves it.


def serve_moto_recording_workflow_calls(record_path: str, argv: list[str]) -> None:
    """Entry point of the recording server process (see workflows_moto_server)."""
    import threading

    from moto.autoscaling.exceptions import ValidationError
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core.responses import EmptyResult
    from moto.ec2.responses.route_tables import RouteTables
    from moto.server import main

    lock = threading.Lock()
    port = argv[argv.index("-p") + 1]
    local = {}

    def ec2_client():
        if "ec2" not in local:
            local["ec2"] = boto3.session.Session(region_name=DEFAULT_REGION, **_CREDENTIALS).client(
                "ec2", endpoint_url=f"http://127.0.0.1:{port}")
        return local["ec2"]

    def record(call: str, **args: Any) -> None:
        tables = ec2_client().describe_route_tables(
            Filters=[{"Name": "tag-key", "Values": [TAG_ROUTE_TABLE_AZ]}])["RouteTables"]
        routes = {}
        for t in tables:
            az = next(tag["Value"] for tag in t["Tags"] if tag["Key"] == TAG_ROUTE_TABLE_AZ)
            for r in t.get("Routes", []):
                if r.get("DestinationCidrBlock") == "0.0.0.0/0":
                    routes[t["RouteTableId"]] = {"az": az, "target": r.get("NatGatewayId") or r.get("NetworkInterfaceId")}
        with lock, open(record_path, "a") as f:
            f.write(json.dumps({"call": call, "args": args, "routes": routes, "at": time.time()}) + "\n")

    def complete_lifecycle_action(self) -> Any:
        group_name = self._get_param("AutoScalingGroupName")
        hook = self._get_param("LifecycleHookName")
        instance_id = self._get_param("InstanceId")
        backend = self.autoscaling_backend
        hooks = [h.name for h in backend.describe_lifecycle_hooks(as_name=group_name)]
        if hook not in hooks:
            raise ValidationError(f"No Lifecycle Hook found with name {hook} for group {group_name}")
        group = backend.autoscaling_groups.get(group_name)
        if group is None or instance_id not in [s.instance.id for s in group.instance_states]:
            raise ValidationError(f"No active Lifecycle Action found with instance ID {instance_id}")
        backend.terminate_instance(instance_id, should_decrement=False)
        record("CompleteLifecycleAction", group=group_name, hook=hook, instanceId=instance_id,
               token=self._get_param("LifecycleActionToken"), result=self._get_param("LifecycleActionResult"))
        emulate_nat_boot()
        return EmptyResult()

    def emulate_nat_boot() -> None:
        asg = boto3.session.Session(region_name=DEFAULT_REGION, **_CREDENTIALS).client(
            "autoscaling", endpoint_url=f"http://127.0.0.1:{port}")
        for group in asg.describe_auto_scaling_groups()["AutoScalingGroups"]:
            azs = [t["Value"] for t in group.get("Tags", []) if t["Key"] == TAG_NAT_INSTANCE_FOR]
            new = [i["InstanceId"] for i in group["Instances"] if i["LifecycleState"] == "InService"]
            if not azs or not new:
                continue
            enis = ec2_client().describe_network_interfaces(
                Filters=[{"Name": f"tag:{TAG_NAT_ENI_FOR}", "Values": azs}])["NetworkInterfaces"]
            for eni in enis:
                tags = {t["Key"]: t["Value"] for t in eni.get("TagSet", [])}
                attachment = eni.get("Attachment") or {}
                if tags.get(TEST_TAG_NAT_BOOT) == "hold" or attachment.get("InstanceId") == new[0]:
                    continue
                if attachment.get("AttachmentId"):
                    ec2_client().detach_network_interface(AttachmentId=attachment["AttachmentId"], Force=True)
                ec2_client().attach_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"],
                                                      InstanceId=new[0], DeviceIndex=1)
                record("NatBootAttach", eni=eni["NetworkInterfaceId"], instanceId=new[0])

    original_terminate = AutoScalingResponse.terminate_instance_in_auto_scaling_group
    original_replace_route = RouteTables.replace_route

    def terminate_instance_in_auto_scaling_group(self) -> Any:
        out = original_terminate(self)
        record("TerminateInstanceInAutoScalingGroup", instanceId=self._get_param("InstanceId"),
               decrement=self._get_param("ShouldDecrementDesiredCapacity"))
        emulate_nat_boot()
        return out

    def replace_route(self) -> Any:
        out = original_replace_route(self)
        record("ReplaceRoute", routeTableId=self._get_param("RouteTableId"))
        return out

    AutoScalingResponse.complete_lifecycle_action = complete_lifecycle_action
    AutoScalingResponse.terminate_instance_in_auto_scaling_group = terminate_instance_in_auto_scaling_group
    RouteTables.replace_route = replace_route
    _align_moto_step_functions_with_aws()
    main(argv)


def _align_moto_step_functions_with_aws() -> None:
    """Two gaps of moto 5.2.5's Step Functions interpreter that the NAT workflows run into, closed so
    that they behave as documented for AWS (the definitions are not changed for moto):

    * `arn:aws:states:::states:startExecution.sync:2` passes the task's PascalCase parameters
      (StateMachineArn, Input, Name) straight to botocore, which wants stateMachineArn/input/name, and
      hands back camelCase results where AWS gives ExecutionArn, Status, Output, ... Here the keys are
      translated both ways; starting, waiting and failing on a failed child stay moto's own.
    * The same casing gap for `aws-sdk:sfn:*` tasks (listExecutions, describeExecution): closed the
      same way, recursively for the results.
    * A JSONPath with a filter (`[?(...)]`) that matches nothing is `[]` in AWS (an indefinite path);
      moto raises "could not be found" unless the path has `[*]`. Here filters count as indefinite too.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk, state_task_service_sfn)
    from moto.stepfunctions.parser.asl.utils import json_path

    def pascal(d: dict) -> dict:
        return {k[:1].upper() + k[1:]: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in d.items()}

    service = state_task_service_sfn.StateTaskServiceSfn
    original_eval, original_build = service._eval_service_task, service._build_sync2_resolver

    def eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):
        params = {k[:1].lower() + k[1:]: v for k, v in normalised_parameters.items()}
        original_eval(self, env, resource_runtime_part, params, state_credentials)
        env.stack.append(pascal(env.stack.pop()))

    def build_sync2_resolver(self, *args, **kwargs):
        resolve = original_build(self, *args, **kwargs)

        def resolver():
            out = resolve()
            return None if out is None else pascal(out)
        return resolver

    service._eval_service_task = eval_service_task
    service._build_sync2_resolver = build_sync2_resolver

    def pascal_deep(v: Any) -> Any:
        if isinstance(v, dict):
            return {k[:1].upper() + k[1:]: pascal_deep(x) for k, x in v.items()}
        if isinstance(v, list):
            return [pascal_deep(x) for x in v]
        return v.isoformat() if hasattr(v, "isoformat") else v

    sdk = state_task_service_aws_sdk.StateTaskServiceAwsSdk
    original_sdk_eval = sdk._eval_service_task

    def sdk_eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):
        if self._get_boto_service_name() != "stepfunctions":
            return original_sdk_eval(self, env, resource_runtime_part, normalised_parameters, state_credentials)
        params = {k[:1].lower() + k[1:]: v for k, v in normalised_parameters.items()}
        original_sdk_eval(self, env, resource_runtime_part, params, state_credentials)
        env.stack.append(pascal_deep(env.stack.pop()))

    sdk._eval_service_task = sdk_eval_service_task
    wildcard = json_path._contains_slice_or_wildcard_array
    json_path._contains_slice_or_wildcard_array = lambda path: "[?(" in path or wildcard(path)


def _recording_moto_server(workdir: str | os.PathLike, record_name: str, entry: str) -> tuple[MotoServer, Path]:
    """A MotoServer (not started) running moto_env.<entry>, which records calls to `record_name` in
    `workdir`. The launcher is a small script in `workdir` that execs this Python, so the PID
    MotoServer stops is the server's own. It applies moto_aws_compat itself (AWS error names,
    StartTime, timestamps), so a recording server has the same corrections as every other MotoServer;
    aws_compat=False only tells MotoServer not to wrap the launcher a second time."""
    workdir = Path(workdir)
    record_path = workdir / record_name
    launcher = workdir / f"moto-server-{Path(record_name).stem}"
    support = str(Path(__file__).resolve().parent)
    code = (f"import sys; sys.path.insert(0, {support!r}); import moto_aws_compat; moto_aws_compat.apply(); "
            f"import moto_env; moto_env.{entry}({str(record_path)!r}, sys.argv[1:])")
    launcher.write_text(f"#!/bin/sh\nexec {sys.executable!r} -c {json.dumps(code)} \"$@\"\n")
    launcher.chmod(0o755)
    return MotoServer(moto_server_bin=str(launcher), log_path=workdir / "moto.log", aws_compat=False), record_path


def workflows_moto_server(workdir: str | os.PathLike) -> tuple[MotoServer, Path]:
    """A MotoServer (not started) running serve_moto_recording_workflow_calls, and its record file."""
    return _recording_moto_server(workdir, "workflow-calls.jsonl", "serve_moto_recording_workflow_calls")

def read_workflow_calls(record_path: str | os.PathLike) -> list[dict[str, Any]]:
    path = Path(record_path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------------
# The recovery controller (infra/statemachines/nat-recovery.asl.json, infra/recovery.yaml).
#
# moto 5.2.5's SetInstanceHealth only stores the health status; Auto Scaling replaces an instance marked
# Unhealthy (terminate, then launch a new one, the desired capacity unchanged). The recovery server adds
# that replacement (moto's own terminate without decrement), records every SetInstanceHealth with its
# arguments, and is otherwise the NAT workflows' recording server (ReplaceRoute, ..., the sync:2 and
# casing alignments). In AWS the termination also passes the lifecycle hook (the Lifecycle flow); moto
# emits no hook events, so here the instance is replaced directly.

RECOVERY_DEFAULTS = {"CheckPeriodSeconds": "60", "FallbackHoldSeconds": "300", "FallbackHoldCapSeconds": "3600",
                     "MaxAutoFallbacksPerDay": "3", "RepairAfterSeconds": "300", "MaxRepairsPerHour": "2",
                     "MaxLifetimeSeconds": "86400", "MaxIterationsPerExecution": "300"}


def serve_moto_recording_recovery_calls(record_path: str, argv: list[str]) -> None:
    """Entry point of the recovery server process (see recovery_moto_server)."""
    from moto.autoscaling.responses import AutoScalingResponse

    original_set_instance_health = AutoScalingResponse.set_instance_health

    def set_instance_health(self) -> Any:
        out = original_set_instance_health(self)
        instance_id = self._get_param("InstanceId")
        args = {"instanceId": instance_id, "healthStatus": self._get_param("HealthStatus"),
                "shouldRespectGracePeriod": self._get_param("ShouldRespectGracePeriod")}
        group = next((g.name for g in self.autoscaling_backend.autoscaling_groups.values()
                      if instance_id in [s.instance.id for s in g.instance_states]), None)
        if args["healthStatus"] == "Unhealthy" and group is not None:
            self.autoscaling_backend.terminate_instance(instance_id, should_decrement=False)
        with open(record_path, "a") as f:
            f.write(json.dumps({"call": "SetInstanceHealth", "args": {**args, "group": group},
                                "routes": {}, "at": time.time()}) + "\n")
        return out

    AutoScalingResponse.set_instance_health = set_instance_health
    serve_moto_recording_workflow_calls(record_path, argv)


def recovery_moto_server(workdir: str | os.PathLike) -> tuple[MotoServer, Path]:
    """Like workflows_moto_server, with serve_moto_recording_recovery_calls."""
    return _recording_moto_server(workdir, "recovery-calls.jsonl", "serve_moto_recording_recovery_calls")

def serving(server: tuple[MotoServer, Path]) -> Iterator[tuple[MotoServer, Path]]:
    """The body of a fixture that holds a recording server: yields (server, record) while the server
    runs and stops it (by its PID) afterwards: `yield from serving(workflows_moto_server(tmp))`."""
    with server[0]:
        yield server


def reset_recording_server(moto: MotoServer, record: Path) -> tuple[_EndpointSession, Any, Any, Any]:
    """Each test of a recording server (workflows_moto_server, recovery_moto_server) starts from an
    empty moto and an empty record. Returns a session and its EC2, Auto Scaling and Step Functions
    clients."""
    moto.reset()
    record.write_text("")
    session = moto.session()
    return session, session.client("ec2"), session.client("autoscaling"), session.client("stepfunctions")


def create_recovery_state_machine(sfn, fallback_arn: str, deployment: str = "nat-watchdog",
                                  namespace: str = "NatEgressWatchdog", name: str | None = None,
                                  role_arn: str = "arn:aws:iam::123456789012:role/nat-watchdog-recovery",
                                  **knobs: Any) -> str:
    """Create the Recovery state machine from infra/statemachines/nat-recovery.asl.json with the
    substitutions infra/recovery.yaml gives it; `knobs` override RECOVERY_DEFAULTS (e.g.
    CheckPeriodSeconds=1, FallbackHoldSeconds=3 for tests that run in seconds)."""
    subs = {**RECOVERY_DEFAULTS, **{k: str(v) for k, v in knobs.items()},
            "DeploymentName": deployment, "MetricsNamespace": namespace, "FallbackStateMachineArn": fallback_arn}
    return sfn.create_state_machine(name=name or f"{deployment}-nat-recovery",
                                    definition=load_definition("nat-recovery", subs),
                                    roleArn=role_arn, type="STANDARD")["stateMachineArn"]


def failover_succeeded_event(execution_arn: str, state_machine_arn: str, failover_input: dict | None,
                             status: str = "SUCCEEDED", region: str = DEFAULT_REGION) -> dict[str, Any]:
    """The EventBridge event 'Step Functions Execution Status Change' as AWS documents it (Step Functions
    developer guide, 'Automating Step Functions event delivery with EventBridge'): detail.input is the
    execution's input as a JSON string, startDate/stopDate are epoch milliseconds. `failover_input`
    None leaves detail.input out (AWS omits it when it is too large: inputDetails.included false)."""
    now_ms = int(time.time() * 1000)
    detail: dict[str, Any] = {"executionArn": execution_arn, "stateMachineArn": state_machine_arn,
                              "name": execution_arn.rsplit(":", 1)[-1], "status": status,
                              "startDate": now_ms - 1000, "stopDate": now_ms,
                              "inputDetails": {"included": failover_input is not None},
                              "output": "{}", "outputDetails": {"included": True}}
    if failover_input is not None:
        detail["input"] = json.dumps(failover_input)
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states", "account": "123456789012",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": region,
            "resources": [execution_arn], "detail": detail}


# --------------------------------------------------------------------------------------------------
# The housekeeping (infra/statemachines/housekeeping.asl.json, infra/housekeeping.yaml): Paused metric
# and canary /32 routes. EXPRESS in AWS; moto 5.2.5 creates and runs EXPRESS state machines too.

DEFAULT_CANARY_ADDRESSES = ("162.159.36.1", "149.112.112.10")


def create_housekeeping_state_machine(sfn, vpc_id: str, azs: list[str],
                                      canary_addresses: tuple[str, ...] | list[str] = DEFAULT_CANARY_ADDRESSES,
                                      namespace: str = "NatEgressWatchdog", name: str = "nat-watchdog-housekeeping",
                                      role_arn: str = "arn:aws:iam::123456789012:role/nat-watchdog-housekeeping") -> str:
    """Create the Housekeeping state machine with the substitutions infra/housekeeping.yaml gives it
    (CanaryCidrs "a/32,b/32" from the addresses, empty for none)."""
    subs = {"VpcId": vpc_id, "AvailabilityZones": ",".join(azs), "MetricsNamespace": namespace,
            "CanaryCidrs": ",".join(f"{a}/32" for a in canary_addresses)}
    return sfn.create_state_machine(name=name, definition=load_definition("housekeeping", subs),
                                    roleArn=role_arn, type="EXPRESS")["stateMachineArn"]


def route_targets(ec2, route_table_ids: list[str], destination: str) -> dict[str, str | None]:
    """{route table id: target id of its route to `destination` (e.g. "162.159.36.1/32") or None}."""
    tables = ec2.describe_route_tables(RouteTableIds=list(route_table_ids))["RouteTables"]
    out: dict[str, str | None] = {}
    for t in tables:
        out[t["RouteTableId"]] = next(
            (r.get("NetworkInterfaceId") or r.get("NatGatewayId") or r.get("GatewayId") or r.get("InstanceId")
             for r in t.get("Routes", []) if r.get("DestinationCidrBlock") == destination), None)
    return out
