"""Servers initialising one empty cluster at the same instant agree on one join token."""

from __future__ import annotations

import asyncio

from kubeboot.api.registry.inprocess import InProcessClient
from kubeboot.api.server.serve import SYSTEM_USER
from kubeboot.clock import SystemClock
from kubeboot.clusterinit import INIT_TOKEN_DESCRIPTION, init_cluster
from kubeboot.resources import bootstrap_token as bt
from kubeboot.resources.registry import find_resource
from tests.conftest import RunningServer

SECRETS = find_resource("", "v1", "secrets")


async def _init_tokens(client: InProcessClient) -> list[str]:
    assert SECRETS is not None
    listed = await client.list(SECRETS, bt.TOKEN_NAMESPACE)
    return [
        s["metadata"]["name"]
        for s in listed["items"]
        if bt.decode_data(s).get(bt.DESCRIPTION_KEY) == INIT_TOKEN_DESCRIPTION
    ]


async def test_concurrent_first_starts_converge_on_the_oldest_token(
    server: RunningServer,
) -> None:
    assert server.server is not None and server.server.rest is not None
    assert server.server.pki is not None and SECRETS is not None
    client = InProcessClient(server.server.rest, SYSTEM_USER)
    for name in await _init_tokens(client):  # back to an empty cluster's state
        await client.delete(SECRETS, name, bt.TOKEN_NAMESPACE)
    ca_pem = server.server.pki.ca_cert_file.read_bytes()

    async def first_start() -> str:
        result = await init_cluster(client, server=server.url, ca_pem=ca_pem, clock=SystemClock())
        return result.token

    # Interleaved at every await: each lists (nothing), mints, then lists again.
    tokens = await asyncio.gather(*(first_start() for _ in range(3)))
    assert len(set(tokens)) == 1, tokens
    remaining = await _init_tokens(client)
    assert remaining == [f"bootstrap-token-{tokens[0].split('.')[0]}"]
    # and a later start reuses it
    assert await first_start() == tokens[0]
