"""Processes the lab runs inside its namespaces (standard library only).

  servers.py target --addr IP --port N [--cert PEM --key PEM]   an HTTP(S) target host
  servers.py delayproxy --port N [--delay-ms D]                  the "added latency" path on the NAT

The delay proxy receives connections REDIRECTed by nftables on the nat namespace, finds the original
destination with SO_ORIGINAL_DST, and forwards both directions with every segment held D ms (a
propagation delay, order kept, no extra serialization). Because the client's TCP handshake completes
against the local kernel, the upstream connection is opened only after 2·D, so connection set-up still
costs one round trip: an HTTP probe pays 2 RTT, an HTTPS probe (TLS 1.3) 3 RTT, as on a real slow path.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import signal
import socket
import ssl
import struct
import sys
import time

SO_ORIGINAL_DST = 80


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nwd-lab-target"

    def _reply(self, body: bool) -> None:
        if self.path.endswith("generate_204"):
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            return
        payload = f"h={self.headers.get('Host', '')}\nip={self.client_address[0]}\nts={time.time():.3f}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._reply(True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._reply(False)

    def log_message(self, *_args) -> None:
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def serve_target(args: argparse.Namespace) -> None:
    srv = Server((args.addr, args.port), Handler)
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        # handshake in the per-connection thread, not in accept()
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
        orig = Handler.setup

        def setup(self):
            self.request.settimeout(10)
            try:
                self.request.do_handshake()
            except (OSError, ssl.SSLError):
                pass
            orig(self)
        Handler.setup = setup
    print(f"target {args.name} on {args.addr}:{args.port}{' (tls)' if args.cert else ''}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    srv.serve_forever(poll_interval=0.2)


# ----- delay proxy

async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    q: asyncio.Queue = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def deliver() -> None:
        while True:
            due, data = await q.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                try:
                    writer.write_eof()
                except (OSError, RuntimeError):
                    pass
                return
            writer.write(data)
            await writer.drain()

    task = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(65536)
            q.put_nowait((loop.time() + delay, data or None))
            if not data:
                break
        await task
    except (OSError, asyncio.CancelledError):
        task.cancel()


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    sock = writer.get_extra_info("socket")
    try:
        raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
        port, ip = struct.unpack("!2xH4s8x", raw)
        dst = (socket.inet_ntoa(ip), port)
        await asyncio.sleep(2 * delay)  # the handshake round trip the client did not pay
        ur, uw = await asyncio.wait_for(asyncio.open_connection(*dst), timeout=30)
    except (OSError, asyncio.TimeoutError):
        writer.close()
        return
    try:
        await asyncio.gather(_pump(reader, uw, delay), _pump(ur, writer, delay))
    finally:
        for w in (uw, writer):
            w.close()


async def serve_proxy(args: argparse.Namespace) -> None:
    delay = args.delay_ms / 1000.0
    srv = await asyncio.start_server(lambda r, w: _handle(r, w, delay), "0.0.0.0", args.port)
    print(f"delay proxy on :{args.port}, {args.delay_ms} ms each way", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    async with srv:
        await stop.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("target")
    t.add_argument("--addr", required=True)
    t.add_argument("--port", type=int, required=True)
    t.add_argument("--name", default="target")
    t.add_argument("--cert")
    t.add_argument("--key")
    p = sub.add_parser("delayproxy")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--delay-ms", type=float, default=100.0)
    args = ap.parse_args()
    if args.cmd == "target":
        serve_target(args)
    else:
        asyncio.run(serve_proxy(args))


if __name__ == "__main__":
    main()
