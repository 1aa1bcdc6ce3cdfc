"""The user-facing roles work end to end (issue 13, item 7): ``admin``, ``edit`` and ``view``
get their rules from the clusterrole-aggregation controller, ``kubectl create rolebinding
--clusterrole=edit`` grants what upstream's ``edit`` grants, and a ClusterRole labelled
``aggregate-to-view`` flows into view, edit and admin (and out again when unlabelled)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from tests.conftest import RunningServer

VIEW_LABEL = "rbac.authorization.k8s.io/aggregate-to-view"
CUSTOM_RULE = {"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get"]}


def _rules(server: RunningServer, name: str) -> list[dict[str, Any]]:
    out = server.kubectl("get", "clusterrole", name, "-o", "json").stdout
    return list(json.loads(out).get("rules") or [])


async def _kubectl(server: RunningServer, *args: str, check: bool = True) -> str:
    """kubectl off the event loop (the in-process server serves from it)."""
    result = await asyncio.to_thread(server.kubectl, *args, check=check)
    return result.stdout.strip()


async def _until(check: Any, what: str) -> None:
    deadline = time.monotonic() + 20
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def test_edit_binds_upstreams_edit_rules(server: RunningServer) -> None:
    parts = {
        name: await asyncio.to_thread(_rules, server, f"system:aggregate-to-{name}")
        for name in ("view", "edit", "admin")
    }
    await _until(lambda: _rules(server, "view") == parts["view"], "view's rules")
    await _until(
        lambda: all(r in _rules(server, "admin") for p in parts.values() for r in p),
        "admin to hold view's, edit's and admin's parts",
    )
    await _kubectl(
        server,
        "create",
        "rolebinding",
        "jane-edit",
        "--clusterrole=edit",
        "--user=jane",
        "-n",
        "default",
    )
    for args, want in (
        (["create", "configmaps", "-n", "default"], "yes"),
        (["get", "secrets", "-n", "default"], "yes"),
        (["create", "rolebindings.rbac.authorization.k8s.io", "-n", "default"], "no"),  # admin's
        (["get", "configmaps", "-n", "kube-system"], "no"),
    ):
        got = await _kubectl(server, "auth", "can-i", *args, "--as=jane", check=False)
        assert got == want, args


async def test_a_labelled_role_flows_into_view_edit_and_admin(server: RunningServer) -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "widget-reader"},
        "rules": [CUSTOM_RULE],
    }
    await asyncio.to_thread(server.kubectl, "create", "-f", "-", input=json.dumps(role))
    await _kubectl(server, "label", "clusterrole", "widget-reader", f"{VIEW_LABEL}=true")
    for name in ("view", "edit", "admin"):
        await _until(lambda n=name: CUSTOM_RULE in _rules(server, n), f"{name} to aggregate")
    await _kubectl(server, "label", "clusterrole", "widget-reader", f"{VIEW_LABEL}-")
    for name in ("view", "edit", "admin"):
        await _until(lambda n=name: CUSTOM_RULE not in _rules(server, n), f"{name} to drop it")
