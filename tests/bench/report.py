"""BENCHMARKS.md and the outage timeline PNG from a bench's results.jsonl (never drawn by hand)."""

from __future__ import annotations

import json
import math
import shlex
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

from tests.lab.checker import CONFIGS, DEFAULT_CONFIGS, CheckerConfigError, LogState, Timing, config_label, parse_ts, timing
from tests.lab.modes import BENIGN_MODES, MODE_LABELS, OUTAGE_MODES, SOAK_MODES
from tests.lab.netlab import TARGETS
from tests.lab.replacement import MODE as REPLACEMENT
from tests.lab.shell import REPO

from . import loop_report

MD_PATH = REPO / "BENCHMARKS.md"
PNG_REL = "docs/bench/outage-timeline.png"
# Measured by other commands; each page states its own date, machine and method. Included verbatim
# (INCLUDED) or linked (LINKED), so BENCHMARKS.md is the one place a reader starts from.
INCLUDED = ("docs/bench/failover-path.md", "docs/bench/closed-loop.md")
LOOP_PAGE = "docs/bench/closed-loop.md"  # the closed loop run alone (BENCH_MODES=closed-loop); inline when this run has it
LINKED = (
    ("docs/bench/replacement.md", "planned replacement of a NAT host with the checker running (`replacement` mode alone)"),
    ("docs/bench/footprint.md", "memory, CPU and binary sizes of the release checker (`make bench-footprint`)"),
    ("docs/bench/hedged-connect.md", "the validation run of the hedged TCP connect, since widened to staggered whole-probe attempts"),
    ("docs/COST.md", "the monthly bill per AZ and per VPC (`make cost`)"),
)


def other_measurements(skip: tuple[str, ...] = ()) -> list[str]:
    out: list[str] = []
    for rel in INCLUDED:
        if rel in skip:
            continue
        page = REPO / rel
        if page.exists():
            out += [page.read_text().rstrip(), "", f"(Included from [{rel}]({rel}).)", ""]
    links = [f"- [{rel}]({rel}): {what}" for rel, what in LINKED if (REPO / rel).exists()]
    if links:
        out += ["## Other measurements", ""] + links + [""]
    return out
HARD = ["blackhole", "reject", "uplink_down", "masq_removed"]


def refresh_other_measurements(md: Path = MD_PATH) -> Path:
    """Re-read the included pages and the links of an existing BENCHMARKS.md without re-rendering
    the bench's own results (which need that run's results.jsonl): the part write_report puts
    between the end of "## Reading the numbers" and "## Harness notes" is replaced by
    other_measurements() as it is now. For a page measured by its own command (docs/bench/
    closed-loop.md from BENCH_MODES=closed-loop), so BENCHMARKS.md carries it at once."""
    lines = md.read_text().split("\n")
    try:
        reading = lines.index("## Reading the numbers")
        harness = lines.index("## Harness notes")
    except ValueError as e:
        raise SystemExit(f"{md}: not a page write_report rendered ({e})") from None
    start = next((i for i in range(reading + 1, harness) if lines[i].startswith("## ")), harness)
    md.write_text("\n".join(lines[:start] + other_measurements() + lines[harness:]))
    return md


def pct(xs: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p99 of fewer than 100 samples is the maximum)."""
    if not xs:
        return None
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def f(x: float | None, unit: str = "s", nd: int = 2) -> str:
    return "–" if x is None else f"{x:.{nd}f}{unit}"


def load(out: Path) -> tuple[list[dict], dict]:
    from .detection import load_results
    recs = load_results(out / "results.jsonl")
    meta = json.loads((out / "meta.json").read_text()) if (out / "meta.json").exists() else {}
    return recs, meta


_TIMINGS: dict[str, Timing] = {}  # per configuration, as the checker binary of the run stated it


def load_timings(recs: list[dict], meta: dict) -> None:
    """Each configuration's timing: what the run recorded (meta.json "timing", or a record's
    "timing"); for a run recorded before that, what the run's binary says now (--print-config)."""
    _TIMINGS.clear()
    seen = dict(meta.get("timing", {}))
    for r in recs:
        if r.get("timing"):
            seen.setdefault(r["config"], r["timing"])
    for c in {r["config"] for r in recs} | set(seen):
        try:
            if c in seen:
                _TIMINGS[c] = Timing.from_settings(seen[c], source=f"results' timing of {c}")
            elif c in CONFIGS and meta.get("binary") and (REPO / meta["binary"]).is_file():
                _TIMINGS[c] = timing(str(REPO / meta["binary"]), c)
        except CheckerConfigError:
            pass  # rendered as unknown


def tm(config: str) -> Timing | None:
    return _TIMINGS.get(config)


def config_name(config: str) -> str:
    return config_label(config, tm(config))


def _cfgs(recs: list[dict], meta: dict) -> list[str]:
    seen = {r["config"] for r in recs}
    return [c for c in CONFIGS if c in seen]


def _rows(recs: list[dict], kind: str, mode: str, config: str) -> list[dict]:
    return [r for r in recs if r.get("kind") == kind and r["mode"] == mode and r["config"] == config]


def _trial_groups(recs: list[dict], modes, configs: list[str]) -> Iterator[tuple[str, str, list[dict]]]:
    """(mode, config, its trials) for every mode and then configuration, in that order, that has trials."""
    for m in modes:
        for c in configs:
            rs = _rows(recs, "trial", m, c)
            if rs:
                yield m, c, rs


def detection_tables(recs: list[dict], configs: list[str]) -> list[str]:
    lines = ["### Detection: fault injected → Failover execution started in moto", "",
             "median / p99 in seconds (n trials; a miss is a trial with no execution within the cap: "
             "rounds × interval + timeout + interval + 10 s, where rounds is the consecutive threshold, or the "
             "whole window when the windowed rule is on)", "",
             "| failure (injected on the NAT host) | " + " | ".join(config_name(c).split(" (")[0] for c in configs) + " |",
             "|---|" + "---|" * len(configs)]
    for m in OUTAGE_MODES:
        cells = []
        any_rows = False
        for c in configs:
            rs = _rows(recs, "trial", m, c)
            if not rs:
                cells.append("–")
                continue
            any_rows = True
            d = [r["detection_s"] for r in rs if r.get("detection_s") is not None]
            miss = len(rs) - len(d)
            if not d:
                cells.append(f"– / – (n={len(rs)}, **all {miss} missed**)")
                continue
            cell = f"{f(statistics.median(d), '')} / {f(pct(d, 99), '')} (n={len(rs)}"
            cell += f", **{miss} missed**)" if miss else ")"
            cells.append(cell)
        if any_rows:
            lines.append(f"| {MODE_LABELS[m]} | " + " | ".join(cells) + " |")
    lines += ["", "### Detail per configuration", "",
              "| failure | config | n | detected | detection median | p99 | max | verdict→unhealthy median | "
              "recovery median | recovery p99 | probe failure causes during the fault |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for m, c, rs in _trial_groups(recs, OUTAGE_MODES, configs):
        d = [r["detection_s"] for r in rs if r.get("detection_s") is not None]
        v = [r["verdict_unhealthy_s"] for r in rs if r.get("verdict_unhealthy_s") is not None]
        by_window = sum(1 for r in rs if r.get("unhealthy_rule") == "window")
        rec = [r["recovery_s"] for r in rs if r.get("recovery_s") is not None]
        causes: dict[str, int] = {}
        for r in rs:
            for k, n in (r.get("causes_during") or {}).items():
                causes[k] = causes.get(k, 0) + n
        tot = sum(causes.values()) or 1
        cs = ", ".join(f"{k} {100 * n / tot:.0f}%" for k, n in sorted(causes.items(), key=lambda kv: -kv[1]))
        det = f"{len(d)}" if len(d) == len(rs) else f"**{len(d)}** ({len(rs) - len(d)} missed)"
        lines.append(f"| {MODE_LABELS[m]} | {c} | {len(rs)} | {det} | {f(statistics.median(d) if d else None)} | "
                     f"{f(pct(d, 99))} | {f(max(d) if d else None)} | {f(statistics.median(v) if v else None)}"
                     f"{f' ({by_window}× by the window rule)' if by_window else ''} | "
                     f"{f(statistics.median(rec) if rec else None)} | {f(pct(rec, 99))} | {cs or '–'} |")
    return lines


def benign_table(recs: list[dict], configs: list[str]) -> list[str]:
    lines = ["### Faults that must not cause a failover", "",
             "| condition | config | trials × seconds held | false failovers | unhealthy verdicts | bad rounds | "
             "probe failures during the fault |",
             "|---|---|---|---|---|---|---|"]
    for m, c, rs in _trial_groups(recs, BENIGN_MODES, configs):
        held = statistics.median([r["t_heal"] - r["t_inject"] for r in rs if r.get("t_heal") and r.get("t_inject")] or [0])
        ff = sum(r["executions"] for r in rs)
        uv = sum(r.get("unhealthy_verdicts", 0) for r in rs)
        bad = sum(r.get("bad_rounds", 0) for r in rs)
        pf = sum(r.get("probe_failures_during", 0) for r in rs)
        pn = sum(r.get("probes_during", 0) for r in rs) or 1
        lines.append(f"| {MODE_LABELS[m]} | {c} | {len(rs)} × {held:.0f} | {'**%d**' % ff if ff else 0} | {uv} | {bad} | "
                     f"{100 * pf / pn:.1f}% |")
    return lines


def worst_window(r: dict) -> int | None:
    """The most bad rounds in any DEGRADED_WINDOW consecutive rounds of the checker's log, for a
    configuration with the windowed rule on: how close the soak came to a windowed false failover."""
    t = tm(r["config"])
    window = t.window if t else 0
    log = Path(r.get("log") or "")
    if window <= 0 or not log.is_file():
        return None
    st = LogState()
    st.feed(log)
    bad = [e.get("good") is False for e in st.events if e.get("event") == "round"]
    if len(bad) < window:
        return sum(bad)
    run = sum(bad[:window])
    worst = run
    for i in range(window, len(bad)):
        run += bad[i] - bad[i - window]
        worst = max(worst, run)
    return worst


def soak_table(recs: list[dict], configs: list[str]) -> list[str]:
    lines = ["### Soaks: false failovers, memory and CPU", "",
             "The windowed rule's margin: *worst window* is the most bad rounds in any `DEGRADED_WINDOW` "
             "consecutive rounds of the soak (the rule fires at `DEGRADED_THRESHOLD`; – where the rule is off).",
             "",
             "| soak | config | minutes | rounds | bad rounds | worst window | unhealthy verdicts | false failovers | "
             "probe failures | peak RSS | CPU seconds |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in SOAK_MODES:
        for c in configs:
            for r in _rows(recs, "soak", m, c):
                res = r.get("resources") or {}
                minutes = (r["t_heal"] - r["t_inject"]) / 60 if r.get("t_heal") and r.get("t_inject") else 0
                pn = r.get("probes_during", 0) or 1
                uv = r.get("unhealthy_verdicts", 0)
                ww = worst_window(r)
                lines.append(f"| {MODE_LABELS[m]} | {c} | {minutes:.1f} | {r.get('rounds', 0)} | {r.get('bad_rounds', 0)} | "
                             f"{'–' if ww is None else ww} | {uv} | {'**%d**' % r['executions'] if r['executions'] else 0} | "
                             f"{100 * r.get('probe_failures_during', 0) / pn:.1f}% | "
                             f"{res.get('maxrss_kb', 0) / 1024:.1f} MiB | {res.get('cpu_s', 0):.2f} |")
    return lines


def goals(recs: list[dict]) -> list[str]:
    d = [r["detection_s"] for r in recs if r.get("kind") == "trial" and r["config"] == "default"
         and r["mode"] in HARD and r.get("detection_s") is not None]
    miss = sum(1 for r in recs if r.get("kind") == "trial" and r["config"] == "default" and r["mode"] in HARD
               and r.get("detection_s") is None)
    soak5 = [r for r in recs if r.get("kind") == "soak" and r["mode"] == "soak5" and r["config"] == "default"]
    rss = [r["resources"]["maxrss_kb"] / 1024 for r in recs if r["config"] == "default" and r.get("resources")]
    out = ["### Goals (default configuration)", "", "| goal | measured | met |", "|---|---|---|"]
    if miss and not d:
        out.append(f"| hard failures: detection median ≤ 2 s | **all {miss} missed** | **no** |")
        out.append(f"| hard failures: detection p99 ≤ 3 s | **all {miss} missed** | **no** |")
    if d:
        med, p99 = statistics.median(d), pct(d, 99)
        out.append(f"| hard failures: detection median ≤ 2 s | {med:.2f} s (n={len(d)}, {miss} missed) | {'yes' if med <= 2 and not miss else '**no**'} |")
        out.append(f"| hard failures: detection p99 ≤ 3 s | {p99:.2f} s | {'yes' if p99 <= 3 and not miss else '**no**'} |")
    if soak5:
        ff = sum(r["executions"] for r in soak5)
        mins = sum((r["t_heal"] - r["t_inject"]) / 60 for r in soak5)
        out.append(f"| 0 false failovers in the 5% loss + one target down soak | {ff} in {mins:.0f} min | {'yes' if ff == 0 else '**no**'} |")
    repl = [r for r in recs if r.get("kind") == REPLACEMENT and r["config"] == "default"]
    if repl:
        lost = sum(r.get("failed_probes", 0) for r in repl)
        out.append(f"| planned replacement: 0 failed probes | {lost} in {len(repl)} replacement(s) | "
                   f"{'yes' if lost == 0 else '**no**'} |")
    out += loop_report.goal_rows(recs, pct) + loop_report.recovery_goal_rows(recs)
    if rss:
        out.append(f"| peak RSS ≤ 32 MB | {max(rss):.1f} MiB (largest of {len(rss)} runs) | {'yes' if max(rss) * 1.048576 <= 32 else '**no**'} |")
    return out


def replacement_table(recs: list[dict]) -> list[str]:
    """Issue 11 item 6: a planned NAT replacement with the checker running; failed probes, goal 0."""
    rs = [r for r in recs if r.get("kind") == REPLACEMENT]
    if not rs:
        return []
    out = ["### Planned replacement: the route moved to a new NAT host, the old one terminated", "",
           "A second NAT host is launched and configured by the same `configure-nat.sh`; once its `--check` "
           "passes, the subnet's 0.0.0.0/0 moves to it in one atomic replace (as `ec2:ReplaceRoute` moves a "
           "route table's target), the old host drains for twice the request timeout and is terminated "
           "(uplink down, its table deleted). Failed probes are counted from one timeout before the move to "
           "the end of a settle period as long as the slowest detection cap. Goal: 0 failed probes (anchors: "
           "fck-nat documents about 5 minutes of outage per replacement, its users report 3–5 minutes).", "",
           "| configuration | replacements | failed probes (total) | worst replacement | probes in the windows | "
           "bad rounds | Failover executions | new host launch (median) |",
           "|---|---|---|---|---|---|---|---|"]
    for c in sorted({r["config"] for r in rs}):
        mine = [r for r in rs if r["config"] == c]
        failed = [r.get("failed_probes", 0) for r in mine]
        launch = [r["launch_s"] for r in mine if r.get("launch_s") is not None]
        ex = sum(r.get("executions", 0) for r in mine)
        out.append(f"| {c} | {len(mine)} | {'**%d**' % sum(failed) if sum(failed) else 0} | {max(failed)} | "
                   f"{sum(r.get('probes_during', 0) for r in mine)} | {sum(r.get('bad_rounds', 0) for r in mine)} | "
                   f"{'**%d**' % ex if ex else 0} | {f(statistics.median(launch)) if launch else '–'} |")
    causes = sorted({c for r in rs for c in r.get("failed_causes", [])})
    if causes:
        out += ["", "Causes of the failed probes: " + ", ".join(causes) + "."]
    return out + [""]


def notes(recs: list[dict]) -> list[str]:
    seen: dict[str, list[str]] = {}
    for r in recs:
        for n in r.get("notes", []):
            key = n.split(":")[0][:80]
            seen.setdefault(key, []).append(f"{r['mode']}#{r['trial']}/{r['config']}: {n}")
    if not seen:
        return ["No checker misbehaviour was recorded (exit codes, stderr JSON, EMF shape, one execution per incident)."]
    out = ["Recorded by the harness (exit codes, stderr JSON, EMF shape, executions per incident):", ""]
    for key, items in seen.items():
        out.append(f"- {len(items)}× {items[0][:300]}")
    return out


def pick_timeline(recs: list[dict]) -> dict | None:
    rs = [r for r in recs if r.get("kind") == "trial" and r["mode"] == "blackhole" and r["config"] == "default"
          and r.get("detection_s") is not None and Path(r["log"]).exists()]
    if not rs:
        rs = [r for r in recs if r.get("kind") == "trial" and r["mode"] in OUTAGE_MODES and r.get("detection_s") is not None
              and Path(r["log"]).exists()]
    if not rs:
        return None
    med = statistics.median([r["detection_s"] for r in rs])
    return min(rs, key=lambda r: abs(r["detection_s"] - med))


CAUSE_COLORS = {"connect_timeout": "#d62728", "timeout": "#ff7f0e", "dns": "#9467bd", "connect_refused": "#8c564b",
                "tls": "#e377c2", "http_status": "#bcbd22", "other": "#7f7f7f"}


def draw_timeline(r: dict, png: Path) -> None:
    """Probe outcomes per target around one outage. When the outage was held long (the slowest
    configuration of the trial was still detecting), the quiet middle is cut out: two panels, one
    around the injection and one around the heal, on the same scale."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    st = LogState()
    st.feed(Path(r["log"]))
    t0 = r["t_inject"]
    heal = r["t_heal"] - t0
    exec_x = r["exec_start"] - t0
    down = next((e for e in st.verdicts() if e.get("to") == "unhealthy"), None)
    up = next((e for e in st.verdicts() if e.get("to") == "healthy" and e["_t"] >= r["t_heal"]), None)
    end = (up["_t"] - t0 + 1.5) if up else heal + 3
    if heal - exec_x > 8:
        spans = [(-2.0, exec_x + 3.0), (heal - 2.0, end)]
    else:
        spans = [(-2.0, end)]
    widths = [b - a for a, b in spans]
    urls = [t.url for t in TARGETS]
    fig, axes = plt.subplots(1, len(spans), figsize=(14, 5.2), dpi=110, sharey=True,
                             gridspec_kw={"width_ratios": widths, "wspace": 0.04})
    axes = list(axes) if len(spans) > 1 else [axes]
    marks = [(0, "fault injected", "black", "--"), (heal, "fault healed", "#1f77b4", "--")]
    if down:
        marks.append((down["_t"] - t0, "verdict → unhealthy", "#ff7f0e", "-"))
    marks.append((exec_x, "Failover execution started (moto)", "#d62728", "-"))
    if up:
        marks.append((up["_t"] - t0, "verdict → healthy", "#2ca02c", "-"))
    marks.sort(key=lambda m: m[0])
    used = set()
    probes = []
    for e in st.of("probe"):
        try:
            probes.append((parse_ts(e["started_at"]) - t0, e))
        except (KeyError, ValueError, TypeError):
            continue
    for ax, (xmin, xmax) in zip(axes, spans):
        ax.axvspan(max(0, xmin), min(heal, xmax), color="#fde0dd", zorder=0)
        for s, e in probes:
            if s < xmin - 1 or s > xmax:
                continue
            y = len(urls) - urls.index(e.get("target")) if e.get("target") in urls else 0
            y += 0.14 if int(e.get("round") or 0) % 2 else -0.14  # overlapping rounds stay apart
            width = max(float(e.get("latency_ms") or 0) / 1000, 0.0)
            if e.get("ok"):
                color = "#2ca02c"
            else:
                color = CAUSE_COLORS.get(e.get("cause"), "#7f7f7f")
                used.add(e.get("cause"))
            ax.plot([s, s + width], [y, y], color=color, lw=2.2, solid_capstyle="butt", zorder=2)
            ax.plot([s], [y], marker="|" if e.get("ok") else "x", ms=7, mew=1.6, color=color, zorder=3)
        for e in st.of("round"):
            s = e["_t"] - t0
            if xmin <= s <= xmax:
                ax.plot([s], [0], marker="s", ms=5, color="#2ca02c" if e.get("good") else "#d62728", zorder=3)
        inside = [m for m in marks if xmin <= m[0] <= xmax]
        for i, (x, label, color, ls) in enumerate(inside):
            ax.axvline(x, color=color, ls=ls, lw=1.6, zorder=4)
            right = x > xmin + 0.6 * (xmax - xmin)
            ax.text(x, len(urls) + 0.5 + 0.36 * (i % 3), f" {label} {x:+.2f} s ", color=color, fontsize=8.5,
                    va="bottom", ha="right" if right else "left", zorder=5,
                    bbox=dict(facecolor="white", edgecolor="none", pad=0.5, alpha=0.85))
        ax.set_xlim(xmin, xmax)
        ax.set_ylim(-0.6, len(urls) + 1.75)
        ax.grid(axis="x", color="#dddddd", zorder=1)
    axes[0].set_yticks(range(0, len(urls) + 1))
    axes[0].set_yticklabels(["rounds (good/bad)"] + list(reversed(urls)), fontsize=9)
    if len(axes) > 1:
        axes[0].spines["right"].set_linestyle((0, (4, 4)))
        axes[1].spines["left"].set_linestyle((0, (4, 4)))
        axes[1].tick_params(left=False)
        fig.text(0.5, 0.015, f"seconds since the fault was injected on the NAT host "
                 f"(axis cut between {spans[0][1]:.0f} s and {spans[1][0]:.0f} s: the fault was held until every "
                 f"configuration of the trial had detected it)", ha="center", fontsize=9.5)
    else:
        axes[0].set_xlabel("seconds since the fault was injected on the NAT host")
    cfg = config_name(r["config"])
    fig.suptitle(f"{MODE_LABELS[r['mode']]} — {cfg}\n"
                 f"detection (execution start − injection) {r['detection_s']:.2f} s, "
                 f"recovery (heal → verdict healthy) {f(r.get('recovery_s'))}", fontsize=10.5)
    handles = [Line2D([], [], color="#2ca02c", marker="|", lw=2.2, label="probe ok (line = latency)")]
    handles += [Line2D([], [], color=CAUSE_COLORS.get(c, "#7f7f7f"), marker="x", lw=2.2, label=f"probe failed: {c}")
                for c in sorted(used, key=str)]
    handles += [Line2D([], [], color="#2ca02c", marker="s", lw=0, label="round good"),
                Line2D([], [], color="#d62728", marker="s", lw=0, label="round bad"),
                Patch(color="#fde0dd", label="fault active")]
    axes[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, framealpha=0.9)
    fig.subplots_adjust(left=0.185, right=0.845, top=0.86, bottom=0.12)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)


def _num(x, spec: str = "g") -> str:
    return format(x, spec) if isinstance(x, (int, float)) else "?"


def _shown(path: Path) -> str:
    """A path as make would be given it: relative to the repository when inside it."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def _run_args(meta: dict) -> dict:
    """The run's knobs: meta["args"], or rebuilt from the fields of a meta.json written before it."""
    if meta.get("args"):
        return meta["args"]
    modes, soaks = meta.get("modes", []), meta.get("soaks", [])
    everything = modes == OUTAGE_MODES + BENIGN_MODES and soaks in (SOAK_MODES, [])
    return {"trials": meta.get("trials", 20), "soak_min": meta.get("soak_min", 10), "exposure": meta.get("exposure_s", 30),
            "configs": ",".join(meta.get("configs", [])) or DEFAULT_CONFIGS,
            "modes": "all" if everything else ",".join(modes + soaks),
            "extra_config": [f"{n}:{','.join(f'{k}={v}' for k, v in env.items())}"
                             for n, (_, env) in meta.get("extra_configs", {}).items()],
            "jobs": meta.get("jobs", 1)}


def reproduce_commands(meta: dict, out: Path, md_path: Path | None) -> tuple[str, str]:
    """(run, re-render): the make commands that regenerate this very page, from the run's knobs, the
    out dir and where the page is written. The only place these commands are spelled."""
    a = _run_args(meta)
    where = [] if Path(out).resolve() == (REPO / "out" / "bench").resolve() else [f"BENCH_OUT={shlex.quote(_shown(out))}"]
    page = [] if md_path is None or Path(md_path).resolve() == MD_PATH.resolve() else ["--md", _shown(md_path)]

    def extra(words: list[str]) -> list[str]:
        return [f"BENCH_EXTRA={shlex.quote(' '.join(shlex.quote(w) for w in words))}"] if words else []

    run = ["make bench", f"BENCH_TRIALS={a['trials']}", f"BENCH_SOAK_MIN={a['soak_min']:g}",
           f"BENCH_EXPOSURE={a['exposure']:g}", f"BENCH_JOBS={a.get('jobs', 1)}"]
    run += [f"BENCH_CONFIGS={a['configs']}"] if a["configs"] != DEFAULT_CONFIGS else []
    run += [f"BENCH_MODES={a['modes']}"] if a["modes"] != "all" else []
    run += [f"BENCH_LOOP_TRIALS={a['loop_trials']}"] if a.get("loop_trials", 10) != 10 else []
    run += [f"BENCH_LOOP_ANCHOR_TRIALS={a['loop_anchor_trials']}"] if a.get("loop_anchor_trials", 3) != 3 else []
    run += where + extra([w for spec in a.get("extra_config", []) for w in ("--extra-config", spec)] + page)
    return " ".join(run), " ".join(["make bench-report"] + where + extra(page))


def write_report(out: Path, md_path: Path | None = None) -> tuple[Path, Path]:
    """Writes BENCHMARKS.md and docs/bench/outage-timeline.png, or, for an experiment, md_path and a
    PNG beside it."""
    recs, meta = load(out)
    for name, (lbl, env) in meta.get("extra_configs", {}).items():
        CONFIGS.setdefault(name, (lbl, env))
    load_timings(recs, meta)
    d = tm("default")  # the numbers the prose below quotes: our defaults as the binary stated them
    configs = _cfgs(recs, meta)
    m = meta.get("machine", {})
    md = Path(md_path) if md_path else MD_PATH
    png_rel = PNG_REL if md_path is None else f"{md.stem}-timeline.png"
    png = md.parent / png_rel
    pick = pick_timeline(recs)
    if pick:
        draw_timeline(pick, png)
    if recs and all(r.get("kind") in (loop_report.KIND, loop_report.RECOVERY_KIND) for r in recs):
        return write_loop_page(recs, meta, out, md, png)
    planned = [mode for mode in meta.get("modes") or [] if mode not in loop_report.LOOP_MODES] or [
        mode for mode in OUTAGE_MODES + BENIGN_MODES if any(r["mode"] == mode for r in recs)]
    per_mode = [len({r["trial"] for r in recs if r.get("kind") in ("trial", REPLACEMENT) and r["mode"] == mode})
                for mode in planned]
    n_lo, n_hi = (min(per_mode), max(per_mode)) if per_mode else (0, 0)
    n_text = f"{n_hi}" if n_lo == n_hi else f"{n_lo}–{n_hi}"
    run_cmd, render_cmd = reproduce_commands(meta, out, md_path)
    jobs_seen = sorted({int(r.get("jobs", 1)) for r in recs}) or [int(meta.get("jobs", 1))]
    if max(jobs_seen) > 1:
        parallel = (f"- **Parallel labs**: the trials ran in {max(jobs_seen)} labs in parallel "
                    + (f"(parts of the run with {', '.join(map(str, jobs_seen))}) " if len(jobs_seen) > 1 else "")
                    + "(`BENCH_JOBS`): one worker process per lab, each with its own namespaces, targets, DNS and "
                    "moto; a trial's checkers always share one lab and one fault, different trials share nothing "
                    "but the machine's CPU")
    else:
        parallel = "- **Parallel labs**: none; one lab ran every trial in turn"
    lines = [
        "# Benchmarks: failure detection on a real NAT path",
        "",
        "Generated by `make bench` (tests/bench/detection.py → tests/bench/report.py); do not edit by hand.",
        "",
        f"- **Date**: {meta.get('started', '?')} (rendered {time.strftime('%Y-%m-%d %H:%M %Z')})",
        f"- **Machine**: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('mem_gib', '?')} GiB, "
        f"{m.get('os', '?')}, kernel {m.get('kernel', '?')}"
        + (f"; {meta['load_note']}" if meta.get("load_note") else ""),
        f"- **Checker**: `{m.get('checker', '?')}` ({meta.get('binary', '?')}, commit {m.get('commit', '?')}, sha256 "
        + ", then ".join(b["sha256"] for b in meta.get("binaries", [])) + ")",
        f"- **Reproduce** (root): `{run_cmd}` — results land in {_shown(out)}/results.jsonl; "
        f"the run resumes where it stopped; `{render_cmd}` re-renders this page",
        f"- **Size of this run**: {n_text} trial(s) per failure mode, soak {_num(meta.get('soak_min'))} min, "
        f"non-outage faults held {_num(meta.get('exposure_s'))} s per trial"
        + (f" — **partial: {n_text} of the {meta['trials']} planned trials done so far** (the same command "
           "resumes the run)" if meta.get("trials") and n_lo < meta["trials"] else ""),
        parallel,
        "",
        "## The lab",
        "",
        "Network namespaces joined by veth pairs (tests/lab/netlab.py): `private` (the checker) ─ `nat` "
        "(configured by infra/nat-instance/configure-nat.sh, the NAT instances' own script: forwarding, nftables "
        "masquerade, MSS clamp; also the lab DNS resolver on its LAN side, standing for the VPC "
        "resolver, which a NAT failure does not take down) ─ `inet` with three target hosts: two HTTP and one "
        "HTTPS whose certificate comes from a lab CA made at start and trusted through `EXTRA_CA_CERTS` "
        "(verification stays on). Addresses from 198.18.0.0/15 only. moto (Step Functions execution on, the "
        "real Failover definition from infra/statemachines acting on an emulated VPC) is reached from "
        "`private` over its own veth, never through the NAT, as the Step Functions VPC endpoint is. The "
        f"checker (`{meta.get('binary', '?')}`) runs in `private` with `--duration`, its default timing unless a "
        "configuration below says otherwise, JSON logs at debug level.",
        "",
        "Each trial starts one checker per configuration at once (fresh Failover state machine each, so the "
        "per-minute execution names never collide), waits for a good round plus a random phase in "
        "[0, largest interval), injects the fault on the NAT host at a recorded instant (`time.time()` right "
        "before the command), and takes **detection = moto execution `startDate` − injection instant**. "
        "Outage faults are healed once every checker has started its execution (or missed its cap); "
        "**recovery = heal instant → `verdict_changed` to healthy** in the checker's log. Non-outage faults "
        "are held a fixed time; any execution then is a false failover. Peak RSS and CPU seconds come from "
        "`/usr/bin/time` around the checker.",
        "",
        "Configurations: " + "; ".join(f"**{c}** = {config_name(c)}" for c in configs) + ". "
        f"The anchors keep our `HEALTHY_THRESHOLD={_num(d.healthy if d else None)}` for recovery (neither publishes a rise threshold) and run "
        "with our windowed rule off (`DEGRADED_WINDOW=0`; neither has one).",
        "",
        "## Results",
        "",
    ]
    lines += goals(recs) + [""]
    lines += detection_tables(recs, configs) + [""]
    lines += benign_table(recs, configs) + [""]
    lines += soak_table(recs, configs) + [""]
    lines += replacement_table(recs)
    lines += loop_report.section(recs, configs, config_name, pct)
    lines += loop_report.recovery_section(recs)
    if pick:
        lines += ["## One outage, probe by probe", "",
                  f"![timeline]({png_rel})", "",
                  f"{MODE_LABELS[pick['mode']]}, trial {pick['trial']}, configuration {pick['config']} "
                  f"(the trial closest to the median detection). One row per target: each probe is a mark at its start "
                  "(| succeeded, x failed) and a line as long as its latency, green when it succeeded, coloured by cause "
                  "when it failed; rounds overlap (a new one every interval, each waiting up to the timeout), so a "
                  "target's probes alternate between two lanes. Squares below are rounds as they finished. Vertical "
                  "lines: fault injected, verdict change, execution start in moto, fault healed, verdict healthy again.",
                  ""]
    lines += ["## Reading the numbers", "",
              "- Detection of a hard failure is bounded by the cadence: the fault lands somewhere in a round, then "
              "`UNHEALTHY_THRESHOLD` rounds must fail, the last one only after its timeout. That is about "
              "interval × (threshold − 1) + timeout + phase, plus the StartExecution call.",
              "- A TCP reset fails a probe at once, so *reject* is detected faster than a silent drop in every "
              "configuration; *DNS down* fails in the resolver, before any connection.",
              "- Under random loss, a lost SYN or SYN-ACK is retransmitted by Linux after 1 s (the initial RTO), "
              f"later than our {_num(d.timeout if d else None)} s timeout, a lost data segment after at least 0.2 s, "
              "a lost DNS query by glibc after 5 s. Our probe therefore hedges: when it has not finished after 40 % "
              "of the timeout a second, fresh attempt (its own DNS query, connection and handshake) races the first, "
              "and a third at 70 %, "
              f"so one lost packet anywhere costs {_num(0.4 * d.timeout if d else None, '.2g')} s instead of the probe. "
              "What else keeps our default from crying wolf is the quorum (one target of three suffices) and the "
              f"{_num(d.unhealthy if d else None)}-round threshold; the soak rows show how many bad rounds still got through (the anchors' 5–8 s "
              "timeouts simply wait for the retransmission).",
              "- Recovery can be shorter than `HEALTHY_THRESHOLD` × interval: rounds started before the heal may "
              "still finish good after it (a retransmitted SYN gets through within a long timeout). After a reset "
              f"(nothing to retransmit) the anchors need the full {_num(d.healthy if d else None)} fresh rounds.",
              f"- *Flapping* at 1 s / 1 s fails one or two of our rounds in every {_num(2 / d.interval if d else None)} "
              f"(the 2 s period is {_num(2 / d.interval if d else None)} {_num(d.interval if d else None)} s rounds; which of the two depends on the phase, hence the spread of the detection times) but "
              "never three in a row, because a hedged attempt started late in a down-second lands in the "
              "up-second. The consecutive rule alone never fires; the windowed rule (`DEGRADED_THRESHOLD` bad "
              f"among the last `DEGRADED_WINDOW` rounds, {_num(d.degraded if d else None)} of {_num(d.window if d else None)}) "
              f"does, at the {_num(d.degraded if d else None)}th bad round: about {_num(d.degraded if d and d.degraded else None)} s "
              f"with two bad rounds per period, {_num(2 * d.degraded if d and d.degraded else None)} s with one. "
              " The detail table says which rule fired. The anchors' long "
              "timeouts ride through the up-seconds (see their bad rounds). After a windowed incident the verdict "
              "turns healthy once the window has cleared, hence the longer recovery.",
              ""]
    if md.resolve() == MD_PATH.resolve():  # an experiment's page is about the experiment alone
        lines += other_measurements(skip=(LOOP_PAGE,) if loop_report.loop_records(recs) or
                                    loop_report.recovery_records(recs) else ())
    lines += ["## Harness notes", ""] + notes(recs) + [""]
    md.write_text("\n".join(lines))
    return md, png


def write_loop_page(recs: list[dict], meta: dict, out: Path, md: Path, png: Path) -> tuple[Path, Path]:
    """A run of the closed loop alone (BENCH_MODES=closed-loop --md docs/bench/closed-loop.md): its
    header (date, machine, checker, how to reproduce) and the closed-loop section, nothing empty."""
    load_timings(recs, meta)
    configs = _cfgs(recs, meta)
    m = meta.get("machine", {})
    run_cmd, render_cmd = reproduce_commands(meta, out, md)
    per_mode = [len({r["trial"] for r in loop_report.loop_records(recs) if r["mode"] == mode and r["config"] == "default"})
                for mode in loop_report.LOOP_MODES if any(r["mode"] == mode for r in recs)]
    lines = [
        "## Closed loop: egress downtime on the emulated VPC and a real NAT path",
        "",
        "Generated by `make bench` with only the closed-loop modes (tests/bench/detection.py → "
        "tests/bench/report.py, tests/bench/loop_report.py); do not edit by hand.",
        "",
        f"- **Date**: {meta.get('started', '?')} (rendered {time.strftime('%Y-%m-%d %H:%M %Z')})",
        f"- **Machine**: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('mem_gib', '?')} GiB, "
        f"{m.get('os', '?')}, kernel {m.get('kernel', '?')}; shared with other jobs during the run",
        f"- **Checker**: `{m.get('checker', '?')}` ({meta.get('binary', '?')}, commit {m.get('commit', '?')}, sha256 "
        + ", then ".join(b["sha256"] for b in meta.get("binaries", [])) + ")",
        f"- **Reproduce** (root): `{run_cmd}` — results land in {_shown(out)}/results.jsonl; `{render_cmd}` "
        "re-renders this page; `python -m tests.bench.detection include` puts it into BENCHMARKS.md",
        f"- **Size of this run**: {_span(per_mode)} trial(s) per failure mode with "
        f"our default configuration; the anchors in the first {_run_args(meta).get('loop_anchor_trials', '?')}",
        "",
        "Configurations: " + "; ".join(f"**{c}** = {config_name(c)}" for c in configs) + ".",
        "",
        "| goal | measured | met |", "|---|---|---|",
    ]
    lines += loop_report.goal_rows(recs, pct) + loop_report.recovery_goal_rows(recs) + [""]
    lines += loop_report.section(recs, configs, config_name, pct)
    lines += loop_report.recovery_section(recs)
    lines += ["Recorded by the harness:", ""] + notes(recs)[2:] if any(r.get("notes") for r in recs) else \
        ["No harness note was recorded (one execution per fault, the kernel route moved, egress back over the gateway)."]
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text("\n".join(lines) + "\n")
    return md, png


def _span(ns: list[int]) -> str:
    """"10" or "8–10": the trials per mode."""
    lo, hi = min(ns, default=0), max(ns, default=0)
    return f"{hi}" if lo == hi else f"{lo}–{hi}"
