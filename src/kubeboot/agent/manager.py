"""Obtaining and keeping one certificate: bootstrap, rotation, re-bootstrap.

One :class:`CertificateManager` per store (client or serving). ``obtain`` is one attempt:
reuse or make the pending key (persisted, so a restart resumes the same CSR), submit or
adopt the CSR, wait, install. What each outcome does to the pending key is the crash-safety
and anti-spam rule (node-facts §8):

* issued: installed, then the pending key is removed;
* timeout or an unreachable server: the key stays, so the next attempt waits on the *same*
  CSR instead of creating another (upstream makes a new CSR every 15 min);
* denied, failed, deleted, incompatible: the key is discarded, so the next attempt is a new
  key and a new name (upstream's one-shot path wedges on the same Denied CSR for ever).

Reports go through ``Reporter`` (the console line, Events, metrics) so the logic here stays
independent of where they end up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509

from kubeboot.agent.certstore import CertStore
from kubeboot.agent.csrflow import (
    CsrDenied,
    CsrError,
    CsrTimeout,
    Naming,
    PendingRequest,
    kubelet_naming,
    submit,
    wait_for_certificate,
)
from kubeboot.agent.templates import CertificateTemplate
from kubeboot.agent.validity import PairVerdict, check_pair
from kubeboot.client.interface import ApiClient
from kubeboot.clock import Clock
from kubeboot.pki.keys import dump_private_key_pem

__all__ = ["CertificateManager", "Outcome", "Reporter"]


class Reporter(Protocol):
    async def waiting(self, store: CertStore, request: PendingRequest, state: str) -> None: ...

    async def issued(
        self, store: CertStore, request: PendingRequest, cert: x509.Certificate
    ) -> None: ...

    async def failed(self, store: CertStore, error: Exception) -> None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    cert: x509.Certificate | None
    error: Exception | None = None

    @property
    def denied(self) -> bool:
        return isinstance(self.error, CsrDenied)


class CertificateManager:
    def __init__(
        self, store: CertStore, clock: Clock, reporter: Reporter, naming: Naming = kubelet_naming
    ) -> None:
        self.store = store
        self.clock = clock
        self.reporter = reporter
        self.naming = naming

    def current(self, ca_pem: bytes | None, *, common_name: str | None = None) -> PairVerdict:
        pair = self.store.read_current()
        if pair is None:
            return PairVerdict(f"no {self.store.current_path.name}")
        return check_pair(
            pair.cert_pem, pair.key_pem, ca_pem, self.clock.now(), common_name=common_name
        )

    async def obtain(
        self,
        client: ApiClient,
        template: CertificateTemplate,
        *,
        wait_seconds: float,
        on_request: Callable[[PendingRequest], Awaitable[None]] | None = None,
    ) -> Outcome:
        """One attempt; never raises for an API or CSR failure, returns it instead."""
        key = self.store.pending_key()
        try:
            request = await submit(client, key, template, self.clock.now(), self.naming)
            if on_request is not None:
                await on_request(request)

            async def pending(state: str) -> None:
                await self.reporter.waiting(self.store, request, state)

            pem = await wait_for_certificate(
                client, request, wait_seconds=wait_seconds, on_pending=pending
            )
        except CsrTimeout as e:
            await self.reporter.failed(self.store, e)
            return Outcome(None, e)
        except CsrError as e:
            self.store.discard_pending_key()
            await self.reporter.failed(self.store, e)
            return Outcome(None, e)
        except Exception as e:  # API errors, unreachable server: keep the key, report
            await self.reporter.failed(self.store, e)
            return Outcome(None, e)
        self.store.install(pem, dump_private_key_pem(key), self.clock.now())
        self.store.discard_pending_key()
        cert = x509.load_pem_x509_certificates(pem)[0]
        await self.reporter.issued(self.store, request, cert)
        return Outcome(cert)


def seconds_until(clock: Clock, moment: dt.datetime) -> float:
    return max(0.0, (moment - clock.now()).total_seconds())
