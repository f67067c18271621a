"""The lab reads the checker's settings from the binary (`--print-config`, docs/CONTRACTS.md), never
from a copy of the Rust defaults. These tests run the reader against small fake executables that speak
(or break) that contract; the values in them are the fakes' own, chosen to differ from any default."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.lab.checker import CheckerConfigError, Timing, config_label, print_config

# What a fake checker reports with nothing set. Every variable the contract names would be here; the
# reader needs only the timing ones, plus it must tolerate the rest (strings and nulls).
FAKE_SETTINGS = {
    "CHECK_URLS": "http://a.example/,http://b.example/",
    "CONNECTIVITY_CHECK_INTERVAL": "0.7",
    "REQUEST_TIMEOUT": "1.3",
    "UNHEALTHY_THRESHOLD": "4",
    "HEALTHY_THRESHOLD": "2",
    "DEGRADED_WINDOW": "20",
    "DEGRADED_THRESHOLD": "5",
    "FAILOVER_STATE_MACHINE_ARN": None,
}


def fake(tmp_path: Path, body: str) -> str:
    exe = tmp_path / "fake-checker"
    exe.write_text("#!/usr/bin/env python3\nimport json, os, sys\n" + body)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(exe)


def contract_fake(tmp_path: Path) -> str:
    """Prints FAKE_SETTINGS with the environment's values applied, the derived threshold computed
    (window 0 switches the windowed rule off: null), and refuses anything but --print-config."""
    return fake(tmp_path, f"""
if sys.argv[1:] != ["--print-config"]:
    print("fake: only --print-config", file=sys.stderr); sys.exit(2)
s = {FAKE_SETTINGS!r}
for k in s:
    if k in os.environ:
        s[k] = os.environ[k]
if "DEGRADED_WINDOW" in os.environ and "DEGRADED_THRESHOLD" not in os.environ:
    s["DEGRADED_THRESHOLD"] = None if s["DEGRADED_WINDOW"] == "0" else str(int(s["DEGRADED_WINDOW"]) // 4)
if "LEAK" in os.environ:
    s["LEAK"] = os.environ["LEAK"]
print(json.dumps(s))
""")


def test_defaults_are_read_from_the_binary(tmp_path):
    t = Timing.from_settings(print_config(contract_fake(tmp_path)))
    assert (t.interval, t.timeout, t.unhealthy, t.healthy, t.window, t.degraded) == (0.7, 1.3, 4, 2, 20, 5)
    assert t.detect_rounds == 20  # the window is longer than the consecutive threshold
    assert t.detect_cap == pytest.approx(20 * 0.7 + 1.3 + 0.7 + 10)
    assert t.recover_cap == pytest.approx(2 * 0.7 + 1.3 + 0.7 + 10)
    assert config_label("default", t) == "ours (defaults: 0.7 s interval, 1.3 s timeout, 4 down / 2 up, or 5 bad of 20)"


def test_a_configuration_s_overrides_are_applied_by_the_binary(tmp_path):
    t = Timing.from_settings(print_config(contract_fake(tmp_path), {"DEGRADED_WINDOW": "0", "REQUEST_TIMEOUT": "5"}))
    assert (t.timeout, t.window, t.degraded) == (5.0, 0, None)
    assert t.detect_rounds == 4  # windowed rule off: the consecutive threshold alone


def test_the_caller_s_environment_does_not_reach_the_binary(tmp_path, monkeypatch):
    monkeypatch.setenv("LEAK", "1")
    monkeypatch.setenv("REQUEST_TIMEOUT", "99")
    settings = print_config(contract_fake(tmp_path))
    assert "LEAK" not in settings and settings["REQUEST_TIMEOUT"] == "1.3"


def test_a_binary_without_the_flag_fails_with_a_message_saying_so(tmp_path):
    exe = fake(tmp_path, 'print("error: unknown argument --print-config", file=sys.stderr); sys.exit(2)\n')
    with pytest.raises(CheckerConfigError) as e:
        print_config(exe)
    msg = str(e.value)
    assert "--print-config exited with 2" in msg and "unknown argument --print-config" in msg
    assert "the lab reads the checker's defaults from that flag" in msg


def test_a_binary_that_ignores_the_flag_and_runs_is_stopped_with_a_message(tmp_path):
    exe = fake(tmp_path, "import time; time.sleep(30)\n")
    with pytest.raises(CheckerConfigError, match="has no --print-config"):
        print_config(exe, timeout=1.0)


@pytest.mark.parametrize("out, needle", [
    ("not json", "did not print one JSON object"),
    ("[1, 2]", "expected an object of strings or null"),
    ('{"REQUEST_TIMEOUT": 0.8}', "expected an object of strings or null"),
])
def test_output_outside_the_contract_is_a_clear_error(tmp_path, out, needle):
    with pytest.raises(CheckerConfigError, match=needle):
        print_config(fake(tmp_path, f"print({out!r})\n"))


def test_a_missing_or_malformed_timing_variable_is_named(tmp_path):
    missing = {k: v for k, v in FAKE_SETTINGS.items() if k != "HEALTHY_THRESHOLD"}
    with pytest.raises(CheckerConfigError, match="no HEALTHY_THRESHOLD"):
        Timing.from_settings(missing)
    with pytest.raises(CheckerConfigError, match="REQUEST_TIMEOUT='fast' is not a number"):
        Timing.from_settings({**FAKE_SETTINGS, "REQUEST_TIMEOUT": "fast"})
