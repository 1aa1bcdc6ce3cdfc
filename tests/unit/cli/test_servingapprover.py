"""The serving-certificate policy approver's decisions, unhappy paths first."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from kubeboot.controllers.servingapprover import (
    APPROVE_REASON,
    DENY_REASON,
    ServingPolicy,
    Verdict,
    decision_condition,
    review_serving_csr,
)
from kubeboot.pki.csr import build_csr
from kubeboot.pki.keys import generate_private_key

SERVING = "kubernetes.io/kubelet-serving"
NODE = {
    "metadata": {"name": "w1"},
    "status": {
        "addresses": [
            {"type": "InternalIP", "address": "10.0.0.5"},
            {"type": "Hostname", "address": "w1"},
        ]
    },
}


def csr(
    *,
    cn: str = "system:node:w1",
    dns: tuple[str, ...] = ("w1",),
    ips: tuple[str, ...] = ("10.0.0.5",),
    username: str = "system:node:w1",
    groups: tuple[str, ...] = ("system:nodes", "system:authenticated"),
    signer: str = SERVING,
    conditions: tuple[str, ...] = (),
    **spec_extra: Any,
) -> dict[str, Any]:
    pem = build_csr(
        generate_private_key(),
        common_name=cn,
        organizations=["system:nodes"],
        dns_names=list(dns),
        ips=list(ips),
    )
    return {
        "metadata": {"name": "csr-1"},
        "spec": {
            "request": base64.b64encode(pem).decode(),
            "signerName": signer,
            "username": username,
            "groups": list(groups),
            "usages": ["digital signature", "server auth"],
            **spec_extra,
        },
        "status": {"conditions": [{"type": t, "status": "True"} for t in conditions]},
    }


POLICY = ServingPolicy()


@pytest.mark.parametrize(
    ("obj", "action", "reason"),
    [
        (csr(username="alice"), "deny", "does not start with 'system:node:'"),
        (csr(groups=("system:authenticated",)), "deny", "not in the system:nodes group"),
        (csr(dns=(), ips=()), "deny", "no DNS or IP SAN"),
        (csr(cn="system:node:w2"), "deny", "does not match the requester"),
        (csr(dns=("w1", "w1.example")), "deny", "2 DNS SANs, more than the 1 allowed"),
        (csr(expirationSeconds=10**9), "deny", "exceeds the maximum"),
        (csr(dns=("w2",)), "deny", "DNS SAN 'w2' is not an address of Node 'w1'"),
        (csr(ips=("10.0.0.6",)), "deny", "IP SAN 10.0.0.6 is not an address of Node 'w1'"),
        (csr(signer="kubernetes.io/kube-apiserver-client-kubelet"), "skip", "not kubernetes.io"),
        (csr(conditions=("Denied",)), "skip", "already approved or denied"),
        (csr(), "approve", "SANs are the Node's addresses"),
        (csr(dns=()), "approve", "SANs are the Node's addresses"),
    ],
)
def test_review_decisions(obj: dict[str, Any], action: str, reason: str) -> None:
    verdict = review_serving_csr(obj, NODE, POLICY)
    assert verdict.action == action
    assert reason in verdict.reason


def test_missing_node_waits_instead_of_denying() -> None:
    verdict = review_serving_csr(csr(), None, POLICY)
    assert verdict == Verdict("wait", "Node 'w1' does not exist (yet)", "w1")


def test_unparseable_request_is_skipped() -> None:
    broken = csr()
    broken["spec"]["request"] = base64.b64encode(b"garbage").decode()
    assert review_serving_csr(broken, NODE, POLICY).action == "skip"


def test_policy_switches() -> None:
    lenient = ServingPolicy(ignore_non_system_node=True)
    assert review_serving_csr(csr(username="alice"), NODE, lenient).action == "skip"
    no_deny = ServingPolicy(skip_deny=True)
    assert review_serving_csr(csr(dns=("w2",)), NODE, no_deny).action == "skip"
    two = ServingPolicy(allowed_dns_names=2)
    addresses = [
        {"type": "InternalIP", "address": "10.0.0.5"},
        {"type": "InternalDNS", "address": "w1.example"},
        {"type": "Hostname", "address": "w1"},
    ]
    node = {"status": {"addresses": addresses}}
    assert review_serving_csr(csr(dns=("w1", "w1.example")), node, two).action == "approve"


def test_conditions_are_postfinances() -> None:
    approved = decision_condition(Verdict("approve", "ok"))
    assert (approved["type"], approved["reason"]) == ("Approved", APPROVE_REASON)
    denied = decision_condition(Verdict("deny", "CN mismatch"))
    assert (denied["type"], denied["reason"]) == ("Denied", DENY_REASON)
    assert denied["message"].endswith("Reason: CN mismatch")
