"""The bookkeeping of the closed loop's recovery scenarios (tests/lab/loop_recovery.py: gray, soak) and
the lab's rebuilt-NAT-host rule (faults.Faults.forget): pure, no root, no moto."""

from __future__ import annotations

import pytest

from tests.lab.faults import Faults
from tests.lab.loop_recovery import GRAY_REPAIR_AFTER_S, KNOBS, first_after, gray_problems, knobs_for, soak_problems
from tests.lab.shell import LabError


def _gray(**over) -> dict:
    rec = {"failover_s": 1.9, "set_health_s": 16.0, "new_instance_s": 16.3, "back_on_nat_s": 41.0, "repairs": 1,
           "final_target": "eni-stable", "stable_eni": "eni-stable"}
    return {**rec, **over}


def test_only_the_gray_scenario_gets_a_repair_knob_short_enough_to_fire():
    assert knobs_for("gray")["RepairAfterSeconds"] == GRAY_REPAIR_AFTER_S
    for kind in ("repair", "flapping", "soak"):
        assert knobs_for(kind) == KNOBS
    assert KNOBS["RepairAfterSeconds"] > 3600  # the blackhole of `repair` is healed, never repaired


def test_the_first_recorded_call_after_the_fault_with_matching_arguments_is_the_one_measured():
    calls = [{"call": "SetInstanceHealth", "args": {"healthStatus": "Unhealthy"}, "at": 5.0},   # before the fault
             {"call": "ReplaceRoute", "args": {}, "at": 11.0},
             {"call": "SetInstanceHealth", "args": {"healthStatus": "Healthy"}, "at": 12.0},
             {"call": "SetInstanceHealth", "args": {"healthStatus": "Unhealthy"}, "at": 13.0},
             {"call": "SetInstanceHealth", "args": {"healthStatus": "Unhealthy"}, "at": 14.0}]
    assert first_after(calls, "SetInstanceHealth", 10.0, healthStatus="Unhealthy")["at"] == 13.0
    assert first_after(calls, "SetInstanceHealth", 10.0)["at"] == 12.0
    assert first_after(calls, "SetInstanceHealth", 15.0) is None


def test_a_gray_run_that_closed_the_loop_once_has_no_problem():
    assert gray_problems(_gray()) == []


@pytest.mark.parametrize("over, expected", [
    ({"repairs": 2}, "2 repairs"),
    ({"repairs": 0, "set_health_s": None, "new_instance_s": None}, "no SetInstanceHealth"),
    ({"back_on_nat_s": None}, "never back on the NAT instance"),
    ({"final_target": "nat-0123"}, "not the stable ENI eni-stable"),
    ({"failover_s": None}, "no failover"),
    ({"new_instance_s": 50.0}, "out of order"),
])
def test_a_gray_run_names_what_it_missed(over, expected):
    problems = gray_problems(_gray(**over))
    assert any(expected in p for p in problems), problems


def test_a_soak_fails_on_any_failover_or_automatic_fallback():
    assert soak_problems({"failovers": 0, "auto_fallbacks": 0}) == []
    assert soak_problems({"failovers": 1, "auto_fallbacks": 0}) == ["1 Failover execution(s) (goal 0)"]
    assert soak_problems({"failovers": 0, "auto_fallbacks": 2}) == ["2 automatic fallback(s) (goal 0)"]
    assert len(soak_problems({})) == 2  # nothing counted is not a pass


def _faults() -> Faults:
    return Faults("ns", "lan", "wan", "198.18.1.1", "198.18.2.2", 1, reconfigure_nat=lambda: None)


def test_a_rebuilt_nat_host_takes_a_removed_masquerade_with_it_but_no_other_fault():
    f = _faults()
    f.active = "masq_removed"
    f.forget()
    assert f.active is None
    f.active = "blackhole"  # lives outside the NAT's configuration: a rebuild does not undo it
    with pytest.raises(LabError, match="blackhole"):
        f.forget()
    assert f.active == "blackhole"


def _rec(scenario: str, **over) -> dict:
    knobs = {**KNOBS, "RepairAfterSeconds": GRAY_REPAIR_AFTER_S}
    base = {"kind": "closed-loop-recovery", "scenario": scenario, "knobs": knobs, "problems": []}
    if scenario == "gray":
        base.update(_gray())
    return {**base, **over}


def test_the_gray_goal_holds_only_when_every_run_repaired_once_and_ended_on_the_stable_eni():
    from tests.bench.loop_report import recovery_goal_rows
    ok = recovery_goal_rows([_rec("gray"), _rec("gray", back_on_nat_s=44.5)])
    assert ok == ["| closed loop: gray failure (MASQUERADE removed for good) replaced and back on a NAT instance with "
                  "no human step | 2/2 runs: 1 repair, back on the stable ENI 41.0 s, 44.5 s after the fault | yes |"]
    twice = recovery_goal_rows([_rec("gray"), _rec("gray", repairs=2, problems=["2 repairs"])])
    assert twice[0].endswith("| 1/2 runs: 1 repair, back on the stable ENI 41.0 s, 41.0 s after the fault | **no** |")
    stuck = recovery_goal_rows([_rec("gray", back_on_nat_s=None, final_target="nat-1", problems=["never back"])])
    assert "never after the fault | **no** |" in stuck[0]


def test_the_soak_goal_is_zero_failovers_and_zero_fallbacks():
    from tests.bench.loop_report import recovery_goal_rows
    quiet = recovery_goal_rows([_rec("soak", soak_min=5, failovers=0, auto_fallbacks=0, soak_dns="vpc")])
    assert quiet == ["| closed loop: 0 false failovers and 0 false fallbacks in the 5 % and 20 % loss soaks (5 min each; "
                     "DNS as a VPC resolver: not through the NAT) "
                     "| 0 Failover(s), 0 automatic fallback(s) | yes |"]
    noisy = recovery_goal_rows([_rec("soak", soak_min=5, failovers=1, auto_fallbacks=0)])
    assert noisy[0].endswith("| 1 Failover(s), 0 automatic fallback(s) | **no** |")


def test_the_gray_table_gives_each_step_after_the_fault_and_names_a_missed_expectation():
    from tests.bench.loop_report import recovery_section
    text = "\n".join(recovery_section([_rec("gray"), _rec("gray", repairs=2, problems=["2 repairs, expected exactly 1"]),
                                       _rec("soak", soak_min=5, failovers=0, auto_fallbacks=0)]))
    rows = [l for l in text.splitlines() if l.startswith("| 1 |") or l.startswith("| 2 |")]
    assert rows == ["| 1 | 1.9 | 16.0 | 16.3 | 41.0 | 1 | stable ENI | yes |",
                    "| 2 | 1.9 | 16.0 | 16.3 | 41.0 | 2 | stable ENI | **no**: 2 repairs, expected exactly 1 |"]
    assert f"`RepairAfterSeconds` {GRAY_REPAIR_AFTER_S} s" in text
    assert any(l.startswith("| soak | 5 %, then 20 % random loss") for l in text.splitlines())


def test_the_section_says_which_checker_build_ran_which_scenario():
    from tests.bench.loop_report import builds
    rs = [_rec("repair", binary_sha256="aaa"), _rec("flapping", binary_sha256="aaa"), _rec("gray", binary_sha256="bbb"),
          _rec("repair", binary_sha256="aaa")]
    assert builds(rs) == "aaa (repair, flapping), bbb (gray)"
    assert builds(rs[:2]) == "aaa"


def test_a_soak_says_where_its_dns_went_and_an_older_record_ran_beyond_the_nat():
    from tests.bench.loop_report import recovery_goal_rows
    old = recovery_goal_rows([_rec("soak", soak_min=5, failovers=2, auto_fallbacks=0)])
    assert "DNS beyond the NAT: lossy too) | 2 Failover(s)" in old[0] and old[0].endswith("| **no** |")
