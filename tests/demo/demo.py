"""`make demo`: the watchdog's whole job, on emulated AWS, in about half a minute.

moto stands in for AWS: a VPC with two AZs, each with a private route table whose 0.0.0.0/0 points
at a NAT instance, a standby NAT Gateway, and the Failover state machine created from the very
infra/statemachines/failover.asl.json that the SAM template deploys. Three local HTTP servers stand in
for the internet. The checker CLI probes them; midway the demo cuts them off (they accept and never
answer, as behind a dead NAT). The timeline shows what an on-call would see: healthy rounds, the
outage and its cause, the Failover execution, and the AZ's route now via the NAT Gateway while the
other AZ is untouched.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "support"))

from moto_env import MotoServer, build_vpc, create_state_machines, default_route_targets, wait_execution  # noqa: E402

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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checker", default=str(REPO / "target" / "debug" / "connectivity-checker"))
    ap.add_argument("--cut-after", type=float, default=5.0, help="seconds of health before the cut")
    args = ap.parse_args()
    if not Path(args.checker).exists():
        print(f"demo: checker binary {args.checker} not found (make demo builds it)", file=sys.stderr)
        return 2

    print("NAT egress watchdog demo (emulated AWS: moto on 127.0.0.1; internet: 3 local HTTP targets)\n")
    internet = Internet()
    checker = None
    with MotoServer() as moto:
        session = moto.session()
        ec2, sfn = session.client("ec2"), session.client("stepfunctions")
        vpc = build_vpc(ec2, [AZ, OTHER_AZ], route_tables_per_az=1, with_unmanaged=False)
        arns = create_state_machines(session)
        ours, other = vpc[AZ], vpc[OTHER_AZ]
        tables = ours["route_table_ids"] + other["route_table_ids"]

        def routes() -> str:
            targets = default_route_targets(ec2, tables)
            parts = []
            for az, info in ((AZ, ours), (OTHER_AZ, other)):
                for rtb in info["route_table_ids"]:
                    tgt = targets[rtb] or "-"
                    kind = "NAT Gateway" if tgt.startswith("nat-") else "NAT instance ENI" if tgt.startswith("eni-") else "?"
                    parts.append(f"{az} {rtb}: 0.0.0.0/0 -> {tgt} ({kind})")
            return "\n".join("             " + p for p in parts)

        print("Emulated VPC before the outage:")
        print(routes())
        print(f"Failover state machine: {arns['failover']}\n")

        env = {
            "PATH": os.environ.get("PATH", ""),
            **moto.env(),
            "CHECK_URLS": ",".join(internet.urls),
            "FAILOVER_STATE_MACHINE_ARN": arns["failover"],
            "AVAILABILITY_ZONE": AZ,
            "SUBNET_ID": ours["private_subnet_id"],
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
            "RUST_LOG": "debug",
        }
        tl = Timeline()
        print("Timeline (checker defaults: a round every 0.4 s, 0.8 s timeout, 3 bad rounds to fail over):")
        checker = subprocess.Popen([args.checker, "--duration", "30"], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        emf_lines: list[str] = []
        threading.Thread(target=lambda: emf_lines.extend(checker.stdout), daemon=True).start()

        good_rounds = 0
        cut_at = None
        execution_arn = None
        restored = False
        for line in checker.stderr:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            kind = ev.get("event")
            if kind == "round" and ev.get("good") and cut_at is None:
                good_rounds += 1
                if good_rounds == 1:
                    tl.say(f"healthy: {ev['succeeded']}/3 targets answered (round {ev['round']})")
                if time.monotonic() - tl.t0 >= args.cut_after:
                    tl.say(f"healthy for {good_rounds} rounds; cutting the targets off now (they stop answering)", "!")
                    internet.cut.set()
                    cut_at = time.monotonic()
            elif kind == "verdict_changed" and ev.get("to") == "unhealthy":
                tl.say(f"OUTAGE DETECTED {time.monotonic() - cut_at:.1f} s after the cut: {ev.get('failed_targets')}", "X")
            elif kind == "failover_started":
                tl.say(f"Failover execution started: {ev['execution_name']}", ">")
                execution_arn = ev["execution_arn"]
                result = wait_execution(sfn, execution_arn, timeout=30)
                tl.say(f"Failover execution {result['status']}", ">")
                print("Routes now:")
                print(routes())
                tl.say("restoring the targets (say, the NAT Gateway path now carries the traffic)", "!")
                internet.cut.clear()
                internet.cut_wait.set()
                restored = True
            elif kind in ("failover_failed",):
                tl.say(f"failover FAILED: {ev.get('error')}", "X")
            elif kind == "verdict_changed" and ev.get("to") == "healthy" and restored:
                tl.say("egress healthy again; stopping the checker", "+")
                checker.terminate()
            elif kind == "run_finished":
                tl.say(f"checker stopped: {ev['rounds']} rounds, {ev['probes']} probes, {ev['failures']} failures")
        rc = checker.wait(timeout=15)
        time.sleep(0.2)

        failed_over = execution_arn is not None and default_route_targets(ec2, ours["route_table_ids"])[ours["route_table_ids"][0]].startswith("nat-")
        untouched = default_route_targets(ec2, other["route_table_ids"])[other["route_table_ids"][0]].startswith("eni-")
        causes: dict[str, float] = {}
        for l in emf_lines:
            doc = json.loads(l)
            for k, v in doc.items():
                if k.startswith("ProbeFailure") and k != "ProbeFailure":
                    causes[k] = causes.get(k, 0) + (sum(v) if isinstance(v, list) else v)
        print(f"\nEMF on stdout: {len(emf_lines)} documents; failures by cause: "
              + ", ".join(f"{k[len('ProbeFailure'):]}={int(v)}" for k, v in sorted(causes.items()) if v))
        ok = rc == 0 and failed_over and untouched
        print(f"\nResult: {'OK' if ok else 'FAILED'} - {AZ} failed over to its NAT Gateway: {failed_over}; "
              f"{OTHER_AZ} untouched: {untouched}; checker exit code {rc}")
    internet.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
