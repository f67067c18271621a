"""One moto server (127.0.0.1, a free port, stopped by PID) for the whole infra test session."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from moto_env import MotoServer  # noqa: E402


@pytest.fixture(scope="session")
def moto():
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
