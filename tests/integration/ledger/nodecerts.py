"""Helpers: a node's client certificate issued through a real CSR (so the ledger has it)."""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import RunningServer
from tests.integration.api.test_rest_semantics import call

CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
KUBELET_CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"
LEDGER = "/apis/ledger.kubeboot.io/v1/issuedcertificates"


def node_csr(name: str, node: str) -> tuple[dict[str, Any], ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}"),
        ]
    )
    req = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    body = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": base64.b64encode(req.public_bytes(serialization.Encoding.PEM)).decode(),
            "signerName": KUBELET_CLIENT,
            "usages": ["digital signature", "client auth"],
        },
    }
    return body, key


async def issued_node_identity(
    running: RunningServer, admin: aiohttp.ClientSession, node: str
) -> tuple[ssl.SSLContext, Path, str]:
    """(TLS context as system:node:<node>, a kubeconfig for it, the certificate's serial):
    created by the admin, auto-approved and signed by the server's controllers."""
    body, key = node_csr(f"csr-{node}", node)
    status, answer = await call(admin, "POST", CSRS, body)
    assert status == 201, answer
    pem = ""
    for _ in range(200):
        status, obj = await call(admin, "GET", f"{CSRS}/csr-{node}")
        pem = (obj.get("status") or {}).get("certificate") or ""
        if pem:
            break
        await asyncio.sleep(0.05)
    assert pem, f"CSR for {node} was not issued"
    cert_pem = base64.b64decode(pem)
    crt, pkey = running.data_dir / f"{node}-issued.crt", running.data_dir / f"{node}-issued.key"
    crt.write_bytes(cert_pem)
    pkey.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pkey.chmod(0o600)
    ctx = ssl.create_default_context(cafile=str(running.ca_file))
    ctx.load_cert_chain(str(crt), str(pkey))
    kubeconfig = node_kubeconfig(
        running.data_dir / f"{node}.kubeconfig", running.url, running.ca_file, crt, pkey
    )
    serial = format(x509.load_pem_x509_certificate(cert_pem).serial_number, "x")
    # The ledger entry follows the certificate by a moment (one request writes both).
    for _ in range(100):
        status, _ = await call(admin, "GET", f"{LEDGER}/{serial}")
        if status == 200:
            break
        await asyncio.sleep(0.02)
    assert status == 200, f"no ledger entry for {serial}"
    return ctx, kubeconfig, serial


def node_kubeconfig(path: Path, url: str, ca_file: Path, crt: Path, key: Path) -> Path:
    """A kubeconfig for ``url`` with the node's certificate files."""
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {{server: "{url}", certificate-authority: "{ca_file}"}}
users:
- name: node
  user: {{client-certificate: "{crt}", client-key: "{key}"}}
contexts:
- name: c
  context: {{cluster: c, user: node}}
current-context: c
"""
    )
    return path


def kubeboot(*args: str, kubeconfig: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The ``kubeboot`` CLI as an admin would run it."""
    result = subprocess.run(
        [sys.executable, "-m", "kubeboot", *args, "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KUBECONFIG": ""},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubeboot {' '.join(args)}: {result.stdout}\n{result.stderr}")
    return result
