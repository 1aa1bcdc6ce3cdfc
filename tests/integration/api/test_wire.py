"""Issue 17's wire behaviour over real HTTPS: server-side apply, what DELETE answers, metadata
views that must not leak Secret data, protobuf bodies authorized before they are decoded, and
what kube-controller-manager's node controllers write on a Node.

Expected values are what a real kube-apiserver v1.37.2 (with its controller manager) answered
to the same requests (the differential tier compares them continuously).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from kubeboot.resources.schemas import kind_schema
from tests.conftest import RunningServer, admin_ssl_context, node_ssl_context
from tests.protowire import encode

CM = "/api/v1/namespaces/default/configmaps"
SECRETS = "/api/v1/namespaces/default/secrets"
APPLY = {"Content-Type": "application/apply-patch+yaml"}


async def _call(
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, str]:
    data = body if isinstance(body, bytes | str) or body is None else json.dumps(body)
    hdrs = {"Content-Type": "application/json", **(headers or {})} if data is not None else {}
    hdrs.update(headers or {})
    async with http.request(method, path, data=data, headers=hdrs) as resp:
        raw = await resp.read()
        ctype = resp.headers.get("Content-Type", "")
        parsed: Any = json.loads(raw) if ctype.startswith("application/json") else raw
        return resp.status, parsed, ctype


def _cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


async def test_server_side_apply_creates_conflicts_forces_and_prunes(
    admin_http: aiohttp.ClientSession,
) -> None:
    path = f"{CM}/ssa"
    status, obj, _ = await _call(
        admin_http, "PATCH", f"{path}?fieldManager=alice", _cm("ssa", x="1", y="2"), APPLY
    )
    assert status == 201, obj
    assert obj["metadata"]["managedFields"][0]["manager"] == "alice"
    assert obj["metadata"]["managedFields"][0]["operation"] == "Apply"

    status, err, _ = await _call(
        admin_http, "PATCH", f"{path}?fieldManager=bob", _cm("ssa", x="9"), APPLY
    )
    assert status == 409
    assert err["message"] == 'Apply failed with 1 conflict: conflict with "alice": .data.x'
    assert err["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".data.x"}
    ]
    status, obj, _ = await _call(
        admin_http, "PATCH", f"{path}?fieldManager=bob&force=true", _cm("ssa", x="9"), APPLY
    )
    assert status == 200 and obj["data"] == {"x": "9", "y": "2"}

    # alice stops sending y: it is hers alone, so it goes; x is bob's now and stays
    status, obj, _ = await _call(
        admin_http, "PATCH", f"{path}?fieldManager=alice", _cm("ssa"), APPLY
    )
    assert status == 200 and obj["data"] == {"x": "9"}

    status, err, _ = await _call(admin_http, "PATCH", path, _cm("ssa"), APPLY)
    assert status == 422
    assert err["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required '
        "for apply patch"
    )
    wrong = {**_cm("ssa"), "kind": "Secret"}
    status, err, _ = await _call(admin_http, "PATCH", f"{path}?fieldManager=a", wrong, APPLY)
    assert (status, err["message"]) == (400, "invalid object type: /v1, Kind=Secret")


async def test_delete_answers_a_status_and_dry_run_deletes_nothing(
    admin_http: aiohttp.ClientSession,
) -> None:
    status, created, _ = await _call(admin_http, "POST", CM, _cm("gone"))
    assert status == 201
    status, answer, _ = await _call(admin_http, "DELETE", f"{CM}/gone?dryRun=All")
    assert status == 200 and answer["kind"] == "Status"
    status, _, _ = await _call(admin_http, "GET", f"{CM}/gone")
    assert status == 200
    status, answer, _ = await _call(admin_http, "DELETE", f"{CM}/gone")
    assert status == 200
    assert answer == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": "gone", "kind": "configmaps", "uid": created["metadata"]["uid"]},
    }


async def test_metadata_views_of_secrets_carry_no_data(admin_http: aiohttp.ClientSession) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "labels": {"a": "b"}},
        "stringData": {"password": "hunter2"},
    }
    status, _, _ = await _call(admin_http, "POST", SECRETS, secret)
    assert status == 201
    views = {
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1": f"{SECRETS}/s",
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1": SECRETS,
        "application/json;as=Table;g=meta.k8s.io;v=v1": f"{SECRETS}?includeObject=Metadata",
    }
    for accept, path in views.items():
        status, body, _ = await _call(admin_http, "GET", path, headers={"Accept": accept})
        assert status == 200, body
        text = json.dumps(body)
        assert "hunter2" not in text and "aHVudGVyMg==" not in text, accept
        assert '"password"' not in text
    status, table, _ = await _call(
        admin_http, "GET", f"{SECRETS}/s", headers={"Accept": next(iter(views))}
    )
    assert table["kind"] == "PartialObjectMetadata"
    assert table["metadata"]["labels"] == {"a": "b"}


async def test_unacceptable_accept_lists_the_representations(
    admin_http: aiohttp.ClientSession,
) -> None:
    status, body, ctype = await _call(admin_http, "GET", CM, headers={"Accept": "text/html"})
    assert (status, ctype) == (406, "application/json")
    assert body["message"].startswith("406: Not Acceptable\n\nAvailable representations: ")
    assert "application/vnd.kubernetes.protobuf" in body["message"]


async def test_a_forbidden_protobuf_delete_is_403_before_its_body_is_read(
    server: RunningServer,
) -> None:
    """client-go sends DeleteOptions as protobuf; a node may not delete a ConfigMap, and
    upstream says so (403) before decoding anything — even a body that does not decode."""
    connector = aiohttp.TCPConnector(ssl=node_ssl_context(server, "n1"))
    headers = {"Content-Type": "application/vnd.kubernetes.protobuf"}
    async with aiohttp.ClientSession(base_url=server.url, connector=connector) as node:
        for body in (b"k8s\x00\x0a\x02garbage", b"not protobuf at all"):
            async with node.delete(f"{CM}/kube-root-ca.crt", data=body, headers=headers) as resp:
                assert resp.status == 403
                assert (await resp.json(content_type=None))["reason"] == "Forbidden"


async def test_protobuf_delete_options_decode(server: RunningServer) -> None:
    options = kind_schema("meta.k8s.io", "v1", "DeleteOptions")
    assert options is not None
    body = encode({"apiVersion": "v1", "kind": "DeleteOptions", "dryRun": ["All"]}, options)
    connector = aiohttp.TCPConnector(ssl=admin_ssl_context(server))
    async with aiohttp.ClientSession(base_url=server.url, connector=connector) as admin:
        status, _, _ = await _call(admin, "POST", CM, _cm("pb-delete"))
        assert status == 201
        hdrs = {"Content-Type": "application/vnd.kubernetes.protobuf"}
        async with admin.delete(f"{CM}/pb-delete", data=body, headers=hdrs) as resp:
            assert resp.status == 200
        status, _, _ = await _call(admin, "GET", f"{CM}/pb-delete")
        assert status == 200  # dryRun=All came through the protobuf body


async def test_node_controllers_swap_condition_taints_and_annotate_ttl(
    admin_http: aiohttp.ClientSession,
) -> None:
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "worker", "labels": {"kubernetes.io/os": "linux"}},
    }
    status, created, _ = await _call(admin_http, "POST", "/api/v1/nodes", node)
    assert status == 201
    # the API server's admission taints it not-ready on create
    assert created["spec"]["taints"] == [
        {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
    ]

    async def until(check: Any) -> dict[str, Any]:
        async with asyncio.timeout(30):
            while True:
                _, got, _ = await _call(admin_http, "GET", "/api/v1/nodes/worker")
                if check(got):
                    return dict(got)
                await asyncio.sleep(0.05)

    # no Ready condition calls for no taint; ttl and the deprecated os label are written
    got = await until(
        lambda n: (
            not (n.get("spec") or {}).get("taints")
            and n["metadata"].get("annotations", {}).get("node.alpha.kubernetes.io/ttl") == "0"
            and n["metadata"]["labels"].get("beta.kubernetes.io/os") == "linux"
        )
    )
    managers = {e["manager"] for e in got["metadata"]["managedFields"]}
    assert "kube-controller-manager" in managers
    status, _, _ = await _call(
        admin_http,
        "PATCH",
        "/api/v1/nodes/worker/status",
        {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "X"}]}},
        {"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert status == 200
    await until(
        lambda n: (
            (n.get("spec") or {}).get("taints")
            == [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]
        )
    )


async def test_admission_speaks_before_a_stale_resource_version(server: RunningServer) -> None:
    """Upstream compares resourceVersions after mutating admission: a node writing another
    node's object with a stale version hears 403 (NodeRestriction), not 409."""
    admin = aiohttp.TCPConnector(ssl=admin_ssl_context(server))
    async with aiohttp.ClientSession(base_url=server.url, connector=admin) as http:
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "b"}}
        status, created, _ = await _call(http, "POST", "/api/v1/nodes", node)
        assert status == 201
    stale = {**created, "metadata": {**created["metadata"], "resourceVersion": "1"}}
    connector = aiohttp.TCPConnector(ssl=node_ssl_context(server, "a"))
    async with aiohttp.ClientSession(base_url=server.url, connector=connector) as node_a:
        status, err, _ = await _call(node_a, "PUT", "/api/v1/nodes/b", stale)
    assert status == 403, err
    assert err["message"] == 'nodes "b" is forbidden: node "a" is not allowed to modify node "b"'
