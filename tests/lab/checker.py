"""Running the connectivity-checker inside the lab's private namespace, and reading what it says.

The checker gets exactly the environment a deployment gives it (docs/CONTRACTS.md) and nothing of the
caller's: CHECK_URLS, EXTRA_CA_CERTS, FAILOVER_STATE_MACHINE_ARN, AVAILABILITY_ZONE, SUBNET_ID, the
standard AWS variables pointing at the endpoint link, JSON logs at debug level, plus the timing
variables of the configuration under test (none for our default). It runs under /usr/bin/time for
its peak RSS and CPU seconds.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .netlab import TARGETS, Lab
from .procs import Proc
from .shell import LabError

if TYPE_CHECKING:
    from .rig import Rig

AZ = "us-east-1a"

# name -> (label, timing variables). The anchors as their projects publish them: neither has a
# windowed rule, so theirs is switched off (DEGRADED_WINDOW=0) to emulate them faithfully. Our own
# defaults are never written here: the checker binary states them (--print-config, see Timing).
CONFIGS: dict[str, tuple[str, dict[str, str]]] = {
    "default": ("ours (defaults)", {}),
    "alternat": ("alterNAT-like (5 s interval, 5 s timeout, fail on 1 bad round)",
                 {"CONNECTIVITY_CHECK_INTERVAL": "5", "REQUEST_TIMEOUT": "5", "UNHEALTHY_THRESHOLD": "1",
                  "DEGRADED_WINDOW": "0"}),
    "python": ("original Python checker (10 s interval, 8 s timeout, threshold 3)",
               {"CONNECTIVITY_CHECK_INTERVAL": "10", "REQUEST_TIMEOUT": "8", "UNHEALTHY_THRESHOLD": "3",
                "DEGRADED_WINDOW": "0"}),
}
DEFAULT_CONFIGS = ",".join(CONFIGS)  # what `make bench` compares unless BENCH_CONFIGS says otherwise


class CheckerConfigError(LabError):
    pass


def print_config(binary: str, overrides: dict[str, str] | None = None, timeout: float = 10.0) -> dict[str, str | None]:
    """The checker's effective settings as the binary itself states them: `BINARY --print-config`
    (docs/CONTRACTS.md: one JSON object, every variable of the settings table, values as strings,
    null when unset and without default) with only `overrides` (and PATH) in its environment."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", **(overrides or {})}
    try:
        p = subprocess.run([binary, "--print-config"], env=env, capture_output=True, text=True, timeout=timeout)
    except OSError as e:
        raise CheckerConfigError(f"cannot run {binary} --print-config: {e}") from e
    except subprocess.TimeoutExpired as e:
        raise CheckerConfigError(f"{binary} --print-config did not answer within {timeout:g} s: this checker "
                                 "has no --print-config (the lab reads the checker's defaults from it); "
                                 "build one that has it") from e
    first_err = (p.stderr.strip().splitlines() or [""])[0]
    if p.returncode != 0:
        raise CheckerConfigError(f"{binary} --print-config exited with {p.returncode} ({first_err or 'no message'}): "
                                 "the lab reads the checker's defaults from that flag; a checker without it "
                                 "cannot run in the lab (rebuild it: cargo build -p connectivity-checker)")
    try:
        doc = json.loads(p.stdout)
    except ValueError as e:
        raise CheckerConfigError(f"{binary} --print-config did not print one JSON object: {p.stdout[:200]!r}") from e
    if not isinstance(doc, dict) or not all(v is None or isinstance(v, str) for v in doc.values()):
        raise CheckerConfigError(f"{binary} --print-config: expected an object of strings or null, got {p.stdout[:200]!r}")
    return doc


@dataclass(frozen=True)
class Timing:
    """The timing settings of one checker configuration, as the binary computes them. Two rules turn
    the verdict unhealthy: UNHEALTHY_THRESHOLD bad rounds in a row, or DEGRADED_THRESHOLD bad rounds
    among the last DEGRADED_WINDOW (0 = off), which catches flapping that never fails rounds in a row."""
    interval: float  # CONNECTIVITY_CHECK_INTERVAL
    timeout: float  # REQUEST_TIMEOUT
    unhealthy: int  # UNHEALTHY_THRESHOLD
    healthy: int  # HEALTHY_THRESHOLD
    window: int  # DEGRADED_WINDOW
    degraded: int | None  # DEGRADED_THRESHOLD (None when the windowed rule is off)

    VARS = {"interval": "CONNECTIVITY_CHECK_INTERVAL", "timeout": "REQUEST_TIMEOUT",
            "unhealthy": "UNHEALTHY_THRESHOLD", "healthy": "HEALTHY_THRESHOLD", "window": "DEGRADED_WINDOW",
            "degraded": "DEGRADED_THRESHOLD"}

    @classmethod
    def from_settings(cls, settings: dict[str, str | None], source: str = "--print-config") -> "Timing":
        vals: dict[str, float | int | None] = {}
        for attr, var in cls.VARS.items():
            if var not in settings:
                raise CheckerConfigError(f"{source}: no {var} in its output (keys: {', '.join(sorted(settings))})")
            raw = settings[var]
            if raw is None and attr == "degraded":
                vals[attr] = None
                continue
            try:
                vals[attr] = float(raw) if attr in ("interval", "timeout") else int(raw)
            except (TypeError, ValueError):
                raise CheckerConfigError(f"{source}: {var}={raw!r} is not a number") from None
        return cls(**vals)

    def as_env(self) -> dict[str, str]:
        return {var: (None if getattr(self, a) is None else f"{getattr(self, a):g}") for a, var in self.VARS.items()}

    @property
    def detect_rounds(self) -> int:
        """Rounds the slower of the two rules may need: the consecutive threshold, or the whole window
        when the windowed rule is on (its last bad round may be the window's last)."""
        return max(self.unhealthy, self.window if self.window > 0 else 0)

    @property
    def detect_cap(self) -> float:
        """How long an outage may take to be detected before the trial calls it missed: the worst case
        (a round just started, detect_rounds rounds, one timeout) plus a generous margin of 10 s."""
        return self.detect_rounds * self.interval + self.timeout + self.interval + 10

    @property
    def recover_cap(self) -> float:
        return self.healthy * self.interval + self.timeout + self.interval + 10

    def describe(self) -> str:
        rules = f"{self.unhealthy} down / {self.healthy} up"
        if self.window > 0 and self.degraded:
            rules += f", or {self.degraded} bad of {self.window}"
        return f"{self.interval:g} s interval, {self.timeout:g} s timeout, {rules}"


@functools.lru_cache(maxsize=None)
def _timing(binary: str, overrides: tuple[tuple[str, str], ...]) -> Timing:
    return Timing.from_settings(print_config(binary, dict(overrides)), source=f"{binary} --print-config")


def timing(binary: str, config: str) -> Timing:
    """The effective timing of configuration `config` (its overrides applied by the binary itself)."""
    return _timing(binary, tuple(sorted(CONFIGS[config][1].items())))


def config_label(config: str, t: Timing | None) -> str:
    """A configuration's label; ours spells out the defaults the binary reported."""
    label = CONFIGS[config][0]
    if config == "default" and t is not None:
        return f"ours (defaults: {t.describe()})"
    return label


_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)$")


def parse_ts(s: str) -> float:
    """RFC 3339 (any number of fraction digits) to epoch seconds."""
    m = _TS.match(s.strip())
    if not m:
        raise ValueError(f"not an RFC 3339 timestamp: {s!r}")
    base, frac, tz = m.groups()
    tz = "+00:00" if tz == "Z" else tz
    t = dt.datetime.fromisoformat(base + tz).timestamp()
    return t + (float("0." + frac) if frac else 0.0)


@dataclass
class LogState:
    """What the checker's stderr said so far (parsed incrementally)."""
    events: list[dict] = field(default_factory=list)
    junk: list[str] = field(default_factory=list)  # lines that are not JSON objects
    _pos: int = 0
    _partial: str = ""

    def feed(self, path: Path) -> list[dict]:
        new: list[dict] = []
        try:
            with open(path, "rb") as f:
                f.seek(self._pos)
                chunk = f.read()
                self._pos += len(chunk)
        except FileNotFoundError:
            return new
        text = self._partial + chunk.decode("utf-8", "replace")
        lines = text.split("\n")
        self._partial = lines.pop()
        for line in lines:
            if not line.strip():
                continue
            try:
                ev = json.loads(line)
                if not isinstance(ev, dict):
                    raise ValueError
            except ValueError:
                self.junk.append(line)
                continue
            if isinstance(ev.get("fields"), dict):  # tolerate non-flattened tracing JSON
                ev = {**ev["fields"], **{k: v for k, v in ev.items() if k != "fields"}}
            try:
                ev["_t"] = parse_ts(ev["timestamp"])
            except (KeyError, ValueError, TypeError):
                ev["_t"] = None
            self.events.append(ev)
            new.append(ev)
        return new

    def of(self, name: str) -> list[dict]:
        return [e for e in self.events if e.get("event") == name]

    def verdicts(self) -> list[dict]:
        return self.of("verdict_changed")


@dataclass
class Checker:
    rig: "Rig"  # tests.lab.rig.Rig: the lab it runs in and the emulated AWS it talks to
    name: str
    config: str
    binary: str
    state_machine_arn: str
    subnet_id: str
    log_dir: Path
    duration: float
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: Proc | None = None
    log: LogState = field(default_factory=LogState)
    started: float = 0.0
    exit_code: int | None = None

    @property
    def lab(self) -> Lab:
        return self.rig.lab

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def stdout_path(self) -> Path:
        return self.log_dir / f"{self.name}.emf"

    @property
    def time_path(self) -> Path:
        return self.log_dir / f"{self.name}.time"

    def env(self) -> dict[str, str]:
        moto = self.rig.moto.env()
        e = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.lab.state_dir),  # no ~/.aws of the caller
            "CHECK_URLS": ",".join(t.url for t in TARGETS),
            "EXTRA_CA_CERTS": str(self.lab.ca_pem),
            "FAILOVER_STATE_MACHINE_ARN": self.state_machine_arn,
            "AVAILABILITY_ZONE": AZ,
            "SUBNET_ID": self.subnet_id,
            "AWS_ENDPOINT_URL": self.lab.endpoint_url,
            "AWS_REGION": moto["AWS_REGION"],
            "AWS_ACCESS_KEY_ID": moto["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": moto["AWS_SECRET_ACCESS_KEY"],
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
            "RUST_LOG": "debug",
        }
        e.update(CONFIGS[self.config][1])
        e.update(self.extra_env)
        return e

    def start(self) -> "Checker":
        timing(self.binary, self.config)  # a checker without --print-config stops here, clearly
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for p in (self.stderr_path, self.stdout_path, self.time_path):
            p.unlink(missing_ok=True)
        cmd = self.lab.exec_in(self.lab.priv, "/usr/bin/time", "-f", "%e %M %U %S", "-o", str(self.time_path),
                               self.binary, "--duration", f"{self.duration:g}")
        with open(self.stdout_path, "wb") as out:
            self.started = time.time()
            self.proc = self.lab.procs.spawn(f"checker-{self.name}", cmd, env=self.env(), log=self.stderr_path, stdout=out)
        return self

    def poll(self) -> list[dict]:
        return self.log.feed(self.stderr_path)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGINT, as an operator's Ctrl-C (/usr/bin/time ignores it and waits for the checker)."""
        if self.proc is None:
            return None
        if self.alive():
            self.exit_code = self.lab.stop_proc(self.proc, signal.SIGINT, timeout=timeout)
        else:
            self.exit_code = self.proc.popen.returncode
        self.poll()
        return self.exit_code

    def resources(self) -> dict[str, float] | None:
        """/usr/bin/time: wall seconds, peak RSS (KiB), user and system CPU seconds."""
        try:
            lines = [l for l in self.time_path.read_text().splitlines() if l.strip()]
            wall, rss, user, sys_ = lines[-1].split()
            return {"wall_s": float(wall), "maxrss_kb": int(rss), "cpu_s": float(user) + float(sys_)}
        except (OSError, ValueError, IndexError):
            return None

    def emf_problems(self) -> list[str]:
        """stdout must hold EMF documents only, one per line, `_aws` at the root."""
        problems = []
        try:
            lines = self.stdout_path.read_text().splitlines()
        except OSError as e:
            return [f"stdout unreadable: {e}"]
        for i, line in enumerate(lines, 1):
            try:
                doc = json.loads(line)
            except ValueError:
                problems.append(f"stdout line {i} is not JSON: {line[:120]!r}")
                continue
            aws = doc.get("_aws") if isinstance(doc, dict) else None
            if not isinstance(aws, dict) or "CloudWatchMetrics" not in aws or "Timestamp" not in aws:
                problems.append(f"stdout line {i} is not an EMF document: {line[:120]!r}")
                continue
            for d in aws["CloudWatchMetrics"]:
                for m in d.get("Metrics", []):
                    if m.get("Name") not in doc:
                        problems.append(f"stdout line {i}: metric {m.get('Name')} is not a root member")
                for ds in d.get("Dimensions", []):
                    for k in ds:
                        if k not in doc:
                            problems.append(f"stdout line {i}: dimension {k} is not a root member")
        return problems


def executions(sfn, arn: str) -> list[dict]:
    out, token = [], None
    while True:
        kw = {"stateMachineArn": arn}
        if token:
            kw["nextToken"] = token
        r = sfn.list_executions(**kw)
        out += r.get("executions", [])
        token = r.get("nextToken")
        if not token:
            return out
