"""The detection benchmark: every failure mode, several trials, our default configuration against the
published anchors, all three checkers under the very same fault at once.

  bench.py run --binary BIN [--trials 20] [--soak-min 10] [--exposure 30] [--configs a,b] [--modes all|m1,m2] [--out DIR]
  bench.py report [--out DIR]     BENCHMARKS.md and the timeline PNG from DIR/results.jsonl
  bench.py gc                     remove labs left behind by killed runs

Resume-safe: every finished trial is one line of DIR/results.jsonl (flushed at once); `run` skips what
is there, so a stopped run is finished by running the same command again. Order: the soaks first (the
false-failover and resource figures), then trial 0 of every mode, trial 1 of every mode, ... so a run
cut short still has every mode at a lower n.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from checker import CONFIGS
from netlab import REPO, gc_stale, install_signal_handlers, require_root_tools
from rig import BENIGN_MODES, OUTAGE_MODES, SOAK_MODES, Rig, run_trial


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
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
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
    for c in configs:
        if c not in CONFIGS:
            print(f"bench: unknown config {c!r}; known: {', '.join(CONFIGS)}")
            return 2
    modes = OUTAGE_MODES + BENIGN_MODES if args.modes == "all" else [m for m in args.modes.split(",") if m not in SOAK_MODES]
    soaks = SOAK_MODES if args.modes == "all" else [m for m in args.modes.split(",") if m in SOAK_MODES]
    if args.soak_min <= 0:
        soaks = []

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
    meta.update({"machine": machine_info(binary), "binary": built_from,
                 "trials": args.trials, "soak_min": args.soak_min, "exposure_s": args.exposure,
                 "configs": configs, "modes": modes, "soaks": soaks,
                 "command": " ".join(["make bench", f"BENCH_TRIALS={args.trials}", f"BENCH_SOAK_MIN={args.soak_min:g}",
                                      f"BENCH_EXPOSURE={args.exposure:g}"]
                                     + ([f"BENCH_CONFIGS={args.configs}"] if args.configs != "default,alternat,python" else [])
                                     + ([f"BENCH_MODES={args.modes}"] if args.modes != "all" else [])
                                     + ([f"BENCH_EXTRA='{' '.join('--extra-config ' + e for e in args.extra_config)}'"]
                                        if args.extra_config else []))})
    meta_path.write_text(json.dumps(meta, indent=1))

    done = {(r["mode"], r["trial"], r["config"]) for r in load_results(results_path)}
    plan: list[tuple[str, int]] = [(m, 0) for m in soaks]
    plan += [(m, i) for i in range(args.trials) for m in modes]
    todo = [(m, i) for m, i in plan if any((m, i, c) not in done for c in configs)]
    print(f"bench: {len(plan)} runs planned, {len(plan) - len(todo)} already done; results -> {results_path}", flush=True)
    if not todo:
        return cmd_report(args)

    rig = Rig(out / "lab")
    install_signal_handlers(rig.close)
    t0 = time.time()
    try:
        rig.start()
        print(f"bench: lab {rig.lab.run_id} up; configs {configs}", flush=True)
        for n, (mode, i) in enumerate(todo, 1):
            need = [c for c in configs if (mode, i, c) not in done]
            is_soak = mode in SOAK_MODES
            exposure = args.soak_min * 60 if is_soak else args.exposure
            ts = time.time()
            recs = run_trial(rig, mode, i, need, binary, out / "logs", exposure=exposure)
            with open(results_path, "a") as f:
                for r in recs:
                    if is_soak:
                        r["kind"] = "soak"
                        r["soak_min"] = args.soak_min
                    f.write(json.dumps(r) + "\n")
                f.flush()
                os.fsync(f.fileno())
            summary = "  ".join(
                f"{r['config']}: " + (f"det {r['detection_s']:.2f}s" if r.get("detection_s") is not None else f"exec {r['executions']}")
                + (f" rec {r['recovery_s']:.2f}s" if r.get("recovery_s") is not None else "")
                + (f" [{'; '.join(r['notes'])}]" if r["notes"] else "")
                for r in recs)
            elapsed = time.time() - t0
            eta = elapsed / n * (len(todo) - n)
            print(f"bench: [{n}/{len(todo)}] {mode} #{i} ({time.time() - ts:.0f}s) {summary}  | eta {eta / 60:.0f} min",
                  flush=True)
    finally:
        rig.close()
    return cmd_report(args)


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


def cmd_report(args: argparse.Namespace) -> int:
    from report import write_report
    out = Path(args.out).resolve()
    md, png = write_report(out, Path(args.md).resolve() if getattr(args, "md", None) else None)
    print(f"bench: wrote {md} and {png}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--binary", required=True)
    r.add_argument("--trials", type=int, default=20)
    r.add_argument("--soak-min", type=float, default=10)
    r.add_argument("--exposure", type=float, default=30, help="seconds each non-outage mode is held per trial")
    r.add_argument("--configs", default="default,alternat,python")
    r.add_argument("--modes", default="all")
    r.add_argument("--out", default=str(REPO / "out" / "bench"))
    r.add_argument("--extra-config", action="append", default=[], metavar="NAME:VAR=V[,VAR=V]",
                   help="an extra configuration to compare (repeatable); name it in --configs")
    r.add_argument("--md", help="write the report here (and its PNG beside it) instead of BENCHMARKS.md")
    p = sub.add_parser("report")
    p.add_argument("--out", default=str(REPO / "out" / "bench"))
    p.add_argument("--md", help="write the report here instead of BENCHMARKS.md")
    sub.add_parser("gc")
    args = ap.parse_args()
    if args.cmd == "run":
        return cmd_run(args)
    if args.cmd == "report":
        return cmd_report(args)
    n = gc_stale(verbose=True)
    print(f"lab gc: {n} stale run(s) removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
