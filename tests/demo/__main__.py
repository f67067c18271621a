"""python -m tests.demo {emulated,lab} ...: see tests/demo/__init__.py."""

from __future__ import annotations

import argparse
import sys

from tests.lab.shell import REPO

from . import __doc__ as USAGE


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.demo", description=USAGE,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    em = sub.add_parser("emulated", help="the checker on emulated AWS (make demo)")
    em.add_argument("--checker", default=str(REPO / "target" / "debug" / "connectivity-checker"))
    em.add_argument("--watchdog", default=str(REPO / "target" / "debug" / "nat-watchdog"),
                    help="the on-call CLI that ends the demo")
    em.add_argument("--cut-after", type=float, default=5.0, help="seconds of health before the cut")
    lab = sub.add_parser("lab", help="a narrated failure on the lab's real NAT (make lab; root)")
    lab.add_argument("--binary", required=True)
    lab.add_argument("--mode", default="blackhole", dest="fault")
    lab.add_argument("--hold", action="store_true", help="keep the lab up until Ctrl-C")
    args = ap.parse_args()
    if args.mode == "emulated":
        from .emulated import run
        return run(args.checker, args.cut_after, args.watchdog)
    from .lab import MODES, run as run_lab
    if args.fault not in MODES:
        ap.error(f"--mode {args.fault!r}: one of {', '.join(MODES)}")
    return run_lab(args.binary, args.fault, args.hold)


if __name__ == "__main__":
    sys.exit(main())
