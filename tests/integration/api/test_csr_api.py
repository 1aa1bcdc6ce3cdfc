"""CertificateSigningRequest API rules over HTTPS (server-facts §4.3–4.7, pitfalls 4–7)."""

from __future__ import annotations

import base64
import copy
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.integration.api.test_rest_semantics import call

CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


def csr_pem(cn: str = "system:node:w1", orgs: tuple[str, ...] = ("system:nodes",)) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    name.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    req = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name(name))
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(req.public_bytes(serialization.Encoding.PEM)).decode()


# No controller acts on this signer, so the API rules are tested without a signer racing us.
QUIET_SIGNER = "example.com/no-controller"


def csr(name: str, signer: str = QUIET_SIGNER, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": csr_pem(),
            "signerName": signer,
            "usages": ["digital signature", "server auth"],
            **spec,
        },
    }
    return body


def approved(obj: dict[str, Any], ctype: str = "Approved") -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out.setdefault("status", {}).setdefault("conditions", []).append(
        {"type": ctype, "status": "True", "reason": "Test", "message": "by test"}
    )
    return out


@pytest.mark.parametrize(
    ("spec", "field", "fragment"),
    [
        (
            {
                "request": base64.b64encode(
                    b"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"
                ).decode()
            },
            "spec.request",
            "PEM block type must be CERTIFICATE REQUEST",
        ),
        ({"usages": []}, "spec.usages", "Required value"),
        ({"usages": ["server auth", "server auth"]}, "spec.usages[1]", "Duplicate value"),
        ({"usages": ["flying"]}, "spec.usages[0]", "Unsupported value"),
        (
            {"signerName": "kubernetes.io/legacy-unknown"},
            "spec.signerName",
            "legacy signerName is not allowed",
        ),
        ({"signerName": "no-slash"}, "spec.signerName", "fully qualified domain and path"),
        ({"expirationSeconds": 599}, "spec.expirationSeconds", "less than 600 seconds"),
    ],
)
async def test_invalid_csrs_are_422_with_the_field(
    admin_http: aiohttp.ClientSession, spec: dict[str, Any], field: str, fragment: str
) -> None:
    body = csr("bad")
    body["spec"].update(spec)
    status, result = await call(admin_http, "POST", CSRS, body)
    assert status == 422, result
    assert result["reason"] == "Invalid"
    assert any(c["field"] == field for c in result["details"]["causes"]), result
    assert fragment in result["message"]
    status, _ = await call(admin_http, "GET", f"{CSRS}/bad")
    assert status == 404


async def test_create_takes_identity_from_the_requester_not_the_body(
    admin_http: aiohttp.ClientSession,
) -> None:
    body = csr("who", username="system:node:evil", groups=["system:masters"])
    body["status"] = {"conditions": [{"type": "Approved", "status": "True"}]}
    status, created = await call(admin_http, "POST", CSRS, body)
    assert status == 201
    assert created["spec"]["username"] == "kubernetes-admin"
    assert created["spec"]["groups"] == ["system:masters", "system:authenticated"]
    assert created["status"] == {}


async def test_spec_and_status_are_silently_reset_on_main_update(
    admin_http: aiohttp.ClientSession,
) -> None:
    _, created = await call(admin_http, "POST", CSRS, csr("immutable"))
    changed = approved(created)
    changed["spec"]["signerName"] = "example.com/other"
    changed["metadata"]["labels"] = {"touched": "yes"}
    status, updated = await call(admin_http, "PUT", f"{CSRS}/immutable", changed)
    assert status == 200
    assert updated["spec"]["signerName"] == QUIET_SIGNER
    assert updated["status"] == {}
    assert updated["metadata"]["labels"] == {"touched": "yes"}


async def test_approval_rules(admin_http: aiohttp.ClientSession) -> None:
    _, created = await call(admin_http, "POST", CSRS, csr("appr"))
    both = approved(approved(created), "Denied")
    status, body = await call(admin_http, "PUT", f"{CSRS}/appr/approval", both)
    assert status == 422
    assert 'must specify at most one of: `conditions[{"type": "Approved"}]`' in body["message"]
    status, ok = await call(admin_http, "PUT", f"{CSRS}/appr/approval", approved(created))
    assert status == 200
    cond = ok["status"]["conditions"][0]
    assert cond["lastUpdateTime"].endswith("Z")
    assert cond["lastTransitionTime"] == cond["lastUpdateTime"]
    removed = copy.deepcopy(ok)
    removed["status"]["conditions"] = []
    status, body = await call(admin_http, "PUT", f"{CSRS}/appr/approval", removed)
    assert status == 422
    assert 'may not remove a condition of type "Approved"' in body["message"]
    dup = copy.deepcopy(ok)
    dup["status"]["conditions"].append(dict(dup["status"]["conditions"][0]))
    status, body = await call(admin_http, "PUT", f"{CSRS}/appr/approval", dup)
    assert status == 422
    assert "Duplicate value" in body["message"]
    bad_status = approved(created)
    bad_status["status"]["conditions"][0]["status"] = "False"
    assert bad_status["metadata"]["resourceVersion"] != ok["metadata"]["resourceVersion"]
    status, body = await call(admin_http, "PUT", f"{CSRS}/appr/approval", bad_status)
    assert status == 409  # stale resourceVersion: optimistic concurrency comes first
    bad_status["metadata"]["resourceVersion"] = ok["metadata"]["resourceVersion"]
    status, body = await call(admin_http, "PUT", f"{CSRS}/appr/approval", bad_status)
    assert status == 422


async def test_status_subresource_cannot_approve_and_certificate_is_write_once(
    admin_http: aiohttp.ClientSession,
) -> None:
    _, created = await call(admin_http, "POST", CSRS, csr("st"))
    status, body = await call(admin_http, "PUT", f"{CSRS}/st/status", approved(created))
    assert status == 422
    assert 'may not add a condition of type "Approved"' in body["message"]
    garbage = copy.deepcopy(created)
    garbage["status"] = {"certificate": base64.b64encode(b"not pem").decode()}
    status, body = await call(admin_http, "PUT", f"{CSRS}/st/status", garbage)
    assert status == 422
    assert "status.certificate" in body["message"]
    failed = approved(created, "Failed")
    status, with_failed = await call(admin_http, "PUT", f"{CSRS}/st/status", failed)
    assert status == 200
    assert [c["type"] for c in with_failed["status"]["conditions"]] == ["Failed"]
    assert with_failed["spec"] == created["spec"]


async def test_approval_keeps_spec_and_certificate_from_storage(
    admin_http: aiohttp.ClientSession,
) -> None:
    _, created = await call(admin_http, "POST", CSRS, csr("keep"))
    sneaky = approved(created)
    sneaky["spec"]["usages"] = ["client auth"]
    sneaky["status"]["certificate"] = base64.b64encode(b"x").decode()
    status, result = await call(admin_http, "PUT", f"{CSRS}/keep/approval", sneaky)
    assert status == 200
    assert result["spec"]["usages"] == ["digital signature", "server auth"]
    assert "certificate" not in result["status"]
