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
  gray      the lab's VPC in moto gets the managed NAT layer of its AZ (build_workflows_nat_layer: a
            one-instance Auto Scaling group, the stable ENI as the route target, mapped to the nat host);
            MASQUERADE is removed FOR GOOD (no heal). With no human step: Failover → the recovery sees
            NatPathUnhealthy for RepairAfterSeconds (GRAY_REPAIR_AFTER_S) while the instance is healthy
            to EC2 → SetInstanceHealth Unhealthy → moto's Auto Scaling replaces the instance → the lab
            plays that instance's boot (NatBoot: configure-nat.sh in the nat namespace again, the stable
            ENI attached to the new instance, as the boot script does) → the canaries recover → after the
            hold the recovery falls back → the kernel route is back on the nat host. Measured from the
            fault: failover, SetInstanceHealth, new instance, back on the NAT instance; expected exactly
            one repair and the final route on the stable ENI (gray_problems).
  soak      no outage: 5 % and then 20 % random loss plus one target down on the NAT path (the bench's
            soak faults soak5, soak20) for SOAK_MIN minutes each, the whole loop running (canaries,
            recovery, follower). Counted: Failover executions and automatic fallbacks; goal 0 and 0.
            --soak-dns (SOAK_DNS): the private host's resolver where a VPC's is (default), or beyond the NAT.

The canary hosts answer plain HTTP on the canary addresses (inet); their /32 routes always go to
the NAT host (closedloop.py), so the canary verdict is the NAT instance's path whatever 0.0.0.0/0 says.

    python -m tests.lab.loop_recovery BINARY [--scenario repair,flapping,gray,soak] [--flap-min 10]
                                             [--flap-period 1] [--soak-min 5] [--out DIR]
Exit status 1 when a gray or soak scenario misses what it expects (gray_problems, soak_problems).
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
from tests.support.moto_env import (TAG_ROUTE_TABLE_AZ, build_workflows_nat_layer, create_recovery_state_machine,
                                    create_state_machines, failover_succeeded_event, read_workflow_calls,
                                    recovery_moto_server, workflows_in_service_instances)

from .addressing import CANARY_IPS, INET_RESOLVER_IP, NAT_LAN_IP
from .cleanup import NETNS_ETC
from .checker import AZ, Checker, executions
from .closedloop import ClosedLoop
from .rig import Rig
from .services import SERVERS as SERVERS_PY
from .shell import REPO, LabError, require_root_tools

KNOBS = {"CheckPeriodSeconds": 2, "FallbackHoldSeconds": 20, "FallbackHoldCapSeconds": 160,
         "MaxAutoFallbacksPerDay": 3, "RepairAfterSeconds": 100000, "MaxRepairsPerHour": 2,
         "MaxLifetimeSeconds": 1800, "MaxIterationsPerExecution": 300}
RECOVERY_KIND = "closed-loop-recovery"  # records in the bench's results.jsonl, rendered by tests/bench/loop_report.py
REPAIR_AFTER_S = 15.0  # fault held this long after the failover before the repair (heal)
GRAY_REPAIR_AFTER_S = 10  # gray: the recovery's RepairAfterSeconds (short knob; default 300)
SOAK_MIN = 5.0  # soak: minutes of each loss level
SOAK_FAULTS = ("soak5", "soak20")
SCENARIOS = ("repair", "flapping", "gray", "soak")
# Where the soak's private host resolves names. "vpc": the lab DNS on the nat host, answered by that host
# itself (INPUT, never forwarded), as a subnet reaches the VPC resolver without the NAT instance: the
# NAT path's loss does not touch DNS, as in AWS. "beyond-nat": the closed loop's resolver in inet, so its
# queries cross the lossy NAT path too (harsher than AWS). Records without the key ran beyond the NAT.
SOAK_DNS = {"vpc": NAT_LAN_IP, "beyond-nat": INET_RESOLVER_IP}  # faults.py: 5 % / 20 % random loss + one target down, as the bench's soaks


def knobs_for(kind: str) -> dict:
    """The recovery's knobs per scenario: only gray repairs (the others have no Auto Scaling group, and a
    blackhole held for the repair scenario must not count as one)."""
    return {**KNOBS, "RepairAfterSeconds": GRAY_REPAIR_AFTER_S} if kind == "gray" else dict(KNOBS)


def first_after(calls: list[dict], call: str, after: float, **args) -> dict | None:
    """The first recorded moto call named `call` at or after `after` whose args include `args`
    (records of moto_env's recording server: {"call", "args", "at"})."""
    for c in calls:
        if c.get("call") == call and c.get("at", 0) >= after and all(c.get("args", {}).get(k) == v
                                                                      for k, v in args.items()):
            return c
    return None


def gray_problems(rec: dict) -> list[str]:
    """What a gray run missed of what it expects; empty when the loop closed with no human step."""
    problems = []
    for key, what in (("failover_s", "no failover (kernel route never moved to the gateway)"),
                      ("set_health_s", "no SetInstanceHealth Unhealthy"),
                      ("new_instance_s", "no replacement instance in the Auto Scaling group"),
                      ("back_on_nat_s", "never back on the NAT instance")):
        if rec.get(key) is None:
            problems.append(what)
    if rec.get("repairs") != 1:
        problems.append(f"{rec.get('repairs')} repairs (SetInstanceHealth Unhealthy), expected exactly 1")
    if rec.get("final_target") != rec.get("stable_eni"):
        problems.append(f"final 0.0.0.0/0 on {rec.get('final_target')}, not the stable ENI {rec.get('stable_eni')}")
    order = [rec.get(k) for k in ("failover_s", "set_health_s", "new_instance_s", "back_on_nat_s")]
    if None not in order and order != sorted(order):
        problems.append(f"out of order: failover, SetInstanceHealth, new instance, back = {order}")
    return problems


def soak_problems(rec: dict) -> list[str]:
    """A soak must cause nothing: no Failover, no automatic fallback."""
    return [f"{rec.get(k)} {what} (goal 0)" for k, what in (("failovers", "Failover execution(s)"),
                                                           ("auto_fallbacks", "automatic fallback(s)"))
            if rec.get(k) != 0]


class _Poller(threading.Thread):
    """A daemon thread that calls `pump()` every `every` seconds until `stop()`; `pump` records its own
    errors in `self.errors` so that polling goes on."""

    final_pump = False  # pump once more after stop() (the replayer drains what the checker wrote last)
    join_timeout = 10.0

    def __init__(self, name: str, every: float):
        super().__init__(daemon=True, name=name)
        self.every = every
        self.stop_evt = threading.Event()
        self.errors: list[str] = []

    def pump(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        while not self.stop_evt.wait(self.every):
            self.pump()
        if self.final_pump:
            self.pump()

    def stop(self) -> None:
        self.stop_evt.set()
        self.join(timeout=self.join_timeout)


class EmfReplayer(_Poller):
    """Tails a checker's stdout (EMF, one document a line) and replays each new document into moto's
    CloudWatch with PutMetricData (tests/demo/emulated.replay_emf), every `every` seconds."""

    def __init__(self, path: Path, cloudwatch, every: float = 0.5):
        super().__init__("emf-replay", every)
        self.path, self.cw = path, cloudwatch
        self.docs: list[dict] = []
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

    final_pump = True

    def nat_path_values(self) -> list[float]:
        out = []
        for d in self.docs:
            v = d.get("NatPathUnhealthy")
            out += v if isinstance(v, list) else [] if v is None else [v]
        return out


class FailoverEvents(_Poller):
    """EventBridge's part, which moto does not play: for every Failover execution that SUCCEEDED, the
    event 'Step Functions Execution Status Change' (moto_env.failover_succeeded_event) starts the
    recovery state machine (the rule's target), once per execution."""

    def __init__(self, sfn, failover_arn: str, recovery_arn: str, every: float = 0.5):
        super().__init__("failover-events", every)
        self.sfn, self.failover_arn, self.recovery_arn = sfn, failover_arn, recovery_arn
        self.delivered: dict[str, float] = {}  # failover execution arn -> when its event started the recovery

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


class NatBoot(_Poller):
    """The boot of a replacement NAT instance, which moto does not play: when the Auto Scaling group's
    in-service instance changes, the nat host is rebuilt the way a new instance comes up
    (configure-nat.sh again: the masquerade of a fresh instance is back, so the removed one is gone
    with the old instance) and the stable ENI is attached to the new instance as device 1 (detached
    from the old one first), as the NAT layer's boot script does."""

    def __init__(self, rig: Rig, group: str, eni_id: str, every: float = 0.25):
        super().__init__("nat-boot", every)
        session = rig.moto.session()
        self.rig, self.group, self.eni_id = rig, group, eni_id
        self.asg, self.ec2 = session.client("autoscaling"), session.client("ec2")
        self.current = workflows_in_service_instances(self.asg, group)[0]
        self.first = self.current
        self.boots: list[dict] = []  # {"instance", "t_seen", "t_configured", "t_attached"}

    def pump(self) -> None:
        try:
            ids = workflows_in_service_instances(self.asg, self.group)
            if not ids or ids[0] == self.current:
                return
            boot = {"instance": ids[0], "t_seen": time.time()}
            self.rig.lab.configure_nat()
            self.rig.lab.faults.forget()  # the fault lived in the old instance's configuration
            boot["t_configured"] = time.time()
            eni = self.ec2.describe_network_interfaces(NetworkInterfaceIds=[self.eni_id])["NetworkInterfaces"][0]
            att = eni.get("Attachment") or {}
            if att.get("AttachmentId") and att.get("InstanceId") != ids[0]:
                self.ec2.detach_network_interface(AttachmentId=att["AttachmentId"], Force=True)
            if att.get("InstanceId") != ids[0]:
                self.ec2.attach_network_interface(NetworkInterfaceId=self.eni_id, InstanceId=ids[0], DeviceIndex=1)
            boot["t_attached"] = time.time()
            self.current = ids[0]
            self.boots.append(boot)
        except Exception as e:  # noqa: BLE001 - recorded; the next poll tries again
            self.errors.append(f"{type(e).__name__}: {e}"[:200])

    join_timeout = 30.0  # a boot in progress (configure-nat.sh) finishes first


def adopt_nat_layer(rig: Rig, deployment: str) -> dict:
    """Give the rig's moto the managed NAT layer of the lab's AZ (moto_env.build_workflows_nat_layer,
    deployment tag `deployment`, which the recovery's FindGroup matches) and make it the rig's VPC: its
    stable ENI is the NAT instance the follower maps to the nat host, its private subnet the checker's.
    The route tables build_vpc made lose their `nat-watchdog:az` tag, so one VPC is managed."""
    session = rig.moto.session()
    layer = build_workflows_nat_layer(rig.ec2, session.client("autoscaling"), [AZ], deployment=deployment,
                                      cidr="10.1.0.0/16")[AZ]
    old = [t for k in ("route_table_ids",) for t in rig.vpc[k]] + [rig.vpc.get("unmanaged_route_table_id")]
    rig.ec2.delete_tags(Resources=[t for t in old if t], Tags=[{"Key": TAG_ROUTE_TABLE_AZ}])
    rig.vpc = layer
    return layer


def start_canary_hosts(rig: Rig) -> None:
    lab = rig.lab
    for i, ip in enumerate(CANARY_IPS):
        lab.procs.spawn(f"canary-{i}", lab.exec_in(lab.inet, sys.executable, str(SERVERS_PY), "target", "--addr", ip,
                                                   "--port", "80", "--name", f"canary{i}"),
                        log=lab.out_dir / f"canary-{i}.log")


def run_names(rig: Rig, kind: str) -> tuple[str, str]:
    """(state machine prefix and deployment name, metrics namespace) of one scenario: its own, so each
    is a first incident (with, in main(), its own moto)."""
    n = int(time.time() * 1000) % 10**9
    return f"lab-{rig.lab.run_id}-rec-{kind}-{n}", f"NatEgressWatchdogLab{n}"


def default_moves(loop: ClosedLoop, after: float) -> list[dict]:
    return [e for e in loop.follower_events() if e.get("event") == "applied" and e.get("dest") == "default"
            and e["t_applied"] >= after]


def scenario(rig: Rig, loop: ClosedLoop, binary: str, kind: str, out: Path, flap_min: float,
             flap_period: float, prefix: str, namespace: str, soak_min: float = SOAK_MIN,
             soak_dns: str = "vpc") -> dict:
    sfn, cw = rig.sfn, rig.moto.session().client("cloudwatch")
    arns = create_state_machines(sfn, name_prefix=prefix, vpc_id=rig.vpc["vpc_id"])
    knobs = knobs_for(kind)
    hold = knobs["FallbackHoldSeconds"]
    budget = 60 + REPAIR_AFTER_S + hold + 90 + {"flapping": flap_min * 60, "soak": 2 * soak_min * 60,
                                                 "gray": GRAY_REPAIR_AFTER_S + 60}.get(kind, 0)
    ch = Checker(rig, f"recovery-{kind}", "default", binary, arns["failover"], rig.subnet_id, out, budget,
                 extra_env={"CANARY_URLS": ",".join(f"http://{ip}/generate_204" for ip in CANARY_IPS),
                            "METRICS_FLUSH_INTERVAL": "1", "METRICS_NAMESPACE": namespace})
    rec: dict = {"kind": RECOVERY_KIND, "mode": f"recovery_{kind}", "trial": int(time.time()), "config": "default",
                 "scenario": kind, "knobs": knobs, "notes": [], "binary": binary,
                 "binary_sha256": hashlib.sha256(Path(binary).read_bytes()).hexdigest()[:16]}
    replayer = EmfReplayer(ch.stdout_path, cw)
    recovery = events = boot = None
    stable_eni = rig.vpc["nat_eni_id"]
    loop.routes_to_nat_instance()
    loop.wait_kernel_default(NAT_LAN_IP, timeout=10)
    if kind == "soak":  # before the checker starts
        (NETNS_ETC / rig.lab.priv / "resolv.conf").write_text(f"nameserver {SOAK_DNS[soak_dns]}\n")
        rec["soak_dns"] = soak_dns
    ch.start()
    replayer.start()
    try:
        deadline = time.time() + 30
        while time.time() < deadline and 0 not in replayer.nat_path_values():
            time.sleep(0.2)
        if not replayer.nat_path_values():
            raise LabError(f"no NatPathUnhealthy in the checker's EMF after 30 s: {binary} has no canaries? "
                           f"see {ch.stdout_path}")
        if 0 not in replayer.nat_path_values():  # a fault on a path already "unhealthy" measures nothing
            raise LabError(f"the NAT path never healthy (NatPathUnhealthy 0) in 30 s before the fault: are the "
                           f"canary hosts up? see {rig.lab.out_dir} and {ch.stderr_path}")
        emitted = replayer.docs[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"]
        if emitted != namespace:
            raise LabError(f"the checker wrote EMF to namespace {emitted!r}, not METRICS_NAMESPACE={namespace!r}")
        recovery = create_recovery_state_machine(sfn, arns["fallback"], deployment=prefix, namespace=namespace,
                                                 name=f"{prefix}-recovery", **knobs)
        events = FailoverEvents(sfn, arns["failover"], recovery)
        events.start()
        if kind == "gray":
            boot = NatBoot(rig, rig.vpc["group_name"], stable_eni)
            boot.start()
            rec.update(group=rig.vpc["group_name"], stable_eni=stable_eni, first_instance=boot.first)
        if kind == "soak":
            t_inj = time.time()
            rec.update(t_inject=t_inj, soak_min=soak_min, soak_faults=list(SOAK_FAULTS))
            for fault in SOAK_FAULTS:
                rig.lab.faults.inject(fault)
                time.sleep(soak_min * 60)
                rig.lab.faults.heal()
            time.sleep(5)  # the last rounds' EMF replayed, any late Failover started
        else:
            fault = {"repair": "blackhole", "gray": "masq_removed"}.get(kind, "flapping")
            t_inj = rig.lab.faults.inject(fault, period=flap_period)
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
                             and e.get("target") == stable_eni and e["t_applied"] >= t_heal), None)
                time.sleep(0.5)
            rec["back_on_nat_s"] = back["t_applied"] - t_heal if back else None
            rec["goal_s"] = goal
        elif kind == "gray":
            # no heal: only the replacement's boot (NatBoot) brings the masquerade back
            back = None
            deadline = t_inj + 30 + GRAY_REPAIR_AFTER_S + 4 * knobs["CheckPeriodSeconds"] + hold + 60
            while time.time() < deadline and back is None:
                back = next((e for e in default_moves(loop, t_inj) if e.get("target") == stable_eni), None)
                time.sleep(0.5)
            time.sleep(2 * knobs["CheckPeriodSeconds"])  # a second repair, were there one, would be recorded by now
            calls = read_workflow_calls(rig.out_dir / "recovery-calls.jsonl")
            to_gw = next((e for e in default_moves(loop, t_inj) if str(e.get("target")).startswith("nat-")), None)
            health = first_after(calls, "SetInstanceHealth", t_inj, healthStatus="Unhealthy")
            new = boot.boots[0] if boot.boots else None
            rec.update(failover_s=to_gw["t_applied"] - t_inj if to_gw else None,
                       set_health_s=health["at"] - t_inj if health else None,
                       set_health_instance=health["args"]["instanceId"] if health else None,
                       new_instance_s=new["t_seen"] - t_inj if new else None,
                       booted_s=new["t_attached"] - t_inj if new else None,
                       new_instance=new["instance"] if new else None,
                       back_on_nat_s=back["t_applied"] - t_inj if back else None,
                       repairs=sum(1 for c in calls if c.get("call") == "SetInstanceHealth"
                                   and c.get("args", {}).get("healthStatus") == "Unhealthy" and c["at"] >= t_inj),
                       boots=len(boot.boots),
                       final_target=rig.route_targets().get(rig.vpc["route_table_ids"][0]),
                       kernel_default=loop.kernel_route("default"))
            if boot.errors:
                rec["notes"].append(f"{len(boot.errors)} boot error(s), first: {boot.errors[0]}")
        elif kind == "flapping":
            time.sleep(flap_min * 60)
            rig.lab.faults.heal()
            rec.update(flap_min=flap_min, flap_period_s=flap_period)
        fallbacks = []
        for e in executions(sfn, arns["fallback"]):
            inp = json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
            fallbacks.append({"trigger": inp.get("trigger"), "start": e["startDate"].timestamp(), "status": e["status"]})
        rec["auto_fallbacks"] = sum(1 for f in fallbacks if f["trigger"] == "fallback-auto")
        rec["failovers"] = len(executions(sfn, arns["failover"]))
        moves = default_moves(loop, t_inj)
        rec["default_route_moves"] = len(moves)
        rec["route_moves"] = [(round(e["t_applied"] - t_inj, 2), e.get("target")) for e in moves]
        rec["fallback_starts"] = [round(f["start"] - t_inj, 2) for f in fallbacks]
        rec["nat_path_values"] = len(replayer.nat_path_values())
        rec["nat_path_unhealthy_rounds"] = sum(1 for v in replayer.nat_path_values() if v)
        if events.errors:
            rec["notes"].append(f"{len(events.errors)} event delivery error(s), first: {events.errors[0]}")
        if replayer.errors:
            rec["notes"].append(f"{len(replayer.errors)} replay error(s), first: {replayer.errors[0]}")
        problems = gray_problems(rec) if kind == "gray" else soak_problems(rec) if kind == "soak" else []
        rec["problems"] = problems
    finally:
        if boot is not None:
            boot.stop()
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


def run_scenario(binary: str, kind: str, lab_dir: Path, log_dir: Path, flap_min: float = 10.0,
                 flap_period: float = 1.0, soak_min: float = SOAK_MIN, soak_dns: str = "vpc") -> dict:
    """One scenario in a lab and moto of its own (each is a first incident of its AZ: the damping reads
    the AZ's automatic fallbacks of 24 h, and moto 5.2.5's GetMetricData ignores the namespace);
    everything it started is stopped and its namespaces removed on the way out. Returns its record."""
    with Rig(lab_dir, moto_factory=lambda d: recovery_moto_server(d)[0]) as rig:
        prefix, namespace = run_names(rig, kind)
        if kind == "gray":
            adopt_nat_layer(rig, prefix)  # before the loop: its canary routes go to the stable ENI
        loop = ClosedLoop(rig)
        loop.start()
        start_canary_hosts(rig)  # after loop.start(): it puts the canary addresses on inet (bind needs them)
        try:
            return scenario(rig, loop, binary, kind, log_dir, flap_min, flap_period, prefix, namespace,
                            soak_min=soak_min, soak_dns=soak_dns)
        finally:
            loop.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("--scenario", default=",".join(SCENARIOS))
    ap.add_argument("--flap-min", type=float, default=float(os.environ.get("LOOP_FLAP_MIN", "10")),
                    help="minutes of flapping (the goal is stated for 10)")
    ap.add_argument("--flap-period", type=float, default=1.0,
                    help="seconds down, then as many up (1: the lab's flapping mode; longer than the hold: "
                         "a path that looks healthy long enough to fall back to, again and again)")
    ap.add_argument("--soak-min", type=float, default=float(os.environ.get("LOOP_SOAK_MIN", str(SOAK_MIN))),
                    help="soak: minutes of each loss level (5 %%, then 20 %%)")
    ap.add_argument("--soak-dns", choices=sorted(SOAK_DNS), default="vpc",
                    help="soak: the private host's resolver on the nat host, not forwarded, as the VPC resolver "
                         "(vpc), or beyond the NAT so that DNS crosses the lossy path too (beyond-nat)")
    ap.add_argument("--out", default=str(REPO / "out" / "bench-closed-loop"))
    args = ap.parse_args()
    reason = require_root_tools()
    if reason:
        print(f"{'SKIP' if os.geteuid() != 0 else 'FAIL'} loop-recovery: {reason}")
        return 0 if os.geteuid() != 0 else 1
    out = Path(args.out)
    run_dir = out / f"recovery-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"  # runs side by side never share a file
    kinds = args.scenario.split(",")
    unknown = [k for k in kinds if k not in SCENARIOS]
    if unknown:
        ap.error(f"--scenario: unknown {', '.join(unknown)} (known: {', '.join(SCENARIOS)})")
    failed = 0
    for i, kind in enumerate(kinds):
        r = run_scenario(os.path.abspath(args.binary), kind, run_dir / f"lab-{i}", run_dir / f"logs-{i}",
                         flap_min=args.flap_min, flap_period=args.flap_period, soak_min=args.soak_min,
                         soak_dns=args.soak_dns)
        print(json.dumps(r), flush=True)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "results.jsonl", "a") as f:
            f.write(json.dumps(r) + "\n")
        for problem in r.get("problems", []):
            print(f"FAIL loop-recovery {kind}: {problem}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
