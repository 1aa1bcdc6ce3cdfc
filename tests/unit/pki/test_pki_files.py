"""Atomic writes: exact modes, no torn or world-readable files, create-only never overwrites."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubeboot.pki.files import PUBLIC_FILE_MODE, ensure_private_dir, restrict_mode, write_atomic


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 0, so a wrong creation mode would show instead of being narrowed away."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_create_only_refuses_to_replace_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "ca.key"
    target.write_bytes(b"original")
    with pytest.raises(FileExistsError):
        write_atomic(target, b"new", overwrite=False)
    assert target.read_bytes() == b"original"
    assert [p.name for p in tmp_path.iterdir()] == ["ca.key"]


def test_missing_directory_fails_without_leaving_anything(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "absent" / "f", b"x")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("open_umask")
def test_private_file_is_0600_from_creation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The temp file is already 0600 when it first exists, before any chmod could run."""
    seen: list[int] = []
    real_fchmod = os.fchmod

    def observing_fchmod(fd: int, mode: int) -> None:
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        real_fchmod(fd, mode)

    monkeypatch.setattr(os, "fchmod", observing_fchmod)
    target = tmp_path / "key.pem"
    write_atomic(target, b"secret", overwrite=False)
    assert seen == [0o600]
    assert _mode(target) == 0o600
    assert target.read_bytes() == b"secret"


@pytest.mark.usefixtures("open_umask")
def test_public_mode_and_replace(tmp_path: Path) -> None:
    target = tmp_path / "ca.crt"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    write_atomic(target, b"new", mode=PUBLIC_FILE_MODE)
    assert target.read_bytes() == b"new"
    assert _mode(target) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["ca.crt"]


@pytest.mark.usefixtures("open_umask")
def test_ensure_private_dir_creates_0700_and_keeps_existing(tmp_path: Path) -> None:
    created = ensure_private_dir(tmp_path / "a" / "pki")
    assert _mode(created) == 0o700
    existing = tmp_path / "shared"
    existing.mkdir(mode=0o755)
    ensure_private_dir(existing)
    assert _mode(existing) == 0o755


def test_restrict_mode_only_narrows(tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    loose.write_text("x")
    loose.chmod(0o664)
    assert restrict_mode(loose, 0o600) == 0o664
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600
    assert restrict_mode(loose, 0o600) is None  # already private: nothing to say
    tight = tmp_path / "tight"
    tight.write_text("x")
    tight.chmod(0o400)
    assert restrict_mode(tight, 0o600) is None  # never widened
    assert stat.S_IMODE(tight.stat().st_mode) == 0o400
    assert restrict_mode(tmp_path / "missing", 0o600) is None
    link = tmp_path / "link"
    target = tmp_path / "target"
    target.write_text("x")
    target.chmod(0o644)
    link.symlink_to(target)
    assert restrict_mode(link, 0o600) is None  # a planted link does not reach its target
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
