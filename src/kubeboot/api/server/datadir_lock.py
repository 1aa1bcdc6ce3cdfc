"""One server per ``--data-dir``: an advisory lock held for the server's life.

Why: two servers on one data directory both start and drift apart (a token made through one
is 401 at the other, watches miss writes); SQLite's own locking does not stop that, because
each server keeps its caches and watch hub in memory.

How: ``<data-dir>/kubeboot.lock`` is opened and ``flock``-ed exclusively without waiting.
The *lock*, not the file, decides: the kernel drops it when the holder's process ends, however
it ends, so the file a killed server leaves behind never blocks a restart. The file holds the
holder's pid only so the refusal can say who holds it ("data dir ... in use by pid N").

The descriptor is close-on-exec and not passed on, so the ``--workers`` processes never hold
or take the lock (a ``flock`` is shared by every descriptor of one open file description,
so a child that inherited it would keep the directory locked after its primary died).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

__all__ = ["LOCK_FILE", "DataDirInUse", "DataDirLock"]

LOCK_FILE = "kubeboot.lock"


class DataDirInUse(RuntimeError):
    """Another live process holds the data directory's lock."""


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`DataDirInUse` naming the holder's pid."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise DataDirInUse(
                f"data dir {self.path.parent} in use by pid {holder or 'unknown'} "
                f"(it holds {self.path}); stop that server first, or give this one another "
                "--data-dir"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock; the file stays (removing it could race a new holder's open)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing the last descriptor releases the flock
        self._fd = None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
