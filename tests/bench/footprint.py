"""Footprint of the release checker: peak RSS and CPU over a run against 3 local targets, and the
size of the stripped binaries. `make bench-footprint` runs it (python -m tests.bench.footprint) and rewrites docs/bench/footprint.md.

Peak RSS is the kernel's high-water mark (VmHWM of /proc/<pid>/status), read until the process
exits; CPU is user+system time from wait4. Targets are plain HTTP servers on 127.0.0.1, so the
figure covers the checker's own work (DNS, TCP, HTTP, EMF, logs), not TLS to the internet; a TLS
probe adds rustls handshake buffers, measured separately by --tls.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.lab.checker import CheckerConfigError, Timing, print_config

REPO = Path(__file__).resolve().parents[2]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(204)
        self.send_header("Connection", "close")
        self.end_headers()

    def log_message(self, *args):
        pass


def vm_hwm_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def timing_text(binary: str) -> str:
    """The defaults as the binary states them (--print-config); never restated here."""
    try:
        t = Timing.from_settings(print_config(binary))
    except CheckerConfigError as e:
        raise SystemExit(f"bench-footprint: {e}") from None
    return f"{t.interval:g} s interval, {t.timeout:g} s timeout"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=str(REPO / "target/release/connectivity-checker"))
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--out", default=str(REPO / "docs/bench/footprint.md"))
    args = ap.parse_args()

    servers = [ThreadingHTTPServer(("127.0.0.1", 0), Handler) for _ in range(3)]
    for s in servers:
        s.daemon_threads = True
        threading.Thread(target=s.serve_forever, daemon=True).start()
    urls = ",".join(f"http://127.0.0.1:{s.server_address[1]}/generate_204" for s in servers)

    env = {"PATH": os.environ.get("PATH", ""), "CHECK_URLS": urls, "RUST_LOG": "info"}
    proc = subprocess.Popen([args.binary, "--duration", str(args.seconds)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    docs = []
    reader = threading.Thread(target=lambda: docs.extend(proc.stdout), daemon=True)
    reader.start()
    peak = 0
    while proc.poll() is None:
        hwm = vm_hwm_kib(proc.pid)
        if hwm:
            peak = max(peak, hwm)
        time.sleep(0.2)
    reader.join(5)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = children.ru_utime + children.ru_stime
    peak = max(peak, children.ru_maxrss)
    for s in servers:
        s.shutdown()
    if proc.returncode != 0:
        print(f"footprint: checker exited {proc.returncode}", file=sys.stderr)
        return 1

    sizes = []
    for label, path in (("x86_64 CLI/Lambda binary (release, stripped)", REPO / "target/release/connectivity-checker"),
                        ("Lambda bootstrap (cargo lambda build --release, arm64 or x86_64 fallback)", REPO / "target/lambda/connectivity-checker/bootstrap")):
        if path.exists():
            sizes.append((label, path.stat().st_size))
    today = datetime.date.today().isoformat()
    lines = [
        "## Footprint of the checker (`make bench-footprint`)",
        "",
        f"Measured {today} on {platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}: "
        f"the release CLI with its default timing ({timing_text(args.binary)}) against 3 HTTP targets on 127.0.0.1 for "
        f"{args.seconds:g} s.",
        "",
        "| figure | value | goal |",
        "|---|---|---|",
        f"| peak RSS (VmHWM) | {peak / 1024:.1f} MiB | <= 32 MB |",
        f"| CPU time (user+system) | {cpu:.2f} s over {args.seconds:g} s ({100 * cpu / args.seconds:.1f} % of one core) | |",
        f"| EMF documents written | {len(docs)} | |",
    ]
    for label, size in sizes:
        lines.append(f"| {label} | {size / (1024 * 1024):.2f} MiB ({size} bytes) | |")
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return 0 if peak / 1024 <= 32 * 1000 * 1000 / (1024 * 1024) else 1


if __name__ == "__main__":
    sys.exit(main())
