"""The lab's NAT host is configured by the very script a NAT instance runs at boot
(infra/nat-instance/configure-nat.sh), so every lab run and benchmark tests it on a real kernel."""

from __future__ import annotations

import re
import subprocess

from .shell import CONFIGURE_NAT, LabError, run

TABLE = "nat_watchdog"  # the script's own nftables table (`table ip nat_watchdog`)


def configure_nat(ns: str, egress_if: str, source_cidr: str, check: bool = False,
                  wait_s: int = 10) -> subprocess.CompletedProcess:
    """Run configure-nat.sh inside namespace `ns`. Raises LabError when it fails (with --check: when
    it reports anything but "in place" or "not in place")."""
    cmd = ["ip", "netns", "exec", ns, "bash", str(CONFIGURE_NAT), "--egress-if", egress_if,
           "--source-cidr", source_cidr, "--wait", str(wait_s)] + (["--check"] if check else [])
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=wait_s + 60)
    if p.returncode != 0 and not (check and p.returncode == 1):
        raise LabError(f"configure-nat.sh failed in {ns} (exit {p.returncode}): "
                       f"{(p.stderr or p.stdout).strip()}")
    return p


def masquerade_handle(ns: str) -> str:
    """The nftables handle of the script's masquerade rule (for the 'MASQUERADE removed' fault)."""
    listing = run(["ip", "netns", "exec", ns, "nft", "-a", "list", "chain", "ip", TABLE, "postrouting"]).stdout
    for line in listing.splitlines():
        if " masquerade" in line and "# handle " in line:
            return line.rsplit("# handle ", 1)[1].strip()
    raise LabError(f"no masquerade rule in table ip {TABLE} of {ns}:\n{listing}")


def delete_masquerade_cmd(ns: str) -> list[str]:
    return ["ip", "netns", "exec", ns, "nft", "delete", "rule", "ip", TABLE, "postrouting",
            "handle", masquerade_handle(ns)]


def masqueraded_packets(ns: str) -> int:
    """Packets the script's masquerade rule has translated (its counter); 0 when the rule is gone."""
    p = run(["ip", "netns", "exec", ns, "nft", "list", "chain", "ip", TABLE, "postrouting"], check=False)
    m = re.search(r"counter packets (\d+) bytes \d+ masquerade", p.stdout)
    return int(m.group(1)) if m else 0
