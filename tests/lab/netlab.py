"""The failure-injection lab: a private subnet, a NAT instance and an "internet", as Linux network
namespaces joined by veth pairs, plus the emulated Step Functions endpoint reachable from the private
subnet without crossing the NAT.

    private (checker) ──veth── nat (ip_forward, MASQUERADE; lab DNS) ──veth── inet (targets)
        └──veth── root namespace: relay ──► moto on 127.0.0.1   (the Step Functions VPC endpoint)

The lab resolver (dnsmasq) listens on the NAT host's LAN address: like the VPC resolver it is reached
without crossing the NAT's forwarding path, so a NAT failure shows as connect failures, not DNS
failures, and "DNS down" is its own fault (queries to it dropped on the NAT host).

Every address is in 198.18.0.0/15 (RFC 2544 benchmarking). Every namespace is called
nwd-<run id>-<role>, every interface nwd<run id><n>, so two labs (the smoke test and a bench, or
the labs of a parallel bench) never meet; iptables runs with -w, since with the legacy backend the
xtables lock is shared by every namespace. Faults are injected on the nat namespace only: filter
chains NWDFAULT (hooked first into FORWARD) and NWDFAULTIN (INPUT, for DNS), the MASQUERADE rule,
the uplink, or a REDIRECT to a userspace delay proxy.

Cleanup: Lab.close() (also registered with atexit; callers install signal handlers through
install_signal_handlers()) stops every process it started by its process-group id, deletes its
namespaces (which removes every veth and every iptables rule with them) and its /etc/netns folders.
A lab whose owner died without cleaning up is removed by `lab.py gc`, and by the next lab's start.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import json
import os
import random
import selectors
import shutil
import signal
import socket
import string
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
STATE_ROOT = Path("/run/nwd-lab")
NETNS_ETC = Path("/etc/netns")

# Addressing (all inside our own namespaces, except the root-side end of the endpoint link).
LAN_NET, PRIV_IP, NAT_LAN_IP = "198.18.10.0/24", "198.18.10.10", "198.18.10.1"
WAN_NET, NAT_WAN_IP, INET_GW_IP = "198.18.100.0/24", "198.18.100.2", "198.18.100.1"
DOMAIN = "nwd.test"  # RFC 6761 reserved name; served only by the lab's dnsmasq


@dataclass(frozen=True)
class TargetHost:
    name: str
    ip: str
    scheme: str
    path: str

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{DOMAIN}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.fqdn}{self.path}"

    @property
    def port(self) -> int:
        return 443 if self.scheme == "https" else 80


# Shaped like the checker's defaults: a 204 endpoint, a small text trace, an HTTPS asset.
TARGETS = (
    TargetHost("alpha", "198.19.1.11", "http", "/generate_204"),
    TargetHost("bravo", "198.19.1.12", "http", "/cdn-cgi/trace"),
    TargetHost("charlie", "198.19.1.13", "https", "/favicon.ico"),
)

PROXY_PORT = 10080  # the delay proxy, inside the nat namespace


class LabError(RuntimeError):
    pass


def run(cmd: list[str], check: bool = True, input: str | None = None, quiet: bool = False) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, input=input, text=True, capture_output=True)
    if check and p.returncode != 0:
        raise LabError(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr.strip()}")
    return p


def _timed(cmd: list[str], input: str | None = None) -> float:
    """Run a fault command; returns time.time() taken right before it (the recorded instant)."""
    t = time.time()
    run(cmd, input=input)
    return t


def require_root_tools() -> str | None:
    """None when the lab can run here, else the reason it can't (for a clear skip/fail message)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, veth, iptables)"
    missing = [t for t in ("ip", "iptables", "iptables-restore", "dnsmasq") if shutil.which(t) is None]
    if missing:
        return f"missing {', '.join(missing)} (run `make deps` as root)"
    return None


def _new_run_id() -> str:
    # 6 characters: short enough for 15-character interface names (nwd + id + 2).
    alphabet = string.ascii_lowercase + string.digits
    return "".join(random.choice(alphabet) for _ in range(6))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------------------------------
# The endpoint relay: the private subnet's view of the Step Functions VPC endpoint


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


# --------------------------------------------------------------------------------------------------
# The lab


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path | None = None


@dataclass
class Lab:
    out_dir: Path
    run_id: str = field(default_factory=_new_run_id)
    procs: list[Proc] = field(default_factory=list)
    closed: bool = False
    relay: Relay | None = None
    moto = None  # moto_env.MotoServer
    vpce_net: str = ""  # 198.19.252-255.x/30 for the endpoint link
    vpce_root_ip: str = ""
    vpce_priv_ip: str = ""
    ca_pem: Path | None = None
    _flap: threading.Thread | None = None
    _flap_stop: threading.Event = field(default_factory=threading.Event)
    fault: str | None = None

    # ---- names
    def ns(self, role: str) -> str:
        return f"nwd-{self.run_id}-{role}"

    def ifname(self, n: str) -> str:
        return f"nwd{self.run_id}{n}"

    @property
    def priv(self) -> str:
        return self.ns("priv")

    @property
    def nat(self) -> str:
        return self.ns("nat")

    @property
    def inet(self) -> str:
        return self.ns("inet")

    @property
    def namespaces(self) -> list[str]:
        return [self.priv, self.nat, self.inet]

    @property
    def lan_if_nat(self) -> str:
        return self.ifname("n0")

    @property
    def wan_if_nat(self) -> str:
        return self.ifname("n1")

    @property
    def state_dir(self) -> Path:
        return STATE_ROOT / self.run_id

    def exec_in(self, ns: str, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", ns, *cmd]

    # ---- lifecycle
    def start(self, with_moto: bool = True) -> "Lab":
        reason = require_root_tools()
        if reason:
            raise LabError(reason)
        gc_stale(verbose=False)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        atexit.register(self.close)
        self._write_state()
        try:
            self._build_network()
            self._write_state()
            self._make_ca()
            self._start_services()
            if with_moto:
                self._start_moto()
            self._write_state()
            self._verify()
        except BaseException:
            self.close()
            raise
        return self

    def _write_state(self) -> None:
        state = {"owner_pid": os.getpid(), "run_id": self.run_id, "namespaces": self.namespaces,
                 "root_ifaces": [self.ifname("r0")], "etc_netns": [str(NETNS_ETC / n) for n in self.namespaces],
                 "pids": [p.popen.pid for p in self.procs] + ([self.moto.proc.pid] if self.moto and self.moto.proc else [])}
        (self.state_dir / "state.json").write_text(json.dumps(state))

    def _build_network(self) -> None:
        for n in self.namespaces:
            run(["ip", "netns", "add", n])
            run(["ip", "-n", n, "link", "set", "lo", "up"])
        p0, n0, n1, i0, p1, r0 = (self.ifname(x) for x in ("p0", "n0", "n1", "i0", "p1", "r0"))
        # private <-> nat (the subnet's route to 0.0.0.0/0 via the NAT instance)
        run(["ip", "link", "add", p0, "netns", self.priv, "type", "veth", "peer", "name", n0, "netns", self.nat])
        # nat <-> inet (the NAT instance's uplink)
        run(["ip", "link", "add", n1, "netns", self.nat, "type", "veth", "peer", "name", i0, "netns", self.inet])
        run(["ip", "-n", self.priv, "addr", "add", f"{PRIV_IP}/24", "dev", p0])
        run(["ip", "-n", self.nat, "addr", "add", f"{NAT_LAN_IP}/24", "dev", n0])
        run(["ip", "-n", self.nat, "addr", "add", f"{NAT_WAN_IP}/24", "dev", n1])
        run(["ip", "-n", self.inet, "addr", "add", f"{INET_GW_IP}/24", "dev", i0])
        for t in TARGETS:
            run(["ip", "-n", self.inet, "addr", "add", f"{t.ip}/32", "dev", "lo"])
        for ns, dev in ((self.priv, p0), (self.nat, n0), (self.nat, n1), (self.inet, i0)):
            run(["ip", "-n", ns, "link", "set", dev, "up"])
        run(["ip", "-n", self.priv, "route", "add", "default", "via", NAT_LAN_IP])
        run(["ip", "-n", self.nat, "route", "add", "default", "via", INET_GW_IP])
        # inet knows only its own link: without MASQUERADE nothing comes back to the private subnet.
        run(self.exec_in(self.nat, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"))
        self.nat_rules_base()
        # private <-> root: the Step Functions VPC endpoint, never through the NAT.
        run(["ip", "link", "add", p1, "netns", self.priv, "type", "veth", "peer", "name", r0])
        self._alloc_vpce(r0)
        run(["ip", "-n", self.priv, "addr", "add", f"{self.vpce_priv_ip}/30", "dev", p1])
        run(["ip", "-n", self.priv, "link", "set", p1, "up"])
        run(["ip", "link", "set", r0, "up"])
        # Names: the private subnet resolves the targets through the lab DNS on the NAT host's LAN
        # side (which serves the nat namespace's hosts file); the endpoint name is in the private
        # namespace's own hosts file, as a private hosted zone would answer it.
        etc_priv = NETNS_ETC / self.priv
        etc_priv.mkdir(parents=True, exist_ok=True)
        (etc_priv / "hosts").write_text(f"127.0.0.1 localhost\n{self.vpce_root_ip} states.vpce.{DOMAIN}\n")
        (etc_priv / "resolv.conf").write_text(f"nameserver {NAT_LAN_IP}\n")
        etc_nat = NETNS_ETC / self.nat
        etc_nat.mkdir(parents=True, exist_ok=True)
        (etc_nat / "hosts").write_text("127.0.0.1 localhost\n" + "".join(f"{t.ip} {t.fqdn}\n" for t in TARGETS))
        (etc_nat / "resolv.conf").write_text("nameserver 127.0.0.1\n")

    def _alloc_vpce(self, root_if: str) -> None:
        """A /30 from 198.19.252.0/22 not used by any other interface of the root namespace, put on
        root_if before the lock is released: labs starting at the same moment (bench --jobs) must not
        both see the same /30 as free."""
        STATE_ROOT.mkdir(parents=True, exist_ok=True)
        with open(STATE_ROOT / ".alloc.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            used = run(["ip", "-4", "-o", "addr", "show"]).stdout
            for _ in range(2000):
                k = random.randrange(0, 1024 // 4) * 4
                net = f"198.19.{252 + k // 256}.{k % 256}"
                root_ip = f"198.19.{252 + k // 256}.{k % 256 + 1}"
                if f" {root_ip}/" not in used:
                    self.vpce_net, self.vpce_root_ip = net, root_ip
                    self.vpce_priv_ip = f"198.19.{252 + k // 256}.{k % 256 + 2}"
                    run(["ip", "addr", "add", f"{root_ip}/30", "dev", root_if])
                    return
        raise LabError("no free /30 in 198.19.252.0/22 for the endpoint link")

    def nat_rules_base(self) -> None:
        rules = (
            "*filter\n:NWDFAULT - [0:0]\n:NWDFAULTIN - [0:0]\n-A FORWARD -j NWDFAULT\n-A INPUT -j NWDFAULTIN\nCOMMIT\n"
            f"*nat\n-A POSTROUTING -o {self.wan_if_nat} -j MASQUERADE\nCOMMIT\n"
        )
        run(self.exec_in(self.nat, "iptables-restore", "-w", "--noflush"), input=rules)

    def _make_ca(self) -> None:
        from certs import make_ca_and_leaf  # local module; needs `cryptography`
        d = self.state_dir / "tls"
        d.mkdir(exist_ok=True)
        https = [t for t in TARGETS if t.scheme == "https"]
        paths = make_ca_and_leaf(d, [t.fqdn for t in https], [t.ip for t in https])
        self.ca_pem = paths["ca"]
        self._leaf = paths

    def spawn(self, name: str, cmd: list[str], env: dict | None = None, log: Path | None = None,
              stdout=None) -> Proc:
        logf = open(log, "ab") if log else subprocess.DEVNULL
        out = stdout if stdout is not None else logf
        p = subprocess.Popen(cmd, stdout=out, stderr=logf, stdin=subprocess.DEVNULL, env=env,
                             start_new_session=True)
        if log:
            logf.close()
        proc = Proc(name, p, log)
        self.procs.append(proc)
        self._write_state()
        return proc

    def _start_services(self) -> None:
        py = sys.executable
        servers = str(HERE / "servers.py")
        for t in TARGETS:
            cmd = self.exec_in(self.inet, py, servers, "target", "--addr", t.ip, "--port", str(t.port), "--name", t.name)
            if t.scheme == "https":
                cmd += ["--cert", str(self._leaf["cert"]), "--key", str(self._leaf["key"])]
            self.spawn(f"target-{t.name}", cmd, log=self.out_dir / f"target-{t.name}.log")
        self.spawn("dnsmasq", self.exec_in(
            self.nat, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
            f"--addn-hosts={NETNS_ETC / self.nat / 'hosts'}", f"--listen-address={NAT_LAN_IP}", "--bind-interfaces",
            "--local-ttl=0", "--no-negcache", f"--pid-file={self.state_dir / 'dnsmasq.pid'}", "--user=nobody",
            "--log-facility=-"), log=self.out_dir / "dnsmasq.log")
        self.spawn("delay-proxy", self.exec_in(self.nat, py, servers, "delayproxy", "--port", str(PROXY_PORT)),
                   log=self.out_dir / "delay-proxy.log")

    def _start_moto(self) -> None:
        sys.path.insert(0, str(REPO / "tests" / "support"))
        from moto_env import MotoServer  # the shared one (tests/support/moto_env.py)
        self.moto = MotoServer(log_path=self.out_dir / "moto.log").start()
        self.relay = Relay(self.vpce_root_ip, ("127.0.0.1", self.moto.port))

    @property
    def endpoint_url(self) -> str:
        """AWS_ENDPOINT_URL as seen from the private namespace."""
        return f"http://{self.vpce_root_ip}:{self.relay.addr[1]}"

    # ---- checks
    def curl_from_private(self, url: str, timeout: float = 2.0) -> tuple[bool, str]:
        """Fetch url from the private namespace with the system resolver and the lab CA."""
        code = ("import sys,ssl,urllib.request\n"
                "ctx=ssl.create_default_context(cafile=sys.argv[2])\n"
                "try:\n"
                " r=urllib.request.urlopen(sys.argv[1],timeout=float(sys.argv[3]),context=ctx)\n"
                " print(r.status)\n"
                "except Exception as e:\n"
                " print(type(e).__name__, e); sys.exit(1)\n")
        try:
            p = subprocess.run(self.exec_in(self.priv, sys.executable, "-c", code, url, str(self.ca_pem), str(timeout)),
                               capture_output=True, text=True, timeout=timeout + 12)
        except subprocess.TimeoutExpired:
            return False, "no answer (resolver still waiting)"
        return p.returncode == 0, (p.stdout + p.stderr).strip()

    def _verify(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        pending = list(TARGETS)
        last = ""
        while pending and time.monotonic() < deadline:
            for p in self.procs:
                if p.popen.poll() is not None:
                    raise LabError(f"{p.name} exited with {p.popen.returncode}; see {p.log}")
            t = pending[0]
            ok, last = self.curl_from_private(t.url, timeout=1.0)
            if ok:
                pending.pop(0)
            else:
                time.sleep(0.2)
        if pending:
            raise LabError(f"target {pending[0].url} not reachable from {self.priv}: {last}")
        if self.relay is not None:
            ok, last = self.curl_from_private(f"{self.endpoint_url}/moto-api/data.json", timeout=3.0)
            if not ok:
                raise LabError(f"moto not reachable from {self.priv} through the endpoint link: {last}")

    def nat_counters(self) -> dict[str, int]:
        """Packets the NAT forwarded and masqueraded so far (to show what crossed it)."""
        out = run(self.exec_in(self.nat, "iptables", "-w", "-t", "nat", "-L", "POSTROUTING", "-v", "-x", "-n")).stdout
        fwd = run(self.exec_in(self.nat, "iptables", "-w", "-L", "FORWARD", "-v", "-x", "-n")).stdout
        def first_pkts(text: str, needle: str) -> int:
            for line in text.splitlines():
                if needle in line:
                    return int(line.split()[0])
            return 0
        return {"forwarded": first_pkts(fwd, "NWDFAULT"), "masqueraded": first_pkts(out, "MASQUERADE")}

    # ---- faults (all on the nat namespace; inject() returns the instant taken right before the command)
    def _fault_chain(self, rules: list[str], chain: str = "NWDFAULT") -> float:
        """Append rules to a fault chain in one atomic iptables-restore."""
        text = "*filter\n" + "".join(f"-A {chain} {r}\n" for r in rules) + "COMMIT\n"
        return _timed(self.exec_in(self.nat, "iptables-restore", "-w", "--noflush"), input=text)

    def inject(self, mode: str, **kw) -> float:
        if self.fault is not None:
            raise LabError(f"fault {self.fault} already active")
        target_down = TARGETS[0].ip
        self.fault = mode
        if mode == "blackhole":
            return self._fault_chain(["-j DROP"])
        if mode == "reject":
            return self._fault_chain(["-p tcp -j REJECT --reject-with tcp-reset"])
        if mode == "dns_down":
            return self._fault_chain(["-p udp --dport 53 -j DROP", "-p tcp --dport 53 -j DROP"], chain="NWDFAULTIN")
        if mode in ("loss5", "loss20"):
            p = 0.05 if mode == "loss5" else 0.20
            return self._fault_chain([f"-m statistic --mode random --probability {p} -j DROP"])
        if mode == "target_down":
            return self._fault_chain([f"-d {target_down} -j DROP", f"-s {target_down} -j DROP"])
        if mode in ("soak5", "soak20"):
            p = 0.05 if mode == "soak5" else 0.20
            return self._fault_chain([f"-d {target_down} -j DROP", f"-s {target_down} -j DROP",
                                      f"-m statistic --mode random --probability {p} -j DROP"])
        if mode == "uplink_down":
            return _timed(["ip", "-n", self.nat, "link", "set", self.wan_if_nat, "down"])
        if mode == "masq_removed":
            return _timed(self._masquerade("-D"))
        if mode == "latency":
            return _timed(self._redirect("-I"))
        if mode == "flapping":
            period = kw.get("period", 1.0)
            self._flap_stop.clear()
            started = threading.Event()
            t0 = [0.0]

            def flap() -> None:
                down = ["-j DROP"]
                while not self._flap_stop.is_set():
                    t = self._fault_chain(down)
                    if not started.is_set():
                        t0[0] = t
                        started.set()
                    if self._flap_stop.wait(period):
                        break
                    run(self.exec_in(self.nat, "iptables", "-w", "-F", "NWDFAULT"))
                    self._flap_stop.wait(period)

            self._flap = threading.Thread(target=flap, name="nwd-flap", daemon=True)
            self._flap.start()
            started.wait(10)
            return t0[0]
        self.fault = None
        raise LabError(f"unknown fault mode {mode!r}")

    def heal(self) -> float:
        """Undo the active fault; returns the instant taken right before the (last) command."""
        mode, self.fault = self.fault, None
        if mode is None:
            return time.time()
        if mode == "flapping":
            self._flap_stop.set()
            if self._flap:
                self._flap.join(timeout=5)
            self._flap = None
        if mode == "uplink_down":
            t = time.time()
            run(["ip", "-n", self.nat, "link", "set", self.wan_if_nat, "up"])
            run(["ip", "-n", self.nat, "route", "replace", "default", "via", INET_GW_IP])
            return t
        if mode == "masq_removed":
            return _timed(self._masquerade("-A"))
        if mode == "latency":
            return _timed(self._redirect("-D"))
        return _timed(self.exec_in(self.nat, "iptables", "-w", "-F", "NWDFAULTIN" if mode == "dns_down" else "NWDFAULT"))

    def _masquerade(self, op: str) -> list[str]:
        return self.exec_in(self.nat, "iptables", "-w", "-t", "nat", op, "POSTROUTING", "-o", self.wan_if_nat, "-j", "MASQUERADE")

    def _redirect(self, op: str) -> list[str]:
        """The latency fault: web traffic from the subnet through the delay proxy on the NAT host."""
        return self.exec_in(self.nat, "iptables", "-w", "-t", "nat", op, "PREROUTING", "-i", self.lan_if_nat, "-p", "tcp",
                            "-m", "multiport", "--dports", "80,443", "-j", "REDIRECT", "--to-ports", str(PROXY_PORT))

    # ---- teardown
    def stop_proc(self, proc: Proc, sig: int = signal.SIGTERM, timeout: float = 5.0) -> int | None:
        """Signal the process group of a child we started (its pgid is its pid), then SIGKILL it."""
        p = proc.popen
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=5)
        else:
            # the leader is gone; members of its group (a checker under /usr/bin/time) may not be
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        return p.returncode

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if threading.current_thread() is threading.main_thread():
            # a second Ctrl-C must not cut the teardown short
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(s, signal.SIG_IGN)
        self._flap_stop.set()
        for proc in reversed(self.procs):
            try:
                self.stop_proc(proc)
            except Exception as e:  # noqa: BLE001 - keep cleaning
                print(f"lab: could not stop {proc.name} ({proc.popen.pid}): {e}", file=sys.stderr)
        if self.relay:
            self.relay.close()
        if self.moto:
            self.moto.stop()
        remove_run(self.namespaces, [self.ifname("r0")], [NETNS_ETC / n for n in self.namespaces])
        shutil.rmtree(self.state_dir, ignore_errors=True)


def remove_run(namespaces: list[str], root_ifaces: list[str], etc_dirs: list[Path]) -> None:
    existing = set(run(["ip", "netns", "list"], check=False).stdout.split())
    for n in namespaces:
        if n in existing:
            run(["ip", "netns", "delete", n], check=False)
    for i in root_ifaces:  # normally gone with its peer's namespace already
        if run(["ip", "link", "show", i], check=False).returncode == 0:
            run(["ip", "link", "delete", i], check=False)
    for d in etc_dirs:
        shutil.rmtree(d, ignore_errors=True)


def gc_stale(verbose: bool = True) -> int:
    """Remove labs whose owner process is gone (killed with SIGKILL, machine hiccup). Returns count."""
    if not STATE_ROOT.exists():
        return 0
    n = 0
    for d in STATE_ROOT.iterdir():
        f = d / "state.json"
        if not f.is_file():
            continue
        try:
            st = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if _pid_alive(int(st["owner_pid"])):
            continue
        for pid in st.get("pids", []):
            # only our own children: pgid == pid and still a member of one of our namespaces
            if _pid_alive(pid) and _in_namespaces(pid, st["namespaces"]):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
        remove_run(st["namespaces"], st.get("root_ifaces", []), [Path(p) for p in st.get("etc_netns", [])])
        shutil.rmtree(d, ignore_errors=True)
        n += 1
        if verbose:
            print(f"lab gc: removed stale run {st['run_id']}")
    return n


def _in_namespaces(pid: int, namespaces: list[str]) -> bool:
    try:
        mine = os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return False
    for n in namespaces:
        try:
            if os.stat(f"/run/netns/{n}").st_ino == mine:
                return True
        except OSError:
            pass
    # moto runs in the root namespace: accept it when its command line says so
    try:
        return b"moto_server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def install_signal_handlers(cleanup: Callable[[], None]) -> None:
    """SIGINT (even when inherited as ignored, as in a background job), SIGTERM and SIGHUP end the
    run through the normal unwinding (finally blocks, atexit)."""
    def handler(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, handler)
    atexit.register(cleanup)
