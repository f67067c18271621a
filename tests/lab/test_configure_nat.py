"""infra/nat-instance/configure-nat.sh on a real kernel, in network namespaces made for each test.

    nwd-<id>-cpriv ──veth── nwd-<id>-cnat (the script runs here) ──veth── nwd-<id>-cinet

`inet` has no route back to the private subnet, so a connection from `priv` only completes when the
NAT host translates it; the server in `inet` reports the source address it saw. Root-only tests skip
with a message otherwise (`sudo make lab-nat-test`); usage errors and the non-root refusal run anywhere.
"""

from __future__ import annotations

import os
import random
import shutil
import string
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "infra" / "nat-instance" / "configure-nat.sh"
PRIV_IP, NAT_LAN_IP, LAN = "198.18.210.10", "198.18.210.1", "198.18.210.0/24"
NAT_WAN_IP, INET_IP = "198.18.211.2", "198.18.211.1"
PORT = 8080

_why_not = None
if os.geteuid() != 0:
    _why_not = "needs root (network namespaces); run `sudo make lab-nat-test`"
elif shutil.which("nft") is None or shutil.which("ip") is None:
    _why_not = "needs nft and ip (run `make deps` as root)"
needs_root = pytest.mark.skipif(_why_not is not None, reason=_why_not or "")


def sh(*cmd: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, capture_output=True, text=True, input=input, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} -> {p.returncode}: {p.stderr.strip()}")
    return p


def script(*args: str) -> subprocess.CompletedProcess:
    """The script run directly by whoever runs the tests (no namespace)."""
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


class Topo:
    """Three namespaces and two veth pairs, removed by close(). The WAN link can be made later."""

    def __init__(self) -> None:
        rid = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(6))
        self.priv, self.nat, self.inet = (f"nwd-{rid}-c{r}" for r in ("priv", "nat", "inet"))
        self.lan_if, self.wan_if = f"nwd{rid}cn0", f"nwd{rid}cn1"
        self._rid = rid
        for n in (self.priv, self.nat, self.inet):
            sh("ip", "netns", "add", n)
            sh("ip", "-n", n, "link", "set", "lo", "up")
        p0 = f"nwd{rid}cp0"
        sh("ip", "link", "add", p0, "netns", self.priv, "type", "veth", "peer", "name", self.lan_if, "netns", self.nat)
        sh("ip", "-n", self.priv, "addr", "add", f"{PRIV_IP}/24", "dev", p0)
        sh("ip", "-n", self.nat, "addr", "add", f"{NAT_LAN_IP}/24", "dev", self.lan_if)
        sh("ip", "-n", self.priv, "link", "set", p0, "up")
        sh("ip", "-n", self.nat, "link", "set", self.lan_if, "up")
        sh("ip", "-n", self.priv, "route", "add", "default", "via", NAT_LAN_IP)

    def add_wan(self) -> None:
        i0 = f"nwd{self._rid}ci0"
        sh("ip", "link", "add", self.wan_if, "netns", self.nat, "type", "veth", "peer", "name", i0, "netns", self.inet)
        sh("ip", "-n", self.inet, "addr", "add", f"{INET_IP}/24", "dev", i0)
        sh("ip", "-n", self.inet, "link", "set", i0, "up")
        sh("ip", "-n", self.nat, "addr", "add", f"{NAT_WAN_IP}/24", "dev", self.wan_if)
        sh("ip", "-n", self.nat, "link", "set", self.wan_if, "up")
        sh("ip", "-n", self.nat, "route", "add", "default", "via", INET_IP)

    def configure(self, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.nat, "bash", str(SCRIPT), "--egress-if", self.wan_if,
                               "--source-cidr", LAN, *extra], capture_output=True, text=True, timeout=60)

    def ruleset(self, stateless: bool = False) -> str:
        return sh("ip", "netns", "exec", self.nat, "nft", *(["-s"] if stateless else []), "list", "ruleset").stdout

    def sysctls(self) -> str:
        keys = ["net.ipv4.ip_forward"] + [f"net.ipv4.conf.{i}.{k}" for i in ("all", "default", self.wan_if)
                                          for k in ("rp_filter", "send_redirects", "accept_redirects")]
        return sh("ip", "netns", "exec", self.nat, "sysctl", *keys).stdout

    def source_seen_by_inet(self) -> str | None:
        """Connect from priv to a server in inet; the address the server saw, or None if no connection."""
        server = subprocess.Popen(
            ["ip", "netns", "exec", self.inet, sys.executable, "-c",
             "import socket,sys\n"
             "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
             f"s.bind(('{INET_IP}',{PORT})); s.listen(1); s.settimeout(6); print('ready', flush=True)\n"
             "try:\n c,a=s.accept(); print(a[0], flush=True)\nexcept OSError: print('none', flush=True)\n"],
            stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout.readline().strip() == "ready"
            client = sh("ip", "netns", "exec", self.priv, sys.executable, "-c",
                        f"import socket; socket.create_connection(('{INET_IP}',{PORT}), timeout=3).close()", check=False)
            seen = server.stdout.readline().strip()
            server.wait(timeout=10)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        return seen if client.returncode == 0 and seen != "none" else None

    def close(self) -> None:
        for n in (self.priv, self.nat, self.inet):
            subprocess.run(["ip", "netns", "delete", n], capture_output=True)


@pytest.fixture
def topo():
    t = Topo()
    try:
        yield t
    finally:
        t.close()
    left = [n for n in sh("ip", "netns", "list").stdout.split() if t._rid in n]
    assert not left, f"namespaces left behind: {left}"


# ---- anywhere


def test_help_describes_usage_and_exits_zero():
    p = script("--help")
    assert p.returncode == 0
    assert "--egress-if IFACE" in p.stdout and "--check" in p.stdout


@pytest.mark.parametrize("args, needle", [
    ([], "--egress-if IFACE is required"),
    (["--egress-if", "eth0", "--source-cidr", "10.0.0.0/33"], "prefix length"),
    (["--egress-if", "eth0", "--source-cidr", "10.0.0/16"], "not an IPv4 CIDR"),
    (["--egress-if", "eth0;reboot"], "not an interface name"),
    (["--egress-if", "eth0", "--bogus"], "unknown argument '--bogus'"),
])
def test_bad_usage_is_one_clear_line_and_exit_2(args, needle):
    p = script(*args)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and needle in p.stderr, p.stderr


def test_non_root_run_is_refused_with_exit_4():
    cmd = ["bash", "-s", "--", "--egress-if", "lo"]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("as root this test drops to uid 65534 with setpriv, which is missing")
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", *cmd]
    with open(SCRIPT) as f:  # on stdin: the unprivileged user need not be able to read the worktree
        p = subprocess.run(cmd, stdin=f, capture_output=True, text=True, timeout=30)
    assert p.returncode == 4
    assert p.stderr.count("\n") == 1 and "must run as root" in p.stderr, p.stderr


# ---- root: real namespaces


@needs_root
def test_configured_host_translates_private_traffic_to_its_own_address(topo):
    topo.add_wan()
    assert topo.source_seen_by_inet() is None, "traffic crossed before the NAT was configured"
    p = topo.configure()
    assert p.returncode == 0, p.stderr
    assert topo.source_seen_by_inet() == NAT_WAN_IP
    assert sh("ip", "netns", "exec", topo.nat, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
    assert "tcp option maxseg size set rt mtu" in topo.ruleset()
    # conntrack_max cannot be written from a non-initial namespace: said, not failed
    assert "nf_conntrack_max is read-only here" in p.stdout


@needs_root
def test_second_run_changes_nothing(topo):
    topo.add_wan()
    assert topo.configure().returncode == 0
    rules, sysctls = topo.ruleset(), topo.sysctls()
    p = topo.configure()
    assert p.returncode == 0, p.stderr
    assert "already in place, nothing changed" in p.stdout
    assert topo.ruleset() == rules  # counters included: the table was not even rewritten
    assert topo.sysctls() == sysctls
    assert topo.configure("--check").returncode == 0


@needs_root
def test_other_tables_are_left_alone(topo):
    topo.add_wan()
    sh("ip", "netns", "exec", topo.nat, "nft", "-f", "-",
       input="table inet operator { chain input { type filter hook input priority 0; policy accept; counter; }; }\n")
    assert topo.configure().returncode == 0
    topo.configure()
    assert "table inet operator" in topo.ruleset()


@needs_root
def test_flushed_ruleset_is_noticed_by_check_and_restored_by_a_rerun(topo):
    topo.add_wan()
    assert topo.configure().returncode == 0
    configured = topo.ruleset(stateless=True)
    sh("ip", "netns", "exec", topo.nat, "nft", "flush", "ruleset")
    assert topo.source_seen_by_inet() is None
    check = topo.configure("--check")
    assert check.returncode == 1 and "table ip nat_watchdog is missing" in check.stdout
    p = topo.configure()
    assert p.returncode == 0 and "created nftables table ip nat_watchdog" in p.stdout
    assert topo.ruleset(stateless=True) == configured
    assert topo.source_seen_by_inet() == NAT_WAN_IP


@needs_root
def test_removed_masquerade_rule_is_noticed_and_restored(topo):
    topo.add_wan()
    assert topo.configure().returncode == 0
    listing = sh("ip", "netns", "exec", topo.nat, "nft", "-a", "list", "chain", "ip", "nat_watchdog", "postrouting").stdout
    handle = next(l.rsplit("# handle ", 1)[1] for l in listing.splitlines() if "masquerade" in l)
    sh("ip", "netns", "exec", topo.nat, "nft", "delete", "rule", "ip", "nat_watchdog", "postrouting", "handle", handle)
    assert topo.configure("--check").returncode == 1
    assert topo.configure().returncode == 0
    assert topo.source_seen_by_inet() == NAT_WAN_IP


@needs_root
def test_reset_sysctl_is_noticed_and_restored(topo):
    topo.add_wan()
    assert topo.configure().returncode == 0
    sh("ip", "netns", "exec", topo.nat, "sysctl", "-q", "-w", "net.ipv4.ip_forward=0")
    check = topo.configure("--check")
    assert check.returncode == 1 and "net.ipv4.ip_forward is 0 (want 1)" in check.stdout
    assert topo.configure().returncode == 0
    assert topo.source_seen_by_inet() == NAT_WAN_IP


@needs_root
def test_missing_interface_is_one_clear_line_and_exit_3(topo):
    p = topo.configure("--wait", "0")
    assert p.returncode == 3
    assert p.stderr.count("\n") == 1 and f"interface {topo.wan_if} not found" in p.stderr, p.stderr
    assert "nat_watchdog" not in topo.ruleset()


@needs_root
def test_interface_appearing_late_is_waited_for(topo):
    proc = subprocess.Popen(["ip", "netns", "exec", topo.nat, "bash", str(SCRIPT), "--egress-if", topo.wan_if,
                             "--source-cidr", LAN, "--wait", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        first = proc.stdout.readline()  # the script says it waits before the interface exists
        assert f"waiting up to 30s for interface {topo.wan_if}" in first, first
        topo.add_wan()
        out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert f"interface {topo.wan_if} ready after" in out
    assert topo.source_seen_by_inet() == NAT_WAN_IP
