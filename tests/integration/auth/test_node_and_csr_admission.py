"""A node's identity and the CSR signer checks, end to end over TLS.

* ``system:node:a`` (a client certificate from the cluster CA, issued with
  ``kubeboot.pki.authority``) registers and updates its own Node; it may not read or write
  node b's (Node authorizer + NodeRestriction), nor create a kubelet CSR whose subject is
  ``system:node:b``, nor touch b's Lease, nor set restricted labels or change its taints —
  each refused with upstream's code and text.
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
    # Without the node controllers: they rewrite taints and annotations of every Node, which
    # would race the exact updates these NodeRestriction checks send.
    controllers = ("*", "bootstrapsigner", "tokencleaner", "-nodelifecycle", "-ttl")
    async with in_process_server(
        tmp_path / "data", token_auth_file=tokens, controllers=controllers
    ) as running:
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
    # The node controllers (ttl, nodelifecycle) write a new Node too: read-modify-write
    # again on a 409, as client-go's RetryOnConflict does.
    for _ in range(10):
        status, own = await call_as(running, "GET", f"{NODES}/a", ctx=a)
        assert status == 200
        own["metadata"]["labels"] = {"ready": "yes"}
        status, _ = await call_as(running, "PUT", f"{NODES}/a", own, ctx=a)
        if status != 409:
            break
    assert status == 200

    status, err = await call_as(running, "GET", f"{NODES}/b", ctx=a)
    assert status == 403
    assert err["message"] == (
        'nodes "b" is forbidden: User "system:node:a" cannot get resource "nodes" in API group '
        "\"\" at the cluster scope: node: node 'a' cannot read 'b', only its own Node object"
    )
    _, other = await call_as(running, "GET", f"{NODES}/b", ctx=admin)
    other["metadata"]["labels"] = {"hijacked": "yes"}
    status, err = await call_as(running, "PUT", f"{NODES}/b", other, ctx=a)
    assert status == 403
    assert err["message"] == 'nodes "b" is forbidden: node "a" is not allowed to modify node "b"'

    # list/watch name the Node through metadata.name, as upstream's RequestInfo does.
    status, listed = await call_as(running, "GET", f"{NODES}?fieldSelector=metadata.name=a", ctx=a)
    assert status == 200
    assert [n["metadata"]["name"] for n in listed["items"]] == ["a"]
    status, err = await call_as(running, "GET", NODES, ctx=a)
    assert status == 403
    assert err["message"] == (
        'nodes is forbidden: User "system:node:a" cannot list resource "nodes" in API group "" '
        "at the cluster scope: node: node 'a' cannot read all nodes, only its own Node object"
    )
    status, err = await call_as(running, "GET", f"{NODES}?fieldSelector=metadata.name=b", ctx=a)
    assert status == 403
    status, err = await call_as(running, "GET", f"{NODES}?watch=true", ctx=a)
    assert status == 403
    assert err["message"].endswith("node: node 'a' cannot read all nodes, only its own Node object")
    status, err = await call_as(running, "POST", NODES, _node("c"), ctx=a)
    assert status == 403 and 'node "a" is not allowed to modify node "c"' in err["message"]
    assert (await call_as(running, "DELETE", f"{NODES}/b", ctx=a))[0] == 403
    status, err = await call_as(running, "GET", "/api/v1/namespaces/kube-system/secrets/x", ctx=a)
    assert status == 403
    assert err["message"] == (
        'secrets "x" is forbidden: User "system:node:a" cannot get resource "secrets" in API '
        'group "" in the namespace "kube-system": node: no relationship found between node \'a\' '
        "and this object"
    )


async def _conditions(running: RunningServer, name: str) -> list[str]:
    _, obj = await call_as(running, "GET", f"{CSRS}/{name}", ctx=_admin(running))
    return [c["type"] for c in (obj.get("status") or {}).get("conditions") or []]


async def test_a_node_asks_only_for_its_own_name_and_cannot_approve(
    running: RunningServer,
) -> None:
    """NodeRestriction: a kubelet CSR (client or serving signer) must name the node itself."""
    a = node_ssl_context(running, "a")
    for signer, usages in (
        (KUBELET_CLIENT, CLIENT_USAGES),
        ("kubernetes.io/kubelet-serving", ["digital signature", "server auth"]),
    ):
        asks_b = _csr("a-asks-b", "system:node:b", signer, usages)
        status, err = await call_as(running, "POST", CSRS, asks_b, ctx=a)
        assert (status, err["reason"]) == (403, "Forbidden")
        assert err["message"] == (
            'certificatesigningrequests.certificates.k8s.io "a-asks-b" is forbidden: can only '
            "create a node CSR with CN=system:node:a"
        )
    renews = _csr("a-renews", "system:node:a", KUBELET_CLIENT, CLIENT_USAGES)
    status, own = await call_as(running, "POST", CSRS, renews, ctx=a)
    assert status == 201, own
    assert own["spec"]["username"] == "system:node:a"  # the server records who asked
    deadline = time.monotonic() + 10
    while "Approved" not in await _conditions(running, "a-renews"):
        assert time.monotonic() < deadline, "node a's own CSR was not approved"
        await asyncio.sleep(0.05)
    # a node reads CSRs back (the agent waits on its own) but cannot approve any
    status, got = await call_as(running, "GET", f"{CSRS}/a-renews", ctx=a)
    assert status == 200
    got.setdefault("status", {})["conditions"] = [
        {"type": "Denied", "status": "True", "reason": "Self", "message": "x"}
    ]
    status, err = await call_as(running, "PUT", f"{CSRS}/a-renews/approval", got, ctx=a)
    assert status == 403
    assert 'cannot update resource "certificatesigningrequests/approval"' in err["message"]


LEASES = "/apis/coordination.k8s.io/v1/namespaces"


def _lease(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"holderIdentity": name}}


async def test_node_leases_labels_and_taints(running: RunningServer) -> None:
    a = node_ssl_context(running, "a")
    admin = _admin(running)
    status, err = await call_as(
        running, "POST", f"{LEASES}/kube-node-lease/leases", _lease("b"), ctx=a
    )
    assert status == 403
    assert err["message"] == (
        'leases.coordination.k8s.io "b" is forbidden: can only access node lease with the same '
        "name as the requesting node"
    )
    status, _ = await call_as(
        running, "POST", f"{LEASES}/kube-node-lease/leases", _lease("a"), ctx=a
    )
    assert status == 201
    status, err = await call_as(running, "POST", f"{LEASES}/default/leases", _lease("a"), ctx=a)
    assert status == 403
    assert err["message"] == (
        'leases.coordination.k8s.io is forbidden: User "system:node:a" cannot create resource '
        '"leases" in API group "coordination.k8s.io" in the namespace "default": node: can only '
        'access leases in the "kube-node-lease" system namespace'
    )
    # the admin's lease for b: a may neither read, update nor delete it
    await call_as(running, "POST", f"{LEASES}/kube-node-lease/leases", _lease("b"), ctx=admin)
    status, err = await call_as(running, "DELETE", f"{LEASES}/kube-node-lease/leases/b", ctx=a)
    assert status == 403
    assert err["message"].endswith(
        "node: can only access node lease with the same name as the requesting node"
    )

    labelled = _node("a") | {
        "metadata": {"name": "a", "labels": {"node-restriction.kubernetes.io/pool": "gpu"}}
    }
    status, err = await call_as(running, "POST", NODES, labelled, ctx=a)
    assert status == 403
    assert err["message"] == (
        'nodes "a" is forbidden: node "a" is not allowed to set the following labels: '
        "node-restriction.kubernetes.io/pool"
    )
    tainted = {**_node("a"), "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}
    assert (await call_as(running, "POST", NODES, tainted, ctx=a))[0] == 201
    _, own = await call_as(running, "GET", f"{NODES}/a", ctx=a)
    own["spec"]["taints"] = []
    status, err = await call_as(running, "PUT", f"{NODES}/a", own, ctx=a)
    assert status == 403
    assert err["message"] == 'nodes "a" is forbidden: node "a" is not allowed to modify taints'
    patch = {"metadata": {"labels": {"node-role.kubernetes.io/control-plane": ""}}}
    status, err = await call_as(
        running, "PATCH", f"{NODES}/a", patch, ctx=a, content_type="application/merge-patch+json"
    )
    assert status == 403
    assert err["message"] == (
        'nodes "a" is forbidden: is not allowed to modify labels: '
        "node-role.kubernetes.io/control-plane"
    )
    # its own kubelet labels are fine; the admin may do anything
    ok = {"metadata": {"labels": {"kubernetes.io/hostname": "a", "example.com/x": "y"}}}
    status, _ = await call_as(
        running, "PATCH", f"{NODES}/a", ok, ctx=a, content_type="application/merge-patch+json"
    )
    assert status == 200
    status, _ = await call_as(
        running,
        "PATCH",
        f"{NODES}/a",
        patch,
        ctx=admin,
        content_type="application/merge-patch+json",
    )
    assert status == 200


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
