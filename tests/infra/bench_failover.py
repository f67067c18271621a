"""`make bench-failover`: the Failover path before and after the shorter one, in moto.

Runs the Failover definition of the working tree and the one of a baseline commit (default: 31da513,
the last commit before the Parallel discovery) against the same emulated VPC (1 AZ, 2 managed route
tables), N executions each with {"availabilityZone": AZ}, and writes docs/bench/failover-path.md:
sequential EC2 calls before the first ReplaceRoute (read from the definition, tests/infra/asl_paths.py),
EC2 calls and state transitions per execution (from the execution history), and the time from the
execution's start to its first ReplaceRoute and to its end (history timestamps).

moto answers EC2 calls on loopback, without AWS's network and service latency, so the durations mostly measure Step
Functions' own state-transition overhead as moto emulates it; in AWS each sequential EC2 call adds its
own round trip (tens to hundreds of ms), which is what the sequential-call count stands for.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "support"))

from asl_paths import sequential_calls_to  # noqa: E402
from machine import cpu_model  # noqa: E402
from moto_env import MotoServer, build_vpc, default_route_targets, run_execution  # noqa: E402

AZ = "us-east-1a"


def definition_at(rev: str | None, vpc_id: str) -> str:
    rel = "infra/statemachines/failover.asl.json"
    text = (ROOT / rel).read_text() if rev is None else subprocess.check_output(
        ["git", "-C", str(ROOT), "show", f"{rev}:{rel}"], text=True)
    return text.replace("${FallbackNatGatewayId}", "").replace("${VpcId}", vpc_id)


def machine() -> str:
    return f"{platform.machine()}, {cpu_model('unknown CPU')}, {os.cpu_count()} cores, Linux {platform.release()}"


def measure(moto: MotoServer, definition: str, runs: int) -> dict:
    moto.reset()
    session = moto.session()
    ec2, sfn = session.client("ec2"), session.client("stepfunctions")
    vpc = build_vpc(ec2, [AZ], with_unmanaged=False)[AZ]
    text = definition.replace("__VPC__", vpc["vpc_id"])
    arn = sfn.create_state_machine(name=f"bench-{uuid.uuid4().hex[:8]}", definition=text,
                                   roleArn="arn:aws:iam::123456789012:role/bench", type="STANDARD")["stateMachineArn"]
    to_first, total, calls, transitions = [], [], [], []
    for _ in range(runs):
        # Back on the NAT instance before every run, so each run really moves both routes.
        for rtb in vpc["route_table_ids"]:
            ec2.replace_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=vpc["nat_eni_id"])
        result = run_execution(sfn, arn, {"availabilityZone": AZ}, timeout=120)
        assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
        assert set(default_route_targets(ec2, vpc["route_table_ids"]).values()) == {vpc["standby_nat_gateway_id"]}
        events = sfn.get_execution_history(executionArn=result["executionArn"], maxResults=1000)["events"]
        start = events[0]["timestamp"]
        first_replace = min(e["timestamp"] for e in events if e["type"] == "TaskSucceeded"
                            and e["taskSucceededEventDetails"]["resource"] == "replaceRoute")
        to_first.append((first_replace - start).total_seconds() * 1000)
        total.append((events[-1]["timestamp"] - start).total_seconds() * 1000)
        calls.append(sum(1 for e in events if e["type"] == "TaskScheduled"))
        transitions.append(sum(1 for e in events if e["type"].endswith("StateEntered")))
    parsed = json.loads(text)
    return {"sequential": sequential_calls_to(parsed["States"], parsed["StartAt"]), "to_first": to_first,
            "total": total, "calls": statistics.median(calls), "transitions": statistics.median(transitions)}


def ms(values: list[float]) -> str:
    q = statistics.quantiles(values, n=10) if len(values) >= 2 else values * 9
    return f"{statistics.median(values):.0f} ms (p90 {q[8]:.0f} ms)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", default="31da513", help="commit whose Failover definition is 'before'")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--out", default=str(ROOT / "docs" / "bench" / "failover-path.md"))
    args = ap.parse_args()
    head = subprocess.check_output(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], text=True).strip()
    with MotoServer() as moto:
        before = measure(moto, definition_at(args.baseline, "__VPC__"), args.runs)
        after = measure(moto, definition_at(None, "__VPC__"), args.runs)
    import moto as moto_pkg
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## The Failover path, before and after (`make bench-failover`)",
        "",
        f"Measured {now} on {machine()}; moto {moto_pkg.__version__} with Step Functions execution on "
        f"(tests/support/moto_env.py, aws_compat). Generated by tests/infra/bench_failover.py; do not edit by hand.",
        "",
        f"Method: the Failover definition of commit {args.baseline} (before) and of the working tree at {head} "
        f"(after), each created through the API and run {args.runs} times with "
        f'`{{"availabilityZone":"{AZ}"}}` against one emulated VPC (1 AZ, 2 managed route tables, the AZ\'s '
        "standby NAT Gateway); the routes are put back on the NAT instance before every run and checked on "
        "the gateway after it. Sequential EC2 calls are read from the definition (tests/infra/asl_paths.py: "
        "the longest chain of Task states up to the first ReplaceRoute, a Parallel counting as its deepest "
        "branch); calls, transitions and times from each execution's history.",
        "",
        "| | before | after |",
        "|---|---|---|",
        f"| sequential EC2 calls up to and including the first ReplaceRoute | {before['sequential']} | {after['sequential']} |",
        f"| EC2 calls per execution (median) | {before['calls']:.0f} | {after['calls']:.0f} |",
        f"| states entered per execution (median) | {before['transitions']:.0f} | {after['transitions']:.0f} |",
        f"| execution start → first ReplaceRoute done, in moto | {ms(before['to_first'])} | {ms(after['to_first'])} |",
        f"| execution start → end, in moto | {ms(before['total'])} | {ms(after['total'])} |",
        "",
        "moto answers an EC2 call on loopback, without the network and service latency of AWS, so the moto times mostly measure state "
        "transitions as moto emulates them; in AWS each *sequential* EC2 call adds a round trip of tens to "
        "hundreds of milliseconds, so the first row is the one that carries over. The after path enters more "
        "states (the standby is picked per table by Choice/Pass states, because a JSONPath filter that "
        "matches nothing is an uncatchable States.Runtime error), none of which calls EC2.",
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
