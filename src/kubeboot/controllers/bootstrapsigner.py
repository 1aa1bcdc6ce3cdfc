"""bootstrapsigner: keep ``kube-public/cluster-info`` signed by every signing token (§6.4).

Decision (pure, :func:`sign_cluster_info`): take ``data.kubeconfig`` of cluster-info (do
nothing if the ConfigMap or the key is missing; the controller never creates it), drop every
``jws-kubeconfig-*`` key, add ``jws-kubeconfig-<id>`` for each signing-valid token (first
one wins for duplicate ids), and write only when a signature is new or changed or a stale one
was dropped. A token is signing-valid when its name is ``bootstrap-token-<id>``, ``token-id``
equals ``<id>``, ``token-secret`` is non-empty, it has not expired and
``usage-bootstrap-signing`` is exactly ``"true"``.

All events collapse into one queued re-sign. Unlike upstream, the re-sign is also scheduled
for the next token expiry, so a stale signature disappears on time even when the token
cleaner is off. The write is a full PUT carrying the read resourceVersion; Conflict and
NotFound are ignored because the event they imply queues another re-sign.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from kubeboot.client.interface import ApiClient, JsonObject
from kubeboot.clock import Clock
from kubeboot.controllers.runtime import Informer, Requeue, WorkQueue, run_workers
from kubeboot.pki.jws import detached_jws
from kubeboot.resources import bootstrap_token as bt
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.status import Conflict, NotFound

__all__ = [
    "CLUSTER_INFO_FIELD_SELECTOR",
    "CONTROLLER_NAME",
    "SignResult",
    "run_bootstrapsigner",
    "sign_cluster_info",
    "signing_tokens",
]

CONTROLLER_NAME = "bootstrapsigner"
CLUSTER_INFO_FIELD_SELECTOR = f"metadata.name={bt.CLUSTER_INFO_CONFIGMAP}"
_RESIGN_KEY = "resign"


@dataclass(frozen=True, slots=True)
class SignResult:
    """The ConfigMap to write (None: nothing to change) and when to look again."""

    configmap: JsonObject | None
    next_expiry: dt.datetime | None


def signing_tokens(
    secrets: Iterable[JsonObject], now: dt.datetime
) -> tuple[dict[str, str], dt.datetime | None]:
    """Signing-valid ``{token_id: token_secret}`` and the earliest future expiration among them."""
    tokens: dict[str, str] = {}
    next_expiry: dt.datetime | None = None
    for secret in secrets:
        if secret.get("type") != bt.SECRET_TYPE:
            continue
        name_id = bt.token_id_from_secret_name(str((secret.get("metadata") or {}).get("name")))
        data = bt.decode_data(secret)
        token_id, token_secret = data.get(bt.TOKEN_ID_KEY, ""), data.get(bt.TOKEN_SECRET_KEY, "")
        if name_id is None or not token_id or token_id != name_id or not token_secret:
            continue
        if bt.is_expired(data, now) or not bt.has_usage(data, "signing"):
            continue
        if token_id in tokens:
            continue
        tokens[token_id] = token_secret
        expiry = bt.get_expiration(data)
        if expiry is not None and (next_expiry is None or expiry < next_expiry):
            next_expiry = expiry
    return tokens, next_expiry


def sign_cluster_info(
    configmap: JsonObject | None, secrets: Iterable[JsonObject], now: dt.datetime
) -> SignResult:
    if configmap is None:
        return SignResult(None, None)
    data = dict(configmap.get("data") or {})
    content = data.get(bt.KUBECONFIG_KEY)
    if content is None:
        return SignResult(None, None)
    stale = {k: v for k, v in data.items() if k.startswith(bt.JWS_SIGNATURE_KEY_PREFIX)}
    new_data = {k: v for k, v in data.items() if k not in stale}
    tokens, next_expiry = signing_tokens(secrets, now)
    changed = False
    for token_id, token_secret in tokens.items():
        key = bt.JWS_SIGNATURE_KEY_PREFIX + token_id
        signature = detached_jws(content, token_id, token_secret)
        if stale.pop(key, None) != signature:
            changed = True
        new_data[key] = signature
    if not changed and not stale:
        return SignResult(None, next_expiry)
    updated = copy.deepcopy(configmap)
    updated["data"] = new_data
    return SignResult(updated, next_expiry)


async def run_bootstrapsigner(
    client: ApiClient,
    configmaps: Informer,
    secrets: Informer,
    configmap_res: ResourceInfo,
    clock: Clock,
) -> None:
    queue: WorkQueue[str] = WorkQueue()
    configmaps.add_handler(lambda _event, _obj: queue.add(_RESIGN_KEY))
    secrets.add_handler(lambda _event, _obj: queue.add(_RESIGN_KEY))
    cluster_info_key = f"{bt.CLUSTER_INFO_NAMESPACE}/{bt.CLUSTER_INFO_CONFIGMAP}"

    async def handle(_key: str) -> None:
        await configmaps.wait_synced()
        await secrets.wait_synced()
        now = clock.now()
        result = sign_cluster_info(configmaps.get(cluster_info_key), secrets.items(), now)
        if result.configmap is not None:
            with contextlib.suppress(Conflict, NotFound):
                await client.update(configmap_res, result.configmap, bt.CLUSTER_INFO_NAMESPACE)
        if result.next_expiry is not None:
            raise Requeue((result.next_expiry - now).total_seconds())

    await run_workers(CONTROLLER_NAME, queue, handle, 1)
