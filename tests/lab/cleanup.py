"""What a lab leaves on the machine, and removing it: the per-run state file (/run/nwd-lab/<id>),
teardown of namespaces and /etc/netns folders, gc of labs whose owner died, and signals that end a
run through the normal unwinding."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Callable

from .shell import run

STATE_ROOT = Path("/run/nwd-lab")
NETNS_ETC = Path("/etc/netns")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_state(state_dir: Path, run_id: str, namespaces: list[str], root_ifaces: list[str], pids: list[int]) -> None:
    state = {"owner_pid": os.getpid(), "run_id": run_id, "namespaces": namespaces, "root_ifaces": root_ifaces,
             "etc_netns": [str(NETNS_ETC / n) for n in namespaces], "pids": pids}
    (state_dir / "state.json").write_text(json.dumps(state))


def remove_run(namespaces: list[str], root_ifaces: list[str], etc_dirs: list[Path]) -> None:
    existing = set(run(["ip", "netns", "list"], check=False).stdout.split())
    for n in namespaces:
        if n in existing:
            run(["ip", "netns", "delete", n], check=False)
    for i in root_ifaces:  # normally gone with its peer's namespace already
        if run(["ip", "link", "show", i], check=False).returncode == 0:
            run(["ip", "link", "delete", i], check=False)
    for d in etc_dirs:
        shutil.rmtree(d, ignore_errors=True)


def gc_stale(verbose: bool = True) -> int:
    """Remove labs whose owner process is gone (killed with SIGKILL, machine hiccup). Returns count."""
    if not STATE_ROOT.exists():
        return 0
    n = 0
    for d in STATE_ROOT.iterdir():
        f = d / "state.json"
        if not f.is_file():
            continue
        try:
            st = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if pid_alive(int(st["owner_pid"])):
            continue
        for pid in st.get("pids", []):
            # only our own children: pgid == pid and still a member of one of our namespaces
            if pid_alive(pid) and _in_namespaces(pid, st["namespaces"]):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
        remove_run(st["namespaces"], st.get("root_ifaces", []), [Path(p) for p in st.get("etc_netns", [])])
        shutil.rmtree(d, ignore_errors=True)
        n += 1
        if verbose:
            print(f"lab gc: removed stale run {st['run_id']}")
    return n


def _in_namespaces(pid: int, namespaces: list[str]) -> bool:
    try:
        mine = os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return False
    for n in namespaces:
        try:
            if os.stat(f"/run/netns/{n}").st_ino == mine:
                return True
        except OSError:
            pass
    # moto runs in the root namespace: accept it when its command line says so
    try:
        return b"moto_server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def install_signal_handlers(cleanup: Callable[[], None]) -> None:
    """SIGINT (even when inherited as ignored, as in a background job), SIGTERM and SIGHUP end the
    run through the normal unwinding (finally blocks, context managers, atexit)."""
    def handler(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, handler)
    atexit.register(cleanup)


if __name__ == "__main__":  # `make lab-clean`: python -m tests.lab.cleanup
    print(f"lab gc: {gc_stale(verbose=True)} stale run(s) removed")
