"""Shared builders for the PKI unit tests (CSRs made with cryptography directly, openssl)."""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_csr(
    *,
    cn: str = "system:node:worker-1",
    orgs: Sequence[str] = ("system:nodes",),
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
    emails: Sequence[str] = (),
    uris: Sequence[str] = (),
    extra_extensions: Sequence[x509.ExtensionType] = (),
) -> x509.CertificateSigningRequest:
    """A P-256 CSR built by cryptography alone, independent of kubeboot.pki.csr."""
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    if cn:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    names += [x509.RFC822Name(e) for e in emails]
    names += [x509.UniformResourceIdentifier(u) for u in uris]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    for ext in extra_extensions:
        builder = builder.add_extension(ext, critical=False)
    return builder.sign(key, hashes.SHA256())


def csr_pem(csr: x509.CertificateSigningRequest) -> bytes:
    return csr.public_bytes(serialization.Encoding.PEM)


def tamper_signature(csr: x509.CertificateSigningRequest) -> x509.CertificateSigningRequest:
    """Same CSR with the last byte of the ECDSA signature flipped: parses, fails to verify."""
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01
    return x509.load_der_x509_csr(bytes(der))


def openssl_verify(
    ca_pem: bytes, cert_pem: bytes, tmp: Path, *, purpose: str, at: int
) -> subprocess.CompletedProcess[str]:
    """Run the system ``openssl verify`` (a real peer) at epoch second ``at``."""
    ca_file, cert_file = tmp / "verify-ca.pem", tmp / "verify-leaf.pem"
    ca_file.write_bytes(ca_pem)
    cert_file.write_bytes(cert_pem)
    return subprocess.run(
        [
            "openssl",
            "verify",
            "-attime",
            str(at),
            "-purpose",
            purpose,
            "-CAfile",
            str(ca_file),
            str(cert_file),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
