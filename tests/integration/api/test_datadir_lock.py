"""One server per ``--data-dir``: real ``kubeboot server`` processes on one directory.

The second server must refuse with "data dir ... in use by pid N" naming the first; a lock
file left by a killed server must not block a restart (the lock decides, not the file); with
``--workers`` only the primary holds it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kubeboot.api.server.datadir_lock import LOCK_FILE, DataDirInUse, DataDirLock
from tests.conftest import server_process_running, start_server_process


def _second_server(data_dir: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "kubeboot", "server", "--data-dir", str(data_dir)]
    cmd += ["--bind-address", "127.0.0.1", "--secure-port", "0"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_second_server_on_the_same_data_dir_refuses_naming_the_first(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with server_process_running(data) as first:
        assert first.process is not None
        second = _second_server(data)
        assert second.returncode == 1, second.stdout + second.stderr
        assert f"data dir {data} in use by pid {first.process.pid}" in second.stderr
        # The refused server wrote nothing and the first one still serves.
        assert first.process.poll() is None
        assert "Traceback" not in second.stderr


def test_a_killed_servers_lock_file_does_not_block_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_server_process(data)
    assert first.process is not None
    first.process.kill()
    first.process.wait()
    stale = (data / LOCK_FILE).read_text().strip()
    assert stale == str(first.process.pid)  # the file stays, with the dead pid in it
    with server_process_running(data) as again:
        assert again.process is not None
        assert (data / LOCK_FILE).read_text().strip() == str(again.process.pid)


def test_workers_do_not_hold_the_lock(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with server_process_running(data, "--workers", "2") as running:
        assert running.process is not None
        primary = running.process.pid
        deadline = time.monotonic() + 30
        workers: list[int] = []
        while time.monotonic() < deadline and len(workers) < 2:
            children = Path(f"/proc/{primary}/task/{primary}/children").read_text().split()
            workers = [int(pid) for pid in children]
            time.sleep(0.1)
        assert len(workers) == 2
        lock = str((data / LOCK_FILE).resolve())
        assert lock in _open_files(primary)
        for pid in workers:
            assert lock not in _open_files(pid), f"worker {pid} holds the data dir lock"


def test_lock_in_one_process_refuses_a_second_holder(tmp_path: Path) -> None:
    first, second = DataDirLock(tmp_path), DataDirLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(DataDirInUse, match=f"in use by pid {os.getpid()}"):
            second.acquire()
        assert not second.held
    finally:
        first.release()
    second.acquire()  # released: free again, although the file is still there
    second.release()
    assert (tmp_path / LOCK_FILE).exists()


def _open_files(pid: int) -> set[str]:
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            out.add(os.readlink(fd))
        except FileNotFoundError:
            continue
    return out
