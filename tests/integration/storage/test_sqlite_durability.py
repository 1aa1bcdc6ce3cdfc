"""kill -9 of a process mid-write-stream loses no acknowledged write and corrupts nothing.

(Power loss is beyond a test's reach; ``synchronous=FULL`` is what covers it — the WAL is
fsynced before a commit returns, and no write is acknowledged before its commit returns.)
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from kubeboot.storage.sqlite import SqliteStore

WRITER = Path(__file__).with_name("durability_writer.py")
ACKS_BEFORE_KILL = 1500


def run_writer_until_killed(db: Path) -> dict[str, int]:
    """Start the writer, read acknowledgements, SIGKILL it mid-stream; return key -> revision."""
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(db)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    acked: dict[str, int] = {}
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    try:
        while len(acked) < ACKS_BEFORE_KILL and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            _, key, revision = line.split()
            acked[key] = int(revision)
        proc.send_signal(signal.SIGKILL)
        # Lines already written before the kill were acknowledged too.
        for line in proc.stdout:
            if line.endswith("\n"):
                _, key, revision = line.split()
                acked[key] = int(revision)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= ACKS_BEFORE_KILL, f"writer acknowledged only {len(acked)} writes"
    return acked


async def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    acked = run_writer_until_killed(db)

    assert_integrity(db)  # also recovers the WAL left by the killed writer
    store = await SqliteStore.open(db)
    try:
        missing = []
        for key, revision in acked.items():
            kv = await store.get(key)
            if kv is None or kv.mod_revision != revision:
                missing.append((key, revision, kv))
        assert missing == []
        assert len(set(acked.values())) == len(acked)  # one revision per write
        current = await store.current_revision()
        assert current >= max(acked.values())
        after = await store.create("/d/after-restart", b"x")
        assert after.mod_revision == current + 1
    finally:
        await store.close()
    assert_integrity(db)


def assert_integrity(db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
