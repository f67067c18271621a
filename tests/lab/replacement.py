"""A planned NAT replacement in the lab, with the checkers running (issue 11, item 6).

A second NAT host is launched for the trial and configured by the same configure-nat.sh:

    private ──(0.0.0.0/0 via)── nat  ──── inet          before
       └────────────────────── nat2 ──── inet          launched: LAN2 198.18.11.0/24, WAN2 198.18.101.0/24

The subnet keeps its address (198.18.10.10, the route's `src`), as a subnet does when its route table
changes target. The steps are the ones a replacement takes: the new host comes up and configure-nat.sh
--check says it is in place; the subnet's 0.0.0.0/0 is moved to it in one atomic replace (as
ec2:ReplaceRoute moves a route table's target; the kernel route stands for the route table); the old
host keeps forwarding for a drain period (connections it already tracks), then is terminated (uplink
down, its table flushed). Failed probes are counted from the route move to the end of the settle
period after the termination; the goal is 0. Afterwards the lab is put back: the route returns to the
first NAT (reconfigured by the script) and the second host is deleted, so trials can follow.
"""

from __future__ import annotations

import time
from pathlib import Path

from .checker import Checker, executions, parse_ts, timing
from .natconf import configure_nat, masqueraded_packets
from .addressing import INET_GW_IP, LAN_NET, NAT_LAN_IP, PRIV_IP
from .rig import Rig
from .shell import LabError, run

MODE = "replacement"
LABEL = "planned replacement (route moved to a new NAT host, old one terminated)"
PRIV2_IP, NAT2_LAN_IP = "198.18.11.10", "198.18.11.1"
NAT2_WAN_IP, INET_GW2_IP = "198.18.101.2", "198.18.101.1"


def launch_second_nat(rig: Rig) -> str:
    """The replacement NAT host: namespace nat2 wired to private and inet, configured by the script.
    Returns its LAN address (the new route target)."""
    lab = rig.lab
    nat2 = lab.ns("nat2")
    p2, m0, m1, i1 = (lab.ifname(x) for x in ("p2", "m0", "m1", "i1"))
    run(["ip", "netns", "add", nat2])
    run(["ip", "-n", nat2, "link", "set", "lo", "up"])
    run(["ip", "link", "add", p2, "netns", lab.priv, "type", "veth", "peer", "name", m0, "netns", nat2])
    run(["ip", "link", "add", m1, "netns", nat2, "type", "veth", "peer", "name", i1, "netns", lab.inet])
    run(["ip", "-n", lab.priv, "addr", "add", f"{PRIV2_IP}/24", "dev", p2])
    run(["ip", "-n", nat2, "addr", "add", f"{NAT2_LAN_IP}/24", "dev", m0])
    run(["ip", "-n", nat2, "addr", "add", f"{NAT2_WAN_IP}/24", "dev", m1])
    run(["ip", "-n", lab.inet, "addr", "add", f"{INET_GW2_IP}/24", "dev", i1])
    for ns, dev in ((lab.priv, p2), (nat2, m0), (nat2, m1), (lab.inet, i1)):
        run(["ip", "-n", ns, "link", "set", dev, "up"])
    run(["ip", "-n", nat2, "route", "add", "default", "via", INET_GW2_IP])
    run(["ip", "-n", nat2, "route", "add", LAN_NET, "via", PRIV2_IP])  # the subnet, behind its LAN leg
    configure_nat(nat2, m1, LAN_NET)
    check = configure_nat(nat2, m1, LAN_NET, check=True)
    if check.returncode != 0:
        raise LabError(f"the new NAT host is not in place: {check.stdout.strip()}")
    return NAT2_LAN_IP


def move_route(rig: Rig, via: str, dev: str) -> float:
    """The subnet's 0.0.0.0/0 to a new target in one atomic replace; the instant before it."""
    t = time.time()
    run(["ip", "-n", rig.lab.priv, "route", "replace", "default", "via", via, "dev", dev, "src", PRIV_IP])
    return t


def terminate_old_nat(rig: Rig) -> float:
    lab = rig.lab
    t = time.time()
    run(["ip", "-n", lab.nat, "link", "set", lab.wan_if_nat, "down"])
    run(["ip", "netns", "exec", lab.nat, "nft", "delete", "table", "ip", "nat_watchdog"])
    return t


def restore(rig: Rig) -> None:
    """Back to the first NAT (relaunched: uplink up, configure-nat.sh again); the second one deleted."""
    lab = rig.lab
    run(["ip", "-n", lab.nat, "link", "set", lab.wan_if_nat, "up"], check=False)
    run(["ip", "-n", lab.nat, "route", "replace", "default", "via", INET_GW_IP], check=False)
    lab.configure_nat()
    run(["ip", "-n", lab.priv, "route", "replace", "default", "via", NAT_LAN_IP, "dev", lab.ifname("p0")])
    if lab.ns("nat2") in run(["ip", "netns", "list"], check=False).stdout.split():
        run(["ip", "netns", "delete", lab.ns("nat2")])
    run(["ip", "-n", lab.inet, "link", "delete", lab.ifname("i1")], check=False)
    run(["ip", "-n", lab.priv, "link", "delete", lab.ifname("p2")], check=False)


def run_replacement(rig: Rig, idx: int, configs: list[str], binary: str, log_dir: Path,
                    drain_s: float | None = None, settle_s: float | None = None) -> list[dict]:
    """One planned replacement with one checker per configuration; one record per configuration."""
    tm = {c: timing(binary, c) for c in configs}
    drain = drain_s if drain_s is not None else 2 * max(t.timeout for t in tm.values())
    settle = settle_s if settle_s is not None else max(t.detect_cap for t in tm.values())
    sms = {c: rig.new_state_machine(f"{MODE}-{idx}-{c}") for c in configs}
    budget = 25 + 20 + drain + settle + 30
    checkers = {c: Checker(rig, f"{MODE}-{idx:02d}-{c}", c, binary, sms[c], rig.subnet_id, log_dir, budget)
                for c in configs}
    rec = {c: {"kind": MODE, "mode": MODE, "trial": idx, "config": c, "notes": []} for c in configs}
    t_move = t_term = t_end = None
    launch_s = None
    new_nat_connections = 0
    try:
        for ch in checkers.values():
            ch.start()
        deadline = time.time() + 25
        while time.time() < deadline and not all(
                any(e.get("good") is True for e in ch.log.of("round")) for ch in checkers.values()):
            for ch in checkers.values():
                ch.poll()
            time.sleep(0.05)
        t_launch = time.time()
        via = launch_second_nat(rig)
        launch_s = time.time() - t_launch
        t_move = move_route(rig, via, rig.lab.ifname("p2"))
        time.sleep(drain)
        t_term = terminate_old_nat(rig)
        time.sleep(settle)
        t_end = time.time()
        new_nat_connections = masqueraded_packets(rig.lab.ns("nat2"))  # first packets: one per connection
    finally:
        for ch in checkers.values():
            ch.stop()
        restore(rig)

    for c, ch in checkers.items():
        r = rec[c]
        probes = [e for e in ch.log.of("probe") if _started(e) is not None]
        during = [e for e in probes if t_move and t_end and t_move - tm[c].timeout <= _started(e) < t_end]
        failed = [e for e in during if e.get("ok") is False]
        rounds = [e for e in ch.log.of("round") if e.get("_t") and t_move and e["_t"] >= t_move]
        ex = executions(rig.sfn, sms[c])
        r.update({
            "timing": tm[c].as_env(), "t_move": t_move, "t_terminate": t_term, "t_end": t_end,
            "launch_s": launch_s, "drain_s": drain, "settle_s": settle, "new_nat_connections": new_nat_connections,
            "probes_during": len(during), "failed_probes": len(failed),
            "failed_causes": sorted({str(e.get("cause")) for e in failed}),
            "bad_rounds": sum(1 for e in rounds if e.get("good") is False),
            "verdict_changes": len(ch.log.verdicts()), "executions": len(ex), "exit_code": ch.exit_code,
            "log": str(ch.stderr_path),
        })
        if not during:
            r["notes"].append("no probe during the replacement (see its log)")
        if t_end and not new_nat_connections:
            r["notes"].append("no connection crossed the new NAT host: the route move did not take")
        if ch.exit_code != 0:
            r["notes"].append(f"exit code {ch.exit_code}")
    return list(rec.values())


def _started(e: dict) -> float | None:
    try:
        return parse_ts(e["started_at"])
    except (KeyError, ValueError, TypeError):
        return e.get("_t")
