"""One trial: start one checker per configuration in the rig's lab, let them settle, inject a fault at a
recorded instant, see when each one's Failover execution starts in moto, heal, see when each one's
verdict is healthy again; one record per configuration (what BENCHMARKS.md is rendered from)."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from .checker import Checker, executions, parse_ts, timing
from .modes import OUTAGE_MODES
from .rig import Rig


def _first(events: list[dict], after: float, pred) -> dict | None:
    for e in events:
        if e.get("_t") is not None and e["_t"] >= after and pred(e):
            return e
    return None


def run_trial(rig: Rig, mode: str, idx: int, configs: list[str], binary: str, log_dir: Path,
              exposure: float = 30.0, seed: int | None = None, on_event=None) -> list[dict]:
    """One trial of `mode` with one checker per configuration, all under the same fault at once.
    Returns one record per configuration."""
    rng = random.Random(seed if seed is not None else f"{mode}-{idx}")
    outage = mode in OUTAGE_MODES
    tm = {c: timing(binary, c) for c in configs}  # from the binary (--print-config), per configuration
    hold = max(tm[c].detect_cap for c in configs) if outage else exposure
    budget = 25 + max(tm[c].interval for c in configs) + hold + max(tm[c].recover_cap for c in configs) + 30
    sms = {c: rig.new_state_machine(f"{mode}-{idx}-{c}") for c in configs}
    checkers = {c: Checker(rig, f"{mode}-{idx:02d}-{c}", c, binary, sms[c], rig.subnet_id, log_dir, budget)
                for c in configs}
    rec = {c: {"kind": "trial", "mode": mode, "trial": idx, "config": c, "notes": []} for c in configs}
    t_inj = t_heal = None
    try:
        for ch in checkers.values():
            ch.start()

        def pump() -> None:
            for c, ch in checkers.items():
                for ev in ch.poll():
                    if on_event:
                        on_event(c, ev)

        # settle: every checker has finished one good round and is healthy
        deadline = time.time() + 25
        while time.time() < deadline:
            pump()
            if all(any(e.get("good") is True for e in ch.log.of("round")) for ch in checkers.values()):
                break
            dead = [c for c, ch in checkers.items() if not ch.alive()]
            if dead:
                break
            time.sleep(0.05)
        for c, ch in checkers.items():
            if not any(e.get("good") is True for e in ch.log.of("round")):
                rec[c]["notes"].append("no good round before the fault (see its log)")
        # a random phase against every checker's cadence
        phase = rng.uniform(0, max(tm[c].interval for c in configs))
        end = time.time() + phase
        while time.time() < end:
            pump()
            time.sleep(0.05)
        pump()
        for c, ch in checkers.items():
            if ch.log.verdicts():
                rec[c]["notes"].append("verdict changed before the fault: " + repr(ch.log.verdicts()[0]))
            pre = executions(rig.sfn, sms[c])
            if pre:
                rec[c]["notes"].append(f"{len(pre)} execution(s) before the fault")

        t_inj = rig.lab.faults.inject(mode)
        if on_event:
            on_event(None, {"event": "_inject", "mode": mode, "_t": t_inj})
        found: dict[str, float] = {}
        if outage:
            caps = {c: t_inj + tm[c].detect_cap for c in configs}
            while True:
                pump()
                now = time.time()
                for c in configs:
                    if c not in found and now <= caps[c] + 0.5:
                        ex = executions(rig.sfn, sms[c])
                        if ex:
                            found[c] = min(e["startDate"].timestamp() for e in ex)
                            if on_event:
                                on_event(c, {"event": "_execution", "_t": found[c]})
                if all(c in found or now > caps[c] for c in configs):
                    break
                time.sleep(0.1)
            time.sleep(0.3)  # let the last probes of the outage land in the logs
        else:
            end = t_inj + exposure
            while time.time() < end:
                pump()
                time.sleep(0.1)
        t_heal = rig.lab.faults.heal()
        if on_event:
            on_event(None, {"event": "_heal", "_t": t_heal})

        # recovery: wait for every checker that is unhealthy now to be healthy again
        caps = {c: t_heal + tm[c].recover_cap for c in configs}
        while True:
            pump()
            now = time.time()
            waiting = []
            for c, ch in checkers.items():
                v = ch.log.verdicts()
                if v and v[-1].get("to") == "unhealthy" and now <= caps[c]:
                    waiting.append(c)
            if not waiting:
                break
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        if rig.lab.faults.active is not None:
            t_heal2 = rig.lab.faults.heal()
            t_heal = t_heal or t_heal2
        for ch in checkers.values():
            ch.stop()

    for c, ch in checkers.items():
        r = rec[c]
        r.update({"timing": tm[c].as_env(), "t_inject": t_inj, "t_heal": t_heal, "log": str(ch.stderr_path), "state_machine": sms[c],
                  "exit_code": ch.exit_code, "resources": ch.resources()})
        ex = executions(rig.sfn, sms[c])
        r["executions"] = len(ex)
        if ex:
            first = min(ex, key=lambda e: e["startDate"])
            r["exec_start"] = first["startDate"].timestamp()
            r["detection_s"] = r["exec_start"] - t_inj if t_inj else None
            try:
                d = rig.sfn.describe_execution(executionArn=first["executionArn"])
                r["exec_input"] = json.loads(d.get("input") or "{}")
                r["exec_name"] = first.get("name")
            except Exception as e:  # noqa: BLE001 - informational
                r["notes"].append(f"describe_execution: {e}")
        ev = ch.log.events
        down = _first(ev, t_inj or 0, lambda e: e.get("event") == "verdict_changed" and e.get("to") == "unhealthy")
        r["verdict_unhealthy_s"] = down["_t"] - t_inj if down else None
        r["unhealthy_rule"] = down.get("rule") if down else None  # consecutive / window (newer checkers)
        up = _first(ev, t_heal or 0, lambda e: e.get("event") == "verdict_changed" and e.get("to") == "healthy")
        r["recovery_s"] = up["_t"] - t_heal if (up and down) else None
        r["verdict_changes"] = len(ch.log.verdicts())
        r["unhealthy_verdicts"] = sum(1 for e in ch.log.verdicts() if e.get("to") == "unhealthy")
        fs = ch.log.of("failover_started")
        r["failover_started_logged"] = len(fs)
        r["failover_errors"] = [e.get("error") for e in ch.log.of("failover_failed")]
        r["failover_retries"] = len(ch.log.of("failover_retry"))
        probes = [e for e in ev if e.get("event") == "probe"]
        during = [e for e in probes if t_inj and t_heal and _probe_t(e) is not None and t_inj <= _probe_t(e) < t_heal]
        r["probes_during"] = len(during)
        r["probe_failures_during"] = sum(1 for e in during if e.get("ok") is False)
        causes: dict[str, int] = {}
        for e in during:
            if e.get("ok") is False:
                causes[str(e.get("cause"))] = causes.get(str(e.get("cause")), 0) + 1
        r["causes_during"] = causes
        rounds = ch.log.of("round")
        r["rounds"] = len(rounds)
        r["bad_rounds"] = sum(1 for e in rounds if e.get("good") is False)
        r["run_finished"] = bool(ch.log.of("run_finished"))
        if ch.log.junk:
            r["notes"].append(f"{len(ch.log.junk)} non-JSON stderr line(s), first: {ch.log.junk[0][:160]!r}")
        emf = ch.emf_problems()
        if emf:
            r["notes"].append(f"{len(emf)} EMF problem(s), first: {emf[0]}")
        if ch.exit_code not in (0,):
            r["notes"].append(f"exit code {ch.exit_code}")
        if ex and not fs and not ch.log.of("failover_exists"):
            r["notes"].append("execution started but no failover_started event logged")
        r["exec_names"] = sorted(e.get("name", "") for e in ex)
        if r["executions"] > 1:
            r["notes"].append(f"{r['executions']} executions during one injected fault "
                              f"({r['unhealthy_verdicts']} unhealthy verdicts; names {', '.join(r['exec_names'])})")
        if outage and down and not ex:
            r["notes"].append("verdict unhealthy but no execution in moto")
    return list(rec.values())


def _probe_t(e: dict) -> float | None:
    try:
        return parse_ts(e["started_at"])
    except (KeyError, ValueError, TypeError):
        return e.get("_t")
