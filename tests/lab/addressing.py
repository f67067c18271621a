"""The lab's addresses and target hosts. Every address is in 198.18.0.0/15 (RFC 2544 benchmarking)."""

from __future__ import annotations

from dataclasses import dataclass

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

# The closed loop (closedloop.py): a NAT-gateway host `natgw` as the standby path, beside the NAT host.
#   private 198.18.12.10/24 ── natgw 198.18.12.1 | natgw 198.18.102.2/24 ── inet 198.18.102.1
NATGW_NET, PRIV_GW_IP, NATGW_LAN_IP = "198.18.12.0/24", "198.18.12.10", "198.18.12.1"
NATGW_WAN_NET, NATGW_WAN_IP, INET_GW3_IP = "198.18.102.0/24", "198.18.102.2", "198.18.102.1"
# A resolver "on the internet" (dnsmasq in inet), reached through the default route, so that names
# resolve whichever egress path is in use and "DNS down" can be a fault of the NAT host's path.
INET_RESOLVER_IP = "198.19.1.53"
# Canary addresses (issue 12): /32 routes that always go to the NAT host, whatever 0.0.0.0/0 says.
CANARY_IPS = ("198.19.3.1", "198.19.3.2")
