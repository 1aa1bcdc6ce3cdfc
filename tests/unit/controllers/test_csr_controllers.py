"""Pure decisions of csrapproving, csrsigning and csrcleaner, table-driven, unhappy first."""

from __future__ import annotations

import base64
import copy
import datetime as dt
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kubeboot.client.interface import ApiClient
from kubeboot.clock import FakeClock, format_time
from kubeboot.controllers.csrapproving import (
    approval_condition,
    recognized_approvals,
    subject_access_review,
)
from kubeboot.controllers.csrcleaner import cleanup_reason
from kubeboot.controllers.csrsigning import (
    Fail,
    Sign,
    failed_condition,
    sign_csr,
    signing_decision,
)
from kubeboot.pki.authority import create_self_signed_ca
from kubeboot.pki.csr import (
    KUBE_APISERVER_CLIENT_SIGNER,
    KUBELET_CLIENT_SIGNER,
    KUBELET_SERVING_SIGNER,
    CsrError,
    build_csr,
)
from kubeboot.pki.keys import generate_private_key

NOW = dt.datetime(2026, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
CLIENT = ["digital signature", "client auth"]
NODE_PEM = build_csr(
    generate_private_key(), common_name="system:node:w1", organizations=["system:nodes"]
)
ALL_SIGNERS = (KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER, KUBE_APISERVER_CLIENT_SIGNER)


def _csr(
    *,
    pem: bytes = NODE_PEM,
    signer: str = KUBELET_CLIENT_SIGNER,
    usages: list[str] | None = None,
    username: str = "system:bootstrap:abcdef",
    conditions: list[dict[str, Any]] | None = None,
    certificate: bytes = b"",
    created: dt.datetime = NOW,
) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if conditions:
        status["conditions"] = conditions
    if certificate:
        status["certificate"] = base64.b64encode(certificate).decode()
    return {
        "metadata": {"name": "c", "uid": "u-1", "creationTimestamp": format_time(created)},
        "spec": {
            "request": base64.b64encode(pem).decode(),
            "signerName": signer,
            "usages": CLIENT if usages is None else usages,
            "username": username,
            "uid": "uid-7",
            "groups": ["system:bootstrappers", "system:authenticated"],
            "extra": {"k": ["v"]},
        },
        "status": status,
    }


def _cond(ctype: str, updated: dt.datetime | None = None, status: str = "True") -> dict[str, Any]:
    cond: dict[str, Any] = {"type": ctype, "status": status}
    if updated is not None:
        cond["lastUpdateTime"] = format_time(updated)
    return cond


# --- csrapproving ----------------------------------------------------------------------------


def test_unparseable_request_raises_to_be_retried() -> None:
    with pytest.raises(CsrError):
        recognized_approvals(_csr(pem=b"junk"))


@pytest.mark.parametrize(
    "csr",
    [
        _csr(certificate=b"x"),
        _csr(conditions=[_cond("Approved")]),
        _csr(conditions=[_cond("Denied")]),
        _csr(signer=KUBELET_SERVING_SIGNER),
        _csr(usages=["client auth"]),
        _csr(pem=build_csr(generate_private_key(), common_name="system:node:w1")),
    ],
    ids=["issued", "approved", "denied", "other-signer", "bad-usages", "no-org"],
)
def test_never_recognized(csr: dict[str, Any]) -> None:
    assert recognized_approvals(csr) == []


def test_failed_condition_does_not_stop_approval() -> None:
    assert [r.subresource for r in recognized_approvals(_csr(conditions=[_cond("Failed")]))] == [
        "nodeclient"
    ]


def test_self_node_client_is_tried_first() -> None:
    found = recognized_approvals(_csr(username="system:node:w1"))
    assert [r.subresource for r in found] == ["selfnodeclient", "nodeclient"]
    assert approval_condition(found[0]) == {
        "type": "Approved",
        "status": "True",
        "reason": "AutoApproved",
        "message": "Auto approving self kubelet client certificate after SubjectAccessReview.",
    }
    assert approval_condition(found[1])["message"] == (
        "Auto approving kubelet client certificate after SubjectAccessReview."
    )


def test_sar_replays_the_requester() -> None:
    sar = subject_access_review(_csr(), "nodeclient")
    assert sar["spec"] == {
        "user": "system:bootstrap:abcdef",
        "uid": "uid-7",
        "groups": ["system:bootstrappers", "system:authenticated"],
        "extra": {"k": ["v"]},
        "resourceAttributes": {
            "group": "certificates.k8s.io",
            "resource": "certificatesigningrequests",
            "verb": "create",
            "subresource": "nodeclient",
        },
    }


# --- csrsigning ------------------------------------------------------------------------------

APPROVED = [_cond("Approved")]


@pytest.mark.parametrize(
    "csr",
    [
        _csr(),  # pending
        _csr(conditions=[_cond("Approved"), _cond("Denied")]),
        _csr(conditions=[*APPROVED, _cond("Failed")]),
        _csr(conditions=APPROVED, certificate=b"x"),
        _csr(conditions=APPROVED, signer="example.com/other"),
    ],
    ids=["pending", "denied", "failed", "issued", "not-ours"],
)
def test_signer_ignores(csr: dict[str, Any]) -> None:
    assert signing_decision(csr, ALL_SIGNERS) is None


def test_signer_only_handles_configured_signers() -> None:
    assert signing_decision(_csr(conditions=APPROVED), (KUBELET_SERVING_SIGNER,)) is None


def test_failed_true_condition_only_counts_when_true() -> None:
    csr = _csr(conditions=[*APPROVED, _cond("Failed", status="False")])
    assert signing_decision(csr, ALL_SIGNERS) == Sign(KUBELET_CLIENT_SIGNER)


@pytest.mark.parametrize(
    ("csr", "message"),
    [
        (
            _csr(conditions=APPROVED, usages=["client auth"]),
            "usages did not match [client auth digital signature key encipherment]",
        ),
        (
            _csr(conditions=APPROVED, signer=KUBELET_SERVING_SIGNER, usages=["server auth"]),
            "DNS or IP subjectAltName is required",
        ),
        (
            _csr(conditions=APPROVED, signer=KUBE_APISERVER_CLIENT_SIGNER, usages=["server auth"]),
            "invalid usage for client certificate: server auth",
        ),
    ],
)
def test_rule_violations_fail(csr: dict[str, Any], message: str) -> None:
    assert signing_decision(csr, ALL_SIGNERS) == Fail(message)


def test_failed_condition_shape() -> None:
    assert failed_condition("boom", NOW) == {
        "type": "Failed",
        "status": "True",
        "reason": "SignerValidationFailure",
        "message": "boom",
        "lastUpdateTime": "2026-05-01T12:00:00Z",
    }


# --- csrcleaner ------------------------------------------------------------------------------

_CA = create_self_signed_ca(clock=FakeClock(NOW - 48 * H))
_LEAF = _CA.issue_client_cert(
    common_name="x", organizations=[], clock=FakeClock(NOW - 48 * H), ttl=24 * H
)[0]
EXPIRED_PEM = _LEAF.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize(
    ("csr", "reason"),
    [
        (
            _csr(conditions=[_cond("Approved", NOW - 2 * H)], certificate=b"x"),
            "approved and issued",
        ),
        (_csr(conditions=[_cond("Approved", NOW - 2 * H)]), None),  # never issued: kept
        (_csr(conditions=[_cond("Approved", NOW - H)], certificate=b"x"), None),  # exactly 1h
        (_csr(conditions=[_cond("Denied", NOW - 2 * H)]), "denied"),
        (_csr(conditions=[_cond("Denied", NOW - H / 2)]), None),
        (_csr(conditions=[_cond("Denied")]), None),  # zero time never counts as old
        (_csr(conditions=[_cond("Failed", NOW - 2 * H)]), "failed"),
        (_csr(created=NOW - 25 * H), "pending"),
        (_csr(created=NOW - 23 * H), None),
        (_csr(conditions=[_cond("Approved", NOW)], certificate=EXPIRED_PEM), "expired"),
    ],
)
def test_cleanup_reason(csr: dict[str, Any], reason: str | None) -> None:
    found = cleanup_reason(csr, NOW)
    if reason is None:
        assert found is None
    else:
        assert found is not None
        assert reason in found


class _StatusWrites:
    """The one ApiClient call sign_csr makes on success: PUT .../status."""

    def __init__(self) -> None:
        self.written: list[dict[str, Any]] = []

    async def update(
        self,
        res: object,
        obj: dict[str, Any],
        namespace: str | None = None,
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        assert subresource == "status"
        self.written.append(obj)
        return obj


async def test_sign_csr_writes_the_certificate_and_leaves_the_cached_object() -> None:
    ca = create_self_signed_ca(clock=FakeClock(NOW))
    client = _StatusWrites()
    csr = _csr(conditions=[_cond("Approved", NOW)])
    cached = copy.deepcopy(csr)
    await sign_csr(
        cast(ApiClient, client), csr, {KUBELET_CLIENT_SIGNER: lambda: ca}, H, FakeClock(NOW)
    )
    assert csr == cached  # the informer's object is never written to
    (written,) = client.written
    assert written["status"]["conditions"] == csr["status"]["conditions"]
    cert_pem = base64.b64decode(written["status"]["certificate"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.issuer == ca.certificate.subject
