"""The issuance ledger over HTTPS: recorded at issuance, read-only, outlives the CSR."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from tests.conftest import RunningServer
from tests.integration.api.test_csr_api import csr_pem
from tests.integration.api.test_rest_semantics import call

CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
LEDGER = "/apis/ledger.kubeboot.io/v1/issuedcertificates"
KUBELET_CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"


def kubelet_client_csr(name: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": csr_pem(f"system:node:{node}"),
            "signerName": KUBELET_CLIENT,
            "usages": ["digital signature", "client auth"],
        },
    }


async def wait_issued(http: aiohttp.ClientSession, name: str) -> dict[str, Any]:
    for _ in range(200):
        status, obj = await call(http, "GET", f"{CSRS}/{name}")
        assert status == 200, obj
        if (obj.get("status") or {}).get("certificate"):
            return obj
        await asyncio.sleep(0.05)
    raise AssertionError(f"CSR {name} was not issued: {obj}")


async def test_ledger_records_issuance_and_outlives_the_csr(
    server: RunningServer, admin_http: aiohttp.ClientSession
) -> None:
    status, created = await call(admin_http, "POST", CSRS, kubelet_client_csr("led-1", "w1"))
    assert status == 201, created
    # The in-server approver approves it (the admin may create nodeclient CSRs) and signs.
    issued = await wait_issued(admin_http, "led-1")

    # The entry is written right after the certificate (the same request stores both, in
    # that order), so a reader may see the certificate a moment before the entry.
    for _ in range(100):
        status, listed = await call(admin_http, "GET", f"{LEDGER}?fieldSelector=spec.nodeName=w1")
        assert status == 200, listed
        if listed["items"]:
            break
        await asyncio.sleep(0.02)
    assert listed["kind"] == "IssuedCertificateList"
    [entry] = listed["items"]
    spec = entry["spec"]
    assert entry["metadata"]["name"] == spec["serialNumber"]
    assert spec["subject"] == "CN=system:node:w1,O=system:nodes"
    assert spec["nodeName"] == "w1" and spec["signerName"] == KUBELET_CLIENT
    assert spec["csrName"] == "led-1" and spec["csrUID"] == created["metadata"]["uid"]
    assert spec["requestingUser"] == "kubernetes-admin"
    assert spec["approver"] == "system:serviceaccount:kube-system:certificate-controller"
    assert spec["approvalReason"] == "AutoApproved"
    assert spec["sourceAddress"] == "127.0.0.1"
    assert spec["notBefore"] < spec["notAfter"]
    assert issued["status"]["certificate"]

    # The CSR is garbage-collected (the csrcleaner deletes issued ones after an hour).
    status, _ = await call(admin_http, "DELETE", f"{CSRS}/led-1")
    assert status == 200
    status, kept = await call(admin_http, "GET", f"{LEDGER}/{spec['serialNumber']}")
    assert status == 200 and kept["spec"] == spec

    # kubectl reads it like any resource (discovery, short name, server-side table).
    out = (await asyncio.to_thread(server.kubectl, "get", "icert", "-o", "json")).stdout
    assert [i["spec"]["serialNumber"] for i in json.loads(out)["items"]] == [spec["serialNumber"]]


async def test_ledger_is_read_only_and_discoverable(
    server: RunningServer, admin_http: aiohttp.ClientSession
) -> None:
    body = {
        "apiVersion": "ledger.kubeboot.io/v1",
        "kind": "IssuedCertificate",
        "metadata": {"name": "abc"},
        "spec": {"serialNumber": "abc"},
    }
    status, answer = await call(admin_http, "POST", LEDGER, body)
    assert status == 405, answer
    assert "written by the server" in answer["message"]
    status, group = await call(admin_http, "GET", "/apis/ledger.kubeboot.io/v1")
    assert status == 200
    verbs = {r["name"]: r["verbs"] for r in group["resources"]}
    assert verbs["issuedcertificates"] == ["get", "list", "watch"]
    out = (
        await asyncio.to_thread(server.kubectl, "api-resources", "--api-group=ledger.kubeboot.io")
    ).stdout
    assert "issuedcertificates" in out and "certificaterevocations" in out
    status, doc = await call(admin_http, "GET", "/openapi/v3/apis/ledger.kubeboot.io/v1")
    assert status == 200, doc
    assert "io.kubeboot.ledger.v1.IssuedCertificate" in doc["components"]["schemas"]
