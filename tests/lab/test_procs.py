"""Stopping what a lab started never signals anybody else's process, even after its pid was reused."""
from __future__ import annotations

import os
import signal
import subprocess
import time

from tests.lab.procs import orphaned_group


def _wait_gone(pid: int, timeout: float = 5.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} still alive")


def test_a_group_whose_leader_exited_but_whose_member_lives_is_orphaned():
    # Given a group leader (a shell standing for /usr/bin/time) that starts a member and exits,
    leader = subprocess.Popen(["sh", "-c", "sleep 30 & echo $!"], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    member = int(leader.stdout.readline())
    leader.wait()
    try:
        # then the reaped leader's group still holds the member, and is ours to end.
        assert orphaned_group(leader.pid)
    finally:
        os.kill(member, signal.SIGKILL)
    _wait_gone(member)
    # Once empty, there is nothing to signal.
    assert not orphaned_group(leader.pid)


def test_a_live_leader_with_that_number_is_someone_else_and_never_orphaned():
    # A process leading its own group, as another run's checker does (start_new_session): were it a
    # reused pid of ours, killing its group would kill an unrelated run.
    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        assert not orphaned_group(other.pid)
    finally:
        other.kill()
        other.wait()
