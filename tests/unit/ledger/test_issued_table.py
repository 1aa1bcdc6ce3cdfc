"""``kubeboot certs issued``'s filtering and table (pure)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kubeboot.cli.ledger import expiring_soon, issued_table
from kubeboot.clock import format_time

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


def entry(serial: str, node: str, not_after: dt.datetime) -> dict[str, Any]:
    return {
        "metadata": {"name": serial},
        "spec": {
            "serialNumber": serial,
            "nodeName": node,
            "subject": f"CN=system:node:{node},O=system:nodes",
            "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
            "notAfter": format_time(not_after),
            "csrName": f"csr-{node}",
            "requestingUser": "system:bootstrap:abcdef",
            "approver": "",
            "sourceAddress": "10.0.0.7",
            "ipAddresses": ["10.0.0.7"],
        },
    }


ITEMS = [
    entry("aa", "w1", NOW + dt.timedelta(days=300)),
    entry("bb", "w2", NOW + dt.timedelta(days=3)),
    entry("cc", "w3", NOW - dt.timedelta(days=1)),
]


def test_expiring_soon_includes_expired() -> None:
    soon = expiring_soon(ITEMS, dt.timedelta(days=30), NOW)
    assert [i["metadata"]["name"] for i in soon] == ["bb", "cc"]


def test_table_sorted_by_expiry_with_status() -> None:
    lines = issued_table(ITEMS, {"bb"}, NOW).splitlines()
    assert lines[0].split() == ["SERIAL", "NODE", "SUBJECT", "SIGNER", "NOT", "AFTER", "EXPIRES",
                                "IN", "STATUS"]  # fmt: skip
    assert [line.split()[0] for line in lines[1:]] == ["cc", "bb", "aa"]
    assert [line.split()[-1] for line in lines[1:]] == ["Expired", "Revoked", "Valid"]


def test_wide_table_shows_the_request() -> None:
    wide = issued_table(ITEMS[:1], set(), NOW, wide=True).splitlines()
    assert wide[0].split()[-5:] == ["CSR", "REQUESTOR", "APPROVER", "SOURCE", "SANS"]
    assert wide[1].split()[-5:] == [
        "csr-w1", "system:bootstrap:abcdef", "<unknown>", "10.0.0.7", "10.0.0.7",
    ]  # fmt: skip
