"""`make lab` (python -m tests.demo lab): a short narrated run on the real network path. The checker (default configuration)
probes through the lab NAT; after a few healthy seconds a fault is injected on the NAT host; you
watch the rounds go bad, the verdict change and the Failover execution start in moto; the fault is
healed and the verdict goes healthy again. --hold keeps the lab up afterwards for poking around.
"""

from __future__ import annotations

import os
import time

from tests.lab.checker import Checker, CheckerConfigError, executions, timing
from tests.lab.modes import BENIGN_MODES, MODE_LABELS, OUTAGE_MODES
from tests.lab.netlab import TARGETS
from tests.lab.rig import Rig
from tests.lab.shell import REPO, require_root_tools

MODES = OUTAGE_MODES + BENIGN_MODES


def run(binary: str, mode: str = "blackhole", hold: bool = False) -> int:
    reason = require_root_tools()
    if reason:
        print(f"{'SKIP ' if os.geteuid() != 0 else ''}lab: {reason}")
        return 0 if os.geteuid() != 0 else 1
    if not os.access(binary, os.X_OK):
        print(f"lab: no checker binary at {binary}")
        return 1
    binary = os.path.abspath(binary)
    try:
        timing(binary, "default")
    except CheckerConfigError as e:
        print(f"lab: {e}")
        return 1

    short = {t.url: t.name for t in TARGETS}
    t0 = time.time()
    try:
        with Rig(REPO / "out" / "lab-demo" / "lab") as rig:
            narrate(rig, binary, mode, hold, short, t0)
    except KeyboardInterrupt:
        print("\nlab: interrupted")
    print("lab: torn down (processes stopped, namespaces removed)")
    return 0


def narrate(rig: Rig, binary: str, mode: str, hold: bool, short: dict[str, str], t0: float) -> None:
    lab = rig.lab
    print(f"lab {lab.run_id}: {lab.priv} ─ {lab.nat} (configure-nat.sh, DNS) ─ {lab.inet} "
          f"({', '.join(t.fqdn for t in TARGETS)}); moto via {lab.endpoint_url} (no NAT)")
    arn = rig.new_state_machine("demo")
    ch = Checker(rig, "demo", "default", binary, arn, rig.subnet_id,
                 REPO / "out" / "lab-demo", duration=120).start()
    probes: dict[int, list[dict]] = {}
    phase = "healthy"
    t_inj = t_heal = None
    exec_seen = False
    while True:
        now = time.time()
        for e in ch.poll():
            ev = e.get("event")
            if ev == "probe":
                probes.setdefault(e.get("round"), []).append(e)
            elif ev == "round":
                ps = probes.pop(e.get("round"), [])
                marks = " ".join(
                    f"{short.get(p.get('target'), '?')}:" + ("ok" if p.get("ok") else p.get("cause", "?"))
                    + f"({float(p.get('latency_ms') or 0):.0f}ms)" for p in ps)
                ref = t_inj or t0
                print(f"  {e['_t'] - ref:+7.2f}s round {e.get('round'):>4} {'good' if e.get('good') else 'BAD '}  {marks}")
            elif ev in ("verdict_changed", "failover_started", "failover_exists", "failover_retry", "failover_failed"):
                detail = {k: v for k, v in e.items() if k not in ("timestamp", "level", "message", "event", "_t")}
                print(f"  >>> {ev} {detail}")
        if not ch.alive():
            print("lab: the checker exited on its own")
            break
        if phase == "healthy" and now - t0 > 6:
            t_inj = lab.faults.inject(mode)
            phase = "fault"
            print(f"=== injected {MODE_LABELS[mode]} on {lab.nat} (times below are relative to this)")
        elif phase == "fault":
            if not exec_seen and mode in OUTAGE_MODES and executions(rig.sfn, arn):
                ex = executions(rig.sfn, arn)[0]
                exec_seen = True
                print(f"=== Failover execution {ex['name']} started in moto "
                      f"{ex['startDate'].timestamp() - t_inj:.2f}s after injection")
            if (exec_seen and now - t_inj > 4) or now - t_inj > 20:
                t_heal = lab.faults.heal()
                phase = "healed"
                print(f"=== healed at {t_heal - t_inj:+.2f}s")
        elif phase == "healed" and now - t_heal > 4:
            break
        time.sleep(0.05)
    ch.stop()
    print(f"lab: checker stopped (exit {ch.exit_code}); logs in {ch.stderr_path}")
    if hold:
        print(f"\nlab is up. Try:\n  ip netns exec {lab.priv} curl -sv http://{TARGETS[0].fqdn}{TARGETS[0].path}\n"
              f"  ip netns exec {lab.nat} nft list ruleset\n"
              f"  ip netns exec {lab.nat} bash {REPO}/infra/nat-instance/configure-nat.sh --check "
              f"--egress-if {lab.wan_if_nat}\n  Ctrl-C to tear it all down.")
        while True:
            time.sleep(3600)
