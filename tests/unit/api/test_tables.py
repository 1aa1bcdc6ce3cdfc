"""Human durations and the CSR condition column, as kubectl users read them."""

from __future__ import annotations

import datetime as dt

import pytest

from kubeboot.api.tables import human_duration, to_table
from kubeboot.resources.registry import find_resource

CSRS = find_resource("certificates.k8s.io", "v1", "certificatesigningrequests")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-1, "<invalid>"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (150, "2m30s"),
        (600, "10m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 60, "3h1m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (50 * 3600, "2d2h"),
        (10 * 86400, "10d"),
        (3 * 365 * 86400, "3y"),
        (86400 * 800, "2y70d"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


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
