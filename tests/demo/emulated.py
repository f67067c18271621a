"""`make demo` (python -m tests.demo emulated): the watchdog's whole job, on emulated AWS, in about
half a minute.

moto stands in for AWS: a VPC with two AZs, each with a private route table whose 0.0.0.0/0 points
at a NAT instance, a standby NAT Gateway, and the Failover state machine created from the very
infra/statemachines/failover.asl.json that the SAM template deploys. Three local HTTP servers stand in
for the internet. The checker CLI probes them; midway the demo cuts them off (they accept and never
answer, as behind a dead NAT). The timeline shows what an on-call would see: healthy rounds, the
outage and its cause, the Failover execution, and the AZ's route now via the NAT Gateway while the
other AZ is untouched. It ends with the on-call view: `nat-watchdog status` and `nat-watchdog
incidents --since 1h` against the same emulated AWS, after the checker's EMF documents are replayed
into CloudWatch with PutMetricData (moto does not parse EMF).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.lab.checker import CheckerConfigError, Timing, print_config
from tests.support.moto_env import MotoServer, build_vpc, create_state_machines, default_route_targets, wait_execution

AZ, OTHER_AZ = "us-east-1a", "us-east-1b"


class Internet:
    """Three HTTP targets on 127.0.0.1 that can be cut off (connections accepted, never answered)."""

    def __init__(self, count: int = 3):
        self.cut = threading.Event()
        internet = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                if internet.cut.is_set():
                    internet.cut_wait.wait(30)
                    return
                self.send_response(204)
                self.send_header("Connection", "close")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.cut_wait = threading.Event()
        self.servers = [ThreadingHTTPServer(("127.0.0.1", 0), Handler) for _ in range(count)]
        for s in self.servers:
            s.daemon_threads = True
            threading.Thread(target=s.serve_forever, daemon=True).start()
        self.urls = [f"http://127.0.0.1:{s.server_address[1]}/generate_204" for s in self.servers]

    def close(self):
        self.cut_wait.set()
        for s in self.servers:
            s.shutdown()
            s.server_close()


class Timeline:
    def __init__(self):
        self.t0 = time.monotonic()

    def say(self, what: str, mark: str = " "):
        print(f"  {mark} t+{time.monotonic() - self.t0:5.1f}s  {what}", flush=True)


def defaults_line(checker: str) -> str:
    """The checker's timing as the binary states it (--print-config); never restated here."""
    try:
        t = Timing.from_settings(print_config(checker))
    except CheckerConfigError:
        return "checker defaults"
    return (f"checker defaults: a round every {t.interval:g} s, {t.timeout:g} s timeout, "
            f"{t.unhealthy} bad rounds to fail over")


@dataclass
class Demo:
    """What the steps share: the emulated AWS, the VPC, the timeline."""
    moto: MotoServer
    ec2: object
    sfn: object
    arns: dict
    ours: dict
    other: dict
    tl: Timeline | None = None
    emf: list[dict] = field(default_factory=list)

    def routes(self) -> str:
        targets = default_route_targets(self.ec2, self.ours["route_table_ids"] + self.other["route_table_ids"])
        parts = []
        for az, info in ((AZ, self.ours), (OTHER_AZ, self.other)):
            for rtb in info["route_table_ids"]:
                tgt = targets[rtb] or "-"
                kind = "NAT Gateway" if tgt.startswith("nat-") else "NAT instance ENI" if tgt.startswith("eni-") else "?"
                parts.append(f"{az} {rtb}: 0.0.0.0/0 -> {tgt} ({kind})")
        return "\n".join("             " + p for p in parts)

    def first_route(self, info: dict) -> str:
        rtb = info["route_table_ids"][0]
        return default_route_targets(self.ec2, [rtb])[rtb] or ""


def run(checker: str, cut_after: float = 5.0, watchdog: str = "target/debug/nat-watchdog") -> int:
    for what, binary in (("checker", checker), ("nat-watchdog", watchdog)):
        if not Path(binary).exists():
            print(f"demo: {what} binary {binary} not found (make demo builds it)", file=sys.stderr)
            return 2
    print("NAT egress watchdog demo (emulated AWS: moto on 127.0.0.1; internet: 3 local HTTP targets)\n")
    internet = Internet()
    try:
        with MotoServer() as moto:
            demo = set_up(moto)
            ok = outage_detected_and_failed_over(demo, internet, checker, cut_after)
            ok = on_call_view(demo, watchdog) and ok
    finally:
        internet.close()
    return 0 if ok else 1


def set_up(moto: MotoServer) -> Demo:
    """Step 1: a VPC with two AZs routed through NAT instances, and the state machines."""
    session = moto.session()
    ec2, sfn = session.client("ec2"), session.client("stepfunctions")
    vpc = build_vpc(ec2, [AZ, OTHER_AZ], route_tables_per_az=1, with_unmanaged=False)
    demo = Demo(moto, ec2, sfn, create_state_machines(session), vpc[AZ], vpc[OTHER_AZ])
    print("Emulated VPC before the outage:")
    print(demo.routes())
    print(f"Failover state machine: {demo.arns['failover']}\n")
    return demo


def outage_detected_and_failed_over(demo: Demo, internet: Internet, checker: str, cut_after: float) -> bool:
    """Step 2: the checker probes, the targets are cut off, the outage is detected, the Failover
    execution moves this AZ's route to its NAT Gateway; the other AZ is untouched."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        **demo.moto.env(),
        "CHECK_URLS": ",".join(internet.urls),
        "FAILOVER_STATE_MACHINE_ARN": demo.arns["failover"],
        "AVAILABILITY_ZONE": AZ,
        "SUBNET_ID": demo.ours["private_subnet_id"],
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "RUST_LOG": "debug",
    }
    tl = demo.tl = Timeline()
    print(f"Timeline ({defaults_line(checker)}):")
    proc = subprocess.Popen([checker, "--duration", "30"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    emf_lines: list[str] = []
    threading.Thread(target=lambda: emf_lines.extend(proc.stdout), daemon=True).start()

    good_rounds = 0
    cut_at = None
    execution_arn = None
    restored = False
    for line in proc.stderr:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        kind = ev.get("event")
        if kind == "round" and ev.get("good") and cut_at is None:
            good_rounds += 1
            if good_rounds == 1:
                tl.say(f"healthy: {ev['succeeded']}/3 targets answered (round {ev['round']})")
            if time.monotonic() - tl.t0 >= cut_after:
                tl.say(f"healthy for {good_rounds} rounds; cutting the targets off now (they stop answering)", "!")
                internet.cut.set()
                cut_at = time.monotonic()
        elif kind == "verdict_changed" and ev.get("to") == "unhealthy":
            tl.say(f"OUTAGE DETECTED {time.monotonic() - cut_at:.1f} s after the cut: {ev.get('failed_targets')}", "X")
        elif kind == "failover_started":
            tl.say(f"Failover execution started: {ev['execution_name']}", ">")
            execution_arn = ev["execution_arn"]
            result = wait_execution(demo.sfn, execution_arn, timeout=30)
            tl.say(f"Failover execution {result['status']}", ">")
            print("Routes now:")
            print(demo.routes())
            tl.say("restoring the targets (say, the NAT Gateway path now carries the traffic)", "!")
            internet.cut.clear()
            internet.cut_wait.set()
            restored = True
        elif kind in ("failover_failed",):
            tl.say(f"failover FAILED: {ev.get('error')}", "X")
        elif kind == "verdict_changed" and ev.get("to") == "healthy" and restored:
            tl.say("egress healthy again; stopping the checker", "+")
            proc.terminate()
        elif kind == "run_finished":
            tl.say(f"checker stopped: {ev['rounds']} rounds, {ev['probes']} probes, {ev['failures']} failures")
    rc = proc.wait(timeout=15)
    time.sleep(0.2)

    failed_over = execution_arn is not None and demo.first_route(demo.ours).startswith("nat-")
    untouched = demo.first_route(demo.other).startswith("eni-")
    causes: dict[str, float] = {}
    demo.emf = [json.loads(l) for l in emf_lines]
    for doc in demo.emf:
        for k, v in doc.items():
            if k.startswith("ProbeFailure") and k != "ProbeFailure":
                causes[k] = causes.get(k, 0) + (sum(v) if isinstance(v, list) else v)
    print(f"\nEMF on stdout: {len(emf_lines)} documents; failures by cause: "
          + ", ".join(f"{k[len('ProbeFailure'):]}={int(v)}" for k, v in sorted(causes.items()) if v))
    ok = rc == 0 and failed_over and untouched
    print(f"\nResult: {'OK' if ok else 'FAILED'} - {AZ} failed over to its NAT Gateway: {failed_over}; "
          f"{OTHER_AZ} untouched: {untouched}; checker exit code {rc}")
    return ok


def replay_emf(cloudwatch, docs: list[dict]) -> int:
    """PutMetricData for each EMF document, as CloudWatch would have extracted it: its namespace,
    its AvailabilityZone dimension, its timestamp; Count metrics summed, others (latency, Unhealthy)
    as their list of values. Returns the number of data points written."""
    written = 0
    for doc in docs:
        meta = doc["_aws"]
        directive = meta["CloudWatchMetrics"][0]
        when = datetime.fromtimestamp(meta["Timestamp"] / 1000, timezone.utc)
        dims = [{"Name": "AvailabilityZone", "Value": doc["AvailabilityZone"]}]
        data = []
        for m in directive["Metrics"]:
            raw = doc.get(m["Name"])
            values = raw if isinstance(raw, list) else [] if raw is None else [raw]
            if not values:
                continue
            datum = {"MetricName": m["Name"], "Dimensions": dims, "Timestamp": when, "Unit": m.get("Unit", "None")}
            if datum["Unit"] == "Count":
                datum["Value"] = float(sum(values))
            else:
                datum["Values"] = [float(v) for v in values]
            data.append(datum)
        if data:
            cloudwatch.put_metric_data(Namespace=directive["Namespace"], MetricData=data)
            written += len(data)
    return written


def on_call_view(demo: Demo, watchdog: str) -> bool:
    """Final step: what the on-call sees afterwards, `nat-watchdog status` and `nat-watchdog incidents`
    against this same emulated AWS. `status` exits 1 when an AZ is on a NAT gateway, as here: exit
    codes 0 and 1 are a screen, anything else is a failure of the demo."""
    namespace = demo.emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] if demo.emf else None
    points = replay_emf(demo.moto.session().client("cloudwatch"), demo.emf)
    print(f"\nOn call: the checker's {len(demo.emf)} EMF documents replayed into CloudWatch "
          f"({points} data points; moto does not parse EMF); only {AZ} has a checker here, "
          f"so {OTHER_AZ} reads as silent")
    args = [watchdog, "--vpc", demo.ours["vpc_id"], "--failover-arn", demo.arns["failover"],
            "--fallback-arn", demo.arns["fallback"]] + (["--namespace", namespace] if namespace else [])
    env = {"PATH": os.environ.get("PATH", ""), **demo.moto.env()}
    ok = True
    for command in (["status"], ["incidents", "--since", "1h"]):
        print(f"\n$ nat-watchdog {' '.join(command)}", flush=True)
        proc = subprocess.run(args + command, env=env, capture_output=True, text=True, timeout=60)
        print(proc.stdout, end="")
        print(proc.stderr, end="", file=sys.stderr)
        if proc.returncode not in (0, 1):
            print(f"demo: nat-watchdog {command[0]} exited {proc.returncode}", file=sys.stderr)
            ok = False
    return ok
