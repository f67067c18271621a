"""Processes the lab starts: each in its own session (its process group id is its pid), so it and
whatever it forked are stopped together, by that id and nothing broader."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path | None = None


@dataclass
class Supervisor:
    procs: list[Proc] = field(default_factory=list)
    on_change: Callable[[], None] = lambda: None  # the state file lists every pid we own

    @property
    def pids(self) -> list[int]:
        return [p.popen.pid for p in self.procs]

    def spawn(self, name: str, cmd: list[str], env: dict | None = None, log: Path | None = None,
              stdout=None) -> Proc:
        logf = open(log, "ab") if log else subprocess.DEVNULL
        out = stdout if stdout is not None else logf
        p = subprocess.Popen(cmd, stdout=out, stderr=logf, stdin=subprocess.DEVNULL, env=env,
                             start_new_session=True)
        if log:
            logf.close()
        proc = Proc(name, p, log)
        self.procs.append(proc)
        self.on_change()
        return proc

    def first_dead(self) -> Proc | None:
        return next((p for p in self.procs if p.popen.poll() is not None), None)

    @staticmethod
    def stop(proc: Proc, sig: int = signal.SIGTERM, timeout: float = 5.0) -> int | None:
        """Signal the process group of a child we started (its pgid is its pid), then SIGKILL it."""
        p = proc.popen
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=5)
        elif orphaned_group(p.pid):
            # the leader is gone; members of its group (a checker under /usr/bin/time) may not be
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        return p.returncode

    def stop_all(self, warn: Callable[[str], None]) -> None:
        for proc in reversed(self.procs):
            try:
                self.stop(proc)
            except Exception as e:  # noqa: BLE001 - keep cleaning
                warn(f"lab: could not stop {proc.name} ({proc.popen.pid}): {e}")


def orphaned_group(pgid: int) -> bool:
    """True when processes remain in group `pgid` whose leader (process `pgid`) is gone: those are the
    dead leader's own members, since Linux never hands out a number still in use as a process group.
    False when the group is empty, and when a process `pgid` exists: the leader's number has then been
    reused (pid_max is 32768 here, and a busy machine wraps it in minutes) by someone else's process,
    which may lead a group of its own. A blind killpg of a reaped leader's pid SIGKILLed a concurrent
    run's checker that way."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": state, ppid, pgrp, ...
        if len(fields) > 2 and fields[2] == str(pgid):
            members.append(int(entry))
    return bool(members) and pgid not in members
