"""Fallback and repair in the closed loop (issue 12 item 5, with the recovery controller of item 2):
the checker watches the NAT instance's own path through canary /32 routes, its EMF `NatPathUnhealthy`
is replayed into moto's CloudWatch, and the recovery state machine (infra/statemachines/
nat-recovery.asl.json, short knobs) falls back once that path has been healthy for its hold.

Needs a checker with canaries (CANARY_URLS; `NatPathUnhealthy` in its EMF). Scenarios:

  repair    blackhole on the NAT host → Failover → route on natgw; the recovery watch starts (with
            the EventBridge event a SUCCEEDED Failover sends, which moto does not deliver); the fault
            is healed after REPAIR_AFTER_S (the repair); measured: repair → kernel route back on the
            NAT host. Goal: ≤ hold + 60 s.
  flapping  the NAT host flaps (1 s down / 1 s up) for FLAP_MIN minutes after the failover; measured:
            automatic fallbacks (goal ≤ 1) and default-route moves in the kernel (no ping-pong).

The canary hosts answer plain HTTP on the canary addresses (inet); their /32 routes always go to
the NAT host (closedloop.py), so the canary verdict is the NAT instance's path whatever 0.0.0.0/0 says.

    python -m tests.lab.loop_recovery BINARY [--scenario repair,flapping] [--flap-min 10] [--flap-period 1]
                                             [--out DIR]
Each scenario appends one record to DIR/results.jsonl (default out/bench-closed-loop, the closed-loop
bench's), where the closed-loop page's "Fallback and repair" part is rendered from (`make bench-report
BENCH_OUT=out/bench-closed-loop BENCH_EXTRA='--md docs/bench/closed-loop.md'`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import time
from pathlib import Path

from tests.demo.emulated import replay_emf
from tests.support.moto_env import (create_recovery_state_machine, create_state_machines, failover_succeeded_event,
                                    recovery_moto_server)

from .addressing import CANARY_IPS, NAT_LAN_IP
from .checker import Checker, executions
from .closedloop import ClosedLoop
from .rig import Rig
from .services import SERVERS as SERVERS_PY
from .shell import REPO, LabError, require_root_tools

KNOBS = {"CheckPeriodSeconds": 2, "FallbackHoldSeconds": 20, "FallbackHoldCapSeconds": 160,
         "MaxAutoFallbacksPerDay": 3, "RepairAfterSeconds": 100000, "MaxRepairsPerHour": 2,
         "MaxLifetimeSeconds": 1800, "MaxIterationsPerExecution": 300}
RECOVERY_KIND = "closed-loop-recovery"  # records in the bench's results.jsonl, rendered by tests/bench/loop_report.py
REPAIR_AFTER_S = 15.0  # fault held this long after the failover before the repair (heal)


class EmfReplayer(threading.Thread):
    """Tails a checker's stdout (EMF, one document a line) and replays each new document into moto's
    CloudWatch with PutMetricData (tests/demo/emulated.replay_emf), every `every` seconds."""

    def __init__(self, path: Path, cloudwatch, every: float = 0.5):
        super().__init__(daemon=True, name="emf-replay")
        self.path, self.cw, self.every = path, cloudwatch, every
        self.stop_evt = threading.Event()
        self.docs: list[dict] = []
        self.errors: list[str] = []
        self._pos, self._partial = 0, ""

    def pump(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._pos)
                chunk = f.read()
        except FileNotFoundError:
            return
        self._pos += len(chunk)
        lines = (self._partial + chunk.decode("utf-8", "replace")).split("\n")
        self._partial = lines.pop()
        docs = []
        for line in lines:
            try:
                docs.append(json.loads(line))
            except ValueError:
                continue
        if docs:
            try:
                replay_emf(self.cw, docs)
            except Exception as e:  # noqa: BLE001 - recorded; the replay goes on
                self.errors.append(f"{type(e).__name__}: {e}"[:200])
            self.docs += docs

    def run(self) -> None:
        while not self.stop_evt.wait(self.every):
            self.pump()
        self.pump()

    def stop(self) -> None:
        self.stop_evt.set()
        self.join(timeout=10)

    def nat_path_values(self) -> list[float]:
        out = []
        for d in self.docs:
            v = d.get("NatPathUnhealthy")
            out += v if isinstance(v, list) else [] if v is None else [v]
        return out


class FailoverEvents(threading.Thread):
    """EventBridge's part, which moto does not play: for every Failover execution that SUCCEEDED, the
    event 'Step Functions Execution Status Change' (moto_env.failover_succeeded_event) starts the
    recovery state machine (the rule's target), once per execution."""

    def __init__(self, sfn, failover_arn: str, recovery_arn: str, every: float = 0.5):
        super().__init__(daemon=True, name="failover-events")
        self.sfn, self.failover_arn, self.recovery_arn, self.every = sfn, failover_arn, recovery_arn, every
        self.stop_evt = threading.Event()
        self.delivered: dict[str, float] = {}  # failover execution arn -> when its event started the recovery
        self.errors: list[str] = []

    def pump(self) -> None:
        try:
            for e in executions(self.sfn, self.failover_arn):
                if e["status"] != "SUCCEEDED" or e["executionArn"] in self.delivered:
                    continue
                inp = json.loads(self.sfn.describe_execution(executionArn=e["executionArn"])["input"])
                event = failover_succeeded_event(e["executionArn"], self.failover_arn, inp)
                self.sfn.start_execution(stateMachineArn=self.recovery_arn, input=json.dumps(event),
                                         name=f"dispatch-{len(self.delivered)}-{int(time.time())}")
                self.delivered[e["executionArn"]] = time.time()
        except Exception as e:  # noqa: BLE001 - recorded; delivery goes on
            self.errors.append(f"{type(e).__name__}: {e}"[:200])

    def run(self) -> None:
        while not self.stop_evt.wait(self.every):
            self.pump()

    def stop(self) -> None:
        self.stop_evt.set()
        self.join(timeout=10)


def start_canary_hosts(rig: Rig) -> None:
    lab = rig.lab
    for i, ip in enumerate(CANARY_IPS):
        lab.procs.spawn(f"canary-{i}", lab.exec_in(lab.inet, sys.executable, str(SERVERS_PY), "target", "--addr", ip,
                                                   "--port", "80", "--name", f"canary{i}"),
                        log=lab.out_dir / f"canary-{i}.log")


def scenario(rig: Rig, loop: ClosedLoop, binary: str, kind: str, out: Path, flap_min: float,
             flap_period: float) -> dict:
    sfn, cw = rig.sfn, rig.moto.session().client("cloudwatch")
    # Each scenario its own state machines and metrics namespace (and, in main(), its own moto).
    n = int(time.time() * 1000) % 10**9
    prefix = f"lab-{rig.lab.run_id}-rec-{kind}-{n}"
    namespace = f"NatEgressWatchdogLab{n}"
    arns = create_state_machines(sfn, name_prefix=prefix, vpc_id=rig.vpc["vpc_id"])
    hold = KNOBS["FallbackHoldSeconds"]
    budget = 60 + REPAIR_AFTER_S + hold + 90 + (flap_min * 60 if kind == "flapping" else 0)
    ch = Checker(rig, f"recovery-{kind}", "default", binary, arns["failover"], rig.subnet_id, out, budget,
                 extra_env={"CANARY_URLS": ",".join(f"http://{ip}/generate_204" for ip in CANARY_IPS),
                            "METRICS_FLUSH_INTERVAL": "1", "METRICS_NAMESPACE": namespace})
    rec: dict = {"kind": RECOVERY_KIND, "mode": f"recovery_{kind}", "trial": int(time.time()), "config": "default",
                 "scenario": kind, "knobs": KNOBS, "notes": [], "binary": binary,
                 "binary_sha256": hashlib.sha256(Path(binary).read_bytes()).hexdigest()[:16]}
    replayer = EmfReplayer(ch.stdout_path, cw)
    recovery = events = None
    loop.routes_to_nat_instance()
    loop.wait_kernel_default(NAT_LAN_IP, timeout=10)
    ch.start()
    replayer.start()
    try:
        deadline = time.time() + 30
        while time.time() < deadline and not replayer.nat_path_values():
            time.sleep(0.2)
        if not replayer.nat_path_values():
            raise LabError(f"no NatPathUnhealthy in the checker's EMF after 30 s: {binary} has no canaries? "
                           f"see {ch.stdout_path}")
        emitted = replayer.docs[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"]
        if emitted != namespace:
            raise LabError(f"the checker wrote EMF to namespace {emitted!r}, not METRICS_NAMESPACE={namespace!r}")
        recovery = create_recovery_state_machine(sfn, arns["fallback"], deployment=prefix, namespace=namespace,
                                                 name=f"{prefix}-recovery", **KNOBS)
        events = FailoverEvents(sfn, arns["failover"], recovery)
        events.start()
        t_inj = rig.lab.faults.inject("blackhole" if kind == "repair" else "flapping", period=flap_period)
        rec["t_inject"] = t_inj
        while time.time() < t_inj + 30 and not events.delivered:
            time.sleep(0.1)
        if not events.delivered:
            raise LabError(f"no succeeded Failover within 30 s of the {kind} fault")
        if kind == "repair":
            time.sleep(REPAIR_AFTER_S)
            t_heal = rig.lab.faults.heal()
            rec.update(t_repair=t_heal, repair_after_s=REPAIR_AFTER_S)
            goal = hold + 60
            back = None
            while time.time() < t_heal + goal + 30 and back is None:
                back = next((e for e in loop.follower_events() if e.get("event") == "applied" and e.get("dest") == "default"
                             and e.get("target") == rig.vpc["nat_eni_id"] and e["t_applied"] >= t_heal), None)
                time.sleep(0.5)
            rec["back_on_nat_s"] = back["t_applied"] - t_heal if back else None
            rec["goal_s"] = goal
        else:
            time.sleep(flap_min * 60)
            rig.lab.faults.heal()
            rec.update(flap_min=flap_min, flap_period_s=flap_period)
        fallbacks = []
        for e in executions(sfn, arns["fallback"]):
            inp = json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
            fallbacks.append({"trigger": inp.get("trigger"), "start": e["startDate"].timestamp(), "status": e["status"]})
        rec["auto_fallbacks"] = sum(1 for f in fallbacks if f["trigger"] == "fallback-auto")
        rec["failovers"] = len(executions(sfn, arns["failover"]))
        moves = [e for e in loop.follower_events() if e.get("event") == "applied" and e.get("dest") == "default"
                 and e["t_applied"] >= t_inj]
        rec["default_route_moves"] = len(moves)
        rec["route_moves"] = [(round(e["t_applied"] - t_inj, 2), e.get("target")) for e in moves]
        rec["fallback_starts"] = [round(f["start"] - t_inj, 2) for f in fallbacks]
        rec["nat_path_values"] = len(replayer.nat_path_values())
        if events.errors:
            rec["notes"].append(f"{len(events.errors)} event delivery error(s), first: {events.errors[0]}")
        if replayer.errors:
            rec["notes"].append(f"{len(replayer.errors)} replay error(s), first: {replayer.errors[0]}")
    finally:
        if rig.lab.faults.active is not None:
            rig.lab.faults.heal()
        if events is not None:
            events.stop()
        ch.stop()
        replayer.stop()
        for e in executions(sfn, recovery) if recovery else []:
            if e["status"] == "RUNNING":
                sfn.stop_execution(executionArn=e["executionArn"])
    return rec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("--scenario", default="repair,flapping")
    ap.add_argument("--flap-min", type=float, default=float(os.environ.get("LOOP_FLAP_MIN", "10")),
                    help="minutes of flapping (the goal is stated for 10)")
    ap.add_argument("--flap-period", type=float, default=1.0,
                    help="seconds down, then as many up (1: the lab's flapping mode; longer than the hold: "
                         "a path that looks healthy long enough to fall back to, again and again)")
    ap.add_argument("--out", default=str(REPO / "out" / "bench-closed-loop"))
    args = ap.parse_args()
    reason = require_root_tools()
    if reason:
        print(f"{'SKIP' if os.geteuid() != 0 else 'FAIL'} loop-recovery: {reason}")
        return 0 if os.geteuid() != 0 else 1
    out = Path(args.out)
    run_dir = out / f"recovery-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"  # runs side by side never share a file
    for i, kind in enumerate(args.scenario.split(",")):
        # A lab and moto of its own per scenario: each is a first incident of its AZ (the damping reads
        # the AZ's automatic fallbacks of 24 h, and moto 5.2.5's GetMetricData ignores the namespace).
        with Rig(run_dir / f"lab-{i}", moto_factory=lambda d: recovery_moto_server(d)[0]) as rig:
            start_canary_hosts(rig)
            loop = ClosedLoop(rig)
            loop.start()
            try:
                r = scenario(rig, loop, os.path.abspath(args.binary), kind, run_dir / f"logs-{i}", args.flap_min,
                             args.flap_period)
            finally:
                loop.stop()
        print(json.dumps(r), flush=True)
        with open(out / "results.jsonl", "a") as f:
            f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
