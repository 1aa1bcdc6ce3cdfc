"""Human durations and the CSR condition column, as kubectl users read them."""

from __future__ import annotations

import datetime as dt

import pytest

from kubeboot.api.endpoints.tables import to_table
from kubeboot.resources.registry import find_resource

CSRS = find_resource("certificates.k8s.io", "v1", "certificatesigningrequests")


@pytest.mark.parametrize(
    ("status", "condition"),
    [
        ({}, "Pending"),
        ({"conditions": [{"type": "Approved"}]}, "Approved"),
        ({"conditions": [{"type": "Approved"}], "certificate": "eA=="}, "Approved,Issued"),
        ({"conditions": [{"type": "Denied"}, {"type": "Approved"}]}, "Denied"),
        ({"conditions": [{"type": "Approved"}, {"type": "Failed"}]}, "Approved,Failed"),
    ],
)
def test_csr_condition_column(status: dict[str, object], condition: str) -> None:
    assert CSRS is not None
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    obj = {
        "metadata": {"name": "c", "creationTimestamp": "2025-12-31T23:59:00Z"},
        "spec": {
            "signerName": "kubernetes.io/kubelet-serving",
            "username": "u",
            "expirationSeconds": 3600,
        },
        "status": status,
    }
    table = to_table(CSRS, [obj], now)
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Age",
        "SignerName",
        "Requestor",
        "RequestedDuration",
        "Condition",
    ]
    assert table["rows"][0]["cells"] == [
        "c",
        "60s",
        "kubernetes.io/kubelet-serving",
        "u",
        "60m",
        condition,
    ]
