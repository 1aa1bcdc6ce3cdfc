"""The cert-dir layout: file names, modes, the symlink swap, crash recovery and pruning.

Real files in a temp dir (the store *is* file I/O); these are the invariants kubeadm and
operators rely on, and the ones a kill -9 between two steps must not break.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest

from kubeboot.agent.certstore import CertStore, CertStoreError, pair_file_name, pairs_to_prune
from kubeboot.pki.keys import dump_private_key_pem
from tests.unit.agent.agent_ca import NOW, NodeCA


def test_pair_file_name_uses_go_layout_in_local_time() -> None:
    name = pair_file_name("kubelet-client", NOW)
    local = NOW.astimezone().strftime("%Y-%m-%d-%H-%M-%S")
    assert name == f"kubelet-client-{local}.pem"


def test_prune_keeps_newest_and_the_one_in_use() -> None:
    names = [f"kubelet-client-2026-01-0{d}-00-00-00.pem" for d in range(1, 6)] + [
        "kubelet-client-current.pem",
        "kubelet-server-2026-01-01-00-00-00.pem",
        "kubelet-client.key.tmp",
    ]
    assert pairs_to_prune("kubelet-client", names, None, 2) == [
        "kubelet-client-2026-01-03-00-00-00.pem",
        "kubelet-client-2026-01-02-00-00-00.pem",
        "kubelet-client-2026-01-01-00-00-00.pem",
    ]
    in_use = "kubelet-client-2026-01-01-00-00-00.pem"
    assert in_use not in pairs_to_prune("kubelet-client", names, in_use, 2)


def test_install_writes_0600_pair_and_absolute_symlink(tmp_path: Path) -> None:
    ca = NodeCA()
    cert, key = ca.issue()
    store = CertStore(tmp_path / "pki", "kubelet-client")
    pair = store.install(cert, key, NOW)
    assert stat.S_IMODE(pair.stat().st_mode) == 0o600
    assert store.current_path.is_symlink()
    assert os.readlink(store.current_path) == str(pair)
    assert os.path.isabs(os.readlink(store.current_path))
    current = store.read_current()
    assert current is not None
    assert current.cert_pem == cert
    assert current.key_pem == key
    assert pair.read_bytes().index(b"CERTIFICATE") < pair.read_bytes().index(b"PRIVATE KEY")


def test_install_refuses_a_key_that_does_not_match(tmp_path: Path) -> None:
    ca = NodeCA()
    cert, _ = ca.issue()
    _, other = ca.issue()
    store = CertStore(tmp_path, "kubelet-client")
    with pytest.raises(CertStoreError, match="does not match"):
        store.install(cert, other, NOW)
    assert not store.current_path.exists()


def test_install_refuses_to_replace_a_regular_current_file(tmp_path: Path) -> None:
    cert, key = NodeCA().issue()
    store = CertStore(tmp_path, "kubelet-client")
    store.current_path.write_bytes(cert + key)
    with pytest.raises(CertStoreError, match="regular file"):
        store.install(cert, key, NOW)


def test_recover_finishes_an_interrupted_swap(tmp_path: Path) -> None:
    cert, key = NodeCA().issue()
    store = CertStore(tmp_path, "kubelet-client")
    pair = store.install(cert, key, NOW)
    # Simulate a crash after -updated.pem was made and -current.pem removed.
    store.current_path.unlink()
    os.symlink(pair, store.updated_path)
    assert store.read_current() is not None
    assert store.current_path.is_symlink()
    assert not store.updated_path.exists()


def test_rotation_prunes_old_pairs(tmp_path: Path) -> None:
    ca = NodeCA()
    store = CertStore(tmp_path, "kubelet-client", keep=2)
    for i in range(4):
        store.install(*ca.issue(), NOW + dt.timedelta(seconds=i))
    pairs = sorted(p.name for p in tmp_path.glob("kubelet-client-2*.pem"))
    assert len(pairs) == 2
    assert store.current_path.resolve().name == pairs[-1]


def test_pending_key_survives_a_restart_and_a_corrupt_one_is_replaced(tmp_path: Path) -> None:
    store = CertStore(tmp_path / "pki", "kubelet-client")
    key = store.pending_key()
    assert stat.S_IMODE(store.pending_key_path.stat().st_mode) == 0o600
    again = CertStore(tmp_path / "pki", "kubelet-client").pending_key()
    assert dump_private_key_pem(again) == dump_private_key_pem(key)
    store.pending_key_path.write_bytes(b"garbage")
    fresh = store.pending_key()
    assert dump_private_key_pem(fresh) != dump_private_key_pem(key)
    store.discard_pending_key()
    assert not store.pending_key_path.exists()
