"""The closed loop's bookkeeping (tests/lab/closedloop.py) and its egress probe's DNS codec
(tests/lab/egressprobe.py): pure functions, no root, no moto."""

from __future__ import annotations

import datetime as dt
import json
import struct

from tests.lab.closedloop import first_over, follower_applied, replace_route_done, split
from tests.lab.egressprobe import dns_query, egress_address, first_a_record

GW, NAT = "198.18.102.2", "198.18.100.2"


def test_the_first_probe_over_the_gateway_is_the_first_to_complete_among_those_started_after_the_fault():
    probes = [{"t": 9.0, "t_done": 9.01, "ok": True, "egress": GW},      # before the fault
              {"t": 10.1, "t_done": 10.6, "ok": False, "egress": None},
              {"t": 10.2, "t_done": 10.21, "ok": True, "egress": NAT},   # over the NAT host: not egress back
              {"t": 12.0, "t_done": 12.30, "ok": True, "egress": GW},
              {"t": 12.05, "t_done": 12.08, "ok": True, "egress": GW}]   # started later, done first
    assert first_over(probes, 10.0, GW)["t_done"] == 12.08
    assert first_over(probes, 13.0, GW) is None


def test_the_follower_event_that_counts_is_the_default_route_moved_to_the_gateway_after_the_fault():
    ev = [{"event": "applied", "dest": "default", "target": "nat-1", "t_applied": 5.0},
          {"event": "applied", "dest": "198.19.3.1/32", "target": "eni-1", "t_applied": 11.0},
          {"event": "applied", "dest": "default", "target": "nat-1", "t_applied": 12.0}]
    assert follower_applied(ev, "default", "nat-1", 10.0)["t_applied"] == 12.0
    assert follower_applied(ev, "default", "eni-1", 10.0) is None


def _ts(s: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(s, tz=dt.timezone.utc)


def test_the_replace_route_of_the_followed_table_is_found_through_its_scheduled_parameters():
    def scheduled(i, rtb):
        return {"id": i, "type": "TaskScheduled", "timestamp": _ts(100 + i),
                "taskScheduledEventDetails": {"resource": "replaceRoute",
                                              "parameters": json.dumps({"RouteTableId": rtb, "NatGatewayId": "nat-1"})}}
    history = [scheduled(1, "rtb-other"), scheduled(2, "rtb-mine"),
               {"id": 3, "previousEventId": 1, "type": "TaskStarted", "timestamp": _ts(103)},
               {"id": 4, "previousEventId": 2, "type": "TaskStarted", "timestamp": _ts(104)},
               {"id": 5, "previousEventId": 3, "type": "TaskSucceeded", "timestamp": _ts(105),
                "taskSucceededEventDetails": {"resource": "replaceRoute"}},
               {"id": 6, "previousEventId": 4, "type": "TaskSucceeded", "timestamp": _ts(106),
                "taskSucceededEventDetails": {"resource": "replaceRoute"}}]
    assert replace_route_done(history, "rtb-mine") == 106
    assert replace_route_done(history, "rtb-absent") is None


def test_the_split_adds_up_to_the_downtime_and_leaves_out_what_is_missing():
    s = split(t_inj=10.0, exec_start=11.7, replaced=12.0, applied=12.03, first_ok=12.1)
    parts = s["detection_s"] + s["failover_s"] + s["follower_lag_s"] + s["first_probe_s"]
    assert abs(parts - s["egress_downtime_s"]) < 1e-9 and abs(s["egress_downtime_s"] - 2.1) < 1e-9
    missing = split(t_inj=10.0, exec_start=None, replaced=None, applied=None, first_ok=None)
    assert set(missing.values()) == {None}


def test_the_probe_reads_the_a_record_of_its_own_query_and_nothing_else():
    q = dns_query("bravo.nwd.test", 0x1234)
    assert q[:2] == b"\x12\x34" and b"\x05bravo\x03nwd\x04test\x00" in q
    answer = (struct.pack(">HHHHHH", 0x1234, 0x8180, 1, 2, 0, 0) + q[12:]
              + b"\xc0\x0c" + struct.pack(">HHIH", 5, 1, 0, 2) + b"\xc0\x0c"           # a CNAME first
              + b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 0, 4) + bytes([198, 19, 1, 12]))
    assert first_a_record(answer, 0x1234) == "198.19.1.12"
    assert first_a_record(answer, 0x9999) is None  # someone else's answer
    nxdomain = struct.pack(">HHHHHH", 0x1234, 0x8183, 1, 0, 0, 0) + q[12:]
    assert first_a_record(nxdomain, 0x1234) is None


def test_the_egress_address_is_the_trace_line_the_target_wrote():
    assert egress_address(b"h=bravo.nwd.test\nip=198.18.102.2\nts=1.0\n") == GW
    assert egress_address(b"nothing here") is None


# ------------------------------------------------------------------------ the report's closed-loop part

def _rec(mode, down, config="default", **kw):
    parts = {} if down is None else {"detection_s": down - 0.4, "failover_s": 0.3, "follower_lag_s": 0.05,
                                     "first_probe_s": 0.05}
    return {"kind": "closed-loop", "mode": mode, "config": config, "trial": kw.pop("trial", 0),
            "egress_downtime_s": down, "executions": 1, "kernel_moved": down is not None, "notes": [],
            **parts, **kw}


def _pct(xs, p):
    import math
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def test_the_goal_rows_judge_median_and_p99_of_the_default_configuration_without_flapping():
    from tests.bench.loop_report import goal_rows
    fast = [_rec("loop_blackhole", 1.5, trial=i) for i in range(9)] + [_rec("loop_blackhole", 2.9, trial=9)]
    slow_anchor = [_rec("loop_blackhole", 30.0, config="python")]
    flapping = [_rec("loop_flapping", 9.0)]
    rows = goal_rows(fast + slow_anchor + flapping, _pct)
    assert rows[0].endswith("| yes |") and "1.50 s (n=10)" in rows[0]
    assert rows[1].endswith("| yes |") and "2.90 s" in rows[1]
    late = goal_rows(fast + [_rec("loop_blackhole", 3.2, trial=10)], _pct)
    assert late[1].endswith("| **no** |")  # p99 over 3 s
    missed = goal_rows(fast + [_rec("loop_uplink_down", None)], _pct)
    assert missed[0].endswith("| **no** |") and "1 without egress back" in missed[0]


def test_the_section_puts_the_anchors_beside_ours_per_mode_and_its_parts_add_up():
    from tests.bench.loop_report import section
    recs = [_rec("loop_blackhole", 2.5, trial=i) for i in range(3)] + [_rec("loop_blackhole", 9.0, config="alternat")]
    text = "\n".join(section(recs, ["default", "alternat", "python"], lambda c: c, _pct))
    row = next(l for l in text.splitlines() if l.startswith("| hard blackhole") and "(n=3)" in l)
    assert row == "| hard blackhole (FORWARD DROP) | 2.50 / 2.50 (n=3) | 9.00 / 9.00 (n=1) | **no** |"
    detail = next(l for l in text.splitlines() if l.startswith("| hard blackhole (FORWARD DROP) | default |"))
    assert "| 2.10 / 2.10 | 0.30 / 0.30 | 0.05 / 0.05 | 0.05 / 0.05 | 1 | 3/3 |" in detail


def test_refreshing_the_included_pages_keeps_the_rest_of_benchmarks_md(tmp_path, monkeypatch):
    from tests.bench import report
    page = tmp_path / "BENCHMARKS.md"
    page.write_text("# B\n\n## Results\n\nkeep me\n\n## Reading the numbers\n\n- read\n\n## Old include\n\nstale\n\n"
                    "## Harness notes\n\nnotes stay\n")
    monkeypatch.setattr(report, "other_measurements", lambda skip=(): ["## Fresh include", "", "new", ""])
    text = report.refresh_other_measurements(page).read_text()
    assert "stale" not in text and "## Fresh include\n\nnew\n\n## Harness notes\n\nnotes stay" in text
    assert text.startswith("# B\n\n## Results\n\nkeep me\n\n## Reading the numbers\n\n- read\n\n")


def test_the_recovery_goals_hold_against_hold_plus_60_s_and_one_automatic_fallback():
    from tests.bench.loop_report import recovery_goal_rows
    knobs = {"FallbackHoldSeconds": 20}
    ok = recovery_goal_rows([{"kind": "closed-loop-recovery", "scenario": "repair", "knobs": knobs, "back_on_nat_s": 26.0},
                             {"kind": "closed-loop-recovery", "scenario": "flapping", "knobs": knobs, "flap_min": 10,
                              "flap_period_s": 30, "auto_fallbacks": 1, "default_route_moves": 3}])
    assert ok[0].endswith("| 26.0 s | yes |") and ok[1].endswith("| yes |")
    bad = recovery_goal_rows([{"kind": "closed-loop-recovery", "scenario": "repair", "knobs": knobs, "back_on_nat_s": None},
                              {"kind": "closed-loop-recovery", "scenario": "flapping", "knobs": knobs, "flap_min": 10,
                               "auto_fallbacks": 2}])
    assert bad[0].endswith("| never | **no** |") and bad[1].endswith("| **no** |")


def test_the_emf_replayer_sends_whole_documents_once_and_keeps_a_partial_line_for_later(tmp_path):
    from tests.lab.loop_recovery import EmfReplayer

    class CloudWatch:
        def __init__(self):
            self.calls = []

        def put_metric_data(self, **kw):
            self.calls.append(kw)

    def doc(v):
        return {"_aws": {"Timestamp": 1795448738000, "CloudWatchMetrics": [
            {"Namespace": "Ns", "Dimensions": [["AvailabilityZone"]],
             "Metrics": [{"Name": "NatPathUnhealthy", "Unit": "None"}]}]},
            "AvailabilityZone": "us-east-1a", "NatPathUnhealthy": v}
    path = tmp_path / "checker.emf"
    whole, partial = json.dumps(doc([0, 0])), json.dumps(doc([1]))
    path.write_text(whole + "\n" + partial[:20])
    cw = CloudWatch()
    r = EmfReplayer(path, cw)
    r.pump()
    assert r.nat_path_values() == [0, 0] and len(cw.calls) == 1
    assert cw.calls[0]["MetricData"][0]["Values"] == [0.0, 0.0]
    with open(path, "a") as f:
        f.write(partial[20:] + "\n")
    r.pump()
    r.pump()
    assert r.nat_path_values() == [0, 0, 1] and len(cw.calls) == 2


def test_an_experiment_out_dir_never_overwrites_the_published_page(tmp_path):
    from tests.bench.detection import DEFAULT_OUT, report_path
    assert report_path(DEFAULT_OUT.resolve(), None) is None  # make bench: BENCHMARKS.md
    assert report_path(tmp_path, None) == tmp_path / "report.md"  # BENCH_OUT=elsewhere, no --md
    assert report_path(tmp_path, "docs/bench/closed-loop.md").name == "closed-loop.md"  # --md wins
