"""Lab smoke test (part of `make test` when root): one healthy period, one hard failure, the real
network path. Fails, with the reason and the log's path, whenever the checker misbehaves:

  healthy period  every probe succeeds, the verdict stays healthy, no Failover execution
  blackhole       a Failover execution starts in moto within SMOKE_DETECT_MAX seconds of the
                  injection, exactly one, named and shaped as docs/CONTRACTS.md says, and the
                  checker logged verdict_changed(unhealthy) and failover_started for it
  healed          verdict_changed(healthy) within SMOKE_RECOVER_MAX seconds
  stopped         SIGINT ends it with exit code 0 and run_finished; stdout held only EMF documents
  closed loop     one blackhole trial of the closed loop (closedloop.py): the Failover's route change in
                  moto moved the private host's kernel default route to the NAT-gateway host and egress
                  came back over it (a probe answered from natgw's address) within SMOKE_LOOP_MAX
                  seconds, with exactly one execution; the canary /32 routes stayed on the NAT host
  gray failure    loop_recovery's `gray` scenario in a lab and moto of its own (about a minute): MASQUERADE
                  removed for good on a managed NAT layer; with no human step the checker fails over, the
                  recovery marks the instance unhealthy once, the Auto Scaling group replaces it, the lab
                  plays its boot, and the route is back on the stable ENI within SMOKE_GRAY_MAX seconds
                  of the fault (needs a checker with canaries, CANARY_URLS)

Usage: python -m tests.lab.smoke BINARY   (from the repository root; skips with exit 0 and a clear
message when not root)
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

from .addressing import CANARY_IPS, NAT_LAN_IP
from .checker import AZ, Checker, CheckerConfigError, executions, parse_ts, timing
from .closedloop import ClosedLoop, run_loop_trial
from .loop_recovery import run_scenario
from .netlab import TARGETS
from .rig import Rig
from .shell import REPO, LabError, require_root_tools

HEALTHY_PERIOD = float(os.environ.get("SMOKE_HEALTHY_S", "4"))
DETECT_MAX = float(os.environ.get("SMOKE_DETECT_MAX", "8"))  # generous: a debug build on a busy CI box
RECOVER_MAX = float(os.environ.get("SMOKE_RECOVER_MAX", "8"))
LOOP_MAX = float(os.environ.get("SMOKE_LOOP_MAX", "10"))  # fault -> egress back over natgw; generous (debug build)
GRAY_MAX = float(os.environ.get("SMOKE_GRAY_MAX", "75"))  # fault -> back on the NAT instance (repair 10 s + hold 20 s)


class Failed(Exception):
    pass


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise Failed(msg)


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    binary = os.path.abspath(sys.argv[1])
    reason = require_root_tools()
    if reason and os.geteuid() != 0:
        print(f"SKIP lab-smoke: {reason}; run `sudo make lab-smoke` to exercise the real network path")
        return 0
    if reason:
        print(f"FAIL lab-smoke: {reason}")
        return 1
    if not os.access(binary, os.X_OK):
        print(f"FAIL lab-smoke: no checker binary at {binary} (run `make build`)")
        return 1

    try:
        timing(binary, "default")
    except CheckerConfigError as e:
        print(f"FAIL lab-smoke: {e}")
        return 1

    out = REPO / "out" / "lab-smoke"
    t0 = time.time()
    try:
        with Rig(out / "lab") as rig:
            smoke(rig, binary, out, t0)
            smoke_closed_loop(rig, binary, out)
        smoke_gray(binary, out)
    except (Failed, LabError) as e:
        print(f"FAIL lab-smoke: {e}")
        print(f"  checker log: {out / 'smoke.log'}")
        return 1
    print(f"lab-smoke: passed in {time.time() - t0:.1f}s; namespaces removed")
    return 0


def smoke(rig: Rig, binary: str, out: Path, t0: float) -> None:
    lab = rig.lab
    print(f"lab-smoke: lab {lab.run_id} up in {time.time() - t0:.1f}s "
          f"({', '.join(lab.namespaces)}; endpoint {lab.endpoint_url})")
    nat = lab.configure_nat(check=True)
    check(nat.returncode == 0, f"configure-nat.sh --check on the NAT host: {nat.stdout.strip()}")
    arn = rig.new_state_machine("smoke")
    ch = Checker(rig, "smoke", "default", binary, arn, rig.subnet_id, out, duration=90).start()
    try:

        # -- healthy period
        deadline = time.time() + 20
        while time.time() < deadline and not any(e.get("good") is True for e in ch.log.of("round")):
            check(ch.alive(), f"checker exited early ({ch.proc.popen.poll()}); see {ch.stderr_path}")
            ch.poll()
            time.sleep(0.05)
        check(any(e.get("good") is True for e in ch.log.of("round")),
              f"no good round within 20 s of start; see {ch.stderr_path}")
        t_healthy = time.time()
        time.sleep(HEALTHY_PERIOD)
        ch.poll()
        probes = [e for e in ch.log.of("probe") if e["_t"] and e["_t"] >= t_healthy]
        check(len(probes) >= len(TARGETS), f"only {len(probes)} probe events in {HEALTHY_PERIOD:g}s of health "
              f"(RUST_LOG=debug should log every probe); see {ch.stderr_path}")
        bad = [e for e in probes if e.get("ok") is not True]
        check(not bad, f"{len(bad)} failed probe(s) on a healthy network, first: {bad[:1]}")
        check(not ch.log.verdicts(), f"verdict changed on a healthy network: {ch.log.verdicts()[:1]}")
        check(not executions(rig.sfn, arn), "a Failover execution started on a healthy network")
        seen = sorted({e.get("target") for e in probes})
        print(f"lab-smoke: healthy period {HEALTHY_PERIOD:g}s: {len(probes)} probes ok on {len(seen)} targets, "
              f"no verdict change, no execution")

        # -- hard failure
        t_inj = lab.faults.inject("blackhole")
        ex = []
        while time.time() < t_inj + DETECT_MAX and not ex:
            check(ch.alive(), f"checker exited during the outage; see {ch.stderr_path}")
            ex = executions(rig.sfn, arn)
            time.sleep(0.1)
        check(bool(ex), f"no Failover execution within {DETECT_MAX:g}s of a blackhole; see {ch.stderr_path}")
        detection = ex[0]["startDate"].timestamp() - t_inj
        time.sleep(0.5)
        ch.poll()
        downs = [e for e in ch.log.verdicts() if e.get("to") == "unhealthy"]
        check(len(downs) == 1, f"expected one verdict_changed to unhealthy, saw {len(downs)}")
        started = ch.log.of("failover_started")
        check(len(started) == 1, f"expected one failover_started event, saw {len(started)}")
        check(started[0].get("execution_arn") == ex[0]["executionArn"],
              f"failover_started names {started[0].get('execution_arn')}, moto has {ex[0]['executionArn']}")
        name = ex[0]["name"]
        check(re.fullmatch(rf"nat-failover-{AZ}-\d{{8}}T\d{{6}}Z", name) is not None,
              f"execution name {name!r} is not nat-failover-<AZ>-<window start>")
        inp = json.loads(rig.sfn.describe_execution(executionArn=ex[0]["executionArn"])["input"])
        check(inp.get("availabilityZone") == AZ and inp.get("subnetId") == rig.subnet_id,
              f"execution input names the wrong AZ/subnet: {inp}")
        parse_ts(inp.get("detectedAt", ""))
        failed = inp.get("failedTargets") or []
        check({f.get("url") for f in failed} == {t.url for t in TARGETS} and all(f.get("cause") for f in failed),
              f"failedTargets should list every target with a cause: {failed}")
        print(f"lab-smoke: blackhole -> execution {name} started {detection:.2f}s after injection "
              f"(verdict unhealthy at +{downs[0]['_t'] - t_inj:.2f}s; causes "
              f"{sorted({f['cause'] for f in failed})})")
        time.sleep(0.5)
        check(len(executions(rig.sfn, arn)) == 1, "more than one execution for one outage")

        # -- healed
        t_heal = lab.faults.heal()
        up = None
        while time.time() < t_heal + RECOVER_MAX and up is None:
            ch.poll()
            up = next((e for e in ch.log.verdicts() if e.get("to") == "healthy"), None)
            time.sleep(0.1)
        check(up is not None, f"verdict not healthy within {RECOVER_MAX:g}s of healing; see {ch.stderr_path}")
        print(f"lab-smoke: healed -> verdict healthy after {up['_t'] - t_heal:.2f}s")

        # -- stopped
        code = ch.stop()
        check(code == 0, f"checker exit code {code} after SIGINT (expected 0); see {ch.stderr_path}")
        check(bool(ch.log.of("run_finished")), "no run_finished event after SIGINT")
        check(not ch.log.junk, f"non-JSON lines on stderr with AWS_LAMBDA_LOG_FORMAT=JSON: {ch.log.junk[:2]}")
        problems = ch.emf_problems()
        check(not problems, f"stdout is not EMF only: {problems[:3]}")
        emf_lines = sum(1 for _ in open(ch.stdout_path))
        check(emf_lines > 0, "no EMF document on stdout")
        res = ch.resources() or {}
        print(f"lab-smoke: exit 0, {emf_lines} EMF documents, peak RSS {res.get('maxrss_kb', 0) / 1024:.1f} MiB "
              f"(debug build)")
        try:
            print(f"lab-smoke: (info) route tables now -> {rig.route_targets()}")
        except Exception as e:  # noqa: BLE001 - informational only
            print(f"lab-smoke: (info) route tables unreadable: {e}")
    finally:
        ch.stop()


def smoke_closed_loop(rig: Rig, binary: str, out: Path) -> None:
    """One blackhole trial of the closed loop: route moved in moto -> kernel -> egress over natgw."""
    loop = ClosedLoop(rig)
    loop.start()
    try:
        for ip in CANARY_IPS:
            check(f"via {NAT_LAN_IP} " in loop.kernel_route(ip) + " ",
                  f"canary route {ip} not via the NAT host: {loop.kernel_route(ip)!r}")
        r = run_loop_trial(loop, "loop_blackhole", 0, "default", binary, out / "loop")
        check(r["executions"] == 1, f"closed loop: {r['executions']} Failover executions for one blackhole; notes {r['notes']}")
        check(r["kernel_moved"], f"closed loop: the kernel default route never moved to natgw; see {loop.follower_log}")
        d = r["egress_downtime_s"]
        check(d is not None, f"closed loop: no probe over natgw after the fault; see {r['probes']}")
        check(d <= LOOP_MAX, f"closed loop: egress back over natgw only {d:.2f}s after the fault (max {LOOP_MAX:g}s)")
        check(r["detection_s"] is not None and r["failover_s"] is not None,
              f"closed loop: no execution start or ReplaceRoute in its history; notes {r['notes']}")
        for ip in CANARY_IPS:  # the Failover touches 0.0.0.0/0 only
            check(f"via {NAT_LAN_IP} " in loop.kernel_route(ip) + " ",
                  f"canary route {ip} moved off the NAT host: {loop.kernel_route(ip)!r}")
        print(f"lab-smoke: closed loop, blackhole -> egress back over natgw after {d:.2f}s (detection "
              f"{r['detection_s']:.2f}s, Failover {r['failover_s']:.2f}s, follower {r['follower_lag_s']:.3f}s, "
              f"first probe {r['first_probe_s']:.3f}s); kernel route moved; canaries stayed on the NAT host")
    finally:
        loop.stop()


def smoke_gray(binary: str, out: Path) -> None:
    """The gray failure repaired with no human step (loop_recovery `gray`), in a lab of its own."""
    r = run_scenario(binary, "gray", out / "gray-lab", out / "gray")
    problems = r.get("problems") or []
    check(not problems, f"gray failure: {'; '.join(problems)}; see {out / 'gray'} and {out / 'gray-lab'}")
    check(r["back_on_nat_s"] <= GRAY_MAX, f"gray failure: back on the NAT instance only {r['back_on_nat_s']:.1f}s "
          f"after the fault (max {GRAY_MAX:g}s)")
    print(f"lab-smoke: gray failure (MASQUERADE removed for good) -> failover +{r['failover_s']:.1f}s, "
          f"SetInstanceHealth +{r['set_health_s']:.1f}s, new instance +{r['new_instance_s']:.1f}s, back on the NAT "
          f"instance +{r['back_on_nat_s']:.1f}s; {r['repairs']} repair, route on the stable ENI")


if __name__ == "__main__":
    sys.exit(main())
