"""The node-source recorder against a real server's REST service (in process).

Two recorders stand for two serving processes (replicas or workers) writing the one
ConfigMap at once; the merged record must hold every sighting, bounded per node, and leave
out everyone who is not an authenticated node.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from kubeboot.api.registry.inprocess import InProcessClient
from kubeboot.api.server.nodesources import REFRESH, NodeSourceRecorder
from kubeboot.api.server.serve import SYSTEM_USER
from kubeboot.auth.interface import Credentials, UserInfo
from kubeboot.clock import FakeClock
from kubeboot.resources.nodesources import CONFIGMAP_NAME, MAX_ADDRESSES_PER_NODE, NAMESPACE
from kubeboot.resources.registry import find_resource
from tests.conftest import RunningServer

CONFIGMAPS = find_resource("", "v1", "configmaps")
NODES = ("system:nodes", "system:authenticated")


def node(name: str) -> UserInfo:
    return UserInfo(f"system:node:{name}", groups=NODES)


def cert_from(address: str) -> Credentials:
    return Credentials(bearer=None, client_cert_der=b"der", remote_addr=address)


async def record(client: InProcessClient) -> dict[str, list[dict[str, Any]]]:
    assert CONFIGMAPS is not None
    cm = await client.get(CONFIGMAPS, CONFIGMAP_NAME, NAMESPACE)
    return {k: json.loads(v) for k, v in cm["data"].items()}


async def test_two_processes_merge_into_one_bounded_record(server: RunningServer) -> None:
    assert server.server is not None and server.server.rest is not None
    client = InProcessClient(server.server.rest, SYSTEM_USER)
    clock = FakeClock()
    first, second = NodeSourceRecorder(client, clock), NodeSourceRecorder(client, clock)

    first.observe(node("w1"), cert_from("10.0.0.1"))
    first.observe(node("w1"), Credentials("token", None, "::ffff:10.0.0.2"))
    second.observe(node("w2"), cert_from("10.0.0.3"))
    # Not nodes: a user named like one without the group, an admin, an unknown peer.
    impostor = UserInfo("system:node:w9", groups=("system:authenticated",))
    first.observe(impostor, cert_from("1.1.1.1"))
    first.observe(UserInfo("admin", groups=("system:masters",)), cert_from("1.1.1.2"))
    second.observe(node("w3"), cert_from("unix-socket"))
    await asyncio.gather(first.flush(), second.flush())  # one object, CAS retried on conflict

    seen = await record(client)
    assert set(seen) == {"w1", "w2"}
    assert {(s["address"], s["via"]) for s in seen["w1"]} == {
        ("10.0.0.1", "client-certificate"),
        ("10.0.0.2", "token"),  # IPv4-mapped IPv6 written as IPv4
    }
    assert seen["w2"][0]["firstSeen"] == "2026-01-01T00:00:00Z"

    # Seen again within REFRESH: nothing queued, nothing written.
    clock.advance(60)
    first.observe(node("w1"), cert_from("10.0.0.1"))
    assert not first._pending
    # After REFRESH: lastSeen moves, firstSeen stays.
    clock.advance(REFRESH.total_seconds())
    first.observe(node("w1"), cert_from("10.0.0.1"))
    await first.flush()
    (again,) = [s for s in (await record(client))["w1"] if s["address"] == "10.0.0.1"]
    assert again["firstSeen"] == "2026-01-01T00:00:00Z"
    assert again["lastSeen"] == "2026-01-01T01:01:00Z"

    # A roaming node keeps only its newest addresses.
    for i in range(10):
        clock.advance(1)
        second.observe(node("w2"), cert_from(f"10.0.1.{i}"))
    await second.flush()
    w2 = (await record(client))["w2"]
    assert len(w2) == MAX_ADDRESSES_PER_NODE
    assert w2[0]["address"] == "10.0.1.9"
    # What this process saw is also readable from memory (the in-server approver's view).
    assert second.sightings("w2")[0].address == "10.0.1.9"
