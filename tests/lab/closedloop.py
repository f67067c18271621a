"""The closed loop (issue 12, item 5): the checker detects, the real Failover moves the route in moto,
the private host's kernel route follows, egress comes back over a NAT-gateway host. One trial measures
**egress downtime** = fault injected → first successful probe over the gateway, and its split.

    private ─(default via, follows moto)─┬─ nat    (NAT instance: configure-nat.sh) ─┬─ inet (targets,
                                         └─ natgw  (NAT Gateway: plain masquerade) ──┘   resolver, canaries)

  natgw       a second egress host (addresses in 198.18.12.0/24 and 198.18.102.0/24): forwarding and
              one nftables masquerade rule, nothing else, as a managed NAT Gateway is to us.
  follower    follower.py, a process polling DescribeRouteTables for the private subnet's managed route
              table every FOLLOW_INTERVAL_S (25 ms) and applying its routes to the private namespace's
              kernel: 0.0.0.0/0 to the NAT instance's ENI → via the nat host, to the standby NAT
              Gateway → via natgw; the canary /32 routes (CANARY_IPS, created in every managed table
              as the housekeeping does) → via the nat host, always. It logs its own poll latency.
  resolver    dnsmasq in inet (INET_RESOLVER_IP), reached through the default route: names resolve over
              whichever path egress takes, so a dead NAT host does not take the resolver with it (the
              lab's usual resolver lives ON the nat host, which "instance gone" would kill for good),
              and "DNS down" is the NAT host dropping the DNS it forwards (fault `dns_path_down`).
  egress probe  egressprobe.py in the private namespace: a new probe every 50 ms (DNS query + new TCP
              connection + GET /cdn-cgi/trace, 0.5 s timeout, probes overlap), each reporting the
              address the target saw, i.e. WHICH egress host carried it. This, not the checker's own
              probe log, is the stopwatch: the checker probes every 0.4 s with rounds that overlap
              and its log does not say which path a probe took; a 50 ms workload-like probe that
              names the path measures what a workload sees, to 50 ms, for every checker
              configuration alike (the anchors probe every 5 or 10 s).

Split of one trial (instants on this machine's clock; moto runs here too):
  detection   = Failover execution startDate − fault
  failover    = the ReplaceRoute of the followed table done (execution history) − startDate
  follower    = kernel route in place (follower's log) − that ReplaceRoute done
  first probe = first successful probe over natgw completed − kernel route in place
  downtime    = first successful probe over natgw completed − fault  (= the sum)

Between trials the route goes back to the NAT instance in moto (ReplaceRoute, as the Fallback would)
and the follower brings the kernel back; the follower runs only during closed-loop items, so the
detection trials sharing a bench lab never see it.
"""

from __future__ import annotations

import json
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .addressing import (CANARY_IPS, INET_GW3_IP, INET_RESOLVER_IP, LAN_NET, NAT_LAN_IP, NAT_WAN_IP,
                         NATGW_LAN_IP, NATGW_WAN_IP, PRIV_GW_IP, PRIV_IP, TARGETS)
from .checker import Checker, executions, timing
from .cleanup import NETNS_ETC
from .procs import Proc
from .rig import Rig
from .shell import LabError, run

KIND = "closed-loop"
# fault name in the lab (faults.py) per closed-loop mode; "loop_" keeps them apart from detection modes
LOOP_FAULTS = {"loop_blackhole": "blackhole", "loop_instance_gone": "instance_gone",
               "loop_masq_removed": "masq_removed", "loop_uplink_down": "uplink_down",
               "loop_dns_down": "dns_path_down", "loop_flapping": "flapping"}
LOOP_MODES = list(LOOP_FAULTS)
LOOP_LABELS = {"loop_blackhole": "hard blackhole (FORWARD DROP)",
               "loop_instance_gone": "NAT instance gone (both links down)",
               "loop_masq_removed": "MASQUERADE removed",
               "loop_uplink_down": "NAT uplink down",
               "loop_dns_down": "DNS down (NAT host drops forwarded DNS)",
               "loop_flapping": "flapping (1 s down / 1 s up)"}
FOLLOW_INTERVAL_S = 0.025
PROBE_INTERVAL_S, PROBE_TIMEOUT_S = 0.05, 0.5
PROBE_TARGET = next(t for t in TARGETS if t.path == "/cdn-cgi/trace")  # answers ip=<egress address>
HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------------------------------------------
# Pure helpers (tested in test_closedloop.py)

def first_over(probes: list[dict], after: float, egress: str) -> dict | None:
    """The first probe (by completion) that started at or after `after` and succeeded over `egress`."""
    ok = [p for p in probes if p.get("ok") and p.get("egress") == egress and p.get("t", 0) >= after]
    return min(ok, key=lambda p: p["t_done"]) if ok else None


def follower_applied(events: list[dict], dest: str, target: str, after: float) -> dict | None:
    """The follower's first `applied` event moving `dest` to `target` at or after `after`."""
    for e in events:
        if (e.get("event") == "applied" and e.get("dest") == dest and e.get("target") == target
                and e.get("t_applied", 0) >= after):
            return e
    return None


def replace_route_done(history: list[dict], route_table_id: str) -> float | None:
    """When the execution's ReplaceRoute of `route_table_id` succeeded (epoch seconds), from its
    history: a TaskSucceeded of resource replaceRoute, traced back (previousEventId) to the
    TaskScheduled whose parameters name the table. None when it never did."""
    by_id = {e.get("id"): e for e in history}
    for e in history:
        if e.get("type") != "TaskSucceeded" or e.get("taskSucceededEventDetails", {}).get("resource") != "replaceRoute":
            continue
        prev, hops = by_id.get(e.get("previousEventId")), 0
        while prev is not None and prev.get("type") != "TaskScheduled" and hops < 5:
            prev, hops = by_id.get(prev.get("previousEventId")), hops + 1
        params = (prev or {}).get("taskScheduledEventDetails", {}).get("parameters") or "{}"
        try:
            table = json.loads(params).get("RouteTableId")
        except ValueError:
            table = None
        if table == route_table_id:
            ts = e["timestamp"]
            return ts.timestamp() if hasattr(ts, "timestamp") else float(ts)
    return None


def split(t_inj: float, exec_start: float | None, replaced: float | None, applied: float | None,
          first_ok: float | None) -> dict[str, float | None]:
    """The trial's figures from its instants; a part is None when an instant it needs is missing."""
    def d(a, b):
        return None if a is None or b is None else a - b
    return {"egress_downtime_s": d(first_ok, t_inj), "detection_s": d(exec_start, t_inj),
            "failover_s": d(replaced, exec_start), "follower_lag_s": d(applied, replaced),
            "first_probe_s": d(first_ok, applied)}


def read_jsonl(path: Path) -> list[dict]:
    out = []
    try:
        text = path.read_text()
    except OSError:
        return out
    for line in text.splitlines():
        try:
            v = json.loads(line)
        except ValueError:
            continue
        if isinstance(v, dict):
            out.append(v)
    return out


# ---------------------------------------------------------------------------------------------------
# The loop's hosts and processes

@dataclass
class ClosedLoop:
    """Adds the NAT-gateway host, the internet resolver and the canaries to a rig's lab (once), and
    runs the follower between start() and stop()."""
    rig: Rig
    follow_interval: float = FOLLOW_INTERVAL_S
    built: bool = False
    follower: Proc | None = None
    follower_log: Path | None = None
    _n: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def natgw(self) -> str:
        return self.rig.lab.ns("natgw")

    @property
    def priv_gw_if(self) -> str:
        return self.rig.lab.ifname("p3")

    @property
    def route_table_id(self) -> str:
        """The private subnet's managed route table (build_vpc associates the AZ's first one)."""
        return self.rig.vpc["route_table_ids"][0]

    def build(self) -> None:
        if self.built:
            return
        lab = self.rig.lab
        natgw, inet, priv = self.natgw, lab.inet, lab.priv
        p3, g0, g1, j0 = self.priv_gw_if, lab.ifname("g0"), lab.ifname("g1"), lab.ifname("j0")
        run(["ip", "netns", "add", natgw])  # in lab.owned_namespaces: teardown and gc remove it
        run(["ip", "-n", natgw, "link", "set", "lo", "up"])
        run(["ip", "link", "add", p3, "netns", priv, "type", "veth", "peer", "name", g0, "netns", natgw])
        run(["ip", "link", "add", g1, "netns", natgw, "type", "veth", "peer", "name", j0, "netns", inet])
        run(["ip", "-n", priv, "addr", "add", f"{PRIV_GW_IP}/24", "dev", p3])
        run(["ip", "-n", natgw, "addr", "add", f"{NATGW_LAN_IP}/24", "dev", g0])
        run(["ip", "-n", natgw, "addr", "add", f"{NATGW_WAN_IP}/24", "dev", g1])
        run(["ip", "-n", inet, "addr", "add", f"{INET_GW3_IP}/24", "dev", j0])
        for ns, dev in ((priv, p3), (natgw, g0), (natgw, g1), (inet, j0)):
            run(["ip", "-n", ns, "link", "set", dev, "up"])
        run(["ip", "-n", natgw, "route", "add", "default", "via", INET_GW3_IP])
        run(["ip", "-n", natgw, "route", "add", LAN_NET, "via", PRIV_GW_IP])  # the subnet, behind its leg
        run(["ip", "netns", "exec", natgw, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
        run(["ip", "netns", "exec", natgw, "nft", "-f", "-"], input=(
            "table ip nwd_natgw {\n  chain postrouting { type nat hook postrouting priority srcnat; policy accept;\n"
            f'    oifname "{g1}" ip saddr {LAN_NET} counter masquerade\n  }}\n}}\n'))
        # the internet's resolver and the canary hosts (addresses on inet's loopback, like the targets)
        for ip in (INET_RESOLVER_IP, *CANARY_IPS):
            run(["ip", "-n", inet, "addr", "add", f"{ip}/32", "dev", "lo"])
        lab.procs.spawn("dnsmasq-inet", lab.exec_in(
            inet, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
            f"--addn-hosts={NETNS_ETC / lab.nat / 'hosts'}", f"--listen-address={INET_RESOLVER_IP}",
            "--bind-interfaces", "--local-ttl=0", "--no-negcache", f"--pid-file={lab.state_dir / 'dnsmasq-inet.pid'}",
            "--user=nobody", "--log-facility=-"), log=lab.out_dir / "dnsmasq-inet.log")
        # the canary /32 routes in every managed route table, to the NAT instance's ENI (the housekeeping's job)
        for rtb in self.rig.vpc["route_table_ids"]:
            for ip in CANARY_IPS:
                self.rig.ec2.create_route(RouteTableId=rtb, DestinationCidrBlock=f"{ip}/32",
                                          NetworkInterfaceId=self.rig.vpc["nat_eni_id"])
        self.built = True

    def start(self) -> None:
        """Routes back on the NAT instance in moto, the resolver beyond the NAT, the follower running
        and the kernel following (default via the nat host)."""
        self.build()
        lab = self.rig.lab
        self.routes_to_nat_instance()
        (NETNS_ETC / lab.priv / "resolv.conf").write_text(f"nameserver {INET_RESOLVER_IP}\n")
        self._n += 1
        self.follower_log = lab.out_dir / f"follower-{self._n}.jsonl"
        cmd = [sys.executable, "-m", "tests.lab.follower", "--endpoint", self.rig.moto.url,
               "--region", self.rig.moto.region, "--route-table", self.route_table_id, "--netns", lab.priv,
               "--src", PRIV_IP, "--interval", f"{self.follow_interval:g}",
               "--target", f"{self.rig.vpc['nat_eni_id']}={NAT_LAN_IP}@{lab.ifname('p0')}",
               "--target", f"{self.rig.vpc['standby_nat_gateway_id']}={NATGW_LAN_IP}@{self.priv_gw_if}"]
        with open(self.follower_log, "wb") as out:
            self.follower = lab.procs.spawn("follower", cmd, log=lab.out_dir / "follower.stderr", stdout=out)
        self.wait_kernel_default(NAT_LAN_IP, timeout=10)
        for ip in CANARY_IPS:
            self.wait_kernel_route(f"{ip}", NAT_LAN_IP, timeout=5)

    def stop(self) -> None:
        lab = self.rig.lab
        if self.follower is not None:
            lab.stop_proc(self.follower, signal.SIGTERM, timeout=5)
            self.follower = None
        run(["ip", "-n", lab.priv, "route", "replace", "default", "via", NAT_LAN_IP, "dev", lab.ifname("p0")],
            check=False)
        (NETNS_ETC / lab.priv / "resolv.conf").write_text(f"nameserver {NAT_LAN_IP}\n")

    def routes_to_nat_instance(self) -> None:
        """Every managed table's 0.0.0.0/0 back to the NAT instance's ENI, as the Fallback puts it."""
        for rtb in self.rig.vpc["route_table_ids"]:
            self.rig.ec2.replace_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0",
                                       NetworkInterfaceId=self.rig.vpc["nat_eni_id"])

    def kernel_route(self, dest: str) -> str:
        return run(["ip", "-n", self.rig.lab.priv, "route", "show", dest], check=False).stdout.strip()

    def wait_kernel_route(self, dest: str, via: str, timeout: float) -> None:
        deadline = time.time() + timeout
        while f"via {via} " not in self.kernel_route(dest) + " ":
            if self.follower is not None and self.follower.popen.poll() is not None:
                raise LabError(f"the route follower exited ({self.follower.popen.returncode}); see {self.follower_log}")
            if time.time() > deadline:
                raise LabError(f"kernel route {dest} of {self.rig.lab.priv} not via {via} after {timeout:g} s: "
                               f"{self.kernel_route(dest)!r}; see {self.follower_log}")
            time.sleep(0.05)

    def wait_kernel_default(self, via: str, timeout: float) -> None:
        self.wait_kernel_route("default", via, timeout)

    def follower_events(self) -> list[dict]:
        return read_jsonl(self.follower_log) if self.follower_log else []

    def start_probe(self, path: Path) -> Proc:
        lab = self.rig.lab
        path.unlink(missing_ok=True)
        cmd = lab.exec_in(lab.priv, sys.executable, str(HERE / "egressprobe.py"), "--resolver", INET_RESOLVER_IP,
                          "--name", PROBE_TARGET.fqdn, "--path", PROBE_TARGET.path,
                          "--interval", f"{PROBE_INTERVAL_S:g}", "--timeout", f"{PROBE_TIMEOUT_S:g}")
        with open(path, "wb") as out:
            return lab.procs.spawn(f"egressprobe-{path.stem}", cmd, log=path.with_suffix(".stderr"), stdout=out)


# ---------------------------------------------------------------------------------------------------
# One trial

def run_loop_trial(loop: ClosedLoop, mode: str, idx: int, config: str, binary: str, log_dir: Path,
                   seed: str | None = None) -> dict:
    """One closed-loop trial of `mode` with one checker of `config` (the route is one: configurations
    cannot share a fault here). Needs loop.start() done. Returns its record."""
    rig, lab = loop.rig, loop.rig.lab
    fault = LOOP_FAULTS[mode]
    rng = random.Random(seed or f"{mode}-{idx}-{config}")
    tm = timing(binary, config)
    cap = tm.detect_cap + 15  # detection cap, plus the Failover, the follower and the first probe
    budget = 25 + tm.interval + cap + 30
    name = f"{mode}-{idx:02d}-{config}"
    rec: dict = {"kind": KIND, "mode": mode, "fault": fault, "trial": idx, "config": config, "notes": [],
                 "timing": tm.as_env(), "follow_interval_s": loop.follow_interval,
                 "probe_interval_s": PROBE_INTERVAL_S, "probe_timeout_s": PROBE_TIMEOUT_S}
    log_dir.mkdir(parents=True, exist_ok=True)
    loop.routes_to_nat_instance()
    loop.wait_kernel_default(NAT_LAN_IP, timeout=10)
    sm = rig.new_state_machine(f"{mode}-{idx}-{config}")
    ch = Checker(rig, name, config, binary, sm, rig.subnet_id, log_dir, budget)
    probe_path = log_dir / f"{name}.probes.jsonl"
    probe = None
    t_inj = t_heal = None
    try:
        ch.start()
        probe = loop.start_probe(probe_path)
        deadline = time.time() + 25
        settled = False
        while time.time() < deadline:
            ch.poll()
            recent = [p for p in read_jsonl(probe_path) if p.get("t", 0) >= time.time() - 1]
            good_probe = any(p.get("ok") and p.get("egress") == NAT_WAN_IP for p in recent)
            if good_probe and any(e.get("good") is True for e in ch.log.of("round")):
                settled = True
                break
            if not ch.alive():
                break
            time.sleep(0.05)
        if not settled:
            rec["notes"].append("not settled before the fault (no good round, or no probe over the NAT host)")
        end = time.time() + rng.uniform(0, tm.interval)
        while time.time() < end:
            ch.poll()
            time.sleep(0.02)
        if executions(rig.sfn, sm):
            rec["notes"].append("an execution before the fault")

        t_inj = lab.faults.inject(fault)
        back = None
        while time.time() < t_inj + cap:
            back = first_over(read_jsonl(probe_path), t_inj, NATGW_WAN_IP)
            if back:
                break
            if not ch.alive():
                rec["notes"].append(f"checker exited during the fault ({ch.proc.popen.poll()})")
                break
            time.sleep(0.05)
        time.sleep(0.3)
        t_heal = lab.faults.heal()
    finally:
        if lab.faults.active is not None:
            t_heal = t_heal or lab.faults.heal()
        ch.stop()
        if probe is not None:
            lab.stop_proc(probe, signal.SIGTERM, timeout=5)

    probes = read_jsonl(probe_path)
    back = first_over(probes, t_inj or 0, NATGW_WAN_IP)
    ex = executions(rig.sfn, sm)
    exec_start = replaced = None
    if ex:
        first = min(ex, key=lambda e: e["startDate"])
        exec_start = first["startDate"].timestamp()
        try:
            hist = rig.sfn.get_execution_history(executionArn=first["executionArn"], maxResults=1000)["events"]
            replaced = replace_route_done(hist, loop.route_table_id)
            rec["exec_status"] = rig.sfn.describe_execution(executionArn=first["executionArn"])["status"]
        except Exception as e:  # noqa: BLE001 - informational; the split just lacks a part
            rec["notes"].append(f"execution history: {e}")
    applied = follower_applied(loop.follower_events(), "default", rig.vpc["standby_nat_gateway_id"], t_inj or 0)
    rec.update(split(t_inj or 0, exec_start, replaced, applied["t_applied"] if applied else None,
                     back["t_done"] if back else None))
    if applied:
        rec["follower_poll_s"] = applied["t_seen"] - applied["t_poll"]
    rec.update({"t_inject": t_inj, "t_heal": t_heal, "executions": len(ex), "state_machine": sm,
                "log": str(ch.stderr_path), "probes": str(probe_path), "exit_code": ch.exit_code,
                "kernel_moved": applied is not None, "probes_during": sum(1 for p in probes if t_inj and p["t"] >= t_inj
                                                                           and (not back or p["t"] <= back["t"])),
                "verdict_changes": len(ch.log.verdicts())})
    if back is None:
        rec["notes"].append(f"no probe over the NAT-gateway host within {cap:.0f} s of the fault")
    if ex and applied is None:
        rec["notes"].append("execution started but the kernel route never moved to natgw")
    if len(ex) > 1:
        rec["notes"].append(f"{len(ex)} executions during one fault")
    if ch.exit_code not in (0, None):
        rec["notes"].append(f"checker exit code {ch.exit_code}")
    return rec


def loop_item(rig: Rig, loop: ClosedLoop | None, mode: str, idx: int, configs: list[str], binary: str,
              log_dir: Path) -> tuple[ClosedLoop, list[dict]]:
    """A bench plan item: the follower started, one trial per configuration in turn, the follower
    stopped (so the detection items of the same lab never see it)."""
    loop = loop or ClosedLoop(rig)
    loop.start()
    try:
        recs = [run_loop_trial(loop, mode, idx, c, binary, log_dir) for c in configs]
    finally:
        loop.stop()
    for r in recs:
        r["follower_latency"] = next((e for e in reversed(loop.follower_events())
                                      if e.get("event") == "latency" and e.get("final")), None)
    return loop, recs


__all__ = ["ClosedLoop", "LOOP_MODES", "LOOP_LABELS", "LOOP_FAULTS", "KIND", "run_loop_trial", "loop_item",
           "first_over", "follower_applied", "replace_route_done", "split"]
