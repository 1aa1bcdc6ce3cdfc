"""First-start PKI: what is created, with which modes, and that nothing existing is replaced."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from kubeboot.clock import FakeClock
from kubeboot.pki.authority import create_self_signed_ca, load_certificate_pem
from kubeboot.pki.cluster import ClusterPkiError, ensure_cluster_pki, split_sans
from kubeboot.pki.files import write_atomic
from kubeboot.pki.keys import dump_private_key_pem, load_private_key_pem
from tests.unit.pki.pki_helpers import openssl_verify

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
URL = "https://10.0.0.5:6443"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# --- unhappy paths -----------------------------------------------------------------------


def test_half_a_ca_pair_is_an_error_not_a_regeneration(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "ca.key").write_bytes(b"keep me")
    with pytest.raises(ClusterPkiError, match=r"ca\.key exists but .*ca\.crt does not"):
        ensure_cluster_pki(tmp_path, server_url=URL, clock=FakeClock(NOW))
    assert (tmp_path / "pki" / "ca.key").read_bytes() == b"keep me"
    assert not (tmp_path / "pki" / "ca.crt").exists()


def test_half_a_serving_pair_is_an_error(tmp_path: Path) -> None:
    ensure_cluster_pki(tmp_path, server_url=URL, clock=FakeClock(NOW))
    (tmp_path / "pki" / "apiserver.key").unlink()
    with pytest.raises(ClusterPkiError, match=r"apiserver\.crt exists but"):
        ensure_cluster_pki(tmp_path, server_url=URL, clock=FakeClock(NOW))


def test_override_needs_both_files(tmp_path: Path) -> None:
    with pytest.raises(ClusterPkiError, match="must be given together"):
        ensure_cluster_pki(
            tmp_path, server_url=URL, clock=FakeClock(NOW), ca_cert_file=tmp_path / "x"
        )
    with pytest.raises(ClusterPkiError, match="does not exist"):
        ensure_cluster_pki(
            tmp_path,
            server_url=URL,
            clock=FakeClock(NOW),
            serving_cert_file=tmp_path / "a",
            serving_key_file=tmp_path / "b",
        )


def test_corrupt_ca_is_reported(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "ca.crt").write_bytes(b"garbage")
    (tmp_path / "pki" / "ca.key").write_bytes(b"garbage")
    with pytest.raises(ClusterPkiError, match="cannot load the CA"):
        ensure_cluster_pki(tmp_path, server_url=URL, clock=FakeClock(NOW))


# --- happy paths -------------------------------------------------------------------------


def test_first_start_creates_everything(tmp_path: Path) -> None:
    paths = ensure_cluster_pki(
        tmp_path,
        server_url=URL,
        clock=FakeClock(NOW),
        sans=["node-a", "10.0.0.5", "api.example.com", "localhost"],
    )
    assert _mode(tmp_path / "pki") == 0o700
    assert _mode(paths.ca_key_file) == 0o600
    assert _mode(paths.serving_key_file) == 0o600
    assert _mode(paths.admin_kubeconfig_file) == 0o600
    assert _mode(paths.ca_cert_file) == 0o644
    ca_cert = load_certificate_pem(paths.ca_cert_file.read_bytes())
    assert ca_cert.not_valid_after_utc - NOW == dt.timedelta(days=3650)

    serving = load_certificate_pem(paths.serving_cert_file.read_bytes())
    san = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "node-a", "api.example.com"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address(a) for a in ("127.0.0.1", "::1", "10.0.0.5")
    ]
    serving_key = load_private_key_pem(paths.serving_key_file.read_bytes())
    assert serving.public_key() == serving_key.public_key()

    config = yaml.safe_load(paths.admin_kubeconfig_file.read_text())
    assert config["clusters"][0]["cluster"]["server"] == URL
    assert config["current-context"] == "kubernetes-admin@kubernetes"
    user = config["users"][0]["user"]
    client_pem = base64.b64decode(user["client-certificate-data"])
    client = load_certificate_pem(client_pem)
    assert client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "kubernetes-admin"
    )
    assert client.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "system:masters"
    )
    client_key = load_private_key_pem(base64.b64decode(user["client-key-data"]))
    assert client.public_key() == client_key.public_key()

    at = int(NOW.timestamp())
    ca_pem = paths.ca_cert_file.read_bytes()
    for pem, purpose in (
        (paths.serving_cert_file.read_bytes(), "sslserver"),
        (client_pem, "sslclient"),
    ):
        result = openssl_verify(ca_pem, pem, tmp_path, purpose=purpose, at=at)
        assert result.returncode == 0, result.stderr


def test_second_start_reuses_every_byte(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ensure_cluster_pki(data, server_url=URL, clock=FakeClock(NOW))
    before = _snapshot(data)
    later = FakeClock(NOW + dt.timedelta(days=30))
    ensure_cluster_pki(data, server_url="https://other:6443", clock=later, sans=["new-name"])
    assert _snapshot(data) == before


def test_given_ca_and_serving_pair_are_only_read(tmp_path: Path) -> None:
    ext = tmp_path / "ext"
    ext.mkdir()
    ca = create_self_signed_ca(clock=FakeClock(NOW), common_name="operator-ca")
    write_atomic(ext / "ca.crt", ca.certificate_pem)
    write_atomic(ext / "ca.key", dump_private_key_pem(ca.private_key))
    (ext / "tls.crt").write_bytes(b"operator cert")
    (ext / "tls.key").write_bytes(b"operator key")
    before = _snapshot(ext)
    data = tmp_path / "data"
    paths = ensure_cluster_pki(
        data,
        server_url=URL,
        clock=FakeClock(NOW),
        ca_cert_file=ext / "ca.crt",
        ca_key_file=ext / "ca.key",
        serving_cert_file=ext / "tls.crt",
        serving_key_file=ext / "tls.key",
    )
    assert (paths.ca_cert_file, paths.serving_key_file) == (ext / "ca.crt", ext / "tls.key")
    assert _snapshot(ext) == before
    assert sorted(_snapshot(data)) == ["admin.conf"]
    config = yaml.safe_load((data / "admin.conf").read_text())
    ca_data = base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"])
    assert ca_data == ca.certificate_pem


def test_split_sans() -> None:
    dns, ips = split_sans(["a.example", "192.0.2.1", "fd00::1", "b"])
    assert dns == ["a.example", "b"]
    assert ips == [ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("fd00::1")]
