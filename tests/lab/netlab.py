"""The failure-injection lab: a private subnet, a NAT instance and an "internet", as Linux network
namespaces joined by veth pairs, plus the emulated Step Functions endpoint reachable from the private
subnet without crossing the NAT.

    private (checker) ──veth── nat (configure-nat.sh; lab DNS) ──veth── inet (targets)
        └──veth── root namespace: relay ──► moto on 127.0.0.1   (the Step Functions VPC endpoint)

The lab resolver (dnsmasq) listens on the NAT host's LAN address: like the VPC resolver it is reached
without crossing the NAT's forwarding path, so a NAT failure shows as connect failures, not DNS
failures, and "DNS down" is its own fault (queries to it dropped on the NAT host).

Every address is in 198.18.0.0/15 (RFC 2544 benchmarking). Every namespace is called
nwd-<run id>-<role>, every interface nwd<run id><n>, so two labs (the smoke test and a bench, or
the labs of a parallel bench) never meet. The NAT host is configured by
infra/nat-instance/configure-nat.sh (natconf.py); faults are injected on the nat namespace only
(faults.py).

Cleanup: Lab.close() (also registered with atexit; Rig installs signal handlers) stops every process
it started by its process-group id, deletes its namespaces (which removes every veth and every
nftables rule with them) and its /etc/netns folders. A lab whose owner died without cleaning up is
removed by `make lab-clean` (cleanup.gc_stale), and by the next lab's start.
"""

from __future__ import annotations

import atexit
import fcntl
import random
import shutil
import signal
import string
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .addressing import DOMAIN, INET_GW_IP, LAN_NET, NAT_LAN_IP, NAT_WAN_IP, PRIV_IP, PROXY_PORT, TARGETS
from .cleanup import NETNS_ETC, STATE_ROOT, gc_stale, remove_run, write_state
from .faults import Faults
from .natconf import configure_nat, masqueraded_packets
from .procs import Proc, Supervisor
from .relay import Relay
from .services import start_services
from .shell import LabError, require_root_tools, run

def _new_run_id() -> str:
    # 6 characters: short enough for 15-character interface names (nwd + id + 2).
    alphabet = string.ascii_lowercase + string.digits
    return "".join(random.choice(alphabet) for _ in range(6))


@dataclass
class Lab:
    """Namespaces, links and services. Processes: self.procs; faults: self.faults; the endpoint
    relay towards moto: attach_endpoint()."""
    out_dir: Path
    run_id: str = field(default_factory=_new_run_id)
    closed: bool = False
    relay: Relay | None = None
    extra_pids: list[int] = field(default_factory=list)  # started by others for this lab (moto)
    vpce_root_ip: str = ""
    vpce_priv_ip: str = ""
    ca_pem: Path | None = None

    def __post_init__(self) -> None:
        self.procs = Supervisor(on_change=self._write_state)
        self.faults = Faults(self.nat, self.lan_if_nat, self.wan_if_nat, INET_GW_IP, TARGETS[0].ip, PROXY_PORT,
                             reconfigure_nat=self.configure_nat)

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
    def owned_namespaces(self) -> list[str]:
        """Every namespace this lab may create: the three, plus the replacement NAT host of a
        planned-replacement trial (replacement.py) and the NAT-gateway host of the closed loop
        (closedloop.py), so teardown and gc cover them too."""
        return self.namespaces + [self.ns("nat2"), self.ns("natgw")]

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
    def start(self) -> "Lab":
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
            self.configure_nat()
            self.faults.install()
            self.ca_pem = start_services(self)
            self._verify_targets()
        except BaseException:
            self.close()
            raise
        return self

    def _write_state(self) -> None:
        write_state(self.state_dir, self.run_id, self.owned_namespaces, [self.ifname("r0")],
                    self.procs.pids + self.extra_pids)

    def configure_nat(self, check: bool = False) -> subprocess.CompletedProcess:
        """The NAT host as a NAT instance configures itself: infra/nat-instance/configure-nat.sh."""
        return configure_nat(self.nat, self.wan_if_nat, LAN_NET, check=check)

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
        # inet knows only its own link: without the NAT's masquerade nothing comes back to the subnet.
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
                root_ip = f"198.19.{252 + k // 256}.{k % 256 + 1}"
                if f" {root_ip}/" not in used:
                    self.vpce_root_ip = root_ip
                    self.vpce_priv_ip = f"198.19.{252 + k // 256}.{k % 256 + 2}"
                    run(["ip", "addr", "add", f"{root_ip}/30", "dev", root_if])
                    return
        raise LabError("no free /30 in 198.19.252.0/22 for the endpoint link")

    def attach_endpoint(self, port: int, pid: int | None = None) -> None:
        """The private subnet's Step Functions endpoint: a relay to 127.0.0.1:port (moto, whose pid
        goes into the state file so that gc can stop it), checked from the private namespace."""
        if pid is not None:
            self.extra_pids.append(pid)
            self._write_state()
        self.relay = Relay(self.vpce_root_ip, ("127.0.0.1", port))
        ok, last = self.curl_from_private(f"{self.endpoint_url}/moto-api/data.json", timeout=3.0)
        if not ok:
            raise LabError(f"moto not reachable from {self.priv} through the endpoint link: {last}")

    @property
    def endpoint_url(self) -> str:
        """AWS_ENDPOINT_URL as seen from the private namespace."""
        if self.relay is None:
            raise LabError("no endpoint attached (attach_endpoint)")
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

    def _verify_targets(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        pending = list(TARGETS)
        last = ""
        while pending and time.monotonic() < deadline:
            dead = self.procs.first_dead()
            if dead:
                raise LabError(f"{dead.name} exited with {dead.popen.returncode}; see {dead.log}")
            t = pending[0]
            ok, last = self.curl_from_private(t.url, timeout=1.0)
            if ok:
                pending.pop(0)
            else:
                time.sleep(0.2)
        if pending:
            raise LabError(f"target {pending[0].url} not reachable from {self.priv}: {last}")

    def nat_counters(self) -> dict[str, int]:
        """Packets the NAT forwarded and masqueraded so far (to show what crossed it)."""
        return {"forwarded": self.faults.forwarded_packets(), "masqueraded": masqueraded_packets(self.nat)}

    # ---- teardown
    def stop_proc(self, proc: Proc, sig: int, timeout: float = 5.0) -> int | None:
        return self.procs.stop(proc, sig, timeout)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if threading.current_thread() is threading.main_thread():
            # a second Ctrl-C must not cut the teardown short
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(s, signal.SIG_IGN)
        self.faults.stop_flapping()
        self.procs.stop_all(lambda m: print(m, file=sys.stderr))
        if self.relay:
            self.relay.close()
        remove_run(self.owned_namespaces, [self.ifname("r0")], [NETNS_ETC / n for n in self.owned_namespaces])
        shutil.rmtree(self.state_dir, ignore_errors=True)
