"""The signer's CA follows files replaced on disk, and survives a broken replacement."""

from __future__ import annotations

import os
from pathlib import Path

from kubeboot.clock import FakeClock
from kubeboot.controllers.manager import ReloadingAuthority
from kubeboot.pki.authority import create_self_signed_ca
from kubeboot.pki.files import write_atomic
from kubeboot.pki.keys import dump_private_key_pem


def _write(cert: Path, key: Path, common_name: str, bump: int) -> None:
    ca = create_self_signed_ca(clock=FakeClock(), common_name=common_name)
    write_atomic(cert, ca.certificate_pem)
    write_atomic(key, dump_private_key_pem(ca.private_key))
    for path in (cert, key):  # distinct mtimes even on coarse-timestamp filesystems
        os.utime(path, ns=(bump, bump))


def _cn(authority: ReloadingAuthority) -> str:
    return authority().certificate.subject.rfc4514_string()


def test_reload_on_change_and_keep_previous_on_failure(tmp_path: Path) -> None:
    cert, key = tmp_path / "ca.crt", tmp_path / "ca.key"
    _write(cert, key, "first", 1_000_000_000)
    authority = ReloadingAuthority(cert, key)
    assert _cn(authority) == "CN=first"
    _write(cert, key, "second", 2_000_000_000)
    assert _cn(authority) == "CN=second"
    cert.write_bytes(b"half-written")
    assert _cn(authority) == "CN=second"
    key.unlink()
    assert _cn(authority) == "CN=second"
