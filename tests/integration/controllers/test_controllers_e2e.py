"""All controllers as the real kubeboot server runs them, observed through its HTTPS API.

The server, its storage, authorization and CSR strategy are real; objects are created over
HTTPS with the admin kubeconfig like a user would. Timings are the real ones except where
the test chooses short token lifetimes.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from kubeboot.client.http import HttpApiClient
from kubeboot.client.interface import JsonObject
from kubeboot.clock import format_time
from kubeboot.controllers.leader import LEASE_RESOURCE
from kubeboot.pki.csr import KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER, build_csr
from kubeboot.pki.jws import verify_detached_jws
from kubeboot.pki.keys import generate_private_key
from kubeboot.pki.kubeconfig import cluster_info_kubeconfig
from kubeboot.resources import bootstrap_token as bt
from kubeboot.resources.registry import find_resource
from kubeboot.resources.status import AlreadyExists, NotFound
from tests.conftest import RunningServer

CSR = find_resource("certificates.k8s.io", "v1", "certificatesigningrequests")
SECRET = find_resource("", "v1", "secrets")
CONFIGMAP = find_resource("", "v1", "configmaps")
assert CSR is not None
assert SECRET is not None
assert CONFIGMAP is not None


@pytest.fixture
async def controllers(server: RunningServer) -> AsyncIterator[HttpApiClient]:
    """An admin client; the server runs every controller in-process, as it does in production
    (``*,bootstrapsigner,tokencleaner``, one service account per controller, Lease-elected)."""
    async with HttpApiClient.from_kubeconfig(str(server.kubeconfig)) as admin:
        yield admin


async def _eventually(
    probe: Callable[[], Awaitable[JsonObject | None]], within: float = 10
) -> JsonObject:
    async with asyncio.timeout(within):
        while True:
            result = await probe()
            if result is not None:
                return result
            await asyncio.sleep(0.05)


def _csr(name: str, pem: bytes, signer: str, usages: list[str]) -> JsonObject:
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": base64.b64encode(pem).decode(),
            "signerName": signer,
            "usages": usages,
        },
    }


async def test_node_client_csr_is_approved_and_signed(
    controllers: HttpApiClient, server: RunningServer, tmp_path: Path
) -> None:
    assert CSR is not None
    pem = build_csr(
        generate_private_key(), common_name="system:node:w1", organizations=["system:nodes"]
    )
    await controllers.create(
        CSR, _csr("node-csr-1", pem, KUBELET_CLIENT_SIGNER, ["digital signature", "client auth"])
    )

    async def issued() -> JsonObject | None:
        obj = await controllers.get(CSR, "node-csr-1")
        return obj if (obj.get("status") or {}).get("certificate") else None

    csr = await _eventually(issued)
    approved = [c for c in csr["status"]["conditions"] if c["type"] == "Approved"]
    assert approved[0]["reason"] == "AutoApproved"
    assert approved[0]["message"] == (
        "Auto approving kubelet client certificate after SubjectAccessReview."
    )
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(base64.b64decode(csr["status"]["certificate"]))
    proc = await asyncio.create_subprocess_exec(
        *("openssl", "verify", "-purpose", "sslclient", "-CAfile", str(server.ca_file), str(leaf)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err


async def test_rule_violation_becomes_a_failed_condition(controllers: HttpApiClient) -> None:
    assert CSR is not None
    pem = build_csr(
        generate_private_key(), common_name="system:node:w1", organizations=["system:nodes"]
    )
    created = await controllers.create(
        CSR,
        _csr("serving-no-san", pem, KUBELET_SERVING_SIGNER, ["digital signature", "server auth"]),
    )
    created["status"] = {
        "conditions": [
            {"type": "Approved", "status": "True", "reason": "Test", "message": "by test"}
        ]
    }
    await controllers.update(CSR, created, subresource="approval")

    async def failed() -> JsonObject | None:
        obj = await controllers.get(CSR, "serving-no-san")
        conds = [
            c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "Failed"
        ]
        return conds[0] if conds else None

    cond = await _eventually(failed)
    assert cond["reason"] == "SignerValidationFailure"
    assert cond["message"] == "DNS or IP subjectAltName is required"


def _token_secret(token_id: str, secret: str, **extra: str) -> JsonObject:
    data = {"token-id": token_id, "token-secret": secret, **extra}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
        "type": bt.SECRET_TYPE,
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


async def test_cluster_info_signed_and_stale_signature_removed(
    controllers: HttpApiClient, server: RunningServer
) -> None:
    assert CONFIGMAP is not None
    assert SECRET is not None
    content = cluster_info_kubeconfig(server.url, server.ca_file.read_bytes())
    try:
        await controllers.create(
            CONFIGMAP,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "cluster-info", "namespace": "kube-public"},
                "data": {"kubeconfig": content},
            },
            "kube-public",
        )
    except AlreadyExists:  # the server publishes its own cluster-info on first start
        existing = await controllers.get(CONFIGMAP, "cluster-info", "kube-public")
        content = existing["data"]["kubeconfig"]
    await controllers.create(
        SECRET,
        _token_secret("abcdef", "0123456789abcdef", **{"usage-bootstrap-signing": "true"}),
        "kube-system",
    )
    await controllers.create(SECRET, _token_secret("nosign", "0123456789abcdef"), "kube-system")

    async def signed() -> JsonObject | None:
        cm = await controllers.get(CONFIGMAP, "cluster-info", "kube-public")
        return cm if "jws-kubeconfig-abcdef" in cm.get("data", {}) else None

    cm = await _eventually(signed)
    verify_detached_jws(cm["data"]["jws-kubeconfig-abcdef"], content, "abcdef", "0123456789abcdef")
    assert "jws-kubeconfig-nosign" not in cm["data"]

    await controllers.delete(SECRET, "bootstrap-token-abcdef", "kube-system")

    async def unsigned() -> JsonObject | None:
        cm = await controllers.get(CONFIGMAP, "cluster-info", "kube-public")
        return cm if "jws-kubeconfig-abcdef" not in cm.get("data", {}) else None

    await _eventually(unsigned)


async def test_expired_tokens_are_deleted_on_time(controllers: HttpApiClient) -> None:
    assert SECRET is not None
    # Expires 5 to 6 s from now (whole seconds). With 2 s (1 to 2) the "not yet" look below
    # had as little as 0.9 s left on a loaded machine: one stall and the token was gone.
    soon = format_time(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=6))
    await controllers.create(
        SECRET, _token_secret("expsoo", "0123456789abcdef", expiration=soon), "kube-system"
    )
    await controllers.create(
        SECRET, _token_secret("badexp", "0123456789abcdef", expiration="tomorrow"), "kube-system"
    )
    await controllers.create(SECRET, _token_secret("forevr", "0123456789abcdef"), "kube-system")

    async def gone(name: str) -> Callable[[], Awaitable[JsonObject | None]]:
        async def probe() -> JsonObject | None:
            try:
                await controllers.get(SECRET, name, "kube-system")
            except NotFound:
                return {}
            return None

        return probe

    await _eventually(await gone("bootstrap-token-badexp"), within=5)
    await controllers.get(SECRET, "bootstrap-token-expsoo", "kube-system")  # not yet
    await _eventually(await gone("bootstrap-token-expsoo"), within=12)
    await controllers.get(SECRET, "bootstrap-token-forevr", "kube-system")


async def test_the_manager_holds_the_lease(controllers: HttpApiClient) -> None:
    async def held() -> JsonObject | None:
        try:
            lease = await controllers.get(LEASE_RESOURCE, "kube-controller-manager", "kube-system")
        except NotFound:
            return None
        return lease

    lease = await _eventually(held)
    assert lease["spec"]["holderIdentity"]
    assert lease["spec"]["leaseDurationSeconds"] == 15
