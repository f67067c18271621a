#!/bin/bash
# PLACEHOLDER for infra/nat-instance/configure-nat.sh, which the lab branch writes (issue 11 item 2;
# interface in /work/shared/DESIGN.md, "NAT configuration script"). It exists on the natlayer branch
# only so that render_userdata.py can embed a script into infra/nat-az.yaml. When merging, take the
# lab branch's file and regenerate the user data:
#     python3 infra/nat-instance/render_userdata.py
# Minimal behaviour, same interface: configure-nat.sh --egress-if IFACE [--source-cidr CIDR], as root.
set -euo pipefail
egress_if="" source_cidr=""
while [ $# -gt 0 ]; do
  case "$1" in
    --egress-if) egress_if=${2:?--egress-if needs an interface name}; shift 2 ;;
    --source-cidr) source_cidr=${2:?--source-cidr needs a CIDR}; shift 2 ;;
    *) echo "configure-nat: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -n "$egress_if" ] || { echo "configure-nat: --egress-if IFACE is required" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "configure-nat: must run as root" >&2; exit 1; }
for _ in $(seq 60); do [ -e "/sys/class/net/$egress_if" ] && break; sleep 1; done
[ -e "/sys/class/net/$egress_if" ] || { echo "configure-nat: no interface $egress_if" >&2; exit 1; }
sysctl -q -w net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0
match=${source_cidr:+ip saddr $source_cidr }
nft -f - <<NFT
table ip nat_watchdog
delete table ip nat_watchdog
table ip nat_watchdog {
  chain postrouting { type nat hook postrouting priority srcnat; ${match}oifname "$egress_if" masquerade; }
}
NFT
