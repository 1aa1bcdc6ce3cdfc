"""The data dir is private (issue 13 item 5): 0700, and the database files 0600 from creation.

Real files, a real ``kubeboot server`` process: every Secret (bootstrap tokens included)
lives in ``state.db`` and its ``-wal``/``-shm`` companions, so none of them may ever be
readable by another local user — not at creation under the usual umask 022, and not on a
data dir an older version left 0755/0644 (then tightened at start, and said so once).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.conftest import server_process_running


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _database_files(data: Path) -> list[Path]:
    return [data / name for name in ("state.db", "state.db-wal", "state.db-shm")]


def test_a_new_data_dir_is_private_from_creation(tmp_path: Path) -> None:
    data = tmp_path / "data"
    old_umask = os.umask(0o022)
    try:
        with server_process_running(data) as running:
            assert running.process is not None
            assert _mode(data) == 0o700
            for path in _database_files(data):
                assert path.exists(), f"{path.name} missing while the server runs"
                assert _mode(path) == 0o600, f"{path.name} is {_mode(path):04o}"
            assert _mode(data / "pki" / "ca.key") == 0o600
            assert _mode(data / "admin.conf") == 0o600
    finally:
        os.umask(old_umask)
    log = data.with_suffix(".log").read_text()
    assert "readable by others" not in log and "was mode" not in log


def test_an_old_data_dir_is_tightened_and_logged_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with server_process_running(data):
        pass
    # what an older kubeboot left behind
    data.chmod(0o755)
    for path in _database_files(data):
        if path.exists():
            path.chmod(0o644)
    state = data / "state.db"
    assert _mode(state) == 0o644
    with server_process_running(data):
        assert _mode(data) == 0o700
        for path in _database_files(data):
            assert _mode(path) == 0o600, f"{path.name} is {_mode(path):04o}"
    log = data.with_suffix(".log").read_text()
    assert log.count(f"data dir {data} was mode 0755; set to 0700") == 1
    tightened = [line for line in log.splitlines() if "readable by others" in line]
    assert len(tightened) == 1
    assert "state.db (was 0644)" in tightened[0]
