"""``kube-system/kubeadm-config`` and ``kubelet-config``: published at the first start, readable
with a bootstrap token (what ``kubeadm join`` does first), reconciled with the flags at every
start, an administrator's own kubelet settings kept."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path
from typing import Any

import yaml

from kubeboot.kubeadmconfig import COMPONENT_CONFIG_HASH_ANNOTATION, configmap_checksum
from tests.conftest import RunningServer, admin_ssl_context, call_as, in_process_server

CONFIGMAPS = "/api/v1/namespaces/kube-system/configmaps"
MOVED: dict[str, object] = {
    "service_cluster_ip_range": "10.100.0.0/16",
    "cluster_name": "edge",
    "cluster_signing_duration": dt.timedelta(minutes=5),
}


async def _configmap(running: RunningServer, name: str, **kwargs: Any) -> tuple[int, Any]:
    return await call_as(running, "GET", f"{CONFIGMAPS}/{name}", **kwargs)


def _doc(configmap: dict[str, Any], key: str) -> dict[str, Any]:
    doc = yaml.safe_load(configmap["data"][key])
    assert isinstance(doc, dict)
    return doc


async def test_join_reads_the_config_with_a_bootstrap_token(tmp_path: Path) -> None:
    async with in_process_server(tmp_path / "data") as running:
        assert running.server is not None and running.server.init_result is not None
        token = running.server.init_result.token
        status, kubeadm = await _configmap(running, "kubeadm-config", token=token)
        assert status == 200, kubeadm
        cluster = _doc(kubeadm, "ClusterConfiguration")
        assert cluster["kind"] == "ClusterConfiguration"
        assert cluster["apiVersion"] == "kubeadm.k8s.io/v1beta4"
        assert cluster["controlPlaneEndpoint"] == running.url.removeprefix("https://")
        # kubeadm's, on the nodes: never the server's own pki (`kubeadm reset` empties it)
        assert cluster["certificatesDir"] == "/etc/kubernetes/pki"
        assert cluster["networking"]["serviceSubnet"] == "10.96.0.0/12"
        assert "extraArgs" not in cluster["controllerManager"]  # the default 8760h

        status, kubelet = await _configmap(running, "kubelet-config", token=token)
        assert status == 200
        config = _doc(kubelet, "kubelet")
        assert config["clusterDNS"] == ["10.96.0.10"]
        assert config["rotateCertificates"] is True
        assert config["authentication"]["webhook"]["enabled"] is True
        # kubeadm signs what it generated; its hash is over the data values
        annotations = kubelet["metadata"]["annotations"]
        assert annotations[COMPONENT_CONFIG_HASH_ANNOTATION] == configmap_checksum(kubelet)

        # the token reads these two and nothing else in kube-system
        status, _ = await call_as(running, "GET", f"{CONFIGMAPS}/kube-proxy", token=token)
        assert status == 403
        status, _ = await call_as(running, "GET", CONFIGMAPS, token=token)
        assert status == 403


async def test_restart_reconciles_with_the_flags_and_keeps_admin_settings(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    # one port for the three starts: the API endpoint is part of the ClusterConfiguration
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with in_process_server(data, secure_port=port) as running:
        admin = admin_ssl_context(running)
        status, kubelet = await _configmap(running, "kubelet-config", ctx=admin)
        config = _doc(kubelet, "kubelet")
        config["serverTLSBootstrap"] = True
        kubelet["data"]["kubelet"] = yaml.safe_dump(config)
        status, edited = await call_as(
            running, "PUT", f"{CONFIGMAPS}/kubelet-config", kubelet, ctx=admin
        )
        assert status == 200, edited

    async with in_process_server(data, secure_port=port, **MOVED) as running:
        admin = admin_ssl_context(running)
        status, kubeadm = await _configmap(running, "kubeadm-config", ctx=admin)
        cluster = _doc(kubeadm, "ClusterConfiguration")
        assert cluster["clusterName"] == "edge"
        assert cluster["networking"]["serviceSubnet"] == "10.100.0.0/16"
        assert cluster["controllerManager"]["extraArgs"] == [
            {"name": "cluster-signing-duration", "value": "5m0s"}
        ]
        status, kubelet = await _configmap(running, "kubelet-config", ctx=admin)
        config = _doc(kubelet, "kubelet")
        assert config["clusterDNS"] == ["10.100.0.10"]
        assert config["serverTLSBootstrap"] is True  # the administrator's, kept
        # an edited ConfigMap is user-supplied to kubeadm: the server does not sign it again
        annotations = kubelet["metadata"].get("annotations") or {}
        assert COMPONENT_CONFIG_HASH_ANNOTATION not in annotations
        status, service = await call_as(
            running, "GET", "/api/v1/namespaces/default/services/kubernetes", ctx=admin
        )
        assert service["spec"]["clusterIP"] == "10.100.0.1"
        before = kubeadm["metadata"]["resourceVersion"]

    async with in_process_server(data, secure_port=port, **MOVED) as running:
        status, kubeadm = await _configmap(
            running, "kubeadm-config", ctx=admin_ssl_context(running)
        )
        assert kubeadm["metadata"]["resourceVersion"] == before  # same flags: no write
