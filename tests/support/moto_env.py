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
from typing import Any

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


def build_vpc(ec2, azs: list[str], route_tables_per_az: int = 2, with_unmanaged: bool = True,
              cidr: str = "10.0.0.0/16") -> dict[str, dict[str, Any]]:
    """A VPC with, in every AZ: a public subnet holding a running NAT instance and a standby NAT
    Gateway, a private subnet, and `route_tables_per_az` private route tables whose 0.0.0.0/0 goes to
    the NAT instance's primary ENI, all tagged as the state machines expect.

    Returns {az: {"vpc_id", "public_subnet_id", "private_subnet_id", "nat_instance_id", "nat_eni_id",
    "standby_nat_gateway_id", "route_table_ids": [...]}}. With `with_unmanaged`, the first AZ's entry
    also has "unmanaged_route_table_id": an untagged table with its 0.0.0.0/0 to the same NAT
    instance, which no state machine may touch.
    """
    vpc_id = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    public_rtb = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    image_id = _any_image_id(ec2)
    prefix = cidr.split(".")[0] + "." + cidr.split(".")[1]

    out: dict[str, dict[str, Any]] = {}
    for i, az in enumerate(azs):
        public = ec2.create_subnet(VpcId=vpc_id, AvailabilityZone=az,
                                   CidrBlock=f"{prefix}.{i * 2}.0/24")["Subnet"]["SubnetId"]
        private = ec2.create_subnet(VpcId=vpc_id, AvailabilityZone=az,
                                    CidrBlock=f"{prefix}.{i * 2 + 1}.0/24")["Subnet"]["SubnetId"]
        ec2.associate_route_table(RouteTableId=public_rtb, SubnetId=public)

        inst = ec2.run_instances(
            ImageId=image_id, InstanceType="t4g.nano", MinCount=1, MaxCount=1, SubnetId=public,
            TagSpecifications=[{"ResourceType": "instance",
                                "Tags": _tags({"Name": f"nat-instance-{az}", TAG_NAT_INSTANCE_FOR: az})}],
        )["Instances"][0]
        instance_id = inst["InstanceId"]
        eni_id = inst["NetworkInterfaces"][0]["NetworkInterfaceId"]
        ec2.modify_instance_attribute(InstanceId=instance_id, SourceDestCheck={"Value": False})

        alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
        natgw = ec2.create_nat_gateway(
            SubnetId=public, AllocationId=alloc,
            TagSpecifications=[{"ResourceType": "natgateway",
                                "Tags": _tags({"Name": f"standby-{az}", TAG_STANDBY_FOR: az})}],
        )["NatGateway"]["NatGatewayId"]

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
