"""Simulated nodes for the replica tests: the kubelet's client bootstrap, failing over.

:func:`join_node` does what a kubelet does with a bootstrap token — create its
``node-csr-<digest>`` CSR (the agent's own naming and adoption, ``agent.csrflow.submit``), then
list+watch until the certificate is issued — but on a connection error or a 503 it moves to
the next replica and resumes from where it was (adopting its CSR if the create had already
landed). It records what it received, so tests can check that each node got exactly one
certificate and that the CSR still holds that very certificate at the end.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kubeboot.agent.constants import CSR_RESOURCE
from kubeboot.agent.csrflow import PendingRequest, csr_outcome, submit
from kubeboot.agent.templates import client_template
from kubeboot.client.http import ApiUnreachable, HttpApiClient
from kubeboot.pki.keys import PrivateKey, generate_private_key
from kubeboot.resources.status import Expired, ServiceUnavailable
from tests.integration.replicas.conftest import token_client


@dataclass
class JoinResult:
    node: str
    csr_name: str
    certificate: bytes  # PEM as received
    failovers: int  # times this node moved to another replica
    seconds: float
    key: PrivateKey
    issued_at: float  # time.monotonic() when the certificate arrived

    def spki(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )


_RETRY = (ApiUnreachable, ServiceUnavailable, TimeoutError)


def _issued(obj: dict[str, Any]) -> bytes | None:
    state, reason, message = csr_outcome(obj)
    if state in ("denied", "failed"):
        raise AssertionError(f"{obj['metadata']['name']} {state}: {reason} {message}")
    if state == "issued":
        return base64.b64decode(obj["status"]["certificate"])
    return None


async def _wait_issued(client: HttpApiClient, name: str) -> bytes:
    selector = f"metadata.name={name}"
    while True:
        listed = await client.list(CSR_RESOURCE, field_selector=selector)
        items = listed.get("items") or []
        if not items:
            raise AssertionError(f"CSR {name} is gone")
        pem = _issued(items[0])
        if pem is not None:
            return pem
        rv = str(listed["metadata"]["resourceVersion"])
        try:
            async for event in client.watch(
                CSR_RESOURCE, field_selector=selector, resource_version=rv, timeout_seconds=30
            ):
                if event["type"] in ("ADDED", "MODIFIED"):
                    pem = _issued(event["object"])
                    if pem is not None:
                        return pem
        except Expired:
            continue  # 410: re-list


async def join_node(
    name: str, urls: Sequence[str], ca_file: Path, token: str, *, first: int = 0
) -> JoinResult:
    """Bootstrap node ``name``'s client certificate through whichever replica answers."""
    started = time.monotonic()
    key = generate_private_key()
    template = client_template(name)
    pending: PendingRequest | None = None
    index, failovers = first, 0
    while True:
        client = token_client(ca_file, urls[index % len(urls)], token, timeout=5)
        try:
            async with client:
                if pending is None:
                    pending = await submit(client, key, template, dt.datetime.now(dt.UTC))
                pem = await _wait_issued(client, pending.name)
        except _RETRY:
            index, failovers = index + 1, failovers + 1
            await asyncio.sleep(0.2)
            continue
        cert = x509.load_pem_x509_certificate(pem)
        assert cert.subject.rfc4514_string() == f"CN=system:node:{name},O=system:nodes"
        return JoinResult(
            name,
            pending.name,
            pem,
            failovers,
            time.monotonic() - started,
            key,
            time.monotonic(),
        )
