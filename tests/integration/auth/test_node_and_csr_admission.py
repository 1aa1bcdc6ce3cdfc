"""A node's identity and the CSR signer checks, end to end over TLS.

* ``system:node:a`` (a client certificate from the cluster CA, issued with
  ``kubeboot.pki.authority``) registers and updates its own Node; it may not read or write
  node b's (Node authorizer + NodeRestriction). It *may* create a CSR whose subject is
  ``system:node:b`` — upstream's server does not look inside CSRs at creation — but the
  server records ``spec.username = system:node:a``, and the approver, whose
  SubjectAccessReview asks about node a, leaves it pending while node a's own CSR is approved
  and issued.
* ``/approval`` and ``/status`` need ``approve`` / ``sign`` on ``signers`` for the CSR's
  signerName (server-facts §4.8), on top of ``update`` on the subresource.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from kubeboot.clock import SystemClock
from kubeboot.pki.csr import build_csr
from kubeboot.pki.keys import generate_private_key
from tests.conftest import (
    RunningServer,
    admin_ssl_context,
    call_as,
    cluster_ca,
    in_process_server,
    node_ssl_context,
)

CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
NODES = "/api/v1/nodes"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
BOB_TOKEN = "b0b-token-for-csr-tests"
SIGNER = "example.com/custom"  # no in-server controller acts on it
_PEM = Encoding.PEM


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[RunningServer]:
    tokens = tmp_path / "token.csv"
    tokens.write_text(f"{BOB_TOKEN},bob,uid-bob\n")
    async with in_process_server(tmp_path / "data", token_auth_file=tokens) as running:
        yield running


def _admin(running: RunningServer) -> ssl.SSLContext:
    return admin_ssl_context(running)


def _csr(name: str, cn: str, signer: str, usages: list[str]) -> dict[str, Any]:
    request = build_csr(generate_private_key(), common_name=cn, organizations=["system:nodes"])
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": base64.b64encode(request).decode(),
            "signerName": signer,
            "usages": usages,
        },
    }


def _node(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}


KUBELET_CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"
CLIENT_USAGES = ["digital signature", "client auth"]


async def test_a_node_touches_only_its_own_objects(running: RunningServer) -> None:
    a = node_ssl_context(running, "a")
    admin = _admin(running)
    assert (await call_as(running, "POST", NODES, _node("b"), ctx=admin))[0] == 201
    status, created = await call_as(running, "POST", NODES, _node("a"), ctx=a)
    assert status == 201, created
    status, own = await call_as(running, "GET", f"{NODES}/a", ctx=a)
    assert status == 200
    own["metadata"]["labels"] = {"ready": "yes"}
    assert (await call_as(running, "PUT", f"{NODES}/a", own, ctx=a))[0] == 200

    status, err = await call_as(running, "GET", f"{NODES}/b", ctx=a)
    assert status == 403
    assert "node 'a' cannot read 'b', only its own Node object" in err["message"]
    _, other = await call_as(running, "GET", f"{NODES}/b", ctx=admin)
    other["metadata"]["labels"] = {"hijacked": "yes"}
    status, err = await call_as(running, "PUT", f"{NODES}/b", other, ctx=a)
    assert status == 403
    assert err["message"].endswith('node "a" is not allowed to modify node "b"')

    # list/watch name the Node through metadata.name, as upstream's RequestInfo does.
    status, listed = await call_as(running, "GET", f"{NODES}?fieldSelector=metadata.name=a", ctx=a)
    assert status == 200
    assert [n["metadata"]["name"] for n in listed["items"]] == ["a"]
    status, err = await call_as(running, "GET", NODES, ctx=a)
    assert status == 403
    assert "can only list its own Node object" in err["message"]
    status, err = await call_as(running, "GET", f"{NODES}?fieldSelector=metadata.name=b", ctx=a)
    assert status == 403
    status, err = await call_as(running, "GET", f"{NODES}?watch=true", ctx=a)
    assert status == 403
    assert "can only watch its own Node object" in err["message"]
    status, err = await call_as(running, "POST", NODES, _node("c"), ctx=a)
    assert status == 403 and 'node "a" is not allowed to modify node "c"' in err["message"]
    assert (await call_as(running, "DELETE", f"{NODES}/b", ctx=a))[0] == 403
    status, err = await call_as(running, "GET", "/api/v1/namespaces/kube-system/secrets/x", ctx=a)
    assert status == 403 and "no relationship found between node 'a'" in err["message"]


async def _conditions(running: RunningServer, name: str) -> list[str]:
    _, obj = await call_as(running, "GET", f"{CSRS}/{name}", ctx=_admin(running))
    return [c["type"] for c in (obj.get("status") or {}).get("conditions") or []]


async def test_a_node_may_ask_for_another_name_but_the_approver_refuses(
    running: RunningServer,
) -> None:
    a = node_ssl_context(running, "a")
    asks_b = _csr("a-asks-b", "system:node:b", KUBELET_CLIENT, CLIENT_USAGES)
    status, other = await call_as(running, "POST", CSRS, asks_b, ctx=a)
    assert status == 201, other
    assert other["spec"]["username"] == "system:node:a"  # the server records who asked
    assert "system:nodes" in other["spec"]["groups"]
    renews = _csr("a-renews", "system:node:a", KUBELET_CLIENT, CLIENT_USAGES)
    status, own = await call_as(running, "POST", CSRS, renews, ctx=a)
    assert status == 201, own
    deadline = time.monotonic() + 10
    while "Approved" not in await _conditions(running, "a-renews"):
        assert time.monotonic() < deadline, "node a's own CSR was not approved"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # the approver has seen both; the other stays pending
    assert await _conditions(running, "a-asks-b") == []
    # a node reads CSRs back (the agent waits on its own) but cannot approve any
    status, got = await call_as(running, "GET", f"{CSRS}/a-asks-b", ctx=a)
    assert status == 200
    got.setdefault("status", {})["conditions"] = [
        {"type": "Approved", "status": "True", "reason": "Self", "message": "x"}
    ]
    status, err = await call_as(running, "PUT", f"{CSRS}/a-asks-b/approval", got, ctx=a)
    assert status == 403
    assert 'cannot update resource "certificatesigningrequests/approval"' in err["message"]


async def _bind(running: RunningServer, name: str, rules: list[dict[str, Any]]) -> None:
    admin = _admin(running)
    role = {"metadata": {"name": name}, "rules": rules}
    binding = {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}],
    }
    assert (await call_as(running, "POST", f"{RBAC}/clusterroles", role, ctx=admin))[0] == 201
    status, body = await call_as(running, "POST", f"{RBAC}/clusterrolebindings", binding, ctx=admin)
    assert status == 201, body


async def _until_status(
    running: RunningServer, method: str, path: str, body: Any, want: int
) -> dict[str, Any]:
    """RBAC follows a watch: retry briefly until a new binding is visible."""
    deadline = time.monotonic() + 5
    while True:
        status, got = await call_as(running, method, path, body, token=BOB_TOKEN)
        if status == want:
            return got
        assert time.monotonic() < deadline, (status, got)
        await asyncio.sleep(0.05)


async def test_approve_and_sign_need_the_signer_verbs(running: RunningServer) -> None:
    admin = _admin(running)
    status, csr = await call_as(
        running, "POST", CSRS, _csr("custom", "bob-client", SIGNER, CLIENT_USAGES), ctx=admin
    )
    assert status == 201, csr
    await _bind(
        running,
        "csr-updater",
        [
            {
                "apiGroups": ["certificates.k8s.io"],
                "resources": [
                    "certificatesigningrequests",
                    "certificatesigningrequests/approval",
                    "certificatesigningrequests/status",
                ],
                "verbs": ["get", "update"],
            }
        ],
    )
    _, csr = await call_as(running, "GET", f"{CSRS}/custom", ctx=admin)
    csr["status"] = {
        "conditions": [{"type": "Approved", "status": "True", "reason": "Ok", "message": "m"}]
    }
    err = await _until_status(running, "PUT", f"{CSRS}/custom/approval", csr, 403)
    assert err["message"] == f'user not permitted to approve requests with signerName "{SIGNER}"'

    await _bind(
        running,
        "custom-approver",
        [
            {
                "apiGroups": ["certificates.k8s.io"],
                "resources": ["signers"],
                "resourceNames": ["example.com/*"],  # the domain wildcard (§4.8, second check)
                "verbs": ["approve"],
            }
        ],
    )
    approved = await _until_status(running, "PUT", f"{CSRS}/custom/approval", csr, 200)
    assert [c["type"] for c in approved["status"]["conditions"]] == ["Approved"]

    request = x509.load_pem_x509_csr(base64.b64decode(approved["spec"]["request"]))
    cert = cluster_ca(running).sign_request(
        request, usages=CLIENT_USAGES, ttl=dt.timedelta(hours=1), clock=SystemClock()
    )
    approved["status"]["certificate"] = base64.b64encode(cert.public_bytes(_PEM)).decode()
    err = await _until_status(running, "PUT", f"{CSRS}/custom/status", approved, 403)
    assert err["message"] == f'user not permitted to sign requests with signerName "{SIGNER}"'

    await _bind(
        running,
        "custom-signer",
        [
            {
                "apiGroups": ["certificates.k8s.io"],
                "resources": ["signers"],
                "resourceNames": [SIGNER],
                "verbs": ["sign"],
            }
        ],
    )
    issued = await _until_status(running, "PUT", f"{CSRS}/custom/status", approved, 200)
    assert issued["status"]["certificate"] == approved["status"]["certificate"]
