"""Kubeconfig writer: kubeadm's cluster-info layout byte for byte, admin.conf round-trips."""

from __future__ import annotations

import base64

import pytest
import yaml

from kubeboot.pki.kubeconfig import admin_kubeconfig, cluster_info_kubeconfig

CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_cluster_info_matches_kubeadm_bytes() -> None:
    """The layout ``kubectl -n kube-public get cm cluster-info`` shows on a kubeadm cluster."""
    ca_b64 = base64.b64encode(CA).decode()
    assert cluster_info_kubeconfig("https://172.17.0.2:6443", CA) == (
        "apiVersion: v1\n"
        "clusters:\n"
        "- cluster:\n"
        f"    certificate-authority-data: {ca_b64}\n"
        "    server: https://172.17.0.2:6443\n"
        '  name: ""\n'
        "contexts: null\n"
        'current-context: ""\n'
        "kind: Config\n"
        "preferences: {}\n"
        "users: null\n"
    )


@pytest.mark.parametrize(
    "server",
    ["https://[::1]:6443", "https://h:6443/with path", "yes", "123", "https://x # y", ""],
)
def test_awkward_strings_round_trip(server: str) -> None:
    loaded = yaml.safe_load(cluster_info_kubeconfig(server, CA))
    assert loaded["clusters"][0]["cluster"]["server"] == server
    assert loaded["clusters"][0]["name"] == ""


def test_admin_round_trips() -> None:
    text = admin_kubeconfig("https://127.0.0.1:6443", CA, b"cert", b"key")
    loaded = yaml.safe_load(text)
    assert loaded["current-context"] == "kubernetes-admin@kubernetes"
    assert loaded["contexts"] == [
        {
            "name": "kubernetes-admin@kubernetes",
            "context": {"cluster": "kubernetes", "user": "kubernetes-admin"},
        }
    ]
    user = loaded["users"][0]
    assert user["name"] == "kubernetes-admin"
    assert base64.b64decode(user["user"]["client-key-data"]) == b"key"
    assert base64.b64decode(user["user"]["client-certificate-data"]) == b"cert"
