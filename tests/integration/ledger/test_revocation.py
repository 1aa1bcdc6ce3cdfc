"""Revocation on one server over HTTPS: by serial, by node (with --deny-rejoin), on Node
deletion; the node's requests get a 401 that names the revocation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from tests.conftest import RunningServer, admin_ssl_context, call_as, in_process_server
from tests.integration.api.test_rest_semantics import call
from tests.integration.ledger.nodecerts import CSRS, issued_node_identity, kubeboot, node_csr


async def test_revoke_by_serial_refuses_the_certificate_at_once(
    server: RunningServer, admin_http: aiohttp.ClientSession
) -> None:
    ctx, _, serial = await issued_node_identity(server, admin_http, "r1")
    status, _ = await call_as(server, "GET", "/api/v1/nodes/r1", ctx=ctx)
    assert status == 404  # authenticated (the node may read its own Node; none exists yet)

    out = await asyncio.to_thread(
        kubeboot,
        "certs",
        "revoke",
        "--serial",
        serial.upper(),
        "--reason",
        "key leaked",
        kubeconfig=server.kubeconfig,
    )
    assert f"certificate {serial} revoked" in out.stdout
    status, answer = await call_as(server, "GET", "/api/v1/nodes/r1", ctx=ctx)
    assert status == 401, answer
    assert f"client certificate serial {serial}" in answer["message"]
    assert "was revoked by kubernetes-admin" in answer["message"]
    assert "key leaked" in answer["message"]

    again = await asyncio.to_thread(
        kubeboot, "certs", "revoke", "--serial", serial, kubeconfig=server.kubeconfig
    )
    assert "was already revoked" in again.stdout
    listed = await asyncio.to_thread(
        kubeboot, "certs", "issued", "--node", "r1", kubeconfig=server.kubeconfig
    )
    assert serial in listed.stdout and "Revoked" in listed.stdout


async def test_revoke_node_with_deny_rejoin_refuses_new_csrs(
    server: RunningServer, admin_http: aiohttp.ClientSession
) -> None:
    ctx, _, serial = await issued_node_identity(server, admin_http, "r2")
    out = await asyncio.to_thread(
        kubeboot, "certs", "revoke", "--node", "r2", kubeconfig=server.kubeconfig
    )
    assert f"certificate {serial} revoked" in out.stdout
    assert "can still join again with a valid bootstrap token" in out.stderr
    status, _ = await call_as(server, "GET", "/api/v1/nodes/r2", ctx=ctx)
    assert status == 401
    body, _ = node_csr("csr-r2-again", "r2")
    status, _ = await call(admin_http, "POST", CSRS, body)
    assert status == 201  # revoking alone does not stop a re-join

    out = await asyncio.to_thread(
        kubeboot,
        "certs",
        "revoke",
        "--node",
        "r2",
        "--deny-rejoin",
        "--reason",
        "stolen",
        kubeconfig=server.kubeconfig,
    )
    assert "node r2 may not join again" in out.stdout
    body, _ = node_csr("csr-r2-third", "r2")
    status, answer = await call(admin_http, "POST", CSRS, body)
    assert status == 403, answer
    assert "node 'r2' may not join again" in answer["message"]
    assert "stolen" in answer["message"]


async def test_deleting_a_node_leaves_its_certificates_by_default(
    server: RunningServer, admin_http: aiohttp.ClientSession
) -> None:
    """As upstream: a kubelet whose Node was deleted registers it again with its certificate."""
    ctx, _, serial = await issued_node_identity(server, admin_http, "r5")
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "r5"}}
    status, answer = await call_as(server, "POST", "/api/v1/nodes", node, ctx=ctx)
    assert status == 201, answer
    await asyncio.to_thread(server.kubectl, "delete", "node", "r5")
    status, answer = await call_as(server, "POST", "/api/v1/nodes", node, ctx=ctx)
    assert status == 201, answer
    status, _ = await call(
        admin_http, "GET", f"/apis/ledger.kubeboot.io/v1/certificaterevocations/{serial}"
    )
    assert status == 404


async def test_deleting_a_node_revokes_its_certificates_when_asked(tmp_path: Path) -> None:
    async with in_process_server(tmp_path / "d", revoke_on_node_delete=True) as server:
        connector = aiohttp.TCPConnector(ssl=admin_ssl_context(server))
        async with aiohttp.ClientSession(base_url=server.url, connector=connector) as admin_http:
            await _deleting_the_node_revokes(server, admin_http)


async def _deleting_the_node_revokes(
    server: RunningServer, admin_http: aiohttp.ClientSession
) -> None:
    ctx, kubeconfig, serial = await issued_node_identity(server, admin_http, "r3")
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "r3"}}
    status, answer = await call_as(server, "POST", "/api/v1/nodes", node, ctx=ctx)
    assert status == 201, answer
    await asyncio.to_thread(server.kubectl, "get", "node", "r3", kubeconfig=kubeconfig)
    await asyncio.to_thread(server.kubectl, "delete", "node", "r3")
    refused = await asyncio.to_thread(
        server.kubectl, "get", "--raw", "/api/v1/nodes/r3", kubeconfig=kubeconfig, check=False
    )
    assert refused.returncode != 0
    assert f"client certificate serial {serial} (subject" in refused.stderr
    assert "the Node object was deleted by kubernetes-admin" in refused.stderr
    status, revocation = await call(
        admin_http, "GET", f"/apis/ledger.kubeboot.io/v1/certificaterevocations/{serial}"
    )
    assert status == 200
    assert revocation["spec"]["reason"] == "the Node object was deleted by kubernetes-admin"
    assert revocation["spec"]["revokedBy"] == "system:apiserver"


async def test_revocation_is_off_with_the_flag(tmp_path: Path) -> None:
    """--certificate-revocation=false: a revoked certificate still authenticates."""
    async with in_process_server(tmp_path / "d", certificate_revocation=False) as running:
        connector = aiohttp.TCPConnector(ssl=admin_ssl_context(running))
        async with aiohttp.ClientSession(base_url=running.url, connector=connector) as admin:
            ctx, _, serial = await issued_node_identity(running, admin, "r4")
            await asyncio.to_thread(
                kubeboot, "certs", "revoke", "--serial", serial, kubeconfig=running.kubeconfig
            )
            status, _ = await call_as(running, "GET", "/api/v1/nodes/r4", ctx=ctx)
            assert status == 404


async def test_revocations_are_validated_and_stamped_by_the_server(
    server: RunningServer, admin_http: aiohttp.ClientSession
) -> None:
    path = "/apis/ledger.kubeboot.io/v1/certificaterevocations"

    def body(name: str, serial: str) -> dict[str, object]:
        return {
            "apiVersion": "ledger.kubeboot.io/v1",
            "kind": "CertificateRevocation",
            "metadata": {"name": name},
            "spec": {"serialNumber": serial, "revokedBy": "someone-else"},
        }

    status, answer = await call(admin_http, "POST", path, body("00ab", "00ab"))
    assert status == 422, answer
    assert "lowercase hex without leading zeros" in answer["message"]
    status, answer = await call(admin_http, "POST", path, body("ab", "cd"))
    assert status == 422 and "must equal metadata.name" in answer["message"]
    status, created = await call(admin_http, "POST", path, body("ab", "ab"))
    assert status == 201, created
    assert created["spec"]["revokedBy"] == "kubernetes-admin"  # the server's, not the body's
    status, answer = await call(admin_http, "PUT", f"{path}/ab", created)
    assert status == 405 and "created or deleted whole" in answer["message"]
