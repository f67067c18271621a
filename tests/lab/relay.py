"""The private subnet's view of the Step Functions VPC endpoint: a relay in the root namespace."""

from __future__ import annotations

import selectors
import socket
import threading


class Relay:
    """A TCP relay in the root namespace: listens on the root end of the private↔root veth and
    forwards to moto on 127.0.0.1. One thread, a selector, no per-connection threads."""

    def __init__(self, listen_ip: str, target: tuple[str, int]):
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((listen_ip, 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.addr = self.sock.getsockname()
        self._stop = threading.Event()
        self._sel = selectors.DefaultSelector()
        self._peers: dict[socket.socket, socket.socket] = {}
        self._thread = threading.Thread(target=self._loop, name="nwd-relay", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        self._sel.register(self.sock, selectors.EVENT_READ)
        while not self._stop.is_set():
            for key, _ in self._sel.select(timeout=0.2):
                s = key.fileobj
                if s is self.sock:
                    try:
                        c, _ = self.sock.accept()
                    except OSError:
                        continue
                    try:
                        u = socket.create_connection(self.target, timeout=5)
                    except OSError:
                        c.close()
                        continue
                    for a, b in ((c, u), (u, c)):
                        a.setblocking(True)
                        a.settimeout(5)
                        self._peers[a] = b
                        self._sel.register(a, selectors.EVENT_READ)
                else:
                    self._pump(s)
        for s in list(self._peers):
            self._drop(s)
        self._sel.close()

    def _pump(self, s: socket.socket) -> None:
        peer = self._peers.get(s)
        if peer is None:
            return
        try:
            data = s.recv(65536)
            if data:
                peer.sendall(data)
                return
        except OSError:
            pass
        self._drop(s)

    def _drop(self, s: socket.socket) -> None:
        peer = self._peers.pop(s, None)
        for x in (s, peer):
            if x is None:
                continue
            self._peers.pop(x, None)
            try:
                self._sel.unregister(x)
            except (KeyError, ValueError):
                pass
            x.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)
        self.sock.close()
