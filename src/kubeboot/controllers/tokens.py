"""serviceaccount-token: fills legacy ServiceAccount token Secrets and removes them with their
ServiceAccount (upstream ``pkg/controller/serviceaccount/tokens_controller.go``).

A Secret of type ``kubernetes.io/service-account-token`` names its ServiceAccount in the
annotation ``kubernetes.io/service-account.name``. Decision (pure, :func:`token_secret_change`):

* the ServiceAccount is missing, or its UID is not the Secret's
  ``kubernetes.io/service-account.uid`` → delete the Secret (UID precondition): its token dies
  with the account, and a recreated account of the same name does not inherit it;
* otherwise, when ``token`` is empty, ``ca.crt`` is not the root CA or ``namespace`` is not the
  Secret's → update it with a legacy token signed now (``iss: kubernetes/serviceaccount``,
  never expiring), the CA, the namespace and the UID annotation;
* otherwise nothing.

Work items are Secret keys; a ServiceAccount event queues every token Secret of its
namespace that names it; a ServiceAccount the cache lacks is read from the API before its
Secrets are judged (a Secret created right after its account must not be deleted). Writes
that lose a race (409) or find nothing (404) are left to the next event.
"""

from __future__ import annotations

import base64
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from kubeboot.client.interface import ApiClient, JsonObject
from kubeboot.controllers.runtime import Informer, WorkQueue, object_key, run_workers
from kubeboot.resources import serviceaccount as sa
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.status import Conflict, NotFound

__all__ = [
    "CONTROLLER_NAME",
    "LEGACY_SECRET_SUFFIX",
    "TOKEN_SECRETS_FIELD_SELECTOR",
    "TokenSecretChange",
    "ensure_legacy_token_secrets",
    "run_tokens_controller",
    "token_secret_change",
]

CONTROLLER_NAME = "serviceaccount-token"
# Before 1.24 the tokens controller made <sa>-token-<5 random> for every ServiceAccount.
LEGACY_SECRET_SUFFIX = "-token-"
TOKEN_SECRETS_FIELD_SELECTOR = f"type={sa.TOKEN_SECRET_TYPE}"

log = logging.getLogger(__name__)

# (namespace, ServiceAccount name, ServiceAccount UID, Secret name) -> a signed legacy token
SignLegacy = Callable[[str, str, str, str], str]


@dataclass(frozen=True, slots=True)
class TokenSecretChange:
    action: Literal["delete", "update"]
    secret: JsonObject


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def token_secret_change(
    secret: JsonObject, account: JsonObject | None, ca_pem: bytes, sign: SignLegacy
) -> TokenSecretChange | None:
    """What to do with a token Secret, given its ServiceAccount (None when missing)."""
    meta = secret.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    sa_name = str(annotations.get(sa.SA_NAME_ANNOTATION) or "")
    sa_uid = str(((account or {}).get("metadata") or {}).get("uid") or "")
    if account is None or not sa.is_token_secret_for(secret, sa_name, sa_uid):
        return TokenSecretChange("delete", secret)
    has_token = bool(sa.secret_data(secret, sa.TOKEN_KEY))
    if (
        has_token
        and sa.secret_data(secret, sa.TOKEN_CA_KEY) == ca_pem
        and sa.secret_data(secret, sa.TOKEN_NAMESPACE_KEY) == namespace.encode()
        and annotations.get(sa.SA_UID_ANNOTATION) == sa_uid
    ):
        return None
    data = dict(secret.get("data") or {})
    if not has_token:
        data[sa.TOKEN_KEY] = _b64(sign(namespace, sa_name, sa_uid, name).encode())
    data[sa.TOKEN_CA_KEY] = _b64(ca_pem)
    data[sa.TOKEN_NAMESPACE_KEY] = _b64(namespace.encode())
    updated_meta = {**meta, "annotations": {**annotations, sa.SA_UID_ANNOTATION: sa_uid}}
    return TokenSecretChange("update", {**secret, "metadata": updated_meta, "data": data})


async def run_tokens_controller(
    client: ApiClient,
    secrets: Informer,
    service_accounts: Informer,
    secret_res: ResourceInfo,
    sa_res: ResourceInfo,
    ca_pem: bytes,
    sign: SignLegacy,
) -> None:
    """Run until cancelled. ``secrets`` caches the token Secrets of every namespace
    (:data:`TOKEN_SECRETS_FIELD_SELECTOR`), ``service_accounts`` every ServiceAccount."""
    queue: WorkQueue[str] = WorkQueue()

    def on_secret(event: str, obj: JsonObject) -> None:
        if event != "DELETED":
            queue.add(object_key(obj))

    def on_service_account(event: str, obj: JsonObject) -> None:
        meta = obj.get("metadata") or {}
        for secret in secrets.items():
            secret_meta = secret.get("metadata") or {}
            annotations = secret_meta.get("annotations") or {}
            if secret_meta.get("namespace") == meta.get("namespace") and annotations.get(
                sa.SA_NAME_ANNOTATION
            ) == meta.get("name"):
                queue.add(object_key(secret))

    secrets.add_handler(on_secret)
    service_accounts.add_handler(on_service_account)

    async def handle(key: str) -> None:
        secret = secrets.get(key)
        if secret is None:
            return
        meta = secret.get("metadata") or {}
        namespace = str(meta.get("namespace") or "")
        sa_name = str((meta.get("annotations") or {}).get(sa.SA_NAME_ANNOTATION) or "")
        account = service_accounts.get(f"{namespace}/{sa_name}")
        if account is None and sa_name:  # maybe created a moment ago: ask, then judge
            with contextlib.suppress(NotFound):
                account = await client.get(sa_res, sa_name, namespace)
        change = token_secret_change(secret, account, ca_pem, sign)
        if change is None:
            return
        with contextlib.suppress(NotFound, Conflict):
            if change.action == "delete":
                await client.delete(
                    secret_res, str(meta.get("name")), namespace, uid=str(meta.get("uid") or "")
                )
                log.info(
                    "deleted token Secret %s: its ServiceAccount %s/%s is gone",
                    key,
                    namespace,
                    sa_name,
                )
            else:
                await client.update(secret_res, change.secret, namespace)
                log.info(
                    "filled in token Secret %s for ServiceAccount %s/%s", key, namespace, sa_name
                )

    await secrets.wait_synced()
    await service_accounts.wait_synced()
    for obj in secrets.items():
        on_secret("ADDED", obj)
    await run_workers(CONTROLLER_NAME, queue, handle, 1)


async def ensure_legacy_token_secrets(
    client: ApiClient, secret_res: ResourceInfo, namespace: str, names: list[str]
) -> list[str]:
    """A ``<sa>-token-xxxxx`` Secret for each ServiceAccount of ``names`` that has no token
    Secret yet (``--legacy-controller-token-secrets``); the tokens controller fills them.
    Returns the names created."""
    existing = await client.list(secret_res, namespace, field_selector=TOKEN_SECRETS_FIELD_SELECTOR)
    have = {
        ((item.get("metadata") or {}).get("annotations") or {}).get(sa.SA_NAME_ANNOTATION)
        for item in existing.get("items") or []
    }
    created = []
    for name in names:
        if name in have:
            continue
        secret = await client.create(
            secret_res,
            {
                "metadata": {
                    "generateName": f"{name}{LEGACY_SECRET_SUFFIX}",
                    "annotations": {sa.SA_NAME_ANNOTATION: name},
                },
                "type": sa.TOKEN_SECRET_TYPE,
            },
            namespace,
        )
        created.append(str((secret.get("metadata") or {}).get("name")))
    if created:
        log.warning(
            "created legacy ServiceAccount token Secrets %s in %s "
            "(--legacy-controller-token-secrets): their tokens never expire; delete them "
            "when the walk-through is done",
            ", ".join(created),
            namespace,
        )
    return created
