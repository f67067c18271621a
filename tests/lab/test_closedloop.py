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
