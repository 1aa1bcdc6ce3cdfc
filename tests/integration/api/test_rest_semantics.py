"""REST semantics over real HTTPS: status codes, optimistic concurrency, lists, watches.

Every unhappy path also checks that nothing stored changed.
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import aiohttp
import pytest

from tests.conftest import RunningServer

CM = "/api/v1/namespaces/default/configmaps"
CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


# Every namespace holds this ConfigMap (the root-ca-cert-publisher's), as on a real cluster.
ROOT_CA = "kube-root-ca.crt"


async def root_ca_published(http: aiohttp.ClientSession) -> None:
    """Wait until the publisher has written ``default``'s ConfigMap, so it is not a write
    that races the test."""
    async with asyncio.timeout(20):
        while True:
            status, _ = await call(http, "GET", f"{CM}/{ROOT_CA}")
            if status == 200:
                return
            await asyncio.sleep(0.05)


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


async def call(
    http: aiohttp.ClientSession, method: str, path: str, body: Any = None, **kw: Any
) -> tuple[int, dict[str, Any]]:
    headers = kw.pop("headers", {})
    data = kw.pop("data", None)
    if body is not None:
        data = json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    async with http.request(method, path, data=data, headers=headers, **kw) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_malformed_json_is_400_and_stores_nothing(admin_http: aiohttp.ClientSession) -> None:
    status, body = await call(
        admin_http, "POST", CM, data="{not json", headers={"Content-Type": "application/json"}
    )
    assert status == 400
    assert body["kind"] == "Status" and body["reason"] == "BadRequest"
    _, listed = await call(admin_http, "GET", CM)
    assert [
        i["metadata"]["name"] for i in listed["items"] if i["metadata"]["name"] != ROOT_CA
    ] == []


async def test_oversized_body_is_413(admin_http: aiohttp.ClientSession) -> None:
    big = configmap("big", blob="x" * (4 * 1024 * 1024))
    payload = io.BytesIO(json.dumps(big).encode())
    status, body = await call(
        admin_http, "POST", CM, data=payload, headers={"Content-Type": "application/json"}
    )
    assert status == 413
    assert body["reason"] == "RequestEntityTooLarge"
    status, _ = await call(admin_http, "GET", f"{CM}/big")
    assert status == 404


async def test_unsupported_media_type_is_415(admin_http: aiohttp.ClientSession) -> None:
    status, body = await call(
        admin_http, "POST", CM, data="a=b", headers={"Content-Type": "text/plain"}
    )
    assert status == 415 and body["reason"] == "UnsupportedMediaType"


async def test_invalid_object_is_422_with_causes(admin_http: aiohttp.ClientSession) -> None:
    status, body = await call(admin_http, "POST", CM, configmap("Bad_Name"))
    assert status == 422
    assert body["reason"] == "Invalid"
    assert body["message"].startswith(
        'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value'
    )
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    assert body["details"]["causes"][0]["reason"] == "FieldValueInvalid"


async def test_create_conflict_and_not_found(admin_http: aiohttp.ClientSession) -> None:
    status, created = await call(admin_http, "POST", CM, configmap("a", k="1"))
    assert status == 201
    assert created["kind"] == "ConfigMap" and created["apiVersion"] == "v1"
    status, body = await call(admin_http, "POST", CM, configmap("a", k="2"))
    assert status == 409 and body["reason"] == "AlreadyExists"
    assert body["message"] == 'configmaps "a" already exists'
    status, body = await call(admin_http, "GET", f"{CM}/missing")
    assert status == 404 and body["message"] == 'configmaps "missing" not found'
    status, body = await call(admin_http, "GET", f"{CSRS}/missing")
    assert body["message"] == ('certificatesigningrequests.certificates.k8s.io "missing" not found')
    _, stored = await call(admin_http, "GET", f"{CM}/a")
    assert stored["data"] == {"k": "1"}


async def test_stale_resource_version_is_409_conflict(admin_http: aiohttp.ClientSession) -> None:
    _, created = await call(admin_http, "POST", CM, configmap("cas", k="1"))
    first_rv = created["metadata"]["resourceVersion"]
    updated = {**created, "data": {"k": "2"}}
    status, fresh = await call(admin_http, "PUT", f"{CM}/cas", updated)
    assert status == 200
    assert int(fresh["metadata"]["resourceVersion"]) > int(first_rv)
    stale = {**created, "data": {"k": "3"}}
    assert stale["metadata"]["resourceVersion"] == first_rv
    status, body = await call(admin_http, "PUT", f"{CM}/cas", stale)
    assert status == 409 and body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]
    _, stored = await call(admin_http, "GET", f"{CM}/cas")
    assert stored["data"] == {"k": "2"}


async def test_update_without_rv_is_unconditional_and_noop_keeps_rv(
    admin_http: aiohttp.ClientSession,
) -> None:
    _, created = await call(admin_http, "POST", CM, configmap("u", k="1"))
    body = configmap("u", k="1")
    status, same = await call(admin_http, "PUT", f"{CM}/u", body)
    assert status == 200
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert same["metadata"]["uid"] == created["metadata"]["uid"]
    status, changed = await call(admin_http, "PUT", f"{CM}/u", configmap("u", k="9"))
    assert status == 200 and changed["data"] == {"k": "9"}
    status, body = await call(admin_http, "PUT", f"{CM}/other", configmap("u"))
    assert status == 400 and "does not match the name on the URL" in body["message"]


async def test_patch_types(admin_http: aiohttp.ClientSession) -> None:
    await call(admin_http, "POST", CM, configmap("p", a="1", b="2"))
    merge = {"Content-Type": "application/merge-patch+json"}
    status, patched = await call(
        admin_http,
        "PATCH",
        f"{CM}/p",
        data=json.dumps({"data": {"a": None, "c": "3"}}),
        headers=merge,
    )
    assert status == 200 and patched["data"] == {"b": "2", "c": "3"}
    jp = {"Content-Type": "application/json-patch+json"}
    ops = [
        {"op": "replace", "path": "/data/b", "value": "20"},
        {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}},
    ]
    status, patched = await call(admin_http, "PATCH", f"{CM}/p", data=json.dumps(ops), headers=jp)
    assert status == 200 and patched["data"]["b"] == "20"
    assert patched["metadata"]["labels"] == {"x": "y"}
    bad = [{"op": "replace", "path": "/data/nope", "value": "1"}]
    status, body = await call(admin_http, "PATCH", f"{CM}/p", data=json.dumps(bad), headers=jp)
    assert status == 422  # upstream's generic 422 text for any JSON patch that does not apply
    assert body["message"] == "the server rejected our request due to an error in our request"
    assert body["details"] == {}
    status, _body = await call(
        admin_http, "PATCH", f"{CM}/p", data="{}", headers={"Content-Type": "text/plain"}
    )
    assert status == 415
    _, stored = await call(admin_http, "GET", f"{CM}/p")
    assert stored["data"] == {"b": "20", "c": "3"}


async def test_generate_name_and_label_and_field_selectors(
    admin_http: aiohttp.ClientSession,
) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"generateName": "gen-", "labels": {"tier": "a"}},
    }
    status, created = await call(admin_http, "POST", CM, body)
    assert status == 201
    name = created["metadata"]["name"]
    assert name.startswith("gen-") and len(name) == len("gen-") + 5
    await call(
        admin_http,
        "POST",
        CM,
        {**configmap("other"), "metadata": {"name": "other", "labels": {"tier": "b"}}},
    )
    _, listed = await call(admin_http, "GET", CM, params={"labelSelector": "tier=a"})
    assert [i["metadata"]["name"] for i in listed["items"]] == [name]
    _, listed = await call(admin_http, "GET", CM, params={"labelSelector": "tier in (a,b),tier!=a"})
    assert [i["metadata"]["name"] for i in listed["items"]] == ["other"]
    _, listed = await call(admin_http, "GET", CM, params={"fieldSelector": "metadata.name=other"})
    assert [i["metadata"]["name"] for i in listed["items"]] == ["other"]
    status, body = await call(admin_http, "GET", CM, params={"fieldSelector": "spec.nope=1"})
    assert status == 400
    assert body["message"] == (
        '"spec.nope" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )


async def test_pagination_with_continue_is_a_consistent_snapshot(
    admin_http: aiohttp.ClientSession,
) -> None:
    await root_ca_published(admin_http)
    for i in range(7):
        await call(admin_http, "POST", CM, configmap(f"item-{i}"))
    _, page1 = await call(admin_http, "GET", CM, params={"limit": "3"})
    assert len(page1["items"]) == 3 and page1["metadata"]["continue"]
    snapshot_rv = page1["metadata"]["resourceVersion"]
    # A write after the first page must not appear in later pages of the same list.
    await call(admin_http, "POST", CM, configmap("item-9-late"))
    names = [i["metadata"]["name"] for i in page1["items"]]
    token = page1["metadata"]["continue"]
    while token:
        _, page = await call(admin_http, "GET", CM, params={"limit": "3", "continue": token})
        assert page["metadata"]["resourceVersion"] == snapshot_rv
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
    assert [n for n in names if n != ROOT_CA] == [f"item-{i}" for i in range(7)]
    status, _body = await call(admin_http, "GET", CM, params={"continue": "garbage!"})
    assert status == 400


async def test_continue_token_after_compaction_is_410(
    server: RunningServer, admin_http: aiohttp.ClientSession
) -> None:
    for i in range(4):
        await call(admin_http, "POST", CM, configmap(f"c-{i}"))
    _, page1 = await call(admin_http, "GET", CM, params={"limit": "2"})
    assert server.server is not None and server.server.store is not None
    await call(admin_http, "POST", CM, configmap("c-later"))
    await server.server.store.compact(await server.server.store.current_revision())
    status, body = await call(
        admin_http, "GET", CM, params={"limit": "2", "continue": page1["metadata"]["continue"]}
    )
    assert status == 410 and body["reason"] == "Expired"


async def _watch_lines(
    http: aiohttp.ClientSession, path: str, params: dict[str, str], count: int
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with http.get(path, params={"watch": "true", **params}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/json")
        while len(events) < count:
            line = await asyncio.wait_for(resp.content.readline(), 10)
            if not line:
                break
            events.append(json.loads(line))
    return events


async def test_watch_from_resource_version_resumes_without_gaps(
    admin_http: aiohttp.ClientSession,
) -> None:
    _, a = await call(admin_http, "POST", CM, configmap("w1"))
    await call(admin_http, "PUT", f"{CM}/w1", configmap("w1", k="v"))
    await call(admin_http, "DELETE", f"{CM}/w1")
    # Narrowed to w1: the root-ca-cert-publisher writes kube-root-ca.crt here meanwhile.
    events = await _watch_lines(
        admin_http,
        CM,
        {"resourceVersion": a["metadata"]["resourceVersion"], "fieldSelector": "metadata.name=w1"},
        2,
    )
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]
    assert events[0]["object"]["data"] == {"k": "v"}
    assert int(events[1]["object"]["metadata"]["resourceVersion"]) > int(
        events[0]["object"]["metadata"]["resourceVersion"]
    )


async def test_watch_with_name_field_selector_sees_only_that_object(
    admin_http: aiohttp.ClientSession,
) -> None:
    _, listed = await call(admin_http, "GET", CM)
    rv = listed["metadata"]["resourceVersion"]

    async def writes() -> None:
        await asyncio.sleep(0.2)
        await call(admin_http, "POST", CM, configmap("target-longer"))
        await call(admin_http, "POST", CM, configmap("target"))
        await call(admin_http, "PUT", f"{CM}/target", configmap("target", x="1"))

    task = asyncio.create_task(writes())
    events = await _watch_lines(
        admin_http, CM, {"resourceVersion": rv, "fieldSelector": "metadata.name=target"}, 2
    )
    await task
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "target"),
        ("MODIFIED", "target"),
    ]


async def test_watch_across_namespaces_with_name_field_selector_sees_every_namespace(
    admin_http: aiohttp.ClientSession,
) -> None:
    """A name selects one object per namespace (the root-ca-cert-publisher's cache)."""
    await call(admin_http, "POST", "/api/v1/namespaces", {"metadata": {"name": "other"}})
    _, listed = await call(admin_http, "GET", "/api/v1/configmaps")
    rv = listed["metadata"]["resourceVersion"]

    async def writes() -> None:
        await asyncio.sleep(0.2)
        await call(admin_http, "POST", CM, configmap("target"))
        await call(admin_http, "POST", CM, configmap("bystander"))
        await call(admin_http, "POST", "/api/v1/namespaces/other/configmaps", configmap("target"))
        await call(admin_http, "DELETE", f"{CM}/target")

    task = asyncio.create_task(writes())
    events = await _watch_lines(
        admin_http,
        "/api/v1/configmaps",
        {"resourceVersion": rv, "fieldSelector": "metadata.name=target"},
        3,
    )
    await task
    assert [(e["type"], e["object"]["metadata"]["namespace"]) for e in events] == [
        ("ADDED", "default"),
        ("ADDED", "other"),
        ("DELETED", "default"),
    ]


async def test_watch_without_rv_sends_current_state_first(
    admin_http: aiohttp.ClientSession,
) -> None:
    await call(admin_http, "POST", CM, configmap("existing"))
    events = await _watch_lines(admin_http, CM, {}, 1)
    assert events[0]["type"] == "ADDED"
    assert events[0]["object"]["metadata"]["name"] == "existing"


async def test_watch_list_initial_events_end_bookmark(admin_http: aiohttp.ClientSession) -> None:
    await call(admin_http, "POST", CM, configmap("one"))
    params = {
        "sendInitialEvents": "true",
        "resourceVersionMatch": "NotOlderThan",
        "allowWatchBookmarks": "true",
    }
    events = await _watch_lines(admin_http, CM, params, 2)
    assert events[0]["type"] == "ADDED"
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    status, _body = await call(
        admin_http, "GET", CM, params={"watch": "true", "sendInitialEvents": "true"}
    )
    assert status == 422


async def test_watch_from_compacted_revision_is_410(
    server: RunningServer, admin_http: aiohttp.ClientSession
) -> None:
    _, first = await call(admin_http, "POST", CM, configmap("old"))
    await call(admin_http, "POST", CM, configmap("newer"))
    assert server.server is not None and server.server.store is not None
    await server.server.store.compact(await server.server.store.current_revision())
    async with admin_http.get(
        CM, params={"watch": "true", "resourceVersion": first["metadata"]["resourceVersion"]}
    ) as resp:
        body = await resp.json(content_type=None)
    assert resp.status == 410 and body["reason"] == "Expired"


async def test_watch_times_out_cleanly(admin_http: aiohttp.ClientSession) -> None:
    await root_ca_published(admin_http)
    _, listed = await call(admin_http, "GET", CM)
    rv = listed["metadata"]["resourceVersion"]
    async with admin_http.get(
        CM, params={"watch": "true", "timeoutSeconds": "1", "resourceVersion": rv}
    ) as resp:
        assert resp.status == 200
        rest = await asyncio.wait_for(resp.read(), 5)
    assert rest == b""


async def test_delete_preconditions_and_deletecollection(
    admin_http: aiohttp.ClientSession,
) -> None:
    _, obj = await call(admin_http, "POST", CM, configmap("d", k="1"))
    status, body = await call(
        admin_http, "DELETE", f"{CM}/d", {"preconditions": {"uid": "not-the-uid"}}
    )
    assert status == 409
    assert body["message"].startswith(
        'Operation cannot be fulfilled on ConfigMap "d": the UID in the precondition '
        "(not-the-uid) does not match the UID in record"
    )
    status, _ = await call(admin_http, "GET", f"{CM}/d")
    assert status == 200
    status, deleted = await call(
        admin_http, "DELETE", f"{CM}/d", {"preconditions": {"uid": obj["metadata"]["uid"]}}
    )
    # As upstream's ConfigMap registry: a Success Status naming the object, not the object.
    assert status == 200
    assert deleted == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": "d", "kind": "configmaps", "uid": obj["metadata"]["uid"]},
    }
    for n in ("x1", "x2"):
        await call(admin_http, "POST", CM, configmap(n))
    status, _ = await call(admin_http, "DELETE", CM)
    assert status == 200
    _, listed = await call(admin_http, "GET", CM)
    assert [
        i["metadata"]["name"] for i in listed["items"] if i["metadata"]["name"] != ROOT_CA
    ] == []


async def test_namespaces_default_exist_and_are_protected(
    admin_http: aiohttp.ClientSession,
) -> None:
    _, listed = await call(admin_http, "GET", "/api/v1/namespaces")
    names = {i["metadata"]["name"] for i in listed["items"]}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names
    status, body = await call(admin_http, "DELETE", "/api/v1/namespaces/kube-system")
    assert status == 403
    status, body = await call(
        admin_http, "POST", "/api/v1/namespaces/nope/configmaps", configmap("x")
    )
    assert status == 404 and body["message"] == 'namespaces "nope" not found'


async def test_namespace_deletion_terminates_then_empties_and_finalizes(
    admin_http: aiohttp.ClientSession,
) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
    status, created = await call(admin_http, "POST", "/api/v1/namespaces", ns)
    assert status == 201 and created["status"]["phase"] == "Active"
    assert created["spec"]["finalizers"] == ["kubernetes"]
    await call(admin_http, "POST", "/api/v1/namespaces/team/configmaps", configmap("inside"))
    status, marked = await call(admin_http, "DELETE", "/api/v1/namespaces/team")
    assert status == 200 and marked["status"]["phase"] == "Terminating"
    assert marked["metadata"]["deletionTimestamp"]
    status, body = await call(
        admin_http, "POST", "/api/v1/namespaces/team/configmaps", configmap("late")
    )
    assert status == 403
    assert body["message"] == (
        'configmaps "late" is forbidden: unable to create new content in namespace team '
        "because it is being terminated"
    )
    assert body["details"]["causes"][0]["reason"] == "NamespaceTerminating"
    for _ in range(200):  # the namespace controller empties and finalizes it
        status, _ = await call(admin_http, "GET", "/api/v1/namespaces/team")
        if status == 404:
            break
        await asyncio.sleep(0.1)
    assert status == 404
    status, _ = await call(admin_http, "GET", "/api/v1/namespaces/team/configmaps/inside")
    assert status == 404


async def test_namespace_finalize_and_status_keep_their_parts(
    admin_http: aiohttp.ClientSession,
) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fin"}}
    await call(admin_http, "POST", "/api/v1/namespaces", ns)
    _, current = await call(admin_http, "GET", "/api/v1/namespaces/fin")
    current["spec"]["finalizers"].append("e2e.example.com/fake")
    status, finalized = await call(admin_http, "PUT", "/api/v1/namespaces/fin/finalize", current)
    assert status == 200
    assert finalized["spec"]["finalizers"] == ["kubernetes", "e2e.example.com/fake"]
    # A plain update cannot change the finalizers; a status patch keeps metadata changes.
    finalized["spec"]["finalizers"] = []
    _, updated = await call(admin_http, "PUT", "/api/v1/namespaces/fin", finalized)
    assert updated["spec"]["finalizers"] == ["kubernetes", "e2e.example.com/fake"]
    status, patched = await call(
        admin_http,
        "PATCH",
        "/api/v1/namespaces/fin/status",
        data=json.dumps(
            {"metadata": {"annotations": {"a": "b"}}, "status": {"conditions": [{"type": "X"}]}}
        ),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert status == 200
    assert patched["metadata"]["annotations"] == {"a": "b"}
    assert patched["status"]["conditions"] == [
        {"type": "X", "status": "", "lastTransitionTime": None}
    ]


async def test_unknown_resource_and_method(admin_http: aiohttp.ClientSession) -> None:
    status, body = await call(
        admin_http, "GET", "/api/v1/namespaces/default/replicationcontrollers"
    )
    assert status == 404 and body["kind"] == "Status"
    status, body = await call(
        admin_http, "GET", "/apis/authorization.k8s.io/v1/subjectaccessreviews"
    )
    assert status == 405 and body["reason"] == "MethodNotAllowed"


async def test_secret_string_data_merges_and_type_is_immutable(
    admin_http: aiohttp.ClientSession,
) -> None:
    path = "/api/v1/namespaces/default/secrets"
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "type": "Opaque",
        "data": {"a": "b2xk", "b": "a2VlcA=="},
        "stringData": {"a": "new"},
    }
    status, created = await call(admin_http, "POST", path, secret)
    assert status == 201
    assert created["data"] == {"a": "bmV3", "b": "a2VlcA=="}
    assert "stringData" not in created
    changed = {**created, "type": "kubernetes.io/tls"}
    status, body = await call(admin_http, "PUT", f"{path}/s", changed)
    assert status == 422 and "field is immutable" in body["message"]
    bad = {**secret, "metadata": {"name": "s2"}, "data": {"a": "%%%"}}
    bad.pop("stringData")
    status, body = await call(admin_http, "POST", path, bad)
    assert status == 400 and "base64" in body["message"]


async def test_strict_field_validation_rejects_unknown_fields(
    admin_http: aiohttp.ClientSession,
) -> None:
    body = {**configmap("typo"), "dat": {"a": "b"}}
    status, result = await call(admin_http, "POST", CM, body, params={"fieldValidation": "Strict"})
    assert status == 400 and 'unknown field "dat"' in result["message"]
    async with admin_http.post(CM, json=body, params={"fieldValidation": "Warn"}) as resp:
        assert resp.status == 201
        assert (
            'unknown field \\"dat\\"' in resp.headers["Warning"] or "dat" in resp.headers["Warning"]
        )


async def test_table_output(admin_http: aiohttp.ClientSession) -> None:
    await call(admin_http, "POST", CM, configmap("t", a="1", b="2"))
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    async with admin_http.get(CM, headers={"Accept": accept}) as resp:
        table = await resp.json()
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert table["rows"][0]["cells"][:2] == ["t", 2]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


@pytest.mark.parametrize(
    "path",
    [
        "/version",
        "/version/",
        "/healthz",
        "/livez",
        "/readyz",
        "/api",
        "/apis",
        "/api/v1",
        "/apis/certificates.k8s.io/v1",
        "/openapi/v3",
        "/openapi/v3/api/v1",
    ],
)
async def test_discovery_and_health(admin_http: aiohttp.ClientSession, path: str) -> None:
    async with admin_http.get(path) as resp:
        assert resp.status == 200, path


async def test_csr_discovery_entry(admin_http: aiohttp.ClientSession) -> None:
    _, doc = await call(admin_http, "GET", "/apis/certificates.k8s.io/v1")
    entries = {r["name"]: r for r in doc["resources"]}
    csr = entries["certificatesigningrequests"]
    assert csr["shortNames"] == ["csr"] and csr["namespaced"] is False
    assert sorted(csr["verbs"]) == sorted(
        ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    )
    assert entries["certificatesigningrequests/approval"]["verbs"] == ["get", "patch", "update"]
    assert entries["certificatesigningrequests/status"]["verbs"] == ["get", "patch", "update"]
