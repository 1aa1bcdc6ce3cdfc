"""The PKI ``kubeadm init`` writes under /etc/kubernetes/pki, made with kubeboot's own pki module.

The real control plane fixture needs it: kube-apiserver's serving pair, its kubelet-client pair,
the front-proxy CA and client (kube-controller-manager logs a missing requestheader CA every few
seconds without them), the ServiceAccount key pair, and client kubeconfigs for the admin and the
controller manager. Names and subjects follow kubeadm's (``kubeadm init phase certs``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from kubeboot.clock import SystemClock
from kubeboot.pki.authority import CertificateAuthority, create_self_signed_ca
from kubeboot.pki.files import PUBLIC_FILE_MODE, ensure_private_dir, write_atomic
from kubeboot.pki.keys import dump_private_key_pem, generate_private_key
from kubeboot.pki.kubeconfig import admin_kubeconfig
from kubeboot.pki.pem import encode_pem

__all__ = ["KubeadmPki", "make_kubeadm_pki", "write_client_kubeconfig"]

# kubeadm's default service CIDR 10.96.0.0/12: the `kubernetes` Service's ClusterIP is its first.
SERVICE_CIDR = "10.96.0.0/12"
_APISERVER_DNS = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
_APISERVER_IPS = (
    ipaddress.ip_address("127.0.0.1"),
    ipaddress.ip_address("::1"),
    ipaddress.ip_address("10.96.0.1"),
)


@dataclass(frozen=True)
class KubeadmPki:
    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def ca(self) -> CertificateAuthority:
        return CertificateAuthority.load(self.path("ca.crt"), self.path("ca.key"))


def _write_pair(directory: Path, name: str, cert_der: bytes, key_pem: bytes) -> None:
    write_atomic(directory / f"{name}.key", key_pem)
    write_atomic(
        directory / f"{name}.crt", encode_pem("CERTIFICATE", cert_der), mode=PUBLIC_FILE_MODE
    )


def _write_ca(directory: Path, name: str, ca: CertificateAuthority) -> None:
    write_atomic(directory / f"{name}.key", dump_private_key_pem(ca.private_key))
    write_atomic(directory / f"{name}.crt", ca.certificate_pem, mode=PUBLIC_FILE_MODE)


def make_kubeadm_pki(directory: Path) -> KubeadmPki:
    """Write a fresh cluster PKI into ``directory`` (0700; keys 0600)."""
    clock = SystemClock()
    ensure_private_dir(directory)
    ca = create_self_signed_ca(clock=clock, common_name="kubernetes")
    _write_ca(directory, "ca", ca)
    cert, key = ca.issue_serving_cert(
        common_name="kube-apiserver", dns_names=_APISERVER_DNS, ips=_APISERVER_IPS, clock=clock
    )
    der = serialization.Encoding.DER
    _write_pair(directory, "apiserver", cert.public_bytes(der), dump_private_key_pem(key))
    cert, key = ca.issue_client_cert(
        # kubeadm ≥ 1.29 uses kubeadm:cluster-admins plus a binding that kubeadm init creates;
        # system:masters needs no binding and grants the same.
        common_name="kube-apiserver-kubelet-client",
        organizations=["system:masters"],
        clock=clock,
    )
    _write_pair(
        directory, "apiserver-kubelet-client", cert.public_bytes(der), dump_private_key_pem(key)
    )
    front = create_self_signed_ca(clock=clock, common_name="front-proxy-ca")
    _write_ca(directory, "front-proxy-ca", front)
    cert, key = front.issue_client_cert(
        common_name="front-proxy-client", organizations=[], clock=clock
    )
    _write_pair(directory, "front-proxy-client", cert.public_bytes(der), dump_private_key_pem(key))
    sa = generate_private_key()
    write_atomic(directory / "sa.key", dump_private_key_pem(sa))
    public = sa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_atomic(directory / "sa.pub", public, mode=PUBLIC_FILE_MODE)
    return KubeadmPki(directory)


def write_client_kubeconfig(
    path: Path,
    server: str,
    ca: CertificateAuthority,
    *,
    common_name: str,
    organizations: list[str],
) -> Path:
    """A kubeconfig with a fresh client certificate for ``common_name`` (0600)."""
    cert, key = ca.issue_client_cert(
        common_name=common_name, organizations=organizations, clock=SystemClock()
    )
    content = admin_kubeconfig(
        server,
        ca.certificate_pem,
        encode_pem("CERTIFICATE", cert.public_bytes(serialization.Encoding.DER)),
        dump_private_key_pem(key),
        user_name=common_name,
    )
    write_atomic(path, content.encode())
    return path
