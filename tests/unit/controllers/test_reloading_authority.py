"""Signing CA configuration: upstream flag rules, reload on change, survive a bad file."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from kubeboot.clock import FakeClock
from kubeboot.controllers.config import ControllerConfig
from kubeboot.controllers.manager import ReloadingAuthority, SigningConfigError, signing_files
from kubeboot.pki.authority import create_self_signed_ca
from kubeboot.pki.csr import (
    KUBE_APISERVER_CLIENT_SIGNER,
    KUBELET_CLIENT_SIGNER,
    KUBELET_SERVING_SIGNER,
    LEGACY_UNKNOWN_SIGNER,
)
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


def test_signing_files_follow_upstream_flag_rules(tmp_path: Path) -> None:
    pair = (tmp_path / "c", tmp_path / "k")
    other = (tmp_path / "c2", tmp_path / "k2")
    generic = ControllerConfig(cluster_signing_cert_file=pair[0], cluster_signing_key_file=pair[1])
    assert signing_files(generic) == dict.fromkeys(
        [
            KUBELET_CLIENT_SIGNER,
            KUBELET_SERVING_SIGNER,
            KUBE_APISERVER_CLIENT_SIGNER,
            LEGACY_UNKNOWN_SIGNER,
        ],
        pair,
    )
    assert signing_files(ControllerConfig()) == {}
    only_serving = ControllerConfig(signer_files={KUBELET_SERVING_SIGNER: other})
    assert signing_files(only_serving) == {KUBELET_SERVING_SIGNER: other}
    with pytest.raises(SigningConfigError, match="cannot specify default and per controller certs"):
        signing_files(dataclasses.replace(generic, signer_files={KUBELET_SERVING_SIGNER: other}))
    with pytest.raises(SigningConfigError, match="must be set together"):
        signing_files(ControllerConfig(cluster_signing_cert_file=pair[0]))
    with pytest.raises(SigningConfigError, match=r"unknown signer names: example\.com/x"):
        signing_files(ControllerConfig(signer_files={"example.com/x": other}))
