"""The closed loop's egress probe: a workload's view of egress, run in the private namespace
(standard library only; a program of its own so that its timing never waits on the bench's Python).

    python egressprobe.py --resolver IP --name HOST --path /cdn-cgi/trace [--interval 0.05] [--timeout 0.5]

Every --interval seconds a new probe starts in its own thread (probes overlap: one stuck in a dead
path never delays the next): one DNS query for HOST's A record to the resolver over UDP (a fresh
socket, so a fresh source port and conntrack entry), then a new TCP connection and `GET PATH`. The
target's /cdn-cgi/trace answers `ip=<address the request came from>`, which is the egress host's
outside address: a success says WHICH path carried it. One JSON line per probe on stdout:
{"t": start, "t_done": end, "ok": bool, "egress": "198.18.…" | null, "cause": "dns"|"connect"|…|null}.
SIGTERM/SIGINT stop it (probes in flight end within --timeout).
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import socket
import struct
import sys
import threading
import time


def dns_query(name: str, qid: int) -> bytes:
    """An A query for `name` with recursion desired."""
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", 1, 1)


def _skip_name(msg: bytes, i: int) -> int:
    while True:
        n = msg[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            return i + 2
        i += 1 + n


def first_a_record(msg: bytes, qid: int) -> str | None:
    """The first A record of a DNS answer to query `qid`, or None (another id, an error, no A)."""
    if len(msg) < 12:
        return None
    rid, flags, qd, an, _, _ = struct.unpack(">HHHHHH", msg[:12])
    if rid != qid or flags & 0x000F:
        return None
    i = 12
    for _ in range(qd):
        i = _skip_name(msg, i) + 4
    for _ in range(an):
        i = _skip_name(msg, i)
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", msg[i:i + 10])
        i += 10
        if rtype == 1 and rdlen == 4:
            return socket.inet_ntoa(msg[i:i + 4])
        i += rdlen
    return None


def egress_address(body: bytes) -> str | None:
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("ip="):
            return line[3:].strip()
    return None


def probe(resolver: str, name: str, path: str, timeout: float) -> dict:
    t = time.time()
    deadline = t + timeout
    out = {"t": t, "ok": False, "egress": None, "cause": None}
    try:
        qid = random.randrange(1, 65535)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(timeout)
            u.sendto(dns_query(name, qid), (resolver, 53))
            ip = None
            while ip is None:
                u.settimeout(max(0.001, deadline - time.time()))
                msg, _ = u.recvfrom(2048)
                ip = first_a_record(msg, qid)
        out["cause"] = "connect"
        with socket.create_connection((ip, 80), timeout=max(0.001, deadline - time.time())) as s:
            out["cause"] = "http"
            s.settimeout(max(0.001, deadline - time.time()))
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            out["cause"] = "status"
            return out
        out.update(ok=True, egress=egress_address(body), cause=None)
    except socket.timeout:
        out["cause"] = out["cause"] or "dns"
        out["cause"] += "_timeout"
    except OSError as e:
        out["cause"] = f"{out['cause'] or 'dns'}_error:{e.errno}"
    finally:
        out["t_done"] = time.time()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolver", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--path", default="/cdn-cgi/trace")
    ap.add_argument("--interval", type=float, default=0.05)
    ap.add_argument("--timeout", type=float, default=0.5)
    args = ap.parse_args(argv)
    stop = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: stop.set())
    lock = threading.Lock()

    def one() -> None:
        r = probe(args.resolver, args.name, args.path, args.timeout)
        with lock:
            sys.stdout.write(json.dumps(r) + "\n")
            sys.stdout.flush()

    nxt = time.time()
    while not stop.is_set():
        threading.Thread(target=one, daemon=True).start()
        nxt += args.interval
        stop.wait(max(0.0, nxt - time.time()))
    time.sleep(args.timeout + 0.1)  # let the probes in flight report
    return 0


if __name__ == "__main__":
    sys.exit(main())
