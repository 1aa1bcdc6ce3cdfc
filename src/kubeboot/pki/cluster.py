"""The server's own PKI on first start (``kubeboot server --data-dir``).

Layout under ``data_dir`` (design.md "On disk")::

    pki/ca.crt  pki/ca.key            cluster CA, P-256, 10 years (key 0600)
    pki/apiserver.crt  .key           serving cert: localhost, 127.0.0.1, ::1 + given SANs
    admin.conf                        kubernetes-admin / system:masters kubeconfig (0600)

Invariants: an existing file is reused and never overwritten (a restart must not rotate the
CA out from under joined nodes); a pair with only one half present is an error, not a cue to
regenerate; files given by flags (``--cluster-signing-*-file``, ``--tls-*-file``) are only
read. Writes are atomic and create-only (:mod:`kubeboot.pki.files`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from kubeboot.clock import Clock
from kubeboot.pki.authority import CertificateAuthority, create_self_signed_ca
from kubeboot.pki.files import PUBLIC_FILE_MODE, ensure_private_dir, write_atomic
from kubeboot.pki.keys import dump_private_key_pem
from kubeboot.pki.kubeconfig import admin_kubeconfig
from kubeboot.pki.pem import encode_pem

__all__ = [
    "ADMIN_COMMON_NAME",
    "ADMIN_GROUP",
    "APISERVER_COMMON_NAME",
    "ClusterPki",
    "ClusterPkiError",
    "ensure_cluster_pki",
    "split_sans",
]

ADMIN_COMMON_NAME = "kubernetes-admin"
ADMIN_GROUP = "system:masters"
APISERVER_COMMON_NAME = "kube-apiserver"
_DEFAULT_DNS = ("localhost",)
_DEFAULT_IPS = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ClusterPkiError(Exception):
    """The on-disk PKI is inconsistent or an override is incomplete; says which file."""


@dataclass(frozen=True, slots=True)
class ClusterPki:
    ca_cert_file: Path
    ca_key_file: Path
    serving_cert_file: Path
    serving_key_file: Path
    admin_kubeconfig_file: Path


def split_sans(values: Iterable[str]) -> tuple[list[str], list[IPAddress]]:
    """Split ``--tls-san`` style values into DNS names and IP addresses."""
    dns: list[str] = []
    ips: list[IPAddress] = []
    for value in values:
        try:
            ips.append(ipaddress.ip_address(value))
        except ValueError:
            dns.append(value)
    return dns, ips


def ensure_cluster_pki(
    data_dir: Path,
    *,
    server_url: str,
    clock: Clock,
    sans: Sequence[str] = (),
    ca_cert_file: Path | None = None,
    ca_key_file: Path | None = None,
    serving_cert_file: Path | None = None,
    serving_key_file: Path | None = None,
) -> ClusterPki:
    """Create what is missing, reuse what exists, and return where everything is.

    ``sans`` are the hostname, the advertise address and any ``--tls-san`` values; the
    loopback names are always added.
    """
    pki_dir = ensure_private_dir(data_dir / "pki")
    ca_cert_file, ca_key_file, ca = _ensure_ca(pki_dir, ca_cert_file, ca_key_file, clock)
    serving_cert_file, serving_key_file = _ensure_serving(
        pki_dir, serving_cert_file, serving_key_file, ca, sans, clock
    )
    admin_file = data_dir / "admin.conf"
    if not admin_file.exists():
        cert, key = ca.issue_client_cert(
            common_name=ADMIN_COMMON_NAME, organizations=[ADMIN_GROUP], clock=clock
        )
        content = admin_kubeconfig(
            server_url,
            ca.certificate_pem,
            encode_pem("CERTIFICATE", cert.public_bytes(serialization.Encoding.DER)),
            dump_private_key_pem(key),
        )
        write_atomic(admin_file, content.encode(), overwrite=False)
    return ClusterPki(ca_cert_file, ca_key_file, serving_cert_file, serving_key_file, admin_file)


def _override_pair(what: str, cert: Path | None, key: Path | None) -> tuple[Path, Path] | None:
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ClusterPkiError(f"the {what} certificate and key files must be given together")
    for path in (cert, key):
        if not path.is_file():
            raise ClusterPkiError(f"{what} file {path} does not exist")
    return cert, key


def _existing_pair(cert: Path, key: Path) -> bool:
    """True when both exist, False when neither does; half a pair is an error."""
    if cert.exists() and key.exists():
        return True
    if cert.exists() or key.exists():
        present, missing = (cert, key) if cert.exists() else (key, cert)
        raise ClusterPkiError(
            f"{present} exists but {missing} does not; restore it or remove both to "
            "generate a new pair"
        )
    return False


def _ensure_ca(
    pki_dir: Path, cert_file: Path | None, key_file: Path | None, clock: Clock
) -> tuple[Path, Path, CertificateAuthority]:
    override = _override_pair("CA", cert_file, key_file)
    cert_path, key_path = override or (pki_dir / "ca.crt", pki_dir / "ca.key")
    if override or _existing_pair(cert_path, key_path):
        try:
            return cert_path, key_path, CertificateAuthority.load(cert_path, key_path)
        except ValueError as exc:
            raise ClusterPkiError(f"cannot load the CA from {cert_path}: {exc}") from exc
    ca = create_self_signed_ca(clock=clock)
    write_atomic(key_path, dump_private_key_pem(ca.private_key), overwrite=False)
    write_atomic(cert_path, ca.certificate_pem, mode=PUBLIC_FILE_MODE, overwrite=False)
    return cert_path, key_path, ca


def _ensure_serving(
    pki_dir: Path,
    cert_file: Path | None,
    key_file: Path | None,
    ca: CertificateAuthority,
    sans: Sequence[str],
    clock: Clock,
) -> tuple[Path, Path]:
    override = _override_pair("serving", cert_file, key_file)
    if override:
        return override
    cert_path, key_path = pki_dir / "apiserver.crt", pki_dir / "apiserver.key"
    if _existing_pair(cert_path, key_path):
        return cert_path, key_path
    dns, ips = split_sans(sans)
    cert, key = ca.issue_serving_cert(
        common_name=APISERVER_COMMON_NAME,
        dns_names=list(dict.fromkeys([*_DEFAULT_DNS, *dns])),
        ips=list(dict.fromkeys([*_DEFAULT_IPS, *ips])),
        clock=clock,
    )
    write_atomic(key_path, dump_private_key_pem(key), overwrite=False)
    cert_pem = encode_pem("CERTIFICATE", cert.public_bytes(serialization.Encoding.DER))
    write_atomic(cert_path, cert_pem, mode=PUBLIC_FILE_MODE, overwrite=False)
    return cert_path, key_path
