"""kubeboot's ledger features across two replicas on etcd: a revocation made through one is
enforced by both within a second (kubectl gets a 401 naming it); a single-use token admits
one CSR in all, whichever replicas the CSRs reach."""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from pathlib import Path

import aiohttp
import pytest

from kubeboot.auth.mirror import resource_info
from kubeboot.client.http import HttpApiClient
from kubeboot.resources import bootstrap_token as bt
from kubeboot.resources import token_binding as tb
from kubeboot.resources.status import Forbidden
from tests.conftest import admin_ssl_context, server_process_running
from tests.integration.ledger.nodecerts import (
    issued_node_identity,
    kubeboot,
    node_csr,
    node_kubeconfig,
)
from tests.integration.replicas.conftest import (
    EtcdCluster,
    Replicas,
    admin_client,
    etcd_flags,
    start_replicas,
    token_client,
)

pytestmark = pytest.mark.timeout(120)
PROPAGATION_LIMIT = 1.0  # seconds: the "within a second"
SECRETS = resource_info("", "v1", "secrets")
CSRS = resource_info("certificates.k8s.io", "v1", "certificatesigningrequests")


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


async def test_a_single_use_token_admits_one_csr_across_replicas(
    two_replicas: Replicas,
) -> None:
    """Both replicas spend from one Secret with compare-and-swap: one CSR in all."""
    try:
        a_url, b_url = two_replicas.urls
        token = bt.generate_token()
        secret = bt.build_secret(token, extra_groups=[bt.KUBEADM_DEFAULT_NODE_TOKEN_GROUP])
        for key, value in tb.binding_data(None, 1).items():
            secret["data"][key] = base64.b64encode(value.encode()).decode()
        async with admin_client(two_replicas.servers[0].kubeconfig, a_url) as admin:
            await admin.create(SECRETS, secret, bt.TOKEN_NAMESPACE)
        clients = [token_client(two_replicas.ca_file, url, token) for url in (a_url, b_url) * 4]
        await asyncio.sleep(0.5)  # both replicas' token caches have it

        async def create(i: int, client: HttpApiClient) -> str:
            async with client:
                try:
                    await client.create(CSRS, node_csr(f"race-{i}", f"race-{i}")[0])
                except Forbidden as exc:
                    return exc.message
                return "created"

        outcomes = await asyncio.gather(*(create(i, c) for i, c in enumerate(clients)))
        assert outcomes.count("created") == 1, outcomes
        assert all("is spent" in o for o in outcomes if o != "created"), outcomes
    finally:
        two_replicas.stop_all()
