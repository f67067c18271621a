"""The closed-loop section of the bench report (records of kind "closed-loop", tests/lab/closedloop.py):
egress downtime per failure mode against the goals, the anchors side by side, and its split."""

from __future__ import annotations

import statistics

from tests.lab.closedloop import FOLLOW_INTERVAL_S, KIND, LOOP_LABELS, LOOP_MODES, PROBE_INTERVAL_S, PROBE_TIMEOUT_S

GOAL_MEDIAN_S, GOAL_P99_S = 2.0, 3.0
PARTS = (("detection_s", "detection"), ("failover_s", "Failover in moto"),
         ("follower_lag_s", "follower lag"), ("first_probe_s", "first probe"))


def loop_records(recs: list[dict]) -> list[dict]:
    return [r for r in recs if r.get("kind") == KIND]


def _vals(rs: list[dict], key: str) -> list[float]:
    return [r[key] for r in rs if r.get(key) is not None]


def _medp99(xs: list[float], pct) -> str:
    return "–" if not xs else f"{statistics.median(xs):.2f} / {pct(xs, 99):.2f}"


def goal_rows(recs: list[dict], pct) -> list[str]:
    """The goal lines over the default configuration's trials of every outage mode but flapping
    (flapping is detected by the windowed rule, by design later; it has its own row below)."""
    rs = [r for r in loop_records(recs) if r["config"] == "default" and r["mode"] != "loop_flapping"]
    if not rs:
        return []
    d = _vals(rs, "egress_downtime_s")
    miss = len(rs) - len(d)
    if not d:
        return [f"| closed loop: egress downtime median ≤ {GOAL_MEDIAN_S:g} s | **all {miss} missed** | **no** |"]
    med, p99 = statistics.median(d), pct(d, 99)
    tail = f" (n={len(d)}, {miss} without egress back)" if miss else f" (n={len(d)})"
    return [f"| closed loop: egress downtime median ≤ {GOAL_MEDIAN_S:g} s (every outage mode but flapping) | "
            f"{med:.2f} s{tail} | {'yes' if med <= GOAL_MEDIAN_S and not miss else '**no**'} |",
            f"| closed loop: egress downtime p99 ≤ {GOAL_P99_S:g} s | {p99:.2f} s | "
            f"{'yes' if p99 <= GOAL_P99_S and not miss else '**no**'} |"]


def section(recs: list[dict], configs: list[str], config_name, pct, heading: str = "###") -> list[str]:
    rs_all = loop_records(recs)
    if not rs_all:
        return []
    cfgs = [c for c in configs if any(r["config"] == c for r in rs_all)]
    lat = [r["follower_latency"] for r in rs_all if isinstance(r.get("follower_latency"), dict)]
    lat_text = ""
    if lat:
        lat_text = (f" Its DescribeRouteTables call took {statistics.median(l['median_s'] for l in lat) * 1000:.0f} ms "
                    f"(median of the runs' medians; worst run p99 {max(l['p99_s'] for l in lat) * 1000:.0f} ms, "
                    f"max {max(l['max_s'] for l in lat) * 1000:.0f} ms) against moto, which is running the "
                    "Failover at the same time.")
    out = [f"{heading} Closed loop: egress downtime (fault → first successful probe over the NAT gateway)", "",
           "The checker in `private` detects, the real Failover (infra/statemachines) moves the route in moto, "
           "the private host's kernel route follows, and egress comes back over a second egress host `natgw` "
           "(a plain masquerading router standing for the standby NAT Gateway; tests/lab/closedloop.py). "
           f"A route follower polls DescribeRouteTables of the subnet's managed route table every "
           f"{FOLLOW_INTERVAL_S * 1000:.0f} ms and applies it to the kernel: 0.0.0.0/0 to the NAT instance's ENI → "
           "via the nat host, to the standby NAT Gateway → via natgw; the canary /32 routes → via the nat host, "
           f"always.{lat_text} The stopwatch is a separate probe loop in `private`, not the checker's log: a new "
           f"probe every {PROBE_INTERVAL_S * 1000:.0f} ms (DNS query, new TCP connection, GET, "
           f"{PROBE_TIMEOUT_S:g} s timeout, overlapping), each naming the egress address the target saw, so "
           "*over the gateway* is observed, not inferred, and every configuration is timed alike (the checker "
           "logs neither the path of a probe nor, for the anchors, more than one probe per 5–10 s). The names "
           "resolve at a resolver beyond the NAT (in `inet`), so that a NAT host that is gone does not take DNS "
           "with it; *DNS down* is the NAT host dropping the DNS it forwards. Between trials the route goes back "
           "to the NAT instance in moto (ReplaceRoute) and the kernel follows.", "",
           f"Goal: median ≤ {GOAL_MEDIAN_S:g} s, p99 ≤ {GOAL_P99_S:g} s. median / p99 in seconds (n trials; "
           "*no egress* = no probe over the gateway within the detection cap + 15 s).", "",
           "| failure (injected on the NAT host) | " + " | ".join(config_name(c).split(" (")[0] for c in cfgs)
           + " | goal met (ours) |",
           "|---|" + "---|" * len(cfgs) + "---|"]
    for m in LOOP_MODES:
        if not any(r["mode"] == m for r in rs_all):
            continue
        cells, met = [], "–"
        for c in cfgs:
            rs = [r for r in rs_all if r["mode"] == m and r["config"] == c]
            if not rs:
                cells.append("–")
                continue
            d = _vals(rs, "egress_downtime_s")
            miss = len(rs) - len(d)
            cell = f"{_medp99(d, pct)} (n={len(rs)}" + (f", **{miss} no egress**)" if miss else ")")
            cells.append(cell)
            if c == "default" and d:
                ok = statistics.median(d) <= GOAL_MEDIAN_S and pct(d, 99) <= GOAL_P99_S and not miss
                met = "yes" if ok else "**no**"
        out.append(f"| {LOOP_LABELS[m]} | " + " | ".join(cells) + f" | {met} |")
    out += ["", "Where the time goes, per configuration: median / p99 of each part in seconds (detection = execution "
            "`startDate` − fault; Failover = that execution's ReplaceRoute of the followed table done, from its "
            "history − `startDate`; follower lag = kernel route in place − that ReplaceRoute; first probe = first "
            "probe over the gateway completed − kernel route in place; the parts add up to the downtime).", "",
            "| failure | config | n | downtime | " + " | ".join(lbl for _, lbl in PARTS)
            + " | executions | kernel route moved |",
            "|---|---|---|---|" + "---|" * len(PARTS) + "---|---|"]
    for m in LOOP_MODES:
        for c in cfgs:
            rs = [r for r in rs_all if r["mode"] == m and r["config"] == c]
            if not rs:
                continue
            moved = sum(1 for r in rs if r.get("kernel_moved"))
            ex = [r.get("executions", 0) for r in rs]
            ex_text = f"{min(ex)}" if min(ex) == max(ex) else f"{min(ex)}–{max(ex)}"
            out.append(f"| {LOOP_LABELS[m]} | {c} | {len(rs)} | {_medp99(_vals(rs, 'egress_downtime_s'), pct)} | "
                       + " | ".join(_medp99(_vals(rs, k), pct) for k, _ in PARTS)
                       + f" | {ex_text} | {moved}/{len(rs)} |")
    out += ["", "The anchors run our checker with their published cadence (see the configurations above) in "
            "the same loop: the same Failover, follower and route, so their downtime is their detection plus "
            "the same few hundred milliseconds, and they run in fewer trials (`BENCH_LOOP_ANCHOR_TRIALS`). "
            "Neither anchor falls back to the NAT instance through the forwarding path or damps flapping "
            "(alterNAT's optional restore checks from the instance itself; the original checker has none), so "
            "the fallback and flapping-damping figures of issue 12 have no anchor to stand beside.", ""]
    return out


RECOVERY_KIND = "closed-loop-recovery"  # tests/lab/loop_recovery.py (kept in sync; that module needs root tools)
EXTRA_BACK_S = 60  # goal: back on the NAT instance within hold + 60 s of the repair
MAX_AUTO_FALLBACKS_FLAPPING = 1


def recovery_records(recs: list[dict]) -> list[dict]:
    return [r for r in recs if r.get("kind") == RECOVERY_KIND]


SOAK_DNS_TEXT = {"vpc": "DNS as a VPC resolver: not through the NAT",
                 "beyond-nat": "DNS beyond the NAT: lossy too"}


def soak_dns(r: dict) -> str:
    """Where a soak's private host resolved (loop_recovery.SOAK_DNS); records from before the option ran
    with the closed loop's resolver, beyond the NAT."""
    return r.get("soak_dns", "beyond-nat")


def recovery_goal_rows(recs: list[dict]) -> list[str]:
    rows = []
    rep = [r for r in recovery_records(recs) if r.get("scenario") == "repair"]
    if rep:
        back = [r.get("back_on_nat_s") for r in rep]
        hold = rep[0]["knobs"]["FallbackHoldSeconds"]
        ok = all(b is not None and b <= hold + EXTRA_BACK_S for b in back)
        shown = ", ".join("never" if b is None else f"{b:.1f} s" for b in back)
        rows.append(f"| closed loop: back on the NAT instance ≤ hold + {EXTRA_BACK_S} s after the repair (hold "
                    f"{hold} s) | {shown} | {'yes' if ok else '**no**'} |")
    gray = [r for r in recovery_records(recs) if r.get("scenario") == "gray"]
    if gray:
        ok = [r for r in gray if not r.get("problems") and r.get("repairs") == 1
              and r.get("final_target") and r.get("final_target") == r.get("stable_eni")]
        back = ", ".join("never" if r.get("back_on_nat_s") is None else f"{r['back_on_nat_s']:.1f} s" for r in gray)
        rows.append(f"| closed loop: gray failure (MASQUERADE removed for good) replaced and back on a NAT instance "
                    f"with no human step | {len(ok)}/{len(gray)} runs: 1 repair, back on the stable ENI "
                    f"{back} after the fault | {'yes' if len(ok) == len(gray) else '**no**'} |")
    for r in (r for r in recovery_records(recs) if r.get("scenario") == "soak"):
        fo, fb = r.get("failovers"), r.get("auto_fallbacks")
        rows.append(f"| closed loop: 0 false failovers and 0 false fallbacks in the 5 % and 20 % loss soaks "
                    f"({r.get('soak_min', 0):g} min each; {SOAK_DNS_TEXT[soak_dns(r)]}) | {fo} Failover(s), "
                    f"{fb} automatic fallback(s) | "
                    f"{'yes' if fo == 0 and fb == 0 else '**no**'} |")
    for r in (r for r in recovery_records(recs) if r.get("scenario") == "flapping"):
        n = r.get("auto_fallbacks", 0)
        rows.append(f"| closed loop: flapping ({r.get('flap_period_s', 1):g} s down / {r.get('flap_period_s', 1):g} s up) "
                    f"for {r.get('flap_min', 0):g} min: ≤ {MAX_AUTO_FALLBACKS_FLAPPING} automatic fallback | "
                    f"{n} automatic fallback(s), {r.get('default_route_moves', 0)} kernel default-route moves | "
                    f"{'yes' if n <= MAX_AUTO_FALLBACKS_FLAPPING else '**no**'} |")
    return rows


def recovery_section(recs: list[dict], heading: str = "###") -> list[str]:
    rs = recovery_records(recs)
    if not rs:
        return []
    k = rs[0]["knobs"]
    out = [f"{heading} Closed loop: automatic fallback and damping", "",
           "Reproduce (root, a checker with canaries as target/release/connectivity-checker): `make bench-recovery "
           "BENCH_OUT=out/bench-closed-loop BENCH_RECOVERY_SCENARIOS=repair,repair,repair,flapping` and `make "
           "bench-recovery BENCH_OUT=out/bench-closed-loop BENCH_RECOVERY_SCENARIOS=flapping BENCH_FLAP_PERIOD=30`, "
           "`make bench-recovery BENCH_OUT=out/bench-closed-loop BENCH_RECOVERY_SCENARIOS=gray,gray,gray,soak "
           "BENCH_RECOVERY_SOAK_MIN=5`, then the page's re-render command; each scenario runs in a lab and moto of its "
           "own (tests/lab/loop_recovery.py), flapping for `BENCH_FLAP_MIN` (10) minutes.", "",
           "The same loop with the checker's canaries (`CANARY_URLS`: two canary hosts in `inet` whose /32 routes "
           "always go to the NAT host), its EMF documents replayed into moto's CloudWatch with PutMetricData as "
           "CloudWatch would extract them (tests/demo/emulated.replay_emf; moto does not parse EMF), and the "
           "recovery state machine (infra/statemachines/nat-recovery.asl.json, created through the API) with "
           f"short knobs: period {k['CheckPeriodSeconds']} s, hold {k['FallbackHoldSeconds']} s (cap "
           f"{k['FallbackHoldCapSeconds']} s), at most {k['MaxAutoFallbacksPerDay']} automatic fallbacks a day. "
           "moto delivers no EventBridge event, so the harness starts the recovery with the event a SUCCEEDED "
           "Failover sends (moto_env.failover_succeeded_event), once per Failover execution. The checker runs "
           "with `METRICS_FLUSH_INTERVAL=1` (default 5 s) so that its EMF reaches the 2 s recovery period in time; "
           "the replay adds up to 0.5 s. In *repair*, *flapping* and *soak* the lab's NAT "
           "instance is bring-your-own (no Auto Scaling group, repair knob out of reach): the *repair* is the fault "
           "healed. *gray* gives the lab's VPC in moto the managed NAT layer of its AZ (a one-instance Auto Scaling "
           "group, the stable ENI as the route target, mapped to the nat host; moto_env.build_workflows_nat_layer) "
           "and `RepairAfterSeconds` " + str(next((r["knobs"].get("RepairAfterSeconds") for r in rs
                                                   if r.get("scenario") == "gray"), "–")) + " s; its table is below. "
           "Checker: a build with canaries, "
           "sha256 " + builds(rs) + ".", "",
           "| scenario | fault | measured | automatic fallbacks | Failover executions | kernel default-route moves "
           "(s after the fault → target) |", "|---|---|---|---|---|---|"]
    for r in rs:
        moves = ", ".join(f"{t:+.1f} → {'natgw' if str(tgt).startswith('nat-') else 'nat'}"
                          for t, tgt in r.get("route_moves", [])) or "–"
        if r.get("scenario") == "repair":
            b = r.get("back_on_nat_s")
            what = (f"healed {r.get('repair_after_s', 15):g} s after the Failover succeeded (the repair); back on "
                    f"the NAT instance {'never' if b is None else f'{b:.1f} s'} after the repair (goal ≤ "
                    f"{r.get('goal_s', '?')} s)")
            fault = "blackhole"
        elif r.get("scenario") == "gray":
            b = r.get("back_on_nat_s")
            what = (f"never healed; {r.get('repairs', '?')} repair(s); back on the NAT instance "
                    f"{'never' if b is None else f'{b:.1f} s'} after the fault")
            fault = "MASQUERADE removed for good"
        elif r.get("scenario") == "soak":
            what = (f"{r.get('soak_min', 0):g} min of each loss level (20 % from +{r.get('soak_min', 0) * 60:.0f} s), "
                    f"then healed (no outage: nothing may move); {SOAK_DNS_TEXT[soak_dns(r)]}")
            fault = "5 %, then 20 % random loss + one target down"
        else:
            what = f"{r.get('flap_min', 0):g} min of flapping, then healed"
            fault = f"flapping {r.get('flap_period_s', 1):g} s / {r.get('flap_period_s', 1):g} s"
        if r.get("notes"):
            what += " (note: " + "; ".join(r["notes"]) + ")"
        out.append(f"| {r['scenario']} | {fault} | {what} | {r.get('auto_fallbacks', 0)} | {r.get('failovers', 0)} | "
                   f"{moves} |")
    return out + [""] + gray_table(rs) + soak_note(rs)


def soak_note(rs: list[dict]) -> list[str]:
    if not any(r.get("scenario") == "soak" for r in rs):
        return []
    return ["Soak: the loss (nftables `numgen random`, the bench soaks' faults `soak5` then `soak20`, each with one "
            "of the three targets down) hits every packet the nat host forwards, canaries included; the checker, "
            "the recovery and the follower run throughout, and any Failover or automatic fallback counts against "
            "the goal. Where the private host resolves matters: in AWS a subnet reaches the VPC resolver without "
            "the NAT instance, so NAT-path loss never touches DNS; *DNS as a VPC resolver* puts the private host's "
            "resolver on the nat host, answering itself (INPUT, never forwarded); *DNS beyond the NAT* keeps the "
            "closed loop's resolver in `inet` (chosen so that a dead NAT host does not take DNS with it), whose "
            "queries cross the lossy path. There the staggered attempts do not suffice: each attempt's glibc "
            "lookup asks for A and AAAA and waits 5 s if either of the four packets is lost (41 % of lookups "
            "complete at 20 % loss each way), so that row's unhealthy verdicts mostly name `dns` on the live targets (the checker's `verdict_changed` log); an A-only lookup "
            "when `IPV4_ONLY` is set would halve that exposure. Kernel route moves are listed in the table above "
            "(seconds after the soak started).", ""]


def builds(rs: list[dict]) -> str:
    """The checker builds of the runs, each with the scenarios it ran: `abc (repair, flapping), def (gray)`."""
    by: dict[str, list[str]] = {}
    for r in rs:
        kinds = by.setdefault(r.get("binary_sha256", "?"), [])
        if r.get("scenario") not in kinds:
            kinds.append(r.get("scenario"))
    if len(by) == 1:
        return next(iter(by))
    return ", ".join(f"{sha} ({', '.join(map(str, kinds))})" for sha, kinds in by.items())


GRAY_STEPS = (("failover_s", "failover (kernel route → natgw)"), ("set_health_s", "SetInstanceHealth Unhealthy"),
              ("new_instance_s", "new instance in service"), ("back_on_nat_s", "back on the NAT instance"))


def gray_table(rs: list[dict]) -> list[str]:
    """The gray failure's steps, seconds after the fault, one row per run."""
    gray = [r for r in rs if r.get("scenario") == "gray"]
    if not gray:
        return []
    k = gray[0]["knobs"]
    out = ["Gray failure, never repaired by hand: MASQUERADE removed for good on the nat host (the instance still "
           "runs and passes EC2's checks in moto). The checker fails over; the recovery sees `NatPathUnhealthy` "
           f"for `RepairAfterSeconds` ({k.get('RepairAfterSeconds')} s) while the instance looks healthy to EC2 "
           "and calls SetInstanceHealth Unhealthy (at most "
           f"{k.get('MaxRepairsPerHour')} an hour); moto's Auto Scaling replaces the instance (the recording "
           "server: moto stores the health only); the lab plays the new instance's boot, which moto cannot: "
           "configure-nat.sh runs again in the nat namespace (the masquerade of a fresh instance) and the stable "
           "ENI is attached to the new instance as device 1, as the NAT layer's boot script does. That boot takes the "
           "lab a fraction of a second (polled every 0.25 s); a real instance needs its launch and boot, tens of "
           "seconds more between *new instance* and *back* (while it boots, its EC2 status checks are not yet "
           "`ok`, so the recovery skips it rather than marking it too). The canaries "
           f"recover, the hold ({k.get('FallbackHoldSeconds')} s) passes, the recovery starts the Fallback and "
           "the follower moves the kernel route back to the nat host. Seconds after the fault; *repairs* = "
           "SetInstanceHealth Unhealthy calls recorded by moto; *final route* = the table's 0.0.0.0/0 at the end.",
           "", "| run | " + " | ".join(lbl for _, lbl in GRAY_STEPS) + " | repairs | final route | expected |",
           "|---|" + "---|" * len(GRAY_STEPS) + "---|---|---|"]
    for i, r in enumerate(gray, 1):
        cells = ["–" if r.get(key) is None else f"{r[key]:.1f}" for key, _ in GRAY_STEPS]
        final = r.get("final_target")
        final_text = "stable ENI" if final and final == r.get("stable_eni") else f"**{final}**"
        problems = r.get("problems") or []
        out.append(f"| {i} | " + " | ".join(cells) + f" | {r.get('repairs', '?')} | {final_text} | "
                   + ("yes" if not problems else "**no**: " + "; ".join(problems)) + " |")
    return out + [""]
