"""Ask for a certificate and wait for it: the ``certificates.k8s.io/v1`` exchange.

Submission (node-facts §1.6-§1.7): the CSR is named ``node-csr-<digest>`` of the key and
request, so a restart with the same pending key finds its own CSR (AlreadyExists) instead of
making another. The found CSR is reused only if it is compatible: same subject, same
signer, made with our key, and any issued certificate not expired. Upstream then waits even
on a Denied CSR and fails at once, for ever (§8, "Denied CSR wedge"); here the caller sees
:class:`CsrDenied` and changes key before trying again.

Waiting (§1.7 and server-facts §8.4): list then watch with ``fieldSelector=metadata.name=``,
re-listing after a 410 or a dropped stream. Approved *and* a certificate is success;
Denied, Failed, deletion or a new UID end the wait with an error that says which.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kubeboot.agent.constants import CSR_RESOURCE
from kubeboot.agent.naming import node_csr_name
from kubeboot.agent.templates import CertificateTemplate
from kubeboot.client.http import ApiUnreachable
from kubeboot.client.interface import ApiClient, JsonObject
from kubeboot.pki.csr import build_csr
from kubeboot.pki.keys import PrivateKey
from kubeboot.resources.status import AlreadyExists, Expired

__all__ = [
    "CsrDenied",
    "CsrError",
    "CsrFailed",
    "CsrGone",
    "CsrIncompatible",
    "CsrTimeout",
    "PendingRequest",
    "build_request_pem",
    "csr_outcome",
    "incompatibility",
    "krustlet_serving_naming",
    "kubelet_naming",
    "request_name",
    "submit",
    "wait_for_certificate",
]


class CsrError(Exception):
    """The request will not produce a certificate; ``name`` is the CSR object."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


class CsrDenied(CsrError):
    def __init__(self, name: str, reason: str, message: str) -> None:
        super().__init__(
            name, f"certificate signing request {name} was denied: {reason}: {message}"
        )
        self.reason = reason
        self.detail = message


class CsrFailed(CsrError):
    pass


class CsrGone(CsrError):
    """Deleted, or replaced by another object of the same name (a new UID)."""


class CsrIncompatible(CsrError):
    """A CSR with our name exists but cannot give us a certificate for our key."""


class CsrTimeout(CsrError):
    pass


@dataclass(frozen=True, slots=True)
class PendingRequest:
    name: str
    uid: str
    created: bool  # False when an existing CSR was found and reused


def build_request_pem(key: PrivateKey, template: CertificateTemplate) -> bytes:
    """The PKCS#10 request for ``template``, shaped as the kubelet's (``pki.csr.build_csr``)."""
    return build_csr(
        key,
        common_name=template.common_name,
        organizations=template.organizations,
        dns_names=template.dns_names,
        ips=[str(ip) for ip in template.ip_addresses],
    )


def _spki(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def request_name(key: PrivateKey, template: CertificateTemplate) -> str:
    return node_csr_name(
        _spki(key), template.common_name, template.organizations, template.usages(key)
    )


def csr_object(
    name: str, request_pem: bytes, template: CertificateTemplate, usages: list[str]
) -> JsonObject:
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": base64.b64encode(request_pem).decode("ascii"),
            "signerName": template.signer,
            "usages": usages,
        },
    }


def incompatibility(
    existing: Mapping[str, Any], key: PrivateKey, template: CertificateTemplate, now: dt.datetime
) -> str | None:
    """Why an existing CSR of our name is not ours to wait on, or None if it is."""
    spec = existing.get("spec") or {}
    try:
        request = x509.load_pem_x509_csr(base64.b64decode(spec.get("request") or ""))
    except ValueError:
        return "its request does not parse"
    signer = spec.get("signerName")
    if signer and signer != template.signer:
        return f"signer {signer!r} is not {template.signer!r}"
    if (
        request.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        != _spki(key)
        or not request.is_signature_valid
    ):
        return "it was not made with this node's pending key"
    wanted = x509.load_pem_x509_csr(build_request_pem(key, template)).subject
    if request.subject != wanted:
        return f"subject {request.subject.rfc4514_string()} is not {wanted.rfc4514_string()}"
    cert_b64 = (existing.get("status") or {}).get("certificate")
    if cert_b64:
        try:
            certs = x509.load_pem_x509_certificates(base64.b64decode(cert_b64))
        except ValueError:
            return "its issued certificate does not parse"
        if any(c.not_valid_after_utc <= now for c in certs):
            return "its issued certificate has expired"
    return None


def csr_outcome(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    """(``issued``|``denied``|``failed``|``approved``|``pending``, reason, message).

    Only condition types count, as upstream: the ``status`` field is not looked at.
    """
    status = obj.get("status") or {}
    conditions = status.get("conditions") or []
    for wanted in ("Denied", "Failed"):
        for cond in conditions:
            if cond.get("type") == wanted:
                return wanted.lower(), str(cond.get("reason") or ""), str(cond.get("message") or "")
    approved = any(c.get("type") == "Approved" for c in conditions)
    if approved and status.get("certificate"):
        return "issued", "", ""
    return ("approved" if approved else "pending"), "", ""


Naming = Callable[[PrivateKey, CertificateTemplate], Sequence[str]]


def kubelet_naming(key: PrivateKey, template: CertificateTemplate) -> list[str]:
    """The kubelet's one name, ``node-csr-<digest>`` (node-facts §1.6)."""
    return [request_name(key, template)]


def krustlet_serving_naming(hostname: str) -> Naming:
    """Krustlet's ``<hostname>-tls`` first, so ``kubectl certificate approve <hostname>-tls``
    works as its docs say; when that name is taken by an older CSR (a renewal, an earlier
    node), ``<hostname>-tls-<10 hex of the key's SHA-256>``, the same for the same key."""
    base = f"{hostname.lower()}-tls"

    def names(key: PrivateKey, _template: CertificateTemplate) -> list[str]:
        return [base, f"{base}-{hashlib.sha256(_spki(key)).hexdigest()[:10]}"]

    return names


async def submit(
    client: ApiClient,
    key: PrivateKey,
    template: CertificateTemplate,
    now: dt.datetime,
    naming: Naming = kubelet_naming,
) -> PendingRequest:
    """Create our CSR, or adopt the one a previous run of this agent created.

    ``naming`` gives the candidate names in order; a name held by a CSR that is not ours
    (another key, another subject) moves on to the next; the last one's refusal is raised.
    """
    names = list(naming(key, template))
    for index, name in enumerate(names):
        body = csr_object(name, build_request_pem(key, template), template, template.usages(key))
        try:
            created = await client.create(CSR_RESOURCE, body)
            return PendingRequest(name, str(created["metadata"].get("uid") or ""), True)
        except AlreadyExists:
            existing = await client.get(CSR_RESOURCE, name)
        why = incompatibility(existing, key, template, now)
        if why is None:
            return PendingRequest(name, str(existing["metadata"].get("uid") or ""), False)
        if index == len(names) - 1:
            raise CsrIncompatible(name, f"existing certificate signing request {name}: {why}")
    raise AssertionError("naming gave no name")


async def wait_for_certificate(
    client: ApiClient,
    request: PendingRequest,
    *,
    wait_seconds: float,
    on_pending: Callable[[str], Awaitable[None]] | None = None,
) -> bytes:
    """The issued PEM chain; raises a :class:`CsrError` subclass otherwise.

    ``on_pending`` is called once, with the state, the first time the CSR is seen waiting.
    """
    try:
        async with asyncio.timeout(wait_seconds):
            return await _wait(client, request, on_pending)
    except TimeoutError:
        raise CsrTimeout(
            request.name,
            f"certificate signing request {request.name} was not signed "
            f"within {wait_seconds:.0f}s; "
            f"approve it with `kubectl certificate approve {request.name}` or check the signer",
        ) from None


async def _wait(
    client: ApiClient,
    request: PendingRequest,
    on_pending: Callable[[str], Awaitable[None]] | None,
) -> bytes:
    selector = f"metadata.name={request.name}"
    told = False
    while True:
        try:
            listed = await client.list(CSR_RESOURCE, field_selector=selector)
            items = listed.get("items") or []
            if not items:
                raise CsrGone(
                    request.name, f"certificate signing request {request.name} was deleted"
                )
            pem = _check(request, items[0])
            if pem is not None:
                return pem
            if not told and on_pending is not None:
                told = True
                await on_pending(csr_outcome(items[0])[0])
            rv = str((listed.get("metadata") or {}).get("resourceVersion") or "") or None
            async for event in client.watch(
                CSR_RESOURCE, field_selector=selector, resource_version=rv, timeout_seconds=300
            ):
                if event["type"] == "DELETED":
                    raise CsrGone(
                        request.name, f"certificate signing request {request.name} was deleted"
                    )
                if event["type"] in ("ADDED", "MODIFIED"):
                    pem = _check(request, event["object"])
                    if pem is not None:
                        return pem
        except (Expired, ApiUnreachable):
            # Relist: the revision was compacted or the stream dropped; a short pause keeps
            # an unreachable server from turning this into a busy loop.
            await asyncio.sleep(1.0)


def _check(request: PendingRequest, obj: Mapping[str, Any]) -> bytes | None:
    uid = str((obj.get("metadata") or {}).get("uid") or "")
    if request.uid and uid and uid != request.uid:
        raise CsrGone(
            request.name,
            f"certificate signing request {request.name} was deleted and re-created (UID changed)",
        )
    state, reason, message = csr_outcome(obj)
    if state == "denied":
        raise CsrDenied(request.name, reason or "Denied", message)
    if state == "failed":
        raise CsrFailed(
            request.name, f"certificate signing request {request.name} failed: {reason}: {message}"
        )
    if state == "issued":
        return base64.b64decode((obj.get("status") or {})["certificate"])
    return None
