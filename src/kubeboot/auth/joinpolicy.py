"""CSR admission for kubeboot's join rules: re-join denials and node-bound, limited tokens.

Two checks on every CSR create (docs/beyond-upstream.md), both from in-memory mirrors kept
current by watches, so a request costs dict reads:

* **RejoinDenial** (``kubeboot certs revoke --node N --deny-rejoin``): a CSR whose subject is
  ``system:node:N`` is refused (403), whoever asks, while the denial exists;
* **bound tokens** (:mod:`kubeboot.resources.token_binding`): a CSR created by
  ``system:bootstrap:<id>`` whose token Secret carries ``kubeboot.node-name`` and/or
  ``kubeboot.max-uses`` must fit them, and an accepted CSR spends one use with a
  compare-and-swap on the Secret in the store, retried on conflict, so two replicas (or
  workers) admitting CSRs for one single-use token at once let exactly one through.

The spend is a side effect, so the hook runs only for creates that will be stored (never for
a dry run), after every other admission check passed. A CSR refused later (a name already
taken) keeps its use spent: the count is of admitted requests, never of certificates.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

from kubeboot.auth.bootstrap_token import SecretLookup, mirror_lookup
from kubeboot.auth.interface import UserInfo
from kubeboot.auth.mirror import StoreMirror, resource_info
from kubeboot.clock import Clock
from kubeboot.pki.csr import CsrError, csr_facts, parse_csr_pem
from kubeboot.resources import bootstrap_token as bt
from kubeboot.resources import token_binding as tb
from kubeboot.resources.ledger import REJOIN_DENIALS
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.status import Conflict, Forbidden
from kubeboot.storage.interface import RevisionMismatch, Store

__all__ = ["JoinAdmission", "rejoin_denial_mirror"]

log = logging.getLogger("kubeboot.auth.joinpolicy")

JsonObj = dict[str, Any]
_SECRETS = resource_info("", "v1", "secrets")
_CERTS = "certificates.k8s.io"
_SPEND_ATTEMPTS = 10


def rejoin_denial_mirror(store: Store) -> StoreMirror:
    return StoreMirror(store, REJOIN_DENIALS.storage_prefix())


def _subject(obj: JsonObj) -> str:
    """The CSR's requested common name ("" if it does not parse: validation says why)."""
    try:
        pem = base64.b64decode(str((obj.get("spec") or {}).get("request") or ""))
        return csr_facts(parse_csr_pem(pem)).common_name
    except (binascii.Error, ValueError, CsrError):
        return ""


class JoinAdmission:
    """The admission hook (``rest.Admission`` shape); ``tokens`` is None without bootstrap
    token authentication (then no CSR is ever created by a bootstrap token)."""

    def __init__(
        self, store: Store, denials: StoreMirror, tokens: StoreMirror | None, clock: Clock
    ) -> None:
        self._store = store
        self._denials = denials
        self._lookup: SecretLookup | None = mirror_lookup(tokens) if tokens is not None else None
        self._clock = clock

    async def __call__(
        self,
        user: UserInfo,
        res: ResourceInfo,
        verb: str,
        subresource: str,
        obj: JsonObj,
        old: JsonObj | None,
    ) -> None:
        if verb != "create" or res.group != _CERTS or res.plural != "certificatesigningrequests":
            return
        subject = _subject(obj)
        node = subject.removeprefix("system:node:") if subject.startswith("system:node:") else ""
        if node:
            denial = self._denials.get(REJOIN_DENIALS.storage_key(None, node))
            if denial is not None:
                spec = denial.get("spec") or {}
                raise Forbidden(
                    f"node {node!r} may not join again: denied by {spec.get('deniedBy')} at "
                    f"{spec.get('deniedAt')} ({spec.get('reason') or 'no reason given'}); "
                    f"delete rejoindenials.ledger.kubeboot.io/{node} to allow it"
                )
        if self._lookup is None or not user.name.startswith(bt.BOOTSTRAP_USER_PREFIX):
            return
        token_id = user.name[len(bt.BOOTSTRAP_USER_PREFIX) :]
        secret = self._lookup(token_id)
        if secret is None or not tb.binding_of(bt.decode_data(secret)).limited:
            return
        signer = str((obj.get("spec") or {}).get("signerName") or "")
        await self._spend(token_id, signer, subject)

    async def _spend(self, token_id: str, signer: str, subject: str) -> None:
        """Check the binding on the stored Secret and count one use, atomically."""
        key = _SECRETS.storage_key(bt.TOKEN_NAMESPACE, bt.secret_name(token_id))
        for _ in range(_SPEND_ATTEMPTS):
            kv = await self._store.get(key)
            if kv is None:
                raise Forbidden(f"bootstrap token {token_id} was deleted; create a new one")
            secret: JsonObj = json.loads(kv.value)
            data = bt.decode_data(secret)
            binding = tb.binding_of(data)
            refusal = tb.csr_refusal(token_id, binding, signer, subject)
            if refusal is not None:
                log.info("CSR refused for bootstrap token %s: %s", token_id, refusal)
                raise Forbidden(refusal)
            if binding.max_uses is None:
                return  # node-bound only: nothing to count
            spent = tb.spend(data, self._clock.now())
            raw = secret.setdefault("data", {})  # only the counters change, byte for byte
            for k in (tb.USES_KEY, tb.LAST_USED_KEY):
                raw[k] = base64.b64encode(spent[k].encode()).decode()
            try:
                await self._store.update(
                    key, json.dumps(secret, separators=(",", ":")).encode(), kv.mod_revision
                )
            except RevisionMismatch:
                continue
            log.info(
                "bootstrap token %s used %s of %s time(s)",
                token_id,
                spent[tb.USES_KEY],
                binding.max_uses,
            )
            return
        raise Conflict(
            f"bootstrap token {token_id} is being used by many requests at once; try again"
        )
