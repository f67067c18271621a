"""infra/preflight.py (run by `make deploy`) against moto: a swapped subnet/AZ list, a subnet of another
VPC and a wrong count are refused with one line naming the problem; a good list comes back in AZ order
with the VPC's CIDR."""

from __future__ import annotations

import subprocess
import sys

import pytest

from moto_env import build_vpc
from template_eval import INFRA

AZS = ["us-east-1b", "us-east-1a", "us-east-1c"]


@pytest.fixture()
def vpcs(moto):
    moto.reset()
    ec2 = moto.session().client("ec2")
    return moto, build_vpc(ec2, AZS, cidr="10.0.0.0/16"), build_vpc(ec2, AZS, cidr="10.1.0.0/16")


def preflight(moto, vpc_id, subnets, azs):
    env = {**moto.env(), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(INFRA / "preflight.py"), "--vpc", vpc_id, "--subnets", ",".join(subnets),
                           "--azs", ",".join(azs), "--region", moto.region, "--endpoint-url", moto.url],
                          capture_output=True, text=True, env=env, timeout=60)


def test_a_good_list_comes_back_in_az_order_with_the_vpc_cidr(vpcs):
    moto, prod, _ = vpcs
    subnets = [prod[az]["private_subnet_id"] for az in AZS]
    r = preflight(moto, prod[AZS[0]]["vpc_id"], subnets, AZS)
    assert r.returncode == 0, r.stderr
    out = dict(line.split("=", 1) for line in r.stdout.splitlines())
    order = sorted(AZS)
    assert out == {"VpcCidr": "10.0.0.0/16",
                   "PrivateSubnetIds": ",".join(prod[az]["private_subnet_id"] for az in order),
                   "AvailabilityZones": ",".join(order)}


def test_az_ids_are_accepted(vpcs):
    moto, prod, _ = vpcs
    ec2 = moto.session().client("ec2")
    subnets = [prod[az]["private_subnet_id"] for az in AZS[:2]]
    ids = [s["AvailabilityZoneId"] for s in ec2.describe_subnets(SubnetIds=subnets)["Subnets"]]
    by_subnet = dict(zip([s["SubnetId"] for s in ec2.describe_subnets(SubnetIds=subnets)["Subnets"]], ids))
    r = preflight(moto, prod[AZS[0]]["vpc_id"], subnets, [by_subnet[s] for s in subnets])
    assert r.returncode == 0, r.stderr


def test_a_swapped_list_is_refused(vpcs):
    moto, prod, _ = vpcs
    subnets = [prod[az]["private_subnet_id"] for az in AZS]
    swapped = [AZS[1], AZS[0], AZS[2]]
    r = preflight(moto, prod[AZS[0]]["vpc_id"], subnets, swapped)
    assert r.returncode == 2 and r.stdout == ""
    assert f"subnet {subnets[0]} is in {AZS[0]}" in r.stderr and f"AZS lists {AZS[1]} beside it" in r.stderr


def test_a_subnet_of_another_vpc_or_a_wrong_count_is_refused(vpcs):
    moto, prod, staging = vpcs
    vpc_id = prod[AZS[0]]["vpc_id"]
    r = preflight(moto, vpc_id, [prod[AZS[0]]["private_subnet_id"], staging[AZS[1]]["private_subnet_id"]], AZS[:2])
    assert r.returncode == 2 and f"not in VPC_ID {vpc_id}" in r.stderr
    r = preflight(moto, vpc_id, [prod[AZS[0]]["private_subnet_id"]], AZS[:1])
    assert r.returncode == 2 and "give 2-6 subnets" in r.stderr
    r = preflight(moto, vpc_id, [prod[AZS[0]]["private_subnet_id"], "subnet-0000000000000dead"], AZS[:2])
    assert r.returncode == 2 and "make deploy:" in r.stderr
