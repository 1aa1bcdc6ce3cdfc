"""csrsigning: sign approved CSRs for the in-tree signers (server-facts §6.2).

Decision (pure, :func:`signing_decision`), per CSR and per configured signer:

* skip when a certificate is present, when not approved (Approved and no Denied), when a
  True ``Failed`` condition exists, or when the signerName is not one this process signs;
* the signer's rules (:func:`kubeboot.pki.csr.signer_validation_error`) failing gives a
  terminal ``Failed`` condition with reason ``SignerValidationFailure`` and upstream's
  message, written via ``/status`` and never retried;
* otherwise issue with :meth:`CertificateAuthority.sign_request_pem`, on the event loop, and
  write the single PEM block to ``status.certificate`` via ``/status``; no condition is added
  on success.

Why on the loop: cryptography (50.x) holds the GIL for nearly all of a certificate build and
sign (~0.12-0.2 ms; only the ECDSA step itself lets go), so a worker thread bought no
parallelism, only a thread hop and GIL hand-offs with the loop: two threads signing took
longer per certificate than one, and the join's CPU was ~0.4 ms higher that way.

A request the signer can never sign (one that no longer parses, a key type it cannot certify)
gets the same terminal ``Failed`` condition, once; upstream retries such a CSR forever. A
signing error that may pass (an expired or missing CA) is raised and retried with backoff, as
upstream does. NotFound on the write is ignored (the CSR was deleted meanwhile).

The CA is read through a loader so files swapped on disk take effect (upstream reloads the
signing cert/key dynamically).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization

from kubeboot.client.interface import ApiClient, JsonObject
from kubeboot.clock import Clock, format_time
from kubeboot.controllers.certificates import (
    CSR_RESOURCE,
    conditions,
    has_certificate,
    has_true_condition,
    is_approved,
    request_pem,
    with_status,
)
from kubeboot.controllers.runtime import Informer, WorkQueue, object_key, run_workers
from kubeboot.pki.authority import CertificateAuthority, UnusableRequest, signing_duration
from kubeboot.pki.csr import CsrError, csr_facts, parse_csr_pem, signer_validation_error
from kubeboot.pki.pem import encode_pem
from kubeboot.resources.status import NotFound

__all__ = [
    "CONTROLLER_NAME",
    "Fail",
    "Sign",
    "failed_condition",
    "run_csrsigning",
    "sign_csr",
    "signing_decision",
]

CONTROLLER_NAME = "csrsigning"
WORKERS = 5
FAILURE_REASON = "SignerValidationFailure"


@dataclass(frozen=True, slots=True)
class Fail:
    message: str


@dataclass(frozen=True, slots=True)
class Sign:
    signer_name: str


def signing_decision(csr: JsonObject, signer_names: Collection[str]) -> Fail | Sign | None:
    """What the signer does with ``csr``; None means ignore it."""
    if has_certificate(csr) or not is_approved(csr) or has_true_condition(csr, "Failed"):
        return None
    spec = csr.get("spec") or {}
    signer_name = spec.get("signerName")
    if not isinstance(signer_name, str) or signer_name not in signer_names:
        return None
    try:
        facts = csr_facts(parse_csr_pem(request_pem(csr)))
    except CsrError as exc:  # a request stored before the key policy, or no longer parsing
        return Fail(str(exc))
    error = signer_validation_error(signer_name, facts, list(spec.get("usages") or []))
    return Fail(error) if error is not None else Sign(signer_name)


def failed_condition(message: str, now: dt.datetime) -> JsonObject:
    return {
        "type": "Failed",
        "status": "True",
        "reason": FAILURE_REASON,
        "message": message,
        "lastUpdateTime": format_time(now),
    }


async def sign_csr(
    client: ApiClient,
    csr: JsonObject,
    authorities: Mapping[str, Callable[[], CertificateAuthority]],
    duration: dt.timedelta,
    clock: Clock,
) -> None:
    decision = signing_decision(csr, authorities.keys())
    if decision is None:
        return
    if isinstance(decision, Fail):
        failed = failed_condition(decision.message, clock.now())
        updated = with_status(csr, conditions=[*conditions(csr), failed])
    else:
        spec = csr.get("spec") or {}
        ca = authorities[decision.signer_name]()
        try:
            cert = ca.sign_request_pem(
                request_pem(csr),
                usages=list(spec.get("usages") or []),
                ttl=signing_duration(spec.get("expirationSeconds"), duration),
                clock=clock,
            )
        except UnusableRequest as exc:  # nothing a retry can change: Failed, once
            failed = failed_condition(str(exc), clock.now())
            updated = with_status(csr, conditions=[*conditions(csr), failed])
        else:
            pem = encode_pem("CERTIFICATE", cert.public_bytes(serialization.Encoding.DER))
            updated = with_status(csr, certificate=base64.b64encode(pem).decode("ascii"))
    try:
        await client.update(CSR_RESOURCE, updated, subresource="status")
    except NotFound:
        return


async def run_csrsigning(
    client: ApiClient,
    informer: Informer,
    authorities: Mapping[str, Callable[[], CertificateAuthority]],
    duration: dt.timedelta,
    clock: Clock,
) -> None:
    queue: WorkQueue[str] = WorkQueue()
    informer.add_handler(lambda _event, obj: queue.add(object_key(obj)))

    async def handle(key: str) -> None:
        csr = informer.get(key)
        if csr is not None:
            await sign_csr(client, csr, authorities, duration, clock)

    await run_workers(CONTROLLER_NAME, queue, handle, WORKERS)
