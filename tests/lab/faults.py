"""Faults injected on the lab's NAT host. Each inject() returns the instant taken right before the
command that makes the fault real (time.time()), heal() the instant before the one that undoes it.

Filter faults live in the lab's own nftables table `ip nwd_fault` on the nat namespace, beside the
NAT's table (`ip nat_watchdog`, from configure-nat.sh), which they never edit: base chains hooked
just before the default priorities jump to `fault_fwd` (forwarded traffic), `fault_in` (the lab DNS on
the NAT host) and `fault_pre` (the REDIRECT of the latency fault); a fault appends rules there in one
nft transaction and heal flushes the chain. The faults on the NAT itself act on what the script set
up: "MASQUERADE removed" deletes the script's masquerade rule and is healed by running the script
again, exactly how a NAT instance is repaired. Two faults serve the closed loop (closedloop.py), whose
resolver sits beyond the NAT: "instance gone" takes both of the NAT host's links down (a terminated
instance: its ENI answers nothing), "DNS path down" drops the DNS it forwards."""

from __future__ import annotations

import re
import threading
import time
from typing import Callable

from .natconf import delete_masquerade_cmd
from .shell import LabError, run, timed

FAULT_TABLE = "nwd_fault"
_SETUP = f"""table ip {FAULT_TABLE} {{
  chain forward {{ type filter hook forward priority filter - 10; policy accept; counter jump fault_fwd; }}
  chain fault_fwd {{ }}
  chain input {{ type filter hook input priority filter - 10; policy accept; jump fault_in; }}
  chain fault_in {{ }}
  chain prerouting {{ type nat hook prerouting priority dstnat - 10; policy accept; jump fault_pre; }}
  chain fault_pre {{ }}
}}
"""


class Faults:
    def __init__(self, nat_ns: str, lan_if: str, wan_if: str, inet_gw_ip: str, target_down_ip: str,
                 proxy_port: int, reconfigure_nat: Callable[[], object]):
        self.ns, self.lan_if, self.wan_if = nat_ns, lan_if, wan_if
        self.inet_gw_ip, self.target_down_ip, self.proxy_port = inet_gw_ip, target_down_ip, proxy_port
        self.reconfigure_nat = reconfigure_nat
        self.active: str | None = None
        self._flap: threading.Thread | None = None
        self._flap_stop = threading.Event()

    def _nft(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns, "nft", *args]

    def install(self) -> None:
        run(self._nft("-f", "-"), input=_SETUP)

    def forwarded_packets(self) -> int:
        """Packets the NAT host forwarded so far (the counter in front of the fault chain)."""
        out = run(self._nft("list", "chain", "ip", FAULT_TABLE, "forward")).stdout
        m = re.search(r"counter packets (\d+)", out)
        return int(m.group(1)) if m else 0

    def _add(self, chain: str, rules: list[str]) -> float:
        """Append rules to a fault chain in one atomic nft transaction."""
        text = "".join(f"add rule ip {FAULT_TABLE} {chain} {r}\n" for r in rules)
        return timed(self._nft("-f", "-"), input=text)

    def _flush(self, chain: str) -> float:
        return timed(self._nft("flush", "chain", "ip", FAULT_TABLE, chain))

    def inject(self, mode: str, period: float = 1.0) -> float:
        if self.active is not None:
            raise LabError(f"fault {self.active} already active")
        down = self.target_down_ip
        self.active = mode
        if mode == "blackhole":
            return self._add("fault_fwd", ["drop"])
        if mode == "reject":
            return self._add("fault_fwd", ["meta l4proto tcp reject with tcp reset"])
        if mode == "dns_down":
            return self._add("fault_in", ["udp dport 53 drop", "tcp dport 53 drop"])
        if mode in ("loss5", "loss20"):
            return self._add("fault_fwd", [f"numgen random mod 100 < {5 if mode == 'loss5' else 20} drop"])
        if mode == "target_down":
            return self._add("fault_fwd", [f"ip daddr {down} drop", f"ip saddr {down} drop"])
        if mode in ("soak5", "soak20"):
            return self._add("fault_fwd", [f"ip daddr {down} drop", f"ip saddr {down} drop",
                                           f"numgen random mod 100 < {5 if mode == 'soak5' else 20} drop"])
        if mode == "dns_path_down":
            return self._add("fault_fwd", ["udp dport 53 drop", "tcp dport 53 drop"])
        if mode == "uplink_down":
            return timed(["ip", "-n", self.ns, "link", "set", self.wan_if, "down"])
        if mode == "instance_gone":
            return timed(["ip", "-n", self.ns, "-batch", "-"],
                         input=f"link set {self.lan_if} down\nlink set {self.wan_if} down\n")
        if mode == "masq_removed":
            return timed(delete_masquerade_cmd(self.ns))
        if mode == "latency":
            return self._add("fault_pre", [f'iifname "{self.lan_if}" tcp dport {{ 80, 443 }} '
                                           f"redirect to :{self.proxy_port}"])
        if mode == "flapping":
            return self._start_flapping(period)
        self.active = None
        raise LabError(f"unknown fault mode {mode!r}")

    def _start_flapping(self, period: float) -> float:
        self._flap_stop.clear()
        started = threading.Event()
        t0 = [0.0]

        def flap() -> None:
            while not self._flap_stop.is_set():
                t = self._add("fault_fwd", ["drop"])
                if not started.is_set():
                    t0[0] = t
                    started.set()
                if self._flap_stop.wait(period):
                    break
                self._flush("fault_fwd")
                self._flap_stop.wait(period)

        self._flap = threading.Thread(target=flap, name="nwd-flap", daemon=True)
        self._flap.start()
        started.wait(10)
        return t0[0]

    def stop_flapping(self) -> None:
        self._flap_stop.set()
        if self._flap:
            self._flap.join(timeout=5)
        self._flap = None

    def forget(self) -> None:
        """The NAT host was rebuilt (configure-nat.sh as a replacement instance boots): a fault of its
        configuration (masq_removed) went with the old host, so nothing is left to heal."""
        if self.active not in (None, "masq_removed"):
            raise LabError(f"fault {self.active} survives a rebuilt NAT host; heal it instead")
        self.active = None

    def heal(self) -> float:
        """Undo the active fault; returns the instant taken right before the (last) command."""
        mode, self.active = self.active, None
        if mode is None:
            return time.time()
        if mode == "flapping":
            self.stop_flapping()
        if mode in ("uplink_down", "instance_gone"):
            t = time.time()
            if mode == "instance_gone":
                run(["ip", "-n", self.ns, "link", "set", self.lan_if, "up"])
            run(["ip", "-n", self.ns, "link", "set", self.wan_if, "up"])
            run(["ip", "-n", self.ns, "route", "replace", "default", "via", self.inet_gw_ip])
            return t
        if mode == "masq_removed":
            t = time.time()
            self.reconfigure_nat()  # the repair a NAT instance gets: run configure-nat.sh again
            return t
        if mode == "latency":
            return self._flush("fault_pre")
        return self._flush("fault_in" if mode == "dns_down" else "fault_fwd")
