#!/usr/bin/env python3
"""What `make deploy` checks before deploying, and what it passes on.

CloudFormation's Rules can check that every subnet is in the VPC, but not that each subnet is in the AZ
written beside it (they cannot compare two lists position by position, nor read a subnet's AZ id), and
a swapped list would make a checker fail over the wrong AZ. So, with the deployer's credentials:

  * every subnet exists, is in VPC_ID, and is in the AZ beside it (name like us-east-1a or id like
    use1-az1, whichever form AZS uses), 2-6 subnets, one per AZ;
  * the VPC's primary CIDR is looked up (the Step Functions endpoint admits it, see infra/README.md);
  * the (subnet, AZ) pairs are put in AZ order, so that listing the same subnets in another order
    does not move a checker to another nested stack (Checker1..6 are keyed by position; logical ids
    cannot be keyed by AZ without Fn::ForEach).

Prints the parameter overrides, one `Key=Value` per line; exit 2 with one line naming the problem.
"""

from __future__ import annotations

import argparse
import sys


class PreflightError(Exception):
    pass


def check(ec2, vpc_id: str, subnets: list[str], azs: list[str]) -> dict[str, str]:
    if len(subnets) != len(azs) or not 2 <= len(subnets) <= 6:
        raise PreflightError(f"SUBNETS has {len(subnets)} entries and AZS has {len(azs)}; give 2-6 subnets "
                             "and the AZ of each, in the same order")
    if len(set(subnets)) != len(subnets) or len(set(azs)) != len(azs):
        raise PreflightError("SUBNETS and AZS must not repeat an entry (one private subnet per AZ)")
    vpcs = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
    found = {s["SubnetId"]: s for s in ec2.describe_subnets(SubnetIds=subnets)["Subnets"]}
    for subnet, az in zip(subnets, azs):
        s = found.get(subnet)
        if s is None:
            raise PreflightError(f"subnet {subnet} does not exist in this account and region")
        if s["VpcId"] != vpc_id:
            raise PreflightError(f"subnet {subnet} is in {s['VpcId']}, not in VPC_ID {vpc_id}")
        if az not in (s["AvailabilityZone"], s.get("AvailabilityZoneId")):
            raise PreflightError(f"subnet {subnet} is in {s['AvailabilityZone']} ({s.get('AvailabilityZoneId')}), "
                                 f"but AZS lists {az} beside it")
    pairs = sorted(zip(subnets, azs), key=lambda p: p[1])
    return {"VpcCidr": vpcs[0]["CidrBlock"],
            "PrivateSubnetIds": ",".join(p[0] for p in pairs),
            "AvailabilityZones": ",".join(p[1] for p in pairs)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vpc", required=True)
    ap.add_argument("--subnets", required=True)
    ap.add_argument("--azs", required=True)
    ap.add_argument("--region", required=True)
    ap.add_argument("--endpoint-url", default=None, help="for tests (an emulated EC2)")
    args = ap.parse_args(argv)
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    ec2 = boto3.client("ec2", region_name=args.region, endpoint_url=args.endpoint_url)
    split = lambda v: [x.strip() for x in v.split(",") if x.strip()]  # noqa: E731
    try:
        params = check(ec2, args.vpc, split(args.subnets), split(args.azs))
    except PreflightError as e:
        print(f"make deploy: {e}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as e:
        print(f"make deploy: cannot check the VPC and subnets: {e}", file=sys.stderr)
        return 2
    for k, v in params.items():
        print(f"{k}={v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
