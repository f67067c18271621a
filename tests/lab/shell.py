"""Running commands for the lab, and what the lab needs to run at all."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIGURE_NAT = REPO / "infra" / "nat-instance" / "configure-nat.sh"


class LabError(RuntimeError):
    pass


def run(cmd: list[str], check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, input=input, text=True, capture_output=True)
    if check and p.returncode != 0:
        raise LabError(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr.strip()}")
    return p


def timed(cmd: list[str], input: str | None = None) -> float:
    """Run a fault command; returns time.time() taken right before it (the recorded instant)."""
    t = time.time()
    run(cmd, input=input)
    return t


def require_root_tools() -> str | None:
    """None when the lab can run here, else the reason it can't (for a clear skip/fail message)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, veth, nftables)"
    missing = [t for t in ("ip", "nft", "unshare", "dnsmasq") if shutil.which(t) is None]
    if missing:
        return f"missing {', '.join(missing)} (run `make deps` as root)"
    if not CONFIGURE_NAT.is_file():
        return f"missing {CONFIGURE_NAT}"
    return None
