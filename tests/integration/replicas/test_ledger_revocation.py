"""Revocation across two replicas on etcd: revoked through one, refused by both within a
second, by kubectl too (401 naming the revocation)."""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import admin_ssl_context, server_process_running
from tests.integration.ledger.nodecerts import issued_node_identity, kubeboot, node_kubeconfig
from tests.integration.replicas.conftest import EtcdCluster, Replicas, etcd_flags, start_replicas

pytestmark = pytest.mark.timeout(120)
PROPAGATION_LIMIT = 1.0  # seconds: the "within a second"


@pytest.fixture
def flags(etcd_cluster: EtcdCluster, etcd_prefix: str) -> list[str]:
    return etcd_flags(etcd_cluster, etcd_prefix)


@pytest.fixture
def two_replicas(flags: list[str], tmp_path: Path) -> Replicas:
    return start_replicas(tmp_path, 2, flags)


async def _status(url: str, ctx: ssl.SSLContext) -> int:
    connector = aiohttp.TCPConnector(ssl=ctx, force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(f"{url}/api/v1/nodes/gone") as resp,
    ):
        return resp.status


async def _until_refused(url: str, ctx: ssl.SSLContext, started: float) -> float:
    while await _status(url, ctx) != 401:
        if time.monotonic() - started > 5:
            raise AssertionError(f"{url} still accepts the revoked certificate after 5 s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_a_revoked_node_gets_401_on_every_replica_within_a_second(
    two_replicas: Replicas, flags: list[str], tmp_path: Path
) -> None:
    try:
        a, b = two_replicas.servers
        connector = aiohttp.TCPConnector(ssl=admin_ssl_context(a))
        async with aiohttp.ClientSession(base_url=a.url, connector=connector) as admin:
            ctx, kubeconfig_a, serial = await issued_node_identity(a, admin, "gone")
        crt, key = a.data_dir / "gone-issued.crt", a.data_dir / "gone-issued.key"
        kubeconfig_b = node_kubeconfig(tmp_path / "gone-b.conf", b.url, a.ca_file, crt, key)
        for url in two_replicas.urls:
            assert await _status(url, ctx) == 404  # authenticated everywhere

        await asyncio.to_thread(
            kubeboot, "certs", "revoke", "--node", "gone", "--reason", "decommissioned",
            kubeconfig=a.kubeconfig,
        )  # fmt: skip
        started = time.monotonic()  # the revocation is stored once the command returns
        delays = await asyncio.gather(
            *(_until_refused(url, ctx, started) for url in two_replicas.urls)
        )
        print(f"revocation reached replica A in {delays[0] * 1000:.0f} ms, B in "
              f"{delays[1] * 1000:.0f} ms after the command returned")  # fmt: skip
        assert max(delays) < PROPAGATION_LIMIT

        for conf in (kubeconfig_a, kubeconfig_b):
            # kubectl's discovery hides a 401's message; --raw shows the server's words.
            refused = await asyncio.to_thread(
                a.kubectl, "get", "--raw", "/api/v1/nodes/gone", kubeconfig=conf, check=False
            )
            assert refused.returncode != 0
            assert f"client certificate serial {serial}" in refused.stderr
            assert "was revoked by kubernetes-admin" in refused.stderr
            assert "decommissioned" in refused.stderr

        # The list is stored: a restarted replica refuses the certificate from the start.
        two_replicas.stop_all()
        pki = a.data_dir / "pki"
        signing = [
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
        ]
        with server_process_running(b.data_dir, *flags, *signing) as again:
            assert await _status(again.url, ctx) == 401
    finally:
        two_replicas.stop_all()
