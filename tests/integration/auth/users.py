"""Users for the authorization tests: static-token users, an admin, and RBAC grants.

``TokenUsers`` starts a server with a ``--token-auth-file`` listing the given users (token =
``<name>-token``), and ``call`` sends one request as any of them (``None``: the admin's client
certificate), returning the status code and the decoded body.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from tests.conftest import RunningServer, admin_ssl_context, call_as, in_process_server

RBAC = "/apis/rbac.authorization.k8s.io/v1"
RBAC_GROUP = "rbac.authorization.k8s.io"
Obj = dict[str, Any]


def token_of(user: str) -> str:
    return f"{user}-token"


@contextlib.asynccontextmanager
async def server_with_users(
    data: Path, users: Sequence[tuple[str, Sequence[str]]], **flags: object
) -> AsyncIterator[RunningServer]:
    """A server whose token file has ``(name, groups)`` users."""
    tokens = data.parent / f"{data.name}-tokens.csv"
    tokens.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{token_of(n)},{n},uid-{n}" + (f',"{",".join(g)}"' if g else "") for n, g in users]
    tokens.write_text("\n".join(lines) + "\n")
    async with in_process_server(data, token_auth_file=tokens, **flags) as running:
        yield running


async def call(
    running: RunningServer,
    method: str,
    path: str,
    body: Any = None,
    *,
    user: str | None = None,
    ctx: ssl.SSLContext | None = None,
    content_type: str | None = None,
) -> tuple[int, Obj]:
    """One request as ``user`` (a token user), or with ``ctx``, or as the admin."""
    if ctx is None and not user:
        ctx = admin_ssl_context(running)
    token = token_of(user) if user else None
    return await call_as(
        running, method, path, body, ctx=ctx, token=token, content_type=content_type
    )


async def admin(running: RunningServer, method: str, path: str, body: Any = None) -> Obj:
    """An admin request that must succeed."""
    status, out = await call(running, method, path, body)
    assert status < 300, (status, out)
    return out


def rule(verbs: list[str], groups: list[str], resources: list[str], **extra: Any) -> Obj:
    return {"verbs": verbs, "apiGroups": groups, "resources": resources, **extra}


def role(name: str, rules: list[Obj], kind: str = "Role", **extra: Any) -> Obj:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": kind,
        "metadata": {"name": name},
        "rules": rules,
        **extra,
    }


def binding(name: str, role_kind: str, role_name: str, user: str, kind: str = "RoleBinding") -> Obj:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": kind,
        "metadata": {"name": name},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": role_kind, "name": role_name},
        "subjects": [{"apiGroup": RBAC_GROUP, "kind": "User", "name": user}],
    }


async def grant(
    running: RunningServer, user: str, rules: list[Obj], namespace: str | None, name: str
) -> None:
    """As the admin: a (Cluster)Role with ``rules`` bound to ``user`` (cluster-wide if no ns)."""
    if namespace is None:
        await admin(running, "POST", f"{RBAC}/clusterroles", role(name, rules, "ClusterRole"))
        await admin(
            running,
            "POST",
            f"{RBAC}/clusterrolebindings",
            binding(name, "ClusterRole", name, user, "ClusterRoleBinding"),
        )
        return
    base = f"{RBAC}/namespaces/{namespace}"
    await admin(running, "POST", f"{base}/roles", role(name, rules))
    await admin(running, "POST", f"{base}/rolebindings", binding(name, "Role", name, user))
