"""The lab's services: the target hosts in `inet` (HTTP, and HTTPS with a certificate from a lab CA
made at start), the lab DNS (dnsmasq on the NAT host's LAN side, standing for the VPC resolver) and
the delay proxy on the NAT host (the latency fault)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .addressing import NAT_LAN_IP, PROXY_PORT, TARGETS
from .certs import make_ca_and_leaf
from .cleanup import NETNS_ETC

if TYPE_CHECKING:
    from .netlab import Lab

SERVERS = Path(__file__).resolve().parent / "servers.py"  # a standalone program (standard library only)


def start_services(lab: "Lab") -> Path:
    """Starts every service under lab.procs; returns the lab CA's certificate (for EXTRA_CA_CERTS)."""
    tls = lab.state_dir / "tls"
    tls.mkdir(exist_ok=True)
    https = [t for t in TARGETS if t.scheme == "https"]
    leaf = make_ca_and_leaf(tls, [t.fqdn for t in https], [t.ip for t in https])
    py = sys.executable
    for t in TARGETS:
        cmd = lab.exec_in(lab.inet, py, str(SERVERS), "target", "--addr", t.ip, "--port", str(t.port), "--name", t.name)
        if t.scheme == "https":
            cmd += ["--cert", str(leaf["cert"]), "--key", str(leaf["key"])]
        lab.procs.spawn(f"target-{t.name}", cmd, log=lab.out_dir / f"target-{t.name}.log")
    lab.procs.spawn("dnsmasq", lab.exec_in(
        lab.nat, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
        f"--addn-hosts={NETNS_ETC / lab.nat / 'hosts'}", f"--listen-address={NAT_LAN_IP}", "--bind-interfaces",
        "--local-ttl=0", "--no-negcache", f"--pid-file={lab.state_dir / 'dnsmasq.pid'}", "--user=nobody",
        "--log-facility=-"), log=lab.out_dir / "dnsmasq.log")
    lab.procs.spawn("delay-proxy", lab.exec_in(lab.nat, py, str(SERVERS), "delayproxy", "--port", str(PROXY_PORT)),
                    log=lab.out_dir / "delay-proxy.log")
    return leaf["ca"]
