"""The lab checks itself without the checker: the NAT host is configured by configure-nat.sh (its
--check says so), every target answers from the private namespace, every fault is observable there,
the NAT's own configuration is whole again after each heal, moto answers during a blackhole (it is not
behind the NAT), and nothing is left behind afterwards.

Usage: python -m tests.lab.selftest   (from the repository root, as root)"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .netlab import TARGETS, Lab
from .rig import Rig
from .shell import REPO, run

FAULT_EXPECT = {
    # mode: (expected result per target: True = reachable), a word on what is seen
    "blackhole": (False, False, False),
    "reject": (False, False, False),
    "uplink_down": (False, False, False),
    "masq_removed": (False, False, False),
    "dns_down": (False, False, False),
    "target_down": (False, True, True),
    "latency": (True, True, True),
}


def fetch_all(lab: Lab, timeout: float = 1.5) -> list[tuple[bool, str, float]]:
    out = []
    for t in TARGETS:
        t0 = time.monotonic()
        ok, msg = lab.curl_from_private(t.url, timeout=timeout)
        out.append((ok, msg, time.monotonic() - t0))
    return out


def leftovers(run_id: str) -> list[str]:
    found = [n for n in run(["ip", "netns", "list"]).stdout.split() if run_id in n]
    found += [l for l in run(["ip", "-o", "link", "show"]).stdout.splitlines() if f"nwd{run_id}" in l]
    if Path(f"/etc/netns/nwd-{run_id}-priv").exists():
        found.append("/etc/netns entry")
    return found


def main() -> int:
    failures: list[str] = []
    rig = Rig(REPO / "out" / "lab-selftest")
    print(f"lab {rig.lab.run_id}: starting")
    with rig:
        check_lab(rig.lab, failures)
    rest = leftovers(rig.lab.run_id)
    if rest:
        failures.append(f"left behind: {rest}")
    print("selftest:", "FAILED" if failures else "passed")
    for f in failures:
        print("  -", f)
    return 1 if failures else 0


def nat_in_place(lab: Lab) -> tuple[bool, str]:
    p = lab.configure_nat(check=True)
    return p.returncode == 0, p.stdout.strip().splitlines()[-1] if p.stdout.strip() else p.stderr.strip()


def check_lab(lab: Lab, failures: list[str]) -> None:
    print(f"  namespaces {lab.namespaces}; endpoint {lab.endpoint_url}")
    ok, msg = nat_in_place(lab)
    print(f"  NAT host: configure-nat.sh --check: {msg}")
    if not ok:
        failures.append(f"NAT not in place after start: {msg}")
    masq_before = lab.nat_counters()["masqueraded"]
    base = fetch_all(lab)
    masq = lab.nat_counters()["masqueraded"] - masq_before
    print(f"  NAT host: the script's masquerade rule translated {masq} packets for the healthy fetches")
    if masq <= 0:
        failures.append("healthy fetches did not go through the script's masquerade rule")
    for t, (ok, msg, dt) in zip(TARGETS, base):
        print(f"  healthy  {t.url:45s} ok={ok} {dt*1000:6.0f} ms {msg[:60]}")
        if not ok:
            failures.append(f"healthy: {t.url} {msg}")
    for mode, expect in FAULT_EXPECT.items():
        lab.faults.inject(mode)
        res = fetch_all(lab)
        if mode == "blackhole":
            before = lab.nat_counters()
            ok, msg = lab.curl_from_private(f"{lab.endpoint_url}/moto-api/data.json", timeout=3)
            after = lab.nat_counters()
            print(f"  blackhole: moto via endpoint ok={ok}; NAT forwarded {after['forwarded'] - before['forwarded']} packets meanwhile")
            if not ok:
                failures.append(f"moto unreachable during blackhole: {msg}")
        if mode == "masq_removed":
            ok, msg = nat_in_place(lab)
            print(f"  masq_removed: configure-nat.sh --check during the fault: {msg}")
            if ok:
                failures.append("masq_removed: configure-nat.sh --check did not notice the missing rule")
        lab.faults.heal()
        ok, msg = nat_in_place(lab)
        if not ok:
            failures.append(f"{mode}: NAT configuration not whole after heal: {msg}")
        for t, (ok, msg, dt), want in zip(TARGETS, res, expect):
            mark = "ok " if ok == want else "BAD"
            print(f"  {mark} {mode:13s} {t.name:8s} reachable={ok!s:5s} {dt*1000:6.0f} ms {msg[:70]}")
            if ok != want:
                failures.append(f"{mode}: {t.url} reachable={ok}, wanted {want}")
        if mode == "latency":
            slow = [dt for ok, _, dt in res]
            if min(slow) < 0.35:
                failures.append(f"latency: a fetch took only {min(slow):.3f}s")
        after = fetch_all(lab)
        if not all(ok for ok, _, _ in after):
            failures.append(f"{mode}: not healed: {[m for _, m, _ in after]}")
    for mode, p in (("loss20", 0.2),):
        lab.faults.inject(mode)
        res = [lab.curl_from_private(TARGETS[0].url, timeout=1.0)[0] for _ in range(15)]
        lab.faults.heal()
        print(f"  {mode}: {res.count(False)}/15 fetches failed")
        if res.count(False) == 0:
            failures.append(f"{mode}: no failures in 15 fetches")
    lab.faults.inject("flapping")
    seen = []
    for _ in range(8):
        seen.append(lab.curl_from_private(TARGETS[0].url, timeout=0.4)[0])
        time.sleep(0.1)
    lab.faults.heal()
    print(f"  flapping: {seen}")
    if all(seen) or not any(seen):
        failures.append(f"flapping: no alternation seen {seen}")


if __name__ == "__main__":
    sys.exit(main())
