"""Atomic, permission-safe file writes for keys, certificates and kubeconfigs.

Invariants:

* a reader sees either the old content or the new content, never a torn file: data goes to
  a temporary file in the same directory, is fsynced, then renamed (or hard-linked, for
  create-only writes) over the target, and the directory is fsynced;
* a private file is *created* with its final mode (0600), so a key is never readable by
  others, not even between ``open`` and ``chmod``; the mode is re-applied with ``fchmod``
  because the process umask may only have narrowed it;
* a create-only write never replaces an existing file, even when two processes race:
  ``link(2)`` fails with ``EEXIST`` instead of overwriting.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "PUBLIC_FILE_MODE",
    "ensure_private_dir",
    "fsync_dir",
    "restrict_mode",
    "write_atomic",
]

PRIVATE_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644
PRIVATE_DIR_MODE = 0o700


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) with mode 0700; an existing dir is left as is.

    Existing directories keep their mode because an operator may have chosen it (for
    example a shared ``/etc/kubernetes``); only what we create is private by construction.
    """
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    return path


def restrict_mode(path: Path, mode: int) -> int | None:
    """Clear the permission bits of ``path`` that ``mode`` does not allow; never widen.

    Returns the previous permission bits if they changed (so the caller can say so once),
    None if nothing changed or ``path`` does not exist. Symlinks are not followed: a link
    planted in a private directory must not make us chmod its target.
    """
    try:
        current = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(current):
        return None
    bits = stat.S_IMODE(current)
    if bits & ~mode == 0:
        return None
    os.chmod(path, bits & mode)
    return bits


def write_atomic(
    path: Path, data: bytes, *, mode: int = PRIVATE_FILE_MODE, overwrite: bool = True
) -> None:
    """Write ``data`` to ``path`` atomically with exactly ``mode``.

    With ``overwrite=False`` the write fails with :class:`FileExistsError` if ``path``
    already exists, and an existing file is never touched.
    """
    directory = path.parent
    tmp = directory / f".{path.name}.tmp-{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            os.unlink(tmp)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


def fsync_dir(directory: Path) -> None:
    """Make a rename, link or symlink in ``directory`` durable.

    The directory entry lives in the directory's own blocks, so the file's fsync is not
    enough; callers that swap names themselves (the agent's ``-current.pem`` symlink) need
    this step too.
    """
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
