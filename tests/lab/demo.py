"""`make lab`: a short narrated run on the real network path. The checker (default configuration)
probes through the lab NAT; after a few healthy seconds a fault is injected on the NAT host; you
watch the rounds go bad, the verdict change and the Failover execution start in moto; the fault is
healed and the verdict goes healthy again. --hold keeps the lab up afterwards for poking around.

  demo.py --binary BIN [--mode blackhole] [--hold]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from checker import Checker, executions
from netlab import REPO, TARGETS, install_signal_handlers, require_root_tools
from rig import BENIGN_MODES, MODE_LABELS, OUTAGE_MODES, Rig


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--mode", default="blackhole", choices=OUTAGE_MODES + BENIGN_MODES)
    ap.add_argument("--hold", action="store_true", help="keep the lab up until Ctrl-C")
    args = ap.parse_args()
    reason = require_root_tools()
    if reason:
        print(f"{'SKIP ' if os.geteuid() != 0 else ''}lab: {reason}")
        return 0 if os.geteuid() != 0 else 1
    if not os.access(args.binary, os.X_OK):
        print(f"lab: no checker binary at {args.binary}")
        return 1

    rig = Rig(REPO / "out" / "lab-demo" / "lab")
    install_signal_handlers(rig.close)
    short = {t.url: t.name for t in TARGETS}
    t0 = time.time()
    try:
        rig.start()
        lab = rig.lab
        print(f"lab {lab.run_id}: {lab.priv} ─ {lab.nat} (MASQUERADE, DNS) ─ {lab.inet} "
              f"({', '.join(t.fqdn for t in TARGETS)}); moto via {lab.endpoint_url} (no NAT)")
        arn = rig.new_state_machine("demo")
        ch = Checker(lab, "demo", "default", os.path.abspath(args.binary), arn, rig.subnet_id,
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
                t_inj = lab.inject(args.mode)
                phase = "fault"
                print(f"=== injected {MODE_LABELS[args.mode]} on {lab.nat} (times below are relative to this)")
            elif phase == "fault":
                if not exec_seen and args.mode in OUTAGE_MODES and executions(rig.sfn, arn):
                    ex = executions(rig.sfn, arn)[0]
                    exec_seen = True
                    print(f"=== Failover execution {ex['name']} started in moto "
                          f"{ex['startDate'].timestamp() - t_inj:.2f}s after injection")
                if (exec_seen and now - t_inj > 4) or now - t_inj > 20:
                    t_heal = lab.heal()
                    phase = "healed"
                    print(f"=== healed at {t_heal - t_inj:+.2f}s")
            elif phase == "healed" and now - t_heal > 4:
                break
            time.sleep(0.05)
        ch.stop()
        print(f"lab: checker stopped (exit {ch.exit_code}); logs in {ch.stderr_path}")
        if args.hold:
            print(f"\nlab is up. Try:\n  ip netns exec {lab.priv} curl -sv http://{TARGETS[0].fqdn}{TARGETS[0].path}\n"
                  f"  ip netns exec {lab.nat} iptables -L -v -n\n  Ctrl-C to tear it all down.")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        print("\nlab: interrupted")
    finally:
        rig.close()
        print("lab: torn down (processes stopped, namespaces removed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
