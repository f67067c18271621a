"""The detection benchmark: every failure mode, several trials, our default configuration against the
published anchors, all three checkers under the very same fault at once.

  python -m tests.bench.detection run --binary BIN [--trials 20] [--soak-min 10] [--exposure 30] [--configs a,b] [--modes all|m1,m2]
               [--loop-trials 10] [--loop-anchor-trials 3] [--jobs N] [--out DIR] [--md FILE]
  python -m tests.bench.detection report [--out DIR] [--md FILE]   BENCHMARKS.md (or FILE) and the timeline PNG from DIR/results.jsonl
  python -m tests.bench.detection include    BENCHMARKS.md: re-read its included pages only (docs/bench/closed-loop.md, ...)
  python -m tests.bench.detection gc         remove labs left behind by killed runs
(from the repository root; `make bench`, `make bench-report` and `make lab-clean` do that)

The closed loop (tests/lab/closedloop.py) is part of the same plan: modes loop_blackhole, ...,
loop_flapping (`--modes closed-loop` selects them all), --loop-trials trials each, one checker per
trial (the kernel route is one, so configurations cannot share a fault), the anchors in the first
--loop-anchor-trials trials only. Its figure is egress downtime (fault → first probe over the
NAT-gateway host) and its split.

Resume-safe: every finished trial is one line per configuration in DIR/results.jsonl (written under
an fcntl lock, flushed and fsynced at once); `run` skips what is there, so a stopped run is finished
by running the same command again, with any --jobs. Plan order: the soaks first (the false-failover
and resource figures), then trial 0 of every mode, trial 1 of every mode, ... so a run cut short still
has every mode at a lower n.

Parallel labs (--jobs N, default 1): most of a trial is waiting for the slow anchors (the "python"
configuration needs about a minute per outage), so N labs run trials side by side. A trial's checkers
always share one lab and one fault; different trials never share anything but the output files.
  - The parent (the command you run) takes DIR/.run.lock (one run per DIR), writes meta.json,
    empties DIR/claims.jsonl and starts N workers: `python -m tests.bench.detection run ... --worker k/N`, each in its own
    session and process group, each with its OWN lab (namespaces nwd-<id>-*, moto, targets, under
    DIR/lab-wk/).
  - A worker takes the first plan item that is neither done (results.jsonl when it started) nor
    claimed, by appending it to claims.jsonl under an fcntl lock; then runs it, appends its records
    (with `worker` and `jobs`), and takes the next. So the soaks start first, on different workers,
    and the rest is spread over whoever is free (no static split: a slow item delays nobody else).
    Claims live for one run only: an item claimed by a worker that died is simply run again by the
    next run.
  - Workers report finished items on their stdout (a pipe to the parent), which prints the
    progress line (global count, worker, ETA). Their stderr is the parent's.
  - Ctrl-C / SIGTERM / SIGHUP to the parent: it ignores further signals, sends SIGTERM to every
    worker's process group and waits; each worker heals its fault, stops its checkers and processes
    by PID and deletes its namespaces (Lab.close). A worker still alive after 120 s is killed and its
    lab removed by gc_stale (its owner is dead then). Workers also get SIGTERM if the parent dies
    (PR_SET_PDEATHSIG), so even a SIGKILLed parent leaves no lab behind.
With --jobs 1 the single worker runs inside the parent, as before.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import platform
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.lab.checker import CONFIGS, DEFAULT_CONFIGS, CheckerConfigError, timing
from tests.lab.cleanup import gc_stale, install_signal_handlers
from tests.lab.closedloop import LOOP_MODES, loop_item
from tests.lab.modes import BENIGN_MODES, OUTAGE_MODES, SOAK_MODES
from tests.lab.replacement import MODE as REPLACEMENT_MODE
from tests.lab.replacement import run_replacement
from tests.lab.rig import Rig
from tests.lab.shell import REPO, require_root_tools
from tests.lab.trial import run_trial
from tests.support.machine import cpu_model

STOP_GRACE_S = 120  # a worker's teardown: checkers stopped (SIGINT, up to 15 s each), lab closed


def load_results(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a line cut by a kill: that trial simply runs again
    return out


def machine_info(binary: str | None) -> dict:
    cpu = cpu_model("unknown")
    mem_kb = 0
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "mem_gib": round(mem_kb / 1048576, 1),
            "kernel": platform.release(), "os": _os_name(), "python": platform.python_version()}
    if binary:
        try:
            info["checker"] = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            info["checker"] = "unknown"
    try:
        info["commit"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        pass
    return info


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


LOOP_GROUP = "closed-loop"  # --modes closed-loop: every closed-loop mode (tests/lab/closedloop.py)
_LOOP_ANCHOR_TRIALS = [3]  # --loop-anchor-trials of this run (mode_configs needs it everywhere)


def plan_modes(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(trial modes, soak modes) selected by --modes and --soak-min."""
    names = [n for x in args.modes.split(",") for n in (LOOP_MODES if x == LOOP_GROUP else [x])]
    modes = (OUTAGE_MODES + BENIGN_MODES + [REPLACEMENT_MODE] + (LOOP_MODES if args.loop_trials > 0 else [])
             if args.modes == "all" else [m for m in names if m not in SOAK_MODES])
    soaks = SOAK_MODES if args.modes == "all" else [m for m in names if m in SOAK_MODES]
    return modes, (soaks if args.soak_min > 0 else [])


def plan_items(args: argparse.Namespace) -> list[tuple[str, int]]:
    """Soaks first, then trial i of every detection mode, then trial i of every closed-loop mode
    (--loop-trials of them)."""
    modes, soaks = plan_modes(args)
    detect = [m for m in modes if m not in LOOP_MODES]
    loop = [m for m in modes if m in LOOP_MODES]
    return ([(m, 0) for m in soaks] + [(m, i) for i in range(args.trials) for m in detect]
            + [(m, i) for i in range(args.loop_trials) for m in loop])


def done_set(results_path: Path) -> set[tuple[str, int, str]]:
    return {(r["mode"], r["trial"], r["config"]) for r in load_results(results_path)}


def mode_configs(mode: str, configs: list[str], trial: int = 0) -> list[str]:
    """The configurations a plan item runs: all of them, except for the planned replacement, whose
    figure (failed probes while the route moves) is the network path's, seen best by the densest
    prober: our default (or the first configuration when the default is not compared); and for a
    closed-loop mode, the anchors only in its first --loop-anchor-trials trials (their downtime is
    their detection, measured at full n above, plus the same Failover and route)."""
    if mode == REPLACEMENT_MODE:
        return ["default"] if "default" in configs else configs[:1]
    if mode in LOOP_MODES:
        return [c for c in configs if c == "default" or trial < _LOOP_ANCHOR_TRIALS[0]]
    return configs


def pending(items: list[tuple[str, int]], done: set, configs: list[str]) -> list[tuple[str, int]]:
    """The (mode, trial) items some configuration still has no result for."""
    return [(m, i) for m, i in items if any((m, i, c) not in done for c in mode_configs(m, configs, i))]


def cmd_run(args: argparse.Namespace) -> int:
    reason = require_root_tools()
    if reason:
        print(f"{'SKIP ' if os.geteuid() != 0 else ''}bench: {reason}")
        return 0 if os.geteuid() != 0 else 1
    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        print(f"bench: no checker binary at {binary} (make release)")
        return 1
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.jsonl"
    extra = register_extra_configs(args.extra_config)
    configs = args.configs.split(",")
    _LOOP_ANCHOR_TRIALS[0] = args.loop_anchor_trials
    unknown = [m for m in plan_modes(args)[0] if m not in OUTAGE_MODES + BENIGN_MODES + [REPLACEMENT_MODE] + LOOP_MODES]
    if unknown:
        print(f"bench: unknown mode {unknown[0]!r}; known: all, {LOOP_GROUP}, "
              f"{', '.join(OUTAGE_MODES + BENIGN_MODES + SOAK_MODES + [REPLACEMENT_MODE] + LOOP_MODES)}")
        return 2
    for c in configs:
        if c not in CONFIGS:
            print(f"bench: unknown config {c!r}; known: {', '.join(CONFIGS)}")
            return 2
    try:  # the checker states its own settings; one without --print-config cannot run here
        timings = {c: timing(binary, c).as_env() for c in configs}
    except CheckerConfigError as e:
        print(f"bench: {e}")
        return 1
    if args.worker:
        return worker_main(args, binary, configs)
    if args.jobs < 1:
        print(f"bench: --jobs must be at least 1, not {args.jobs}")
        return 2
    modes, soaks = plan_modes(args)

    run_lock = open(out / ".run.lock", "a+")  # held (open) until this process exits
    try:
        fcntl.flock(run_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        run_lock.seek(0)
        print(f"bench: another run is using {out} ({run_lock.read().strip() or 'pid unknown'}); "
              "wait for it or stop it first")
        return 1
    run_lock.truncate(0)
    run_lock.write(f"pid {os.getpid()}\n")
    run_lock.flush()

    # Run a private copy: a rebuild of target/ during a long run must not change the checker mid-way.
    digest = hashlib.sha256(Path(binary).read_bytes()).hexdigest()[:16]
    snap = out / f"checker-{digest}"
    if not snap.exists():
        shutil.copy2(binary, snap)
    built_from = os.path.relpath(binary, REPO)
    binary = str(snap)

    meta_path = out / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    meta.setdefault("started", time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    runs = meta.setdefault("binaries", [])
    if not runs or runs[-1].get("sha256") != digest:
        runs.append({"sha256": digest, "from": built_from, "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")})
    meta.setdefault("extra_configs", {}).update(extra)
    if args.load_note:
        meta["load_note"] = args.load_note
    meta.pop("command", None)  # report.reproduce_commands() builds it from "args", the out dir and the page
    meta.setdefault("timing", {}).update(timings)  # per configuration, as the binary stated it
    meta.update({"machine": machine_info(binary), "binary": built_from,
                 "trials": args.trials, "soak_min": args.soak_min, "exposure_s": args.exposure,
                 "configs": configs, "modes": modes, "soaks": soaks, "jobs": args.jobs,
                 "loop_trials": args.loop_trials, "loop_anchor_trials": args.loop_anchor_trials,
                 "args": {"trials": args.trials, "soak_min": args.soak_min, "exposure": args.exposure,
                          "configs": args.configs, "modes": args.modes, "extra_config": args.extra_config,
                          "jobs": args.jobs, "loop_trials": args.loop_trials,
                          "loop_anchor_trials": args.loop_anchor_trials}})
    meta_path.write_text(json.dumps(meta, indent=1))

    plan = plan_items(args)
    done = done_set(results_path)
    todo = pending(plan, done, configs)
    jobs = min(args.jobs, len(todo))
    print(f"bench: {len(plan)} runs planned, {len(plan) - len(todo)} already done; results -> {results_path}"
          + (f"; {jobs} labs in parallel" if jobs > 1 else ""), flush=True)
    if not todo:
        return cmd_report(args)
    (out / "claims.jsonl").write_text("")  # claims are per run: whatever is not in results runs again

    progress = Progress(len(todo))
    if jobs == 1:
        work(args, binary, configs, 1, 1, progress.line)
        rc = 0
    else:
        rc = run_workers(args, binary, jobs, progress)
    done = done_set(results_path)
    left = pending(todo, done, configs)
    if left:
        print(f"bench: {len(left)} run(s) not done (first: {left[0][0]} #{left[0][1]}); "
              "the same command runs them", flush=True)
        return rc or 1
    return rc or cmd_report(args)


class Progress:
    """The progress line of every finished item: global count, worker, duration, results, ETA."""

    def __init__(self, total: int):
        self.total, self.n, self.t0 = total, 0, time.time()

    def line(self, worker: int, mode: str, trial: int, secs: float, summary: str) -> None:
        self.n += 1
        eta = (time.time() - self.t0) / self.n * (self.total - self.n)
        print(f"bench: [{self.n}/{self.total}] w{worker} {mode} #{trial} ({secs:.0f}s) {summary}  "
              f"| eta {eta / 60:.0f} min", flush=True)


def summarize(recs: list[dict]) -> str:
    return "  ".join(
        f"{r['config']}: "
        + (f"down {r['egress_downtime_s']:.2f}s " if r.get("egress_downtime_s") is not None else "")
        + (f"det {r['detection_s']:.2f}s" if r.get("detection_s") is not None else f"exec {r['executions']}")
        + (f" rec {r['recovery_s']:.2f}s" if r.get("recovery_s") is not None else "")
        + (f" [{'; '.join(r['notes'])}]" if r["notes"] else "")
        for r in recs)


def claim(claims_path: Path, plan: list[tuple[str, int]], done: set, configs: list[str],
          worker: int) -> tuple[str, int] | None:
    """The first plan item not done and not claimed by anyone in this run, now claimed by `worker`."""
    with open(claims_path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        taken = set()
        for line in f.read().splitlines():
            try:
                c = json.loads(line)
                taken.add((c["mode"], c["trial"]))
            except (ValueError, KeyError, TypeError):
                pass
        for m, i in pending(plan, done, configs):
            if (m, i) in taken:
                continue
            f.write(json.dumps({"mode": m, "trial": i, "worker": worker, "pid": os.getpid(),
                                "at": time.strftime("%H:%M:%S")}) + "\n")
            f.flush()
            return m, i
    return None


def append_results(results_path: Path, recs: list[dict]) -> None:
    """One trial's records in one locked append, on disk before the next item is taken."""
    with open(results_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write("".join(json.dumps(r) + "\n" for r in recs))
        f.flush()
        os.fsync(f.fileno())


def work(args: argparse.Namespace, binary: str, configs: list[str], worker: int, jobs: int, report) -> None:
    """One lab running plan items until none is left; report(worker, mode, trial, secs, summary)
    after each."""
    out = Path(args.out).resolve()
    results_path = out / "results.jsonl"
    plan = plan_items(args)
    done = done_set(results_path)
    loop = None  # the closed loop's hosts, added to this lab by its first closed-loop item
    with Rig(out / ("lab" if jobs == 1 else f"lab-w{worker}")) as rig:
        print(f"bench: w{worker} lab {rig.lab.run_id} up; configs {configs}", flush=True)
        while True:
            item = claim(out / "claims.jsonl", plan, done, configs, worker)
            if item is None:
                break
            mode, i = item
            need = [c for c in mode_configs(mode, configs, i) if (mode, i, c) not in done]
            is_soak = mode in SOAK_MODES
            exposure = args.soak_min * 60 if is_soak else args.exposure
            ts = time.time()
            if mode == REPLACEMENT_MODE:
                recs = run_replacement(rig, i, need, binary, out / "logs")
            elif mode in LOOP_MODES:
                loop, recs = loop_item(rig, loop, mode, i, need, binary, out / "logs")
            else:
                recs = run_trial(rig, mode, i, need, binary, out / "logs", exposure=exposure)
            for r in recs:
                r["worker"], r["jobs"] = worker, jobs
                if is_soak:
                    r["kind"] = "soak"
                    r["soak_min"] = args.soak_min
            append_results(results_path, recs)
            report(worker, mode, i, time.time() - ts, summarize(recs))


DONE_TAG = "@@done "  # a worker's line to the parent: one finished item


def worker_main(args: argparse.Namespace, binary: str, configs: list[str]) -> int:
    k, _, n = args.worker.partition("/")
    worker, jobs = int(k), int(n)
    _die_with_parent(args.parent_pid)

    def report(w: int, mode: str, trial: int, secs: float, summary: str) -> None:
        print(DONE_TAG + json.dumps({"worker": w, "mode": mode, "trial": trial, "secs": secs, "summary": summary}),
              flush=True)

    work(args, binary, configs, worker, jobs, report)
    return 0


def _die_with_parent(parent_pid: int | None) -> None:
    """SIGTERM (and so a clean Lab.close) when the parent dies, even by SIGKILL (Linux prctl)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if parent_pid and os.getppid() != parent_pid:
        raise SystemExit("bench worker: parent already gone")


def run_workers(args: argparse.Namespace, binary: str, jobs: int, progress: Progress) -> int:
    """Start `jobs` worker processes, print their progress, stop them all on any way out."""
    base = [sys.executable, "-m", "tests.bench.detection", "run", "--binary", binary, "--trials", str(args.trials),
            "--soak-min", repr(args.soak_min), "--exposure", repr(args.exposure), "--configs", args.configs,
            "--modes", args.modes, "--out", str(Path(args.out).resolve()), "--parent-pid", str(os.getpid()),
            "--loop-trials", str(args.loop_trials), "--loop-anchor-trials", str(args.loop_anchor_trials)]
    for spec in args.extra_config:
        base += ["--extra-config", spec]
    procs: dict[int, subprocess.Popen] = {}
    lines: queue.Queue = queue.Queue()
    stopped = [False]

    def stop() -> None:
        if stopped[0]:
            return
        stopped[0] = True
        live = [(k, p) for k, p in procs.items() if p.poll() is None]
        if not live:
            return
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a second Ctrl-C must not orphan a lab
            signal.signal(s, signal.SIG_IGN)
        print(f"bench: stopping {len(live)} worker(s); each closes its lab", flush=True)
        for _, p in live:
            try:
                os.killpg(p.pid, signal.SIGTERM)  # the worker's own group: its pgid is its pid
            except ProcessLookupError:
                pass
        deadline = time.time() + STOP_GRACE_S
        killed = False
        for k, p in live:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                print(f"bench: w{k} (pid {p.pid}) still running after {STOP_GRACE_S} s: killed", flush=True)
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
                killed = True
        if killed:
            gc_stale(verbose=True)  # the killed worker's lab: its owner is dead now
        end = time.time() + 5
        while open_pipes and time.time() < end and drain(block=0.5):
            pass  # the workers' last words

    def drain(block: float | None = None) -> bool:
        """Print what workers said; False once every worker's stdout is closed."""
        while True:
            try:
                k, line = lines.get(timeout=block) if block else lines.get_nowait()
            except queue.Empty:
                return True
            block = None
            if line is None:
                open_pipes.discard(k)
                if not open_pipes:
                    return False
                continue
            if line.startswith(DONE_TAG):
                try:
                    d = json.loads(line[len(DONE_TAG):])
                    progress.line(d["worker"], d["mode"], d["trial"], d["secs"], d["summary"])
                    continue
                except (ValueError, KeyError):
                    pass
            print(line.rstrip("\n"), flush=True)

    def pump(k: int, stream) -> None:
        for line in stream:
            lines.put((k, line))
        lines.put((k, None))

    install_signal_handlers(stop)
    open_pipes: set[int] = set()
    try:
        for k in range(1, jobs + 1):
            procs[k] = subprocess.Popen(base + ["--worker", f"{k}/{jobs}"], stdin=subprocess.DEVNULL, cwd=REPO,
                                        stdout=subprocess.PIPE, text=True, bufsize=1, start_new_session=True)
            open_pipes.add(k)
            threading.Thread(target=pump, args=(k, procs[k].stdout), daemon=True).start()
        exited_at = None
        while drain(block=1.0):
            if exited_at is None and all(p.poll() is not None for p in procs.values()):
                exited_at = time.time()
            if exited_at and time.time() - exited_at > 10:
                break  # every worker is gone; a pipe still open would be a leaked descriptor
        failed = [(k, p.wait()) for k, p in procs.items()]
        failed = [(k, rc) for k, rc in failed if rc != 0]
        for k, rc in failed:
            print(f"bench: w{k} exited with {rc} (its error is above)", flush=True)
        return 1 if failed else 0
    except BaseException:
        print(f"bench: interrupted after {progress.n} of {progress.total} runs; the same command resumes", flush=True)
        raise
    finally:
        stop()


def register_extra_configs(specs: list[str]) -> dict[str, tuple[str, dict[str, str]]]:
    """--extra-config NAME:VAR=V[,VAR=V...]: a configuration under test beside the built-in ones."""
    extra = {}
    for spec in specs:
        name, _, assigns = spec.partition(":")
        env = dict(a.split("=", 1) for a in assigns.split(",") if "=" in a)
        if not name or not env:
            raise SystemExit(f"bench: --extra-config {spec!r}: expected NAME:VAR=V[,VAR=V]")
        extra[name] = (f"{name} ({', '.join(f'{k}={v}' for k, v in env.items())})", env)
        CONFIGS[name] = extra[name]
    return extra


DEFAULT_OUT = REPO / "out" / "bench"


def report_path(out: Path, md: str | None) -> Path | None:
    """Where a report goes: --md if given; BENCHMARKS.md (None) only for the default out/bench; any
    other --out (an experiment, a closed-loop run without --md) writes <out>/report.md, so that trying a
    tuning never overwrites the published page by accident."""
    if md:
        return Path(md).resolve()
    return None if out == DEFAULT_OUT.resolve() else out / "report.md"


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report
    out = Path(args.out).resolve()
    md, png = write_report(out, report_path(out, getattr(args, "md", None)))
    print(f"bench: wrote {md}" + (f" and {png}" if png.exists() else ""))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--binary", required=True)
    r.add_argument("--trials", type=int, default=20)
    r.add_argument("--soak-min", type=float, default=10)
    r.add_argument("--exposure", type=float, default=30, help="seconds each non-outage mode is held per trial")
    r.add_argument("--configs", default=DEFAULT_CONFIGS)
    r.add_argument("--modes", default="all", help=f"all, or a comma list of modes ({LOOP_GROUP} = every closed-loop mode)")
    r.add_argument("--loop-trials", type=int, default=10, help="trials per closed-loop mode (0: none)")
    r.add_argument("--loop-anchor-trials", type=int, default=3,
                   help="of those, how many also run the anchor configurations")
    r.add_argument("--out", default=str(DEFAULT_OUT))
    r.add_argument("--extra-config", action="append", default=[], metavar="NAME:VAR=V[,VAR=V]",
                   help="an extra configuration to compare (repeatable); name it in --configs")
    r.add_argument("--load-note", help="what else ran on the machine during the run (stated under Machine)")
    r.add_argument("--md", help="write the report here (and its PNG beside it) instead of BENCHMARKS.md "
                   "(without it, an --out other than out/bench writes OUT/report.md)")
    r.add_argument("--jobs", type=int, default=1, help="labs running trials in parallel (worker processes)")
    r.add_argument("--worker", help=argparse.SUPPRESS)  # k/N: internal, started by the parent
    r.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    p = sub.add_parser("report")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--md", help="write the report here instead of BENCHMARKS.md")
    p.add_argument("--extra-config", action="append", default=[], help=argparse.SUPPRESS)  # BENCH_EXTRA: in meta.json
    sub.add_parser("gc")
    sub.add_parser("include", help="BENCHMARKS.md: re-read the included pages and links only (no results needed)")
    args = ap.parse_args()
    if args.cmd == "run":
        try:
            return cmd_run(args)
        except KeyboardInterrupt:
            return 130  # every lab is closed by then (finally blocks)
    if args.cmd == "report":
        return cmd_report(args)
    if args.cmd == "include":
        from .report import refresh_other_measurements
        print(f"bench: refreshed the included pages of {refresh_other_measurements()}")
        return 0
    n = gc_stale(verbose=True)
    print(f"lab gc: {n} stale run(s) removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
