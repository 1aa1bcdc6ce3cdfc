"""What a real kubelet reads and writes besides its Node, Lease, Events and CSRs, over TLS.

* its CSINode: stored and validated; a node writes only the one named after it (Node
  authorizer for reads and updates, NodeRestriction at creation);
* pods, services, csidrivers, runtimeclasses, podcertificaterequests and resourceslices:
  read-only; a node lists its pods, slices and pod certificate requests only through
  ``spec.nodeName=<own name>``, as upstream; writes get a 405 that says kubeboot runs no
  workloads; ``services`` holds only ``default/kubernetes``.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import (
    RunningServer,
    admin_ssl_context,
    call_as,
    in_process_server,
    node_ssl_context,
)

CSINODES = "/apis/storage.k8s.io/v1/csinodes"
PODS = "/api/v1/pods"
SLICES = "/apis/resource.k8s.io/v1/resourceslices"
PCRS = "/apis/certificates.k8s.io/v1/podcertificaterequests"


def csinode(name: str, drivers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "CSINode",
        "metadata": {
            "name": name,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": "u"}],
        },
        "spec": {"drivers": drivers if drivers is not None else []},
    }


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with in_process_server(tmp_path / "data") as running:
        yield running


async def test_a_node_writes_only_its_own_csinode(running: RunningServer) -> None:
    a = node_ssl_context(running, "a")
    status, err = await call_as(running, "POST", CSINODES, csinode("b"), ctx=a)
    assert status == 403, err
    assert err["message"] == (
        'csinodes.storage.k8s.io "b" is forbidden: can only access CSINode with the same name '
        "as the requesting node"
    )
    status, created = await call_as(running, "POST", CSINODES, csinode("a"), ctx=a)
    assert status == 201, created
    # upstream's protobuf storage cannot keep an empty list: drivers come back null
    assert created["spec"] == {"drivers": None} and created["status"] == {}

    admin = admin_ssl_context(running)
    assert (await call_as(running, "POST", CSINODES, csinode("b"), ctx=admin))[0] == 201
    status, err = await call_as(running, "GET", f"{CSINODES}/b", ctx=a)
    assert status == 403
    assert "can only access CSINode with the same name as the requesting node" in err["message"]
    status, err = await call_as(running, "DELETE", f"{CSINODES}/b", ctx=a)
    assert status == 403
    status, err = await call_as(running, "GET", CSINODES, ctx=a)
    assert status == 403
    assert "can only get, create, update, patch, or delete a CSINode" in err["message"]

    status, own = await call_as(running, "GET", f"{CSINODES}/a", ctx=a)
    assert status == 200
    own["spec"]["drivers"] = [{"name": "csi.example.com", "nodeID": "a", "topologyKeys": ["z"]}]
    status, updated = await call_as(running, "PUT", f"{CSINODES}/a", own, ctx=a)
    assert status == 200, updated
    assert updated["spec"]["drivers"][0]["nodeID"] == "a"
    assert (await call_as(running, "DELETE", f"{CSINODES}/a", ctx=a))[0] == 200


async def test_csinode_validation_and_update_rules(running: RunningServer) -> None:
    admin = admin_ssl_context(running)
    bad = csinode(
        "n",
        [
            {"name": "Not_A_Driver", "nodeID": ""},
            {"name": "d.example.com", "nodeID": "x" * 257, "allocatable": {"count": -1}},
            {"name": "d.example.com", "nodeID": "y", "topologyKeys": ["k", "k", "a/b/c"]},
        ],
    )
    status, err = await call_as(running, "POST", CSINODES, bad, ctx=admin)
    assert status == 422, err
    fields = [c["field"] for c in err["details"]["causes"]]
    assert fields == [
        "spec.drivers[0].name",
        "spec.drivers[0].nodeID",
        "spec.drivers[1].nodeID",
        "spec.drivers[1].allocatable.count",
        "spec.drivers[2].name",
        "spec.drivers[2]",
        "spec.drivers[2]",
    ]
    assert (await call_as(running, "GET", f"{CSINODES}/n", ctx=admin))[0] == 404

    driver = {"name": "d.example.com", "nodeID": "one", "allocatable": {"count": 3}}
    status, stored = await call_as(running, "POST", CSINODES, csinode("n", [driver]), ctx=admin)
    assert status == 201, stored
    # an update without resourceVersion is refused (AllowUnconditionalUpdate is false)
    blind = json.loads(json.dumps(stored))
    del blind["metadata"]["resourceVersion"]
    status, err = await call_as(running, "PUT", f"{CSINODES}/n", blind, ctx=admin)
    assert status == 422
    assert err["message"] == (
        'csinodes.storage.k8s.io "n" is invalid: metadata.resourceVersion: Invalid value: 0: '
        "must be specified for an update"
    )
    # a driver's nodeID is immutable, its allocatable count is not
    changed = json.loads(json.dumps(stored))
    changed["spec"]["drivers"][0]["nodeID"] = "two"
    status, err = await call_as(running, "PUT", f"{CSINODES}/n", changed, ctx=admin)
    assert status == 422 and "field is immutable" in err["message"], err
    changed["spec"]["drivers"][0]["nodeID"] = "one"
    changed["spec"]["drivers"][0]["allocatable"] = {"count": 5}
    changed["status"] = {"storageHealth": [{"name": "d.example.com"}]}
    status, updated = await call_as(running, "PUT", f"{CSINODES}/n", changed, ctx=admin)
    assert status == 200, updated
    assert updated["spec"]["drivers"][0]["allocatable"] == {"count": 5}
    assert updated["status"] == {}  # status is the subresource's; CSIVolumeHealth is off


async def _list(
    running: RunningServer, path: str, ctx: ssl.SSLContext, selector: str | None
) -> tuple[int, dict[str, Any]]:
    query = f"?fieldSelector={selector}" if selector else ""
    return await call_as(running, "GET", path + query, ctx=ctx)


@pytest.mark.parametrize(
    ("path", "selector"),
    [
        (PODS, "spec.nodeName=a"),
        (PCRS, "spec.nodeName=a"),
        (SLICES, "spec.nodeName=a"),
    ],
)
async def test_a_node_lists_only_what_is_bound_to_it(
    running: RunningServer, path: str, selector: str
) -> None:
    a = node_ssl_context(running, "a")
    for refused in (None, "spec.nodeName=b", "spec.nodeName!=a"):
        status, err = await _list(running, path, a, refused)
        assert status == 403, (refused, err)
        assert "field selector" in err["message"]
    status, listed = await _list(running, path, a, selector)
    assert status == 200, listed
    assert listed["items"] == []


async def test_the_kubelets_reads_answer_and_writes_are_refused(running: RunningServer) -> None:
    a = node_ssl_context(running, "a")
    for path in (
        "/apis/storage.k8s.io/v1/csidrivers",
        "/apis/node.k8s.io/v1/runtimeclasses",
    ):
        status, listed = await _list(running, path, a, None)
        assert status == 200 and listed["items"] == [], (path, listed)
    status, services = await _list(running, "/api/v1/services", a, "spec.clusterIP!=None")
    assert status == 200
    assert [s["metadata"]["name"] for s in services["items"]] == ["kubernetes"]
    service = services["items"][0]
    assert service["spec"]["clusterIP"] == "10.96.0.1"
    assert running.server is not None
    port = running.server.port
    assert service["spec"]["ports"] == [
        {"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}
    ]
    # the kubelet deletes its ResourceSlices at start: there are none, and that succeeds
    status, deleted = await call_as(
        running, "DELETE", f"{SLICES}?fieldSelector=spec.nodeName%3Da", ctx=a
    )
    assert status == 200 and deleted["items"] == [], deleted
    status, err = await call_as(running, "DELETE", SLICES, ctx=a)
    assert status == 403

    admin = admin_ssl_context(running)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}
    status, err = await call_as(running, "POST", "/api/v1/namespaces/default/pods", pod, ctx=admin)
    assert status == 405 and err["reason"] == "MethodNotAllowed"
    assert err["message"] == (
        'create is not supported on resources of kind "pods": kubeboot runs no workloads; '
        "pods is a read-only collection that is always empty"
    )
    status, err = await call_as(
        running, "DELETE", "/api/v1/namespaces/default/services/kubernetes", ctx=admin
    )
    assert status == 405 and "default/kubernetes" in err["message"]
    status, err = await call_as(
        running, "PUT", "/api/v1/namespaces/default/services/kubernetes", service, ctx=admin
    )
    assert status == 405
    status, still = await call_as(
        running, "GET", "/api/v1/namespaces/default/services/kubernetes", ctx=admin
    )
    assert status == 200 and still["metadata"]["uid"] == service["metadata"]["uid"]


async def test_discovery_says_which_kinds_are_read_only(running: RunningServer) -> None:
    admin = admin_ssl_context(running)
    verbs: dict[str, list[str]] = {}
    for path in (
        "/api/v1",
        "/apis/storage.k8s.io/v1",
        "/apis/node.k8s.io/v1",
        "/apis/resource.k8s.io/v1",
        "/apis/certificates.k8s.io/v1",
    ):
        status, doc = await call_as(running, "GET", path, ctx=admin)
        assert status == 200, path
        verbs.update({r["name"]: sorted(r["verbs"]) for r in doc["resources"]})
    read = ["get", "list", "watch"]
    assert verbs["pods"] == verbs["services"] == verbs["csidrivers"] == read
    assert verbs["runtimeclasses"] == verbs["podcertificaterequests"] == read
    assert verbs["resourceslices"] == ["deletecollection", *read]
    assert "create" in verbs["csinodes"] and verbs["csinodes/status"]


async def test_a_node_watches_its_pods_and_gets_a_bookmark(running: RunningServer) -> None:
    """The kubelet's pod informer: a WatchList (sendInitialEvents) on an empty collection
    ends its initial events with the bookmark client-go waits for."""
    a = node_ssl_context(running, "a")
    query = (
        "?watch=1&fieldSelector=spec.nodeName%3Da&sendInitialEvents=true"
        "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=5"
    )
    connector = aiohttp.TCPConnector(ssl=a)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(running.url + PODS + query) as resp,
    ):
        assert resp.status == 200
        line = await asyncio.wait_for(resp.content.readline(), 30)
    event = json.loads(line)
    assert event["type"] == "BOOKMARK"
    annotations = event["object"]["metadata"]["annotations"]
    assert annotations["k8s.io/initial-events-end"] == "true"


async def test_kubectl_shows_services_and_csinodes_as_upstream(running: RunningServer) -> None:
    admin = admin_ssl_context(running)
    assert (await call_as(running, "POST", CSINODES, csinode("n1"), ctx=admin))[0] == 201
    services = await asyncio.to_thread(running.kubectl, "get", "svc", "-A")
    header, row = services.stdout.splitlines()
    assert header.split() == [
        "NAMESPACE",
        "NAME",
        "TYPE",
        "CLUSTER-IP",
        "EXTERNAL-IP",
        "PORT(S)",
        "AGE",
    ]
    assert row.split()[:6] == [
        "default",
        "kubernetes",
        "ClusterIP",
        "10.96.0.1",
        "<none>",
        "443/TCP",
    ]
    nodes = await asyncio.to_thread(running.kubectl, "get", "csinodes")
    assert nodes.stdout.splitlines()[1].split()[:2] == ["n1", "0"]
    pods = await asyncio.to_thread(running.kubectl, "get", "pods", "-A", check=False)
    assert pods.returncode == 0 and "No resources found" in pods.stderr
