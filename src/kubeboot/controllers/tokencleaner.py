"""tokencleaner: delete expired bootstrap-token Secrets (server-facts §6.5), and spent ones.

Decision (pure, :func:`token_cleanup`): an expired token (including an ``expiration`` that
does not parse) is deleted with a UID precondition, ignoring NotFound and Conflict; a token
expiring later is looked at again exactly when it expires (scheduled from the remaining TTL,
never polled); a token without ``expiration`` is kept forever.

Beyond upstream (docs/beyond-upstream.md): a token whose ``kubeboot.max-uses`` are all used is
deleted :data:`~kubeboot.resources.token_binding.SPENT_GRACE` after its last use (the node
that spent it reads its CSR with it until the certificate is issued), rechecked at that time.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from kubeboot.client.interface import ApiClient, JsonObject
from kubeboot.clock import Clock
from kubeboot.controllers.runtime import Informer, Requeue, WorkQueue, object_key, run_workers
from kubeboot.resources import bootstrap_token as bt
from kubeboot.resources import token_binding as tb
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.status import Conflict, NotFound

__all__ = ["CONTROLLER_NAME", "Delete", "RecheckAfter", "run_tokencleaner", "token_cleanup"]

CONTROLLER_NAME = "tokencleaner"

log = logging.getLogger("kubeboot.controllers.tokencleaner")


@dataclass(frozen=True, slots=True)
class Delete:
    why: str  # for the log line: "expired (expiration ...)" or "spent (...)"


@dataclass(frozen=True, slots=True)
class RecheckAfter:
    delay: dt.timedelta


def token_cleanup(secret: JsonObject, now: dt.datetime) -> Delete | RecheckAfter | None:
    if secret.get("type") != bt.SECRET_TYPE:
        return None
    data = bt.decode_data(secret)
    if bt.is_expired(data, now):
        return Delete(f"expired (expiration {data.get(bt.EXPIRATION_KEY, '?')})")
    binding = tb.binding_of(data)
    spent_until = binding.cleanup_at()
    if spent_until is not None and spent_until <= now:
        return Delete(f"spent ({binding.uses} of {binding.max_uses} use(s))")
    expiration = bt.get_expiration(data)  # parses: is_expired is True for unparseable ones
    times = [t for t in (expiration, spent_until) if t is not None]
    return RecheckAfter(min(times) - now) if times else None


async def run_tokencleaner(
    client: ApiClient, secrets: Informer, secret_res: ResourceInfo, clock: Clock
) -> None:
    queue: WorkQueue[str] = WorkQueue()
    secrets.add_handler(lambda _event, obj: queue.add(object_key(obj)))

    async def handle(key: str) -> None:
        secret = secrets.get(key)
        if secret is None:
            return
        decision = token_cleanup(secret, clock.now())
        if isinstance(decision, RecheckAfter):
            raise Requeue(decision.delay.total_seconds())
        if isinstance(decision, Delete):
            meta = secret.get("metadata") or {}
            try:
                await client.delete(
                    secret_res, str(meta.get("name")), meta.get("namespace"), uid=meta.get("uid")
                )
            except (NotFound, Conflict):
                return  # gone or replaced meanwhile: not ours to report
            log.info(
                "bootstrap token %s %s; deleted its Secret %s/%s",
                bt.decode_data(secret).get(bt.TOKEN_ID_KEY, "?"),
                decision.why,
                meta.get("namespace"),
                meta.get("name"),
            )

    await run_workers(CONTROLLER_NAME, queue, handle, 1)
