"""The route follower of the closed loop: the private host's kernel routes follow one route table of
the emulated VPC, as the VPC router follows the real one.

    python -m tests.lab.follower --endpoint URL --route-table rtb-… --netns NS --src IP \\
        --target eni-…=198.18.10.1@dev --target nat-…=198.18.12.1@dev [--interval 0.025] [--region R]

Every --interval seconds it calls DescribeRouteTables for that one table (moto on 127.0.0.1: the
follower stands for the VPC router, not for a workload, so it talks to moto directly), maps every
IPv4 route whose target it knows to a next hop in namespace NS (`ip route replace DEST via HOP dev
DEV src IP`), and applies only what changed since its last poll. A route whose target it does not
know (an unmapped ENI, a deleted gateway) becomes a kernel blackhole, as AWS marks such a route
"blackhole"; the table's `local` route is the subnet itself and is left alone.

Output, one JSON object per line on stdout: `applied` for each kernel change (the poll's start, when
the answer came, when the kernel route was in place), `poll_error` when a call failed (the follower
keeps polling), and `latency` every few seconds and at exit (SIGTERM/SIGINT) with the poll latency's
median, p99 and max: the follower's own share of the loop, measured rather than assumed.

The mapping and the diff (`kernel_routes`, `plan`) are pure functions, tested in test_follower.py.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

BLACKHOLE = "blackhole"


@dataclass(frozen=True)
class Hop:
    """A kernel next hop: `via` on `dev`, or a blackhole (via == dev == "")."""
    via: str
    dev: str

    @property
    def is_blackhole(self) -> bool:
        return not self.via

    def describe(self) -> str:
        return BLACKHOLE if self.is_blackhole else f"via {self.via} dev {self.dev}"


BLACKHOLE_HOP = Hop("", "")
_TARGET_KEYS = ("NatGatewayId", "NetworkInterfaceId", "GatewayId", "InstanceId", "TransitGatewayId",
                "VpcPeeringConnectionId", "EgressOnlyInternetGatewayId", "LocalGatewayId", "CarrierGatewayId")


def route_target(route: dict) -> str | None:
    """The id a DescribeRouteTables route points at (nat-…, eni-…, igw-…, local, …), or None."""
    for k in _TARGET_KEYS:
        if route.get(k):
            return route[k]
    return None


def kernel_routes(routes: list[dict], targets: dict[str, Hop]) -> dict[str, tuple[str, Hop]]:
    """{destination CIDR: (route-table target id, kernel hop)} for a route table's IPv4 routes.

    `targets` maps a target id to its hop. The `local` route (the VPC's own range) is not a kernel
    route of the subnet's host and is skipped, as are IPv6 and prefix-list routes. A target not in
    `targets` is a blackhole; so is a route AWS itself reports in state "blackhole"."""
    out: dict[str, tuple[str, Hop]] = {}
    for r in routes:
        dest = r.get("DestinationCidrBlock")
        if not dest:
            continue
        tgt = route_target(r)
        if tgt == "local":
            continue
        hop = targets.get(tgt or "", BLACKHOLE_HOP)
        if r.get("State") == "blackhole":
            hop = BLACKHOLE_HOP
        out[_kernel_dest(dest)] = (tgt or "?", hop)
    return out


def _kernel_dest(cidr: str) -> str:
    return "default" if cidr == "0.0.0.0/0" else cidr


def plan(current: dict[str, tuple[str, Hop]], desired: dict[str, tuple[str, Hop]]) -> list[tuple[str, str, Hop | None]]:
    """The kernel changes that take `current` (what the follower applied last) to `desired`:
    ("replace", dest, hop) for a new or changed hop, ("delete", dest, None) for a route gone from the
    table. Replacements come first (in the table's order), the default route before the others, so
    the route that carries the egress moves in the very first command."""
    ops: list[tuple[str, str, Hop | None]] = []
    order = sorted(desired, key=lambda d: d != "default")
    for dest in order:
        if dest not in current or current[dest][1] != desired[dest][1]:
            ops.append(("replace", dest, desired[dest][1]))
    for dest in current:
        if dest not in desired:
            ops.append(("delete", dest, None))
    return ops


def ip_command(netns: str, op: str, dest: str, hop: Hop | None, src: str) -> list[str]:
    """The `ip` command of one planned change in namespace `netns`."""
    if op == "delete":
        return ["ip", "-n", netns, "route", "delete", dest]
    assert hop is not None
    if hop.is_blackhole:
        return ["ip", "-n", netns, "route", "replace", "blackhole", dest]
    return ["ip", "-n", netns, "route", "replace", dest, "via", hop.via, "dev", hop.dev] + (["src", src] if src else [])


def parse_target(spec: str) -> tuple[str, Hop]:
    """--target ID=VIA@DEV"""
    ident, sep, rest = spec.partition("=")
    via, sep2, dev = rest.partition("@")
    if not (ident and sep and via and sep2 and dev):
        raise argparse.ArgumentTypeError(f"--target {spec!r}: expected ID=VIA@DEV (eni-1234=198.18.10.1@veth0)")
    return ident, Hop(via, dev)


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


class Follower:
    def __init__(self, args: argparse.Namespace):
        import boto3
        from botocore.config import Config
        self.args = args
        self.targets = dict(args.target)
        cfg = Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=2)
        self.ec2 = boto3.session.Session(region_name=args.region, aws_access_key_id="testing",
                                         aws_secret_access_key="testing").client(
            "ec2", endpoint_url=args.endpoint, config=cfg)
        self.current: dict[str, tuple[str, Hop]] = {}
        self.latencies: list[float] = []
        self.window: list[float] = []
        self.stopped = False

    def emit(self, **kv) -> None:
        sys.stdout.write(json.dumps(kv) + "\n")
        sys.stdout.flush()

    def poll_once(self) -> None:
        t0 = time.time()
        try:
            r = self.ec2.describe_route_tables(RouteTableIds=[self.args.route_table])
        except Exception as e:  # noqa: BLE001 - the follower never stops because a call failed
            self.emit(event="poll_error", t=t0, error=f"{type(e).__name__}: {e}"[:300])
            return
        t1 = time.time()
        self.latencies.append(t1 - t0)
        self.window.append(t1 - t0)
        tables = r.get("RouteTables") or []
        if not tables:
            self.emit(event="poll_error", t=t0, error=f"route table {self.args.route_table} not found")
            return
        desired = kernel_routes(tables[0].get("Routes", []), self.targets)
        for op, dest, hop in plan(self.current, desired):
            cmd = ip_command(self.args.netns, op, dest, hop, self.args.src)
            p = subprocess.run(cmd, capture_output=True, text=True)
            t2 = time.time()
            if p.returncode != 0:
                self.emit(event="apply_error", t=t2, dest=dest, cmd=" ".join(cmd), error=p.stderr.strip()[:300])
                continue
            if op == "delete":
                self.current.pop(dest, None)
            else:
                self.current[dest] = desired[dest]
            self.emit(event="applied", op=op, dest=dest, target=desired.get(dest, ("", None))[0],
                      hop=hop.describe() if hop else None, t_poll=t0, t_seen=t1, t_applied=t2)

    def latency_line(self, xs: list[float], final: bool = False) -> None:
        if xs:
            self.emit(event="latency", final=final, n=len(xs), median_s=round(pct(xs, 50), 4),
                      p99_s=round(pct(xs, 99), 4), max_s=round(max(xs), 4), interval_s=self.args.interval)

    def run(self) -> int:
        def stop(*_):
            self.stopped = True
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, stop)
        self.emit(event="started", t=time.time(), route_table=self.args.route_table,
                  targets={k: v.describe() for k, v in self.targets.items()}, interval_s=self.args.interval)
        last_report = time.time()
        while not self.stopped:
            t0 = time.time()
            self.poll_once()
            if time.time() - last_report >= 5:
                self.latency_line(self.window)
                self.window, last_report = [], time.time()
            time.sleep(max(0.0, self.args.interval - (time.time() - t0)))
        self.latency_line(self.latencies, final=True)
        return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", required=True, help="moto's URL (127.0.0.1)")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--route-table", required=True)
    ap.add_argument("--netns", required=True, help="the private host's namespace")
    ap.add_argument("--src", default="", help="source address of the kernel routes (the host's own)")
    ap.add_argument("--target", type=parse_target, action="append", default=[], required=True,
                    help="ID=VIA@DEV: a route-table target and its next hop in the namespace (repeatable)")
    ap.add_argument("--interval", type=float, default=0.025, help="seconds between polls' starts")
    args = ap.parse_args(argv)
    if args.interval <= 0:
        ap.error(f"--interval must be positive, not {args.interval:g}")
    return Follower(args).run()


if __name__ == "__main__":
    sys.exit(main())
