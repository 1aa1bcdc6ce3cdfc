"""What the server sees of kubeboot's clients: one User-Agent per role, and a Node registration
that patches first (issue 16.6), read from the server's audit log.

``kubeboot join`` (discovery and the bootstrap CSR), the agent (its node certificate) and the
CLI (an admin kubeconfig) must each say ``kubeboot/<version> (<role>)``. The agent's Node
registration runs on every start and on every wake from the sleeper; the Node exists after
the first, so each later one must be a single status PATCH, not a POST answered 409.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubeboot import __version__
from kubeboot.agent.daemon import Agent, AgentOptions
from kubeboot.clock import SystemClock
from tests.conftest import RunningServer, server_process_running
from tests.integration.agent.nodes import NodePaths, join_info, run_kubeboot


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Path]]:
    root = tmp_path_factory.mktemp("audited")
    audit = root / "audit.log"
    with server_process_running(root / "data", "--audit-log-path", str(audit)) as running:
        yield running, audit


def _events(audit: Path) -> list[dict[str, Any]]:
    lines = audit.read_text().splitlines()
    return [e for e in map(json.loads, lines) if e.get("stage") == "ResponseComplete"]


def _node_calls(audit: Path, user: str) -> list[tuple[str, str, int]]:
    """(verb, subresource, code) of every request about Nodes made by ``user``, in order."""
    calls = []
    for event in _events(audit):
        ref = event.get("objectRef") or {}
        if ref.get("resource") == "nodes" and event.get("user", {}).get("username") == user:
            code = (event.get("responseStatus") or {}).get("code", 0)
            calls.append((event["verb"], ref.get("subresource", ""), code))
    return calls


async def _agent_once(node: NodePaths) -> None:
    """The agent in-process without rotation: make sure of the certificate, register, return."""
    options = AgentOptions(
        kubeconfig=node.kubeconfig,
        bootstrap_kubeconfig=node.bootstrap_kubeconfig,
        cert_dir=node.cert_dir,
        node_name=node.name,
        node_ips=["192.0.2.7"],
        rotate_certificates=False,
    )
    assert await Agent(options, SystemClock(), say=lambda _: None).run() is None


async def test_every_client_names_its_role_in_the_user_agent(
    audited: tuple[RunningServer, Path], tmp_path: Path
) -> None:
    running, audit = audited
    info = join_info(running)
    node = NodePaths(tmp_path, "ua-node")
    joined = run_kubeboot(*info.join_args, "--no-daemon", *node.flags())
    assert joined.returncode == 0, joined.stdout + joined.stderr
    listed = run_kubeboot("token", "list", "--kubeconfig", str(running.kubeconfig))
    assert listed.returncode == 0, listed.stderr
    await _agent_once(node)

    seen: dict[str, set[str]] = {}
    for event in _events(audit):
        user = event.get("user", {}).get("username", "")
        ua = event.get("userAgent", "")
        if ua.startswith("kubeboot"):
            seen.setdefault(user, set()).add(ua)
    token_id = info.token.split(".")[0]
    assert seen == {
        "system:anonymous": {f"kubeboot/{__version__} (join)"},  # discovery
        f"system:bootstrap:{token_id}": {f"kubeboot/{__version__} (join)"},  # the CSR
        "kubernetes-admin": {f"kubeboot/{__version__} (cli)"},
        "system:node:ua-node": {f"kubeboot/{__version__} (agent)"},
    }


async def test_registration_patches_the_node_and_creates_it_only_when_missing(
    audited: tuple[RunningServer, Path], tmp_path: Path
) -> None:
    running, audit = audited
    node = NodePaths(tmp_path, "patch-first")
    joined = run_kubeboot(*join_info(running).join_args, "--no-daemon", *node.flags())
    assert joined.returncode == 0, joined.stdout + joined.stderr

    await _agent_once(node)
    first = _node_calls(audit, f"system:node:{node.name}")
    assert first == [("patch", "status", 404), ("create", "", 201), ("patch", "status", 200)]

    await _agent_once(node)  # as on each wake from the sleeper
    assert _node_calls(audit, f"system:node:{node.name}")[len(first) :] == [
        ("patch", "status", 200)
    ]
    stored = running.kubectl("get", "node", node.name, "-o", "json").stdout
    addresses = json.loads(stored)["status"]["addresses"]
    assert {"type": "InternalIP", "address": "192.0.2.7"} in addresses
