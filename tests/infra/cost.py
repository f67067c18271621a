"""`make cost`: the monthly bill of the watchdog, per AZ and per VPC, written to docs/COST.md.

Every quantity comes from the repository, not from this file:
  * the template's defaults: infra/template.yaml and the nested infra/checker.yaml, evaluated offline
    (tests/infra/template_eval.py) with 3 AZs - Lambda memory, architecture, timeout, request timeout,
    flush interval, the alarms (how many, how many metrics each, their periods), the dashboard, the
    Step Functions endpoint;
  * a real EMF capture: the built checker (CLI mode, same settings as the Lambda) run for one
    invocation's probing window against 3 HTTP targets on 127.0.0.1, plus as many canaries
    (CANARY_URLS, also on 127.0.0.1) as the template configures by default; the distinct metric x
    dimension combinations and the bytes it wrote are counted from its stdout. A second, shorter run
    with one target and one canary refusing connections shows which metrics appear only while probes
    fail.
Only the prices are typed in (PRICES, with the date they were transcribed).

    python tests/infra/cost.py --binary target/debug/connectivity-checker [--out docs/COST.md]
    python tests/infra/cost.py --binary ... --count-only     # prints the metric counts as JSON
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.server
import json
import math
import os
import platform
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from template_eval import INFRA, Stack  # noqa: E402

# us-east-1 list prices (USD), transcribed by hand from the AWS pricing pages on PRICES_DATE; the
# script does not fetch them. Free tiers are ignored.
PRICES_DATE = "2026-11-23"
PRICES = {
    "lambda_gb_second_arm64": 0.0000133334,
    "lambda_gb_second_x86_64": 0.0000166667,
    "lambda_request": 0.20 / 1e6,
    "custom_metric_month": 0.30,          # first 10,000 metrics; billed per hour in which it has data
    "alarm_metric_standard_month": 0.10,  # per metric in the alarm (metric math: each metric)
    "alarm_metric_high_res_month": 0.30,  # alarm period below 60 s
    "dashboard_month": 3.00,
    "logs_ingest_gb": 0.50,
    "logs_store_gb_month": 0.03,
    "interface_endpoint_az_hour": 0.01,
    "nat_gateway_hour": 0.045,
    "nat_gateway_gb": 0.045,
    "cross_az_gb_each_way": 0.01,
    "t4g_nano_hour": 0.0042,
    "sfn_express_request": 1.00 / 1e6,
    "sfn_express_gb_second": 0.00001667,  # billed in 64 MB steps, 100 ms minimum
}
HOURS = 730          # hours in a billing month, as AWS prices per month
MINUTES = HOURS * 60
# The housekeeping's Express runs: rate(5 minutes), each assumed to last HOUSEKEEPING_RUN_S at the
# 64 MB minimum (a Parallel of three lookups, then the pause metric and the canary routes).
HOUSEKEEPING_RUNS_MONTH = HOURS * 12
HOUSEKEEPING_RUN_S = 2.0
AZ_COUNT = 3
# Share of the month in which a failure-only counter (ProbeFailure, a cause, FailoverTriggered, ...)
# has data: an assumption, stated on the page. 2% = ~15 hours with at least one failed probe.
FAILURE_HOURS_SHARE = 0.02
# The metric budget per AZ the page states and tests/infra/test_cost.py enforces: always present are
# Unhealthy (its SampleCount is the liveness), ProbeLatency (its SampleCount the successes) and, with
# the template's default canaries, NatPathUnhealthy; every other name only while something fails.
BUDGET_ALWAYS = 3
BUDGET_POSSIBLE = 14
# Canaries the template configures by default when its evaluation does not pass CANARY_URLS (the
# CanaryAddresses default: two resolver addresses). The capture probes loopback stand-ins, never them.
TEMPLATE_DEFAULT_CANARIES = 2


# --------------------------------------------------------------------------------------- template
def template_facts() -> dict:
    azs = [f"us-east-1{c}" for c in "abc"][:AZ_COUNT]
    root = Stack(INFRA / "template.yaml", {"VpcId": "vpc-0123", "VpcCidr": "10.0.0.0/16",
                                           "PrivateSubnetIds": [f"subnet-0{i}" for i in range(AZ_COUNT)],
                                           "AvailabilityZones": azs})
    child = root.child("Checker1")
    fn = child.resources("AWS::Serverless::Function")["Checker"]["Properties"]
    env = fn["Environment"]["Variables"]

    def alarm_cost_units(props: dict) -> tuple[int, int]:
        metrics = [m for m in props.get("Metrics", []) if "MetricStat" in m] or [props]
        periods = [m["MetricStat"]["Period"] if "MetricStat" in m else props["Period"] for m in metrics]
        high_res = any(int(p) < 60 for p in periods)
        return len(metrics), high_res

    per_az_alarms = {k: alarm_cost_units(v["Properties"]) for k, v in child.resources("AWS::CloudWatch::Alarm").items()}
    global_alarms = {k: alarm_cost_units(v["Properties"]) for k, v in root.resources("AWS::CloudWatch::Alarm").items()}
    # The other nested stacks the defaults deploy (recovery, housekeeping): one set of alarms per stack.
    for logical in root.resources("AWS::Serverless::Application"):
        if not logical.startswith("Checker"):
            global_alarms.update({k: alarm_cost_units(v["Properties"])
                                  for k, v in root.child(logical).resources("AWS::CloudWatch::Alarm").items()})
    resources = root.resources()
    endpoint = "StepFunctionsEndpoint" in resources
    return {
        "memory_mb": int(fn["MemorySize"]), "arch": fn["Architectures"][0], "timeout_s": float(fn["Timeout"]),
        "schedule": fn["Events"]["EveryMinute"]["Properties"]["Schedule"],
        "request_timeout_s": float(env["REQUEST_TIMEOUT"]), "interval_s": float(env["CONNECTIVITY_CHECK_INTERVAL"]),
        "flush_s": float(env["METRICS_FLUSH_INTERVAL"]), "namespace": env["METRICS_NAMESPACE"],
        "retention_days": int(root.params["LogRetentionDays"]),
        "per_az_alarms": per_az_alarms, "global_alarms": global_alarms,
        "dashboards": len(root.resources("AWS::CloudWatch::Dashboard")),
        "endpoint_azs": len(resources["StepFunctionsEndpoint"]["Properties"]["SubnetIds"]) if endpoint else 0,
        "env": {k: str(v) for k, v in env.items() if k not in ("FAILOVER_STATE_MACHINE_ARN", "CANARY_URLS")},
        "canaries": len([u for u in str(env["CANARY_URLS"]).split(",") if u.strip()]) if "CANARY_URLS" in env
        else TEMPLATE_DEFAULT_CANARIES,
    }


# --------------------------------------------------------------------------------------- capture
class _Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on return: connections are refused


def capture(binary: str, env: dict, seconds: float, refuse_one: bool = False, canaries: int = 0) -> dict:
    """Run the checker for `seconds` against local targets (and `canaries` local canaries); count
    metrics and bytes from stdout. `refuse_one`: one target and one canary refuse connections."""
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet) for _ in range(3 + canaries)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    try:
        urls = [f"http://127.0.0.1:{s.server_address[1]}/generate_204" for s in servers]
        urls, canary_urls = urls[:3], urls[3:]
        if refuse_one:
            urls[2] = f"http://127.0.0.1:{_closed_port()}/refused"
            if canary_urls:
                canary_urls[-1] = f"http://127.0.0.1:{_closed_port()}/refused-canary"
        canary_env = {"CANARY_URLS": ",".join(canary_urls)} if canary_urls else {}
        run_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env, **canary_env, "CHECK_URLS": ",".join(urls),
                   "AVAILABILITY_ZONE": "us-east-1a", "SUBNET_ID": "subnet-0cost", "RUST_LOG": "info",
                   "AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO"}
        run_env.pop("FAILOVER_STATE_MACHINE_ARN", None)
        started = time.monotonic()
        proc = subprocess.run([binary, "--duration", f"{seconds:.1f}"], env=run_env, capture_output=True,
                              timeout=seconds + 60)
        elapsed = time.monotonic() - started
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
    if proc.returncode != 0:
        raise RuntimeError(f"{binary} exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-2000:]}")
    combos: dict[tuple, int] = {}
    lines = proc.stdout.decode().splitlines()
    for line in lines:
        doc = json.loads(line)
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            for dims in directive["Dimensions"]:
                key_values = tuple((k, doc[k]) for k in dims)
                for m in directive["Metrics"]:
                    combos[(directive["Namespace"], m["Name"], key_values)] = m.get("StorageResolution", 60)
    return {"seconds": seconds, "elapsed": elapsed, "documents": len(lines), "emf_bytes": len(proc.stdout) + len(lines),  # + newlines
            "log_bytes": len(proc.stderr), "metrics": sorted({(c[1], c[2]) for c in combos}),
            "names": sorted({c[1] for c in combos})}


# --------------------------------------------------------------------------------------- bill
def bill(facts: dict, healthy: dict, failing: dict) -> dict:
    p = PRICES
    window = facts["timeout_s"] - facts["request_timeout_s"] - 1.0
    # Billed: the probing window plus what the measured run took beyond its --duration (start-up, the
    # last round's end, the final flush). Cold starts (init) are rare and left out.
    billed_s = window + max(0.0, healthy["elapsed"] - healthy["seconds"])
    gb = facts["memory_mb"] / 1024
    rate = p[f"lambda_gb_second_{'arm64' if facts['arch'] == 'arm64' else 'x86_64'}"]
    lambda_month = MINUTES * (billed_s * gb * rate + p["lambda_request"])
    floor = MINUTES * 60 * gb * p["lambda_gb_second_arm64"]
    always = healthy["names"]
    possible_only = sorted(set(failing["names"]) - set(always))
    unseen = sorted(set(ALL_HEALTH_NAMES) - set(always) - set(failing["names"]))
    metrics_month = len(always) * p["custom_metric_month"]
    failure_metrics_month = (len(possible_only) + len(unseen)) * p["custom_metric_month"] * FAILURE_HOURS_SHARE
    alarm_price = lambda units: sum(n * (p["alarm_metric_high_res_month"] if hi else p["alarm_metric_standard_month"])  # noqa: E731
                                    for n, hi in units.values())
    alarms_az = alarm_price(facts["per_az_alarms"])
    alarms_global = alarm_price(facts["global_alarms"])
    # Log bytes of one invocation: the capture ran for exactly one probing window.
    per_run_bytes = (healthy["emf_bytes"] + healthy["log_bytes"]) * window / healthy["seconds"]
    gb_month = per_run_bytes * MINUTES / 1e9
    logs_month = gb_month * (p["logs_ingest_gb"] + p["logs_store_gb_month"] * facts["retention_days"] / 30)
    dashboard_share = facts["dashboards"] * p["dashboard_month"] / AZ_COUNT
    per_az = {
        "Lambda compute and requests": lambda_month,
        "custom metrics, always present": metrics_month,
        "custom metrics, only while probes fail": failure_metrics_month,
        "alarms of the AZ": alarms_az,
        "share of the global alarms": alarms_global / AZ_COUNT,
        "logs (EMF + application logs), ingestion and storage": logs_month,
        "share of the dashboard": dashboard_share,
    }
    return {"window": window, "billed_s": billed_s, "lambda_floor": floor, "per_az": per_az,
            "per_az_total": sum(per_az.values()), "always": always, "possible_only": possible_only, "unseen": unseen,
            "per_run_bytes": per_run_bytes, "gb_month": gb_month, "alarms_global": alarms_global,
            "endpoint_month": facts["endpoint_azs"] * HOURS * p["interface_endpoint_az_hour"],
            "endpoint_az_month": HOURS * p["interface_endpoint_az_hour"]}


# Every name the health document can carry (docs/CONTRACTS.md, "EMF").
ALL_HEALTH_NAMES = ["ProbeFailure", "ProbeFailureDns", "ProbeFailureConnectRefused",
                    "ProbeFailureConnectTimeout", "ProbeFailureTls", "ProbeFailureHttpStatus", "ProbeFailureTimeout",
                    "ProbeFailureOther", "FailoverTriggered", "FailoverError", "NatPathProbeFailure", "Unhealthy",
                    "ProbeLatency", "NatPathUnhealthy"]


def usd(x: float) -> str:
    return f"${x:,.2f}"


def render(facts: dict, healthy: dict, failing: dict, per_target: dict, b: dict, binary: str) -> str:
    p = PRICES
    nat_gw_month = HOURS * p["nat_gateway_hour"]
    instance_month = HOURS * p["t4g_nano_hour"]
    watchdog = b["per_az_total"]
    alternat = MINUTES * 60 * 0.25 * p["lambda_gb_second_x86_64"] + MINUTES * p["lambda_request"]
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}"
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    standby_options = [
        ("one standby NAT Gateway per AZ", nat_gw_month, "none"),
        (f"one shared standby per VPC (tag `shared`), {AZ_COUNT} AZs", nat_gw_month / AZ_COUNT,
         f"while failed over, traffic of the other AZs crosses AZs: {usd(p['cross_az_gb_each_way'])}/GB each way"),
        ("none (detect and alarm only; FallbackNatGatewayId empty)", 0.0, "no automatic failover target"),
    ]
    L = []
    a = L.append
    a("# What the watchdog costs (`make cost`)")
    a("")
    a(f"Generated {now} on {machine} at commit {head} by `make cost` (tests/infra/cost.py); do not edit by hand.")
    a("")
    a("Method: the template's defaults are read from infra/template.yaml and infra/checker.yaml "
      f"(evaluated offline with {AZ_COUNT} AZs, tests/infra/template_eval.py); the metrics and log bytes come from "
      f"a real run of the built checker (`{binary}`, CLI mode, the Lambda's settings) for one invocation's probing "
      f"window ({b['window']:.1f} s) against 3 HTTP targets and {facts['canaries']} canaries (`CANARY_URLS`, as many "
      f"as the template configures by default) on 127.0.0.1, counted from its stdout; a second run "
      f"({failing['seconds']:.0f} s) with one target and one canary refusing connections shows the metrics that exist "
      f"only while probes fail. Prices: the table at the end (us-east-1 list prices, transcribed {PRICES_DATE}); free tiers "
      f"ignored; a month is {HOURS} hours.")
    a("")
    a("## Per AZ (one checker), default parameters")
    a("")
    a("| item | from | $/month |")
    a("|---|---|---|")
    src = {
        "Lambda compute and requests": f"{facts['memory_mb']} MB {facts['arch']}, Timeout {facts['timeout_s']:.0f} s, "
                                       f"REQUEST_TIMEOUT {facts['request_timeout_s']} s: probes {b['window']:.1f} s, billed ≈ {b['billed_s']:.1f} s per "
                                       f"invocation (the window + the measured run's {b['billed_s'] - b['window']:.2f} s past it), {facts['schedule']} ({MINUTES:,} per month)",
        "custom metrics, always present": f"{len(b['always'])} metric × dimension combinations in the healthy run: "
                                          + ", ".join(f"`{n}`" for n in b["always"]),
        "custom metrics, only while probes fail": f"{len(b['possible_only']) + len(b['unseen'])} more names, billed only for "
                                                  f"hours with data; assumed {FAILURE_HOURS_SHARE:.0%} of the month",
        "alarms of the AZ": ", ".join(f"{k} ({n} metric{'s' if n > 1 else ''}{', high-res' if hi else ''})"
                                      for k, (n, hi) in facts["per_az_alarms"].items()),
        "share of the global alarms": f"{usd(b['alarms_global'])} / {AZ_COUNT} AZs: "
                                      + ", ".join(f"{k} ({n})" for k, (n, _) in facts["global_alarms"].items()),
        "logs (EMF + application logs), ingestion and storage":
            f"{b['per_run_bytes'] / 1024:.1f} KiB per invocation measured ({healthy['documents']} EMF documents, flush every "
            f"{facts['flush_s']:.0f} s), {b['gb_month']:.3f} GB/month, {facts['retention_days']} days kept",
        "share of the dashboard": f"{facts['dashboards']} dashboard / {AZ_COUNT} AZs",
    }
    for item, cost in b["per_az"].items():
        a(f"| {item} | {src[item]} | {usd(cost)} |")
    a(f"| **checker compute + metrics + alarms + logs + dashboard share** | | **{usd(watchdog)}** |")
    a("")
    a(f"Goal: ≤ $8.00 per AZ-month — {'met' if watchdog <= 8 else 'NOT met'}. The floor of the compute alone "
      f"(128 MB arm64 running 60 s of every minute) is {usd(b['lambda_floor'])}; the overlap of consecutive "
      f"invocations ({b['window'] - 60:.1f} s) costs {usd(b['lambda_floor'] / 60 * (b['window'] - 60))}, and each further second "
      f"of Timeout {usd(b['lambda_floor'] / 60)} (arithmetic of the overlap: infra/checker.yaml, \"Timing\").")
    a("")
    a("If every failure-only metric had data all month (a permanently failing target): "
      f"{usd((len(b['possible_only']) + len(b['unseen'])) * p['custom_metric_month'] * (1 - FAILURE_HOURS_SHARE))} more.")
    a("")
    a("### Metric budget per AZ (enforced by tests/infra/test_cost.py)")
    a("")
    a(f"- always present: **at most {BUDGET_ALWAYS}** metric × dimension combinations (measured: {len(b['always'])})")
    a(f"- possible at all: **at most {BUDGET_POSSIBLE}** (measured in the failing run: {len(failing['metrics'])}; "
      f"not seen in either run: {', '.join(f'`{n}`' for n in b['unseen']) or 'none'})")
    a(f"- with `PER_TARGET_METRICS=true`: {len(per_target['metrics'])} in a healthy run with 3 targets "
      f"(+{len(per_target['metrics']) - len(healthy['metrics'])}, i.e. {usd((len(per_target['metrics']) - len(healthy['metrics'])) * p['custom_metric_month'])} per AZ-month): opt-in")
    a("")
    a("Before (issue 10's estimate of the previous output, not measured here): the health document had two "
      "dimension sets (`[AvailabilityZone]` and `[AvailabilityZone, SubnetId]`) and wrote every count even "
      "when zero, and every target had its own document with two more dimension sets: ~108 metrics for 3 AZs. "
      "`RoundHealthy` is now a log property, not a metric.")
    a("")
    a("## Per VPC")
    a("")
    a("| item | $/month |")
    a("|---|---|")
    a(f"| {AZ_COUNT} checkers (above) | {usd(watchdog * AZ_COUNT)} |")
    a(f"| Step Functions interface endpoint, {facts['endpoint_azs']} AZs × {usd(b['endpoint_az_month'])} (reported apart; "
      f"`CreateStepFunctionsEndpoint=false` when the VPC has one) | {usd(b['endpoint_month'])} |")
    a("| Step Functions executions | transitions are $0.025 per 1,000: cents per incident |")
    hk = HOUSEKEEPING_RUNS_MONTH * (PRICES["sfn_express_request"]
                                    + HOUSEKEEPING_RUN_S * 0.0625 * PRICES["sfn_express_gb_second"])
    a(f"| housekeeping (Express, rate(5 minutes): {HOUSEKEEPING_RUNS_MONTH:,} runs, assumed {HOUSEKEEPING_RUN_S:g} s "
      f"each at 64 MB) | {usd(hk)} |")
    a("")
    a("Metrics that exist only while something is wrong are not in the per-AZ bill: the recovery's `OnGateway`, "
      "`GatewaySeconds`, `AutoFallbackSuspended`, `AutoFallback`, `NatRepairNeeded`, ... are published only while an "
      "AZ is on a gateway after a Failover, the housekeeping's `Paused` only while an AZ is paused; each costs "
      f"{usd(PRICES['custom_metric_month'])} a month per AZ only if it had data every hour.")
    a("")
    a("The endpoint is needed because the checker must reach Step Functions while the NAT path is down. "
      "An interface endpoint has one ENI per subnet it is given; putting it in fewer AZs saves "
      f"{usd(b['endpoint_az_month'])} per AZ but makes the checkers of the other AZs depend on a foreign AZ "
      "at the moment of an incident, so the template keeps one per AZ.")
    a("")
    a("## The standby, made explicit")
    a("")
    a("| standby choice | $/month per AZ | data cost while failed over |")
    a("|---|---|---|")
    for name, cost, data in standby_options:
        a(f"| {name} | {usd(cost)} | {data} |")
    a("")
    a("## The NAT instances themselves (managed NAT layer)")
    a("")
    a("With `PublicSubnetIds` given, the stack runs the NAT instances too (infra/README.md, \"Managed NAT instances\"). "
      "What they cost, from `infra/nat-instance/nat_cost.py` (its own dated price list); the NAT workflows add "
      "state machine transitions (cents) and a few alarms that are not counted in the watchdog's bill above "
      "(the recovery's and the housekeeping's alarms are: the defaults deploy them):")
    a("")
    L.extend(nat_layer_table().rstrip("\n").split("\n"))
    a("")
    a("## Compared with the alternatives (per AZ)")
    a("")
    a(f"A NAT instance (t4g.nano, {usd(instance_month)}/month) with this watchdog, against one NAT Gateway per AZ "
      f"({usd(nat_gw_month)}/month + {usd(p['nat_gateway_gb'])}/GB processed). Internet data transfer out costs the same in both "
      "and is left out.")
    a("")
    a("| setup | fixed $/month | per GB | break-even traffic vs NAT Gateway |")
    a("|---|---|---|---|")
    a(f"| NAT Gateway per AZ | {usd(nat_gw_month)} | {usd(p['nat_gateway_gb'])} | — |")
    for name, cost, _ in standby_options:
        fixed = instance_month + watchdog + cost
        breakeven = max(0.0, (fixed - nat_gw_month) / p["nat_gateway_gb"])
        a(f"| NAT instance + watchdog + {name} | {usd(fixed)} | $0.00 | "
          f"{'cheaper from 0 GB' if breakeven == 0 else f'cheaper above {breakeven:,.0f} GB/month'} |")
    a("")
    a(f"alterNAT's watchdog, as its README describes it: a 256 MB x86_64 Lambda per AZ running ~60 s of every minute = "
      f"{usd(alternat)} per AZ-month of compute alone (its metrics, alarms and logs not counted), against "
      f"{usd(b['per_az']['Lambda compute and requests'])} of compute here.")
    a("")
    a("## Prices used")
    a("")
    a(f"us-east-1 list prices, transcribed from the AWS pricing pages on {PRICES_DATE} (tests/infra/cost.py, PRICES):")
    a("")
    a("| price | USD |")
    a("|---|---|")
    for k, v in PRICES.items():
        a(f"| {k} | {v:g} |")
    a("")
    return "\n".join(L)


def nat_layer_table() -> str:
    """The managed NAT layer's bill, as infra/nat-instance/nat_cost.py computes it (one price list there)."""
    import importlib.util
    path = ROOT / "infra" / "nat-instance" / "nat_cost.py"
    spec = importlib.util.spec_from_file_location("nat_cost", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.table()


def counts(binary: str, seconds: float = 6.0) -> dict:
    facts = template_facts()
    healthy = capture(binary, facts["env"], seconds, canaries=facts["canaries"])
    failing = capture(binary, facts["env"], seconds, refuse_one=True, canaries=facts["canaries"])
    return {"always": len(healthy["metrics"]), "possible": len(failing["metrics"]),
            "healthy_metrics": healthy["metrics"], "failing_metrics": failing["metrics"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--out", default=str(ROOT / "docs" / "COST.md"))
    ap.add_argument("--count-only", action="store_true")
    args = ap.parse_args()
    if args.count_only:
        print(json.dumps(counts(args.binary), default=list))
        return 0
    facts = template_facts()
    window = facts["timeout_s"] - facts["request_timeout_s"] - 1.0
    healthy = capture(args.binary, facts["env"], window, canaries=facts["canaries"])
    failing = capture(args.binary, facts["env"], 15.0, refuse_one=True, canaries=facts["canaries"])
    per_target = capture(args.binary, {**facts["env"], "PER_TARGET_METRICS": "true"}, 10.0, canaries=facts["canaries"])
    b = bill(facts, healthy, failing)
    text = render(facts, healthy, failing, per_target, b, args.binary)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
