#!/usr/bin/env bash
# configure-nat.sh: make this host a NAT instance. One script for the instance's user data, the image
# pipeline and the failure-injection lab's NAT host (tests/lab), so every lab run tests it on a real kernel.
#
# What it sets (and --check verifies):
#   - forwarding: net.ipv4.ip_forward=1; loose reverse-path filtering (rp_filter=2: a NAT with a second
#     ENI sees asymmetric paths, strict mode would drop them); no ICMP redirects sent or accepted
#   - nftables: its OWN table `ip nat_watchdog` (masquerade out of the egress interface, optionally only
#     for --source-cidr, and a TCP MSS clamp to the route MTU on forwarded SYNs). Nothing else in the
#     ruleset is touched: the table is replaced as a whole, in one atomic transaction, and only when it
#     differs from what it should be (so a second run changes nothing, counters included).
#   - conntrack sizing: net.netfilter.nf_conntrack_max raised to at least --conntrack-max. Inside a
#     network namespace other than the host's the kernel makes it read-only (the host's table is shared);
#     the script says so and goes on.
# It waits (bounded by --wait) for its interfaces to exist, be up and carry an IPv4 address instead of
# racing them at boot: masquerade applied before the ENI is ready is the "runs but does not NAT" failure.
#
# Works with bash, iproute2, nftables and util-linux (Amazon Linux 2023, Debian 12).
set -euo pipefail

readonly PROG="configure-nat.sh"
readonly TABLE="nat_watchdog"
readonly DEFAULT_WAIT=120
readonly DEFAULT_CONNTRACK_MAX=131072

usage() {
  cat <<EOF
Usage: $PROG --egress-if IFACE [--source-cidr CIDR] [options]

Configure this host as a NAT instance (run as root). Idempotent: running it again changes nothing,
and restores whatever was removed (a flushed ruleset, a sysctl reset).

  --egress-if IFACE     the interface traffic leaves by (required)
  --source-cidr CIDR    translate only sources in this IPv4 CIDR (default: everything leaving IFACE)
  --wait-if IFACE       also wait for this interface (e.g. a second ENI attached after boot); repeatable
  --wait SECONDS        how long to wait for the interfaces (default $DEFAULT_WAIT; 0 = do not wait;
                        --check defaults to 0)
  --conntrack-max N     raise net.netfilter.nf_conntrack_max to at least N (default $DEFAULT_CONNTRACK_MAX)
  --check               change nothing; exit 0 when the configuration is in place, 1 (and one line per
                        difference) when it is not
  -h, --help            this text

Exit codes: 0 done / in place; 1 not in place (--check) or applying failed; 2 bad usage;
3 an interface did not become ready in time; 4 not root; 5 a required tool is missing.
EOF
}

die() { # code message
  echo "$PROG: error: $2" >&2
  exit "$1"
}
say() { echo "$PROG: $*"; }

EGRESS_IF=""
SOURCE_CIDR=""
WAIT_IFS=()
WAIT_S=""
CONNTRACK_MAX="$DEFAULT_CONNTRACK_MAX"
CHECK=0

need_value() { [ "$#" -ge 2 ] && [ -n "$2" ] || die 2 "$1 needs a value (see --help)"; }

while [ "$#" -gt 0 ]; do
  case "$1" in
    --egress-if) need_value "$@"; EGRESS_IF="$2"; shift 2 ;;
    --source-cidr) need_value "$@"; SOURCE_CIDR="$2"; shift 2 ;;
    --wait-if) need_value "$@"; WAIT_IFS+=("$2"); shift 2 ;;
    --wait) need_value "$@"; WAIT_S="$2"; shift 2 ;;
    --conntrack-max) need_value "$@"; CONNTRACK_MAX="$2"; shift 2 ;;
    --check) CHECK=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die 2 "unknown argument '$1' (see --help)" ;;
  esac
done

# ---- validation (before anything privileged, so a typo is reported as such even without root)
valid_ifname() { [[ "$1" =~ ^[A-Za-z0-9_.-]{1,15}$ ]]; }
[ -n "$EGRESS_IF" ] || die 2 "--egress-if IFACE is required (see --help)"
valid_ifname "$EGRESS_IF" || die 2 "--egress-if '$EGRESS_IF' is not an interface name (1-15 of A-Z a-z 0-9 _ . -)"
for i in "${WAIT_IFS[@]+"${WAIT_IFS[@]}"}"; do
  valid_ifname "$i" || die 2 "--wait-if '$i' is not an interface name (1-15 of A-Z a-z 0-9 _ . -)"
done
if [ -n "$SOURCE_CIDR" ]; then
  if [[ "$SOURCE_CIDR" =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})/([0-9]{1,2})$ ]]; then
    for n in 1 2 3 4; do
      [ "${BASH_REMATCH[$n]}" -le 255 ] || die 2 "--source-cidr '$SOURCE_CIDR' is not an IPv4 CIDR (a.b.c.d/n)"
    done
    [ "${BASH_REMATCH[5]}" -le 32 ] || die 2 "--source-cidr '$SOURCE_CIDR': prefix length must be 0-32"
  else
    die 2 "--source-cidr '$SOURCE_CIDR' is not an IPv4 CIDR (a.b.c.d/n)"
  fi
fi
if [ -z "$WAIT_S" ]; then
  if [ "$CHECK" = 1 ]; then WAIT_S=0; else WAIT_S="$DEFAULT_WAIT"; fi
fi
[[ "$WAIT_S" =~ ^[0-9]{1,5}$ ]] || die 2 "--wait '$WAIT_S' is not a whole number of seconds"
[[ "$CONNTRACK_MAX" =~ ^[1-9][0-9]{0,9}$ ]] || die 2 "--conntrack-max '$CONNTRACK_MAX' is not a positive whole number"

[ "$(id -u)" = 0 ] || die 4 "must run as root (uid 0), running as uid $(id -u)"
for tool in nft ip; do
  command -v "$tool" >/dev/null 2>&1 || die 5 "'$tool' not found (install nftables and iproute2)"
done

# ---- interfaces: wait until each exists, is up and has an IPv4 address
if_ready() {
  [ -e "/sys/class/net/$1" ] || return 1
  ip -o link show dev "$1" 2>/dev/null | grep -q '[<,]UP[,>]' || return 1
  [ -n "$(ip -4 -o addr show dev "$1" 2>/dev/null)" ]
}

wait_ready() {
  local ifc="$1" waited=0
  if_ready "$ifc" && return 0
  if [ "$WAIT_S" -gt 0 ]; then
    say "waiting up to ${WAIT_S}s for interface $ifc (exists, up, IPv4 address)"
    while [ "$waited" -lt "$WAIT_S" ]; do
      sleep 1
      waited=$((waited + 1))
      if if_ready "$ifc"; then
        say "interface $ifc ready after ${waited}s"
        return 0
      fi
    done
  fi
  if [ -e "/sys/class/net/$ifc" ]; then
    die 3 "interface $ifc exists but is not up with an IPv4 address (waited ${WAIT_S}s)"
  fi
  die 3 "interface $ifc not found (waited ${WAIT_S}s; see \`ip link\`)"
}

for ifc in "$EGRESS_IF" "${WAIT_IFS[@]+"${WAIT_IFS[@]}"}"; do
  wait_ready "$ifc"
done

# ---- sysctls, written through /proc/sys (interface names may contain dots, sysctl(8) keys may not)
PROBLEMS=0
CHANGES=0

want_sysctl() { # path value
  local path="/proc/sys/$1" want="$2" have
  have="$(cat "$path" 2>/dev/null)" || die 1 "cannot read $path"
  [ "$have" = "$want" ] && return 0
  if [ "$CHECK" = 1 ]; then
    say "not in place: $(echo "$1" | tr / .) is $have (want $want)"
    PROBLEMS=$((PROBLEMS + 1))
    return 0
  fi
  { echo "$want" >"$path"; } 2>/dev/null || die 1 "cannot write $want to $path"
  say "set $(echo "$1" | tr / .): $have -> $want"
  CHANGES=$((CHANGES + 1))
}

want_sysctl net/ipv4/ip_forward 1
for ifc in all default "$EGRESS_IF" "${WAIT_IFS[@]+"${WAIT_IFS[@]}"}"; do
  want_sysctl "net/ipv4/conf/$ifc/rp_filter" 2
  want_sysctl "net/ipv4/conf/$ifc/send_redirects" 0
  want_sysctl "net/ipv4/conf/$ifc/accept_redirects" 0
done

# ---- nftables: the table as it should be
render_table() {
  local match=""
  [ -n "$SOURCE_CIDR" ] && match=" ip saddr $SOURCE_CIDR"
  cat <<EOF
table ip $TABLE {
	comment "managed by configure-nat.sh (nat-egress-watchdog); rerun it to restore"
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "$EGRESS_IF"$match counter masquerade comment "nat-watchdog: masquerade"
	}

	chain forward {
		type filter hook forward priority mangle; policy accept;
		tcp flags syn / syn,rst counter tcp option maxseg size set rt mtu comment "nat-watchdog: mss clamp"
	}
}
EOF
}

# nft prints a table in its own canonical form; load the wanted table into a throwaway network
# namespace and list it there, so "is it in place?" compares like with like on any nft version.
canonical_wanted() {
  command -v unshare >/dev/null 2>&1 || return 1
  render_table | unshare --net -- sh -c 'nft -f - && nft -s list table ip '"$TABLE" 2>/dev/null
}

current_table() { nft -s list table ip "$TABLE" 2>/dev/null || true; }

WANTED="$(canonical_wanted)" || WANTED=""
CURRENT="$(current_table)"

if [ -n "$WANTED" ] && [ "$WANTED" = "$CURRENT" ]; then
  :
elif [ "$CHECK" = 1 ]; then
  if [ -z "$CURRENT" ]; then
    say "not in place: nftables table ip $TABLE is missing"
  elif [ -z "$WANTED" ]; then
    say "not in place: cannot compare table ip $TABLE (unshare unavailable); rerun without --check"
  else
    say "not in place: nftables table ip $TABLE differs from what it should be"
  fi
  PROBLEMS=$((PROBLEMS + 1))
else
  # One transaction: create-if-absent, delete, recreate. Other tables are never touched.
  if ! err="$( { echo "table ip $TABLE"; echo "delete table ip $TABLE"; render_table; } | nft -f - 2>&1)"; then
    die 1 "nft refused the table: $(echo "$err" | head -n 1)"
  fi
  if [ -z "$CURRENT" ]; then say "created nftables table ip $TABLE"; else say "replaced nftables table ip $TABLE"; fi
  CHANGES=$((CHANGES + 1))
  [ -n "$WANTED" ] || say "note: unshare unavailable, the table is rewritten on every run"
fi

# ---- conntrack sizing (the module is loaded by now if the table exists)
CT=/proc/sys/net/netfilter/nf_conntrack_max
if [ ! -e "$CT" ]; then
  if [ "$CHECK" = 1 ]; then
    say "not in place: nf_conntrack not loaded ($CT missing)"
    PROBLEMS=$((PROBLEMS + 1))
  else
    say "note: $CT missing (nf_conntrack not loaded?); conntrack sizing skipped"
  fi
elif [ ! -w "$CT" ]; then
  say "note: net.netfilter.nf_conntrack_max is read-only here (a network namespace: the host's value $(cat "$CT") applies); not sized"
elif [ "$(cat "$CT")" -lt "$CONNTRACK_MAX" ]; then
  if [ "$CHECK" = 1 ]; then
    say "not in place: net.netfilter.nf_conntrack_max is $(cat "$CT") (want at least $CONNTRACK_MAX)"
    PROBLEMS=$((PROBLEMS + 1))
  else
    have="$(cat "$CT")"
    { echo "$CONNTRACK_MAX" >"$CT"; } 2>/dev/null || die 1 "cannot write $CONNTRACK_MAX to $CT"
    say "set net.netfilter.nf_conntrack_max: $have -> $CONNTRACK_MAX"
    CHANGES=$((CHANGES + 1))
  fi
fi

what="masquerade ${SOURCE_CIDR:-any source} out of $EGRESS_IF"
if [ "$CHECK" = 1 ]; then
  if [ "$PROBLEMS" -gt 0 ]; then
    say "NOT in place ($PROBLEMS difference(s)); run without --check to fix"
    exit 1
  fi
  say "in place: $what"
  exit 0
fi
if [ "$CHANGES" = 0 ]; then
  say "already in place, nothing changed: $what"
else
  say "done ($CHANGES change(s)): $what"
fi
