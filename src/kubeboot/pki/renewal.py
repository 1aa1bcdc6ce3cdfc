"""The server's own certificates: which ones, when they are due, and renewing them.

kubeadm's names (``cmd/kubeadm/app/phases/certs/renewal``) for the ones kubeboot has:

* ``apiserver`` — the serving certificate (``pki/apiserver.crt``), CA ``ca``;
* ``admin.conf`` — the client certificate embedded in ``admin.conf``, CA ``ca``;
* ``ca`` — the cluster CA (``pki/ca.crt``), shown in the CA table; never renewed here.

*Externally managed* (kubeadm's column) means kubeboot did not make the file and will not
renew it: a serving pair or CA given by ``--tls-cert-file`` / ``--cluster-signing-cert-file``.
The server records at every start which files it uses (:data:`FILES_RECORD`), so ``kubeboot
certs`` run later against the same ``--data-dir`` reports exactly those.

Policy (pure, on an injected clock):

* :func:`renewal_due` — a kubeboot-made serving certificate is renewed once 2/3 of its life
  has passed (kubelet-style rotation renews at 70-90 %; 2/3 leaves a third of the life, four
  months for kubeadm's one year, to notice a renewal that keeps failing);
* :func:`expiry_warning` — a warning once the residual time is under 30 days for a leaf, or
  under a year for the CA (replacing a CA means touching every node, see
  ``docs/operations.md``).

Renewal (:func:`renew_serving`, :func:`renew_admin_conf`) issues a new key and certificate
from the CA with the same subject and SANs as the current one (kubeadm: "extra attributes
such as SANs will be based on the existing file/certificates") and writes them atomically;
the key is written before the certificate, so a reader that sees the new certificate also
sees its key (the server's reloader checks the pair before it swaps).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kubeboot.clock import Clock
from kubeboot.pki.authority import CertificateAuthority, load_certificate_pem
from kubeboot.pki.files import PUBLIC_FILE_MODE, write_atomic
from kubeboot.pki.keys import dump_private_key_pem
from kubeboot.pki.kubeconfig import admin_kubeconfig
from kubeboot.pki.pem import encode_pem

__all__ = [
    "ADMIN_CONF",
    "APISERVER",
    "CA",
    "CA_WARNING",
    "FILES_RECORD",
    "LEAF_WARNING",
    "RENEW_FRACTION",
    "CertificateFiles",
    "ManagedCertificate",
    "admin_conf_certificate",
    "admin_conf_server",
    "expiry_warning",
    "managed_certificates",
    "renew_admin_conf",
    "renew_serving",
    "renewal_deadline",
    "renewal_due",
    "rewrite_admin_conf",
]

APISERVER = "apiserver"
ADMIN_CONF = "admin.conf"
CA = "ca"
FILES_RECORD = "pki/files.json"
RENEW_FRACTION = 2 / 3
LEAF_WARNING = dt.timedelta(days=30)
CA_WARNING = dt.timedelta(days=365)
IPAddress = IPv4Address | IPv6Address


@dataclass(frozen=True, slots=True)
class CertificateFiles:
    """Where the server's certificates are, and which ones it made (recorded at start)."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_conf: Path
    ca_external: bool = False
    serving_external: bool = False

    def record(self, data_dir: Path) -> None:
        body = {
            "ca": {
                "cert": str(self.ca_cert),
                "key": str(self.ca_key),
                "external": self.ca_external,
            },
            APISERVER: {
                "cert": str(self.serving_cert),
                "key": str(self.serving_key),
                "external": self.serving_external,
            },
            ADMIN_CONF: {"file": str(self.admin_conf)},
        }
        text = json.dumps(body, indent=2, sort_keys=True) + "\n"
        path = data_dir / FILES_RECORD
        if not path.exists() or path.read_text() != text:
            write_atomic(path, text.encode(), mode=PUBLIC_FILE_MODE)

    @classmethod
    def load(cls, data_dir: Path) -> CertificateFiles:
        """What the server last recorded, or the defaults of a data dir it has not seen."""
        pki = data_dir / "pki"
        defaults = cls(
            pki / "ca.crt",
            pki / "ca.key",
            pki / "apiserver.crt",
            pki / "apiserver.key",
            data_dir / ADMIN_CONF,
        )
        path = data_dir / FILES_RECORD
        if not path.exists():
            return defaults
        body: dict[str, Any] = json.loads(path.read_text())
        return cls(
            Path(body["ca"]["cert"]),
            Path(body["ca"]["key"]),
            Path(body[APISERVER]["cert"]),
            Path(body[APISERVER]["key"]),
            Path(body[ADMIN_CONF]["file"]),
            ca_external=bool(body["ca"]["external"]),
            serving_external=bool(body[APISERVER]["external"]),
        )


@dataclass(frozen=True, slots=True)
class ManagedCertificate:
    """One row of ``kubeboot certs check-expiration``."""

    name: str
    path: Path
    authority: str  # "" for the CA itself
    externally_managed: bool
    certificate: x509.Certificate | None  # None: missing

    @property
    def is_ca(self) -> bool:
        return self.name == CA


def _read_certificate(path: Path) -> x509.Certificate | None:
    try:
        return load_certificate_pem(path.read_bytes())
    except (OSError, ValueError):
        return None


def admin_conf_certificate(path: Path) -> x509.Certificate | None:
    """The client certificate embedded in a kubeconfig (its first user), or None."""
    try:
        user = _admin_user(_load_kubeconfig(path))
        data = user.get("client-certificate-data")
        if data:
            return load_certificate_pem(base64.b64decode(data))
        cert_file = user.get("client-certificate")
        return _read_certificate(path.parent / cert_file) if cert_file else None
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError):
        return None


def managed_certificates(files: CertificateFiles) -> list[ManagedCertificate]:
    return [
        ManagedCertificate(
            ADMIN_CONF,
            files.admin_conf,
            CA,
            files.ca_external,
            admin_conf_certificate(files.admin_conf),
        ),
        ManagedCertificate(
            APISERVER,
            files.serving_cert,
            CA,
            files.serving_external,
            _read_certificate(files.serving_cert),
        ),
        ManagedCertificate(
            CA, files.ca_cert, "", files.ca_external, _read_certificate(files.ca_cert)
        ),
    ]


def renewal_deadline(cert: x509.Certificate) -> dt.datetime:
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    return start + (end - start) * RENEW_FRACTION


def renewal_due(cert: x509.Certificate, now: dt.datetime) -> bool:
    return now >= renewal_deadline(cert)


def expiry_warning(name: str, cert: x509.Certificate, now: dt.datetime) -> str | None:
    """A warning to log when ``cert`` expires soon (or has expired), else None."""
    left = cert.not_valid_after_utc - now
    window = CA_WARNING if name == CA else LEAF_WARNING
    if left >= window:
        return None
    when = cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    state = f"expired at {when}" if left <= dt.timedelta(0) else f"expires at {when}"
    if name == CA:
        action = "plan the CA rotation (docs/operations.md, 'Rotating the CA')"
    elif name == APISERVER:
        action = "the server renews it itself unless it is externally managed; see the log"
    else:
        action = f"renew it with `kubeboot certs renew {name}`"
    return f"certificate {name} {state} ({left.days} days left); {action}"


def _sans(cert: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def renew_serving(
    ca: CertificateAuthority,
    cert_file: Path,
    key_file: Path,
    clock: Clock,
    *,
    dns_names: Sequence[str] | None = None,
    ips: Sequence[IPAddress] | None = None,
) -> x509.Certificate:
    """A new key and serving certificate; SANs from the current one unless given."""
    current = _read_certificate(cert_file)
    if dns_names is None or ips is None:
        san = _sans(current) if current is not None else None
        dns_names = san.get_values_for_type(x509.DNSName) if san is not None else []
        found = san.get_values_for_type(x509.IPAddress) if san is not None else []
        ips = [ip for ip in found if isinstance(ip, IPv4Address | IPv6Address)]
    cn = "kube-apiserver"
    if current is not None:
        names = current.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        cn = str(names[0].value) if names else cn
    cert, key = ca.issue_serving_cert(common_name=cn, dns_names=dns_names, ips=ips, clock=clock)
    write_atomic(key_file, dump_private_key_pem(key))
    pem = encode_pem("CERTIFICATE", cert.public_bytes(serialization.Encoding.DER))
    write_atomic(cert_file, pem, mode=PUBLIC_FILE_MODE)
    return cert


# -- admin.conf --------------------------------------------------------------------------------


def _load_kubeconfig(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict):
        raise ValueError(f"{path} is not a kubeconfig")
    return doc


def _admin_user(doc: dict[str, Any]) -> dict[str, Any]:
    users = doc.get("users") or []
    user = users[0]["user"] if users else None
    if not isinstance(user, dict):
        raise ValueError("no user in the kubeconfig")
    return user


def admin_conf_server(path: Path) -> str | None:
    try:
        clusters = _load_kubeconfig(path).get("clusters") or []
        return str(clusters[0]["cluster"]["server"])
    except (OSError, ValueError, KeyError, IndexError, TypeError, yaml.YAMLError):
        return None


def rewrite_admin_conf(
    path: Path,
    *,
    server: str | None = None,
    cert_pem: bytes | None = None,
    key_pem: bytes | None = None,
) -> None:
    """admin.conf in kubeboot's layout with a new server URL and/or client pair."""
    doc = _load_kubeconfig(path)
    cluster = doc["clusters"][0]
    user = doc["users"][0]
    ca_pem = base64.b64decode(cluster["cluster"]["certificate-authority-data"])
    content = admin_kubeconfig(
        server or cluster["cluster"]["server"],
        ca_pem,
        cert_pem or base64.b64decode(user["user"]["client-certificate-data"]),
        key_pem or base64.b64decode(user["user"]["client-key-data"]),
        cluster_name=cluster["name"],
        user_name=user["name"],
    )
    write_atomic(path, content.encode())


def renew_admin_conf(ca: CertificateAuthority, path: Path, clock: Clock) -> x509.Certificate:
    """A new key and client certificate in admin.conf, same subject (kubernetes-admin)."""
    current = admin_conf_certificate(path)
    if current is None:
        raise ValueError(f"{path} has no embedded client certificate to renew")
    cn = current.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    orgs = current.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    cert, key = ca.issue_client_cert(
        common_name=str(cn[0].value) if cn else "kubernetes-admin",
        organizations=[str(o.value) for o in orgs],
        clock=clock,
    )
    rewrite_admin_conf(
        path,
        cert_pem=encode_pem("CERTIFICATE", cert.public_bytes(serialization.Encoding.DER)),
        key_pem=dump_private_key_pem(key),
    )
    return cert
