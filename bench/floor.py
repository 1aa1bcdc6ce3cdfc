"""The floor: the server-side work one join cannot avoid, in a tight loop without HTTP.

Why: "joins/s" alone does not say how much of the server's CPU is overhead. The floor is the
CPU a minimal server must spend per join whatever its design, so achieved/floor says how far
the real server is from it (target: server CPU per join <= 2x the floor).

One join, as the storm's node drives it, costs at least:

* the server side of two TLS handshakes with the server's real context (no session tickets,
  client certificate requested): connection A without a client certificate, connection B
  with the node's new one — over in-memory BIOs, only the server's calls are timed;
* parsing the CSR and checking its signature;
* authentication of the token (a constant-time compare) and of the client certificate
  (its signature against the CA);
* four RBAC decisions on the real index (anonymous cluster-info read, CSR create, CSR watch,
  the approver's nodeclient check);
* building and signing the certificate with the cluster CA (P-256);
* the CPU of three durable SQLite commits (WAL, ``synchronous=FULL``: created, approved,
  issued) of a CSR-sized row. The fsync wait is not CPU and group commit shares it, so the
  thread CPU clock is used throughout.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import secrets
import sqlite3
import ssl
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from kubeboot.auth.defaults import default_cluster_role_bindings, default_cluster_roles
from kubeboot.auth.interface import Attributes, UserInfo
from kubeboot.auth.rbac import RbacIndex
from kubeboot.auth.x509 import make_server_ssl_context
from kubeboot.clock import SystemClock
from kubeboot.clusterinit import kubeadm_rbac_objects
from kubeboot.pki.authority import CertificateAuthority
from kubeboot.pki.cluster import ensure_cluster_pki
from kubeboot.pki.csr import build_csr, parse_csr_pem
from kubeboot.pki.keys import dump_private_key_pem, generate_private_key

__all__ = ["FloorResult", "measure_floor"]

_BOOTSTRAPPER = UserInfo(
    "system:bootstrap:abcdef",
    groups=("system:bootstrappers", "system:bootstrappers:kubeadm:default-node-token"),
)
_ANONYMOUS = UserInfo("system:anonymous", groups=("system:unauthenticated",))
_CSR_ROW = b"x" * 1800  # a stored CSR with its certificate is about this size


@dataclass(frozen=True, slots=True)
class FloorResult:
    cpu_ms_per_join: float
    joins_per_s_one_core: float
    parts_ms: dict[str, float]


def _handshake(server: ssl.SSLObject, client: ssl.SSLObject, pipes: _Pipes) -> float:
    """Complete one handshake over memory BIOs; return the server side's thread CPU seconds."""
    spent = 0.0
    server_done = client_done = False
    while not (server_done and client_done):
        if not client_done:
            try:
                client.do_handshake()
                client_done = True
            except ssl.SSLWantReadError:
                pass
        pipes.to_server.write(pipes.client_out.read())
        if not server_done:
            t = time.thread_time()
            try:
                server.do_handshake()
                server_done = True
            except ssl.SSLWantReadError:
                pass
            spent += time.thread_time() - t
        pipes.client_in.write(pipes.from_server.read())
    return spent


@dataclass(slots=True)
class _Pipes:
    to_server: ssl.MemoryBIO
    from_server: ssl.MemoryBIO
    client_in: ssl.MemoryBIO
    client_out: ssl.MemoryBIO


def _connection(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> tuple[ssl.SSLObject, ssl.SSLObject, _Pipes]:
    pipes = _Pipes(ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO())
    server = server_ctx.wrap_bio(pipes.to_server, pipes.from_server, server_side=True)
    client = client_ctx.wrap_bio(pipes.client_in, pipes.client_out, server_hostname="127.0.0.1")
    return server, client, pipes


def _add(parts: dict[str, float], name: str, seconds: float) -> None:
    parts[name] = parts.get(name, 0.0) + seconds


@contextlib.contextmanager
def _timed(parts: dict[str, float], name: str) -> Iterator[None]:
    t = time.thread_time()
    yield
    _add(parts, name, time.thread_time() - t)


def _issue(ca: CertificateAuthority, csr: x509.CertificateSigningRequest) -> bytes:
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .serial_number(secrets.randbits(127))
        .subject_name(csr.subject)
        .issuer_name(ca.certificate.subject)
        .public_key(csr.public_key())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca.private_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def measure_floor(joins: int = 300) -> FloorResult:
    """Run ``joins`` joins' worth of server work; CPU per join from the thread CPU clock."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        pki = ensure_cluster_pki(
            d, server_url="https://127.0.0.1:6443", clock=SystemClock(), sans=["127.0.0.1"]
        )
        ca = CertificateAuthority.load(pki.ca_cert_file, pki.ca_key_file)
        server_ctx = make_server_ssl_context(
            pki.serving_cert_file, pki.serving_key_file, pki.ca_cert_file
        )
        bootstrap_ctx = ssl.create_default_context(cafile=pki.ca_cert_file)
        node_key = generate_private_key()
        node_csr = build_csr(
            node_key, common_name="system:node:floor", organizations=["system:nodes"]
        )
        node_pem = d / "node.pem"
        node_pem.write_bytes(_issue(ca, parse_csr_pem(node_csr)) + dump_private_key_pem(node_key))
        node_ctx = ssl.create_default_context(cafile=pki.ca_cert_file)
        node_ctx.load_cert_chain(node_pem)
        rbac = RbacIndex.build(
            default_cluster_roles(),
            [o for o in kubeadm_rbac_objects() if o["kind"] == "Role"],
            default_cluster_role_bindings()
            + [o for o in kubeadm_rbac_objects() if o["kind"] == "ClusterRoleBinding"],
            [o for o in kubeadm_rbac_objects() if o["kind"] == "RoleBinding"],
        )
        checks = [
            Attributes(
                _ANONYMOUS,
                "get",
                namespace="kube-public",
                resource="configmaps",
                name="cluster-info",
            ),
            Attributes(
                _BOOTSTRAPPER,
                "create",
                api_group="certificates.k8s.io",
                resource="certificatesigningrequests",
            ),
            Attributes(
                _BOOTSTRAPPER,
                "watch",
                api_group="certificates.k8s.io",
                resource="certificatesigningrequests",
            ),
            Attributes(
                _BOOTSTRAPPER,
                "create",
                api_group="certificates.k8s.io",
                resource="certificatesigningrequests",
                subresource="nodeclient",
            ),
        ]
        db = sqlite3.connect(d / "floor.db", isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, rev INTEGER, value BLOB)")
        token = secrets.token_hex(8)
        # One distinct request per join, made before timing: parse_csr_pem is memoised on
        # the bytes, and a storm never sends the same request twice.
        requests = [
            build_csr(
                generate_private_key(),
                common_name=f"system:node:f{i}",
                organizations=["system:nodes"],
            )
            for i in range(joins)
        ]
        parts: dict[str, float] = {}
        for i in range(joins):
            server, client, pipes = _connection(server_ctx, bootstrap_ctx)
            _add(parts, "tls_bootstrap", _handshake(server, client, pipes))
            with _timed(parts, "token_authn"):
                hmac.compare_digest(token, token)
            with _timed(parts, "rbac"):
                for attrs in checks:
                    rbac.authorize(attrs)
            with _timed(parts, "csr_verify"):
                csr = parse_csr_pem(requests[i])
            with _timed(parts, "sqlite_3_commits"):
                _three_commits(db, f"csr-{i}")
            with _timed(parts, "issue_cert"):
                _issue(ca, csr)
            server, client, pipes = _connection(server_ctx, node_ctx)
            _add(parts, "tls_mutual", _handshake(server, client, pipes))
            der = server.getpeercert(binary_form=True)
            assert der is not None
            with _timed(parts, "client_cert_verify"):
                x509.load_der_x509_certificate(der).verify_directly_issued_by(ca.certificate)
        db.close()
    per_join = {k: v * 1000 / joins for k, v in parts.items()}
    total = sum(per_join.values())
    return FloorResult(total, 1000 / total, per_join)


def _three_commits(db: sqlite3.Connection, key: str) -> None:
    for rev in range(3):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?, ?)", (key, rev, _CSR_ROW))
        db.execute("COMMIT")
