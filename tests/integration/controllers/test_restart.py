"""A plain restart (SIGTERM, start again) brings the controllers back in under 2 s.

Real ``kubeboot server`` processes on one data dir: the stopping server releases the
controller Lease (client-go's ReleaseOnCancel), so the next one acquires it at its first
attempt instead of waiting ~15 s for it to expire.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

from tests.conftest import server_process_running, start_server_process

LEADER = re.compile(r"became leader \(acquire\)")


def _wait_for(log: Path, pattern: re.Pattern[str], timeout: float = 60) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pattern.search(log.read_text()):
            return time.monotonic()
        time.sleep(0.02)
    raise AssertionError(f"{pattern.pattern!r} not logged:\n{log.read_text()}")


def test_restart_brings_the_controllers_back_in_under_two_seconds(tmp_path: Path) -> None:
    data = tmp_path / "data"
    log = data.with_suffix(".log")
    first = start_server_process(data)
    assert first.process is not None
    _wait_for(log, LEADER)
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(timeout=30) == 0
    first_log = log.read_text()
    assert "released the lease kube-system/kube-controller-manager" in first_log
    assert "kubeboot API server stopped cleanly" in first_log
    assert "Traceback" not in first_log

    with server_process_running(data) as second:
        listening = time.monotonic()
        assert second.process is not None
        leader = _wait_for(log, LEADER)
        assert leader - listening < 2.0, log.read_text()
        assert "waiting for the lease" not in log.read_text()
