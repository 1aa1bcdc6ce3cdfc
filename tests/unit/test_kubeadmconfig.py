"""kubeadm-config / kubelet-config as kubeadm init writes them, and the server's reconcile:
what it owns is rewritten, what an administrator set is kept; unhappy inputs first."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
from typing import Any

import yaml

from kubeboot.kubeadmconfig import (
    COMPONENT_CONFIG_HASH_ANNOTATION,
    ClusterSettings,
    cluster_configuration,
    config_rbac_objects,
    configmap_checksum,
    kubeadm_config_configmap,
    kubelet_config_configmap,
    reconcile_kubeadm_config,
    reconcile_kubelet_config,
)

SETTINGS = ClusterSettings(
    control_plane_endpoint="10.0.0.1:6443",
    service_subnet="10.96.0.0/12",
    cluster_dns="10.96.0.10",
)
MOVED = ClusterSettings(
    control_plane_endpoint="10.0.0.1:6443",
    service_subnet="10.100.0.0/16",
    cluster_dns="10.100.0.10",
    cluster_name="edge",
    cluster_signing_duration=dt.timedelta(hours=1),
)


def _stored(configmap: dict[str, Any]) -> dict[str, Any]:
    stored = copy.deepcopy(configmap)
    stored["metadata"].update(uid="u", resourceVersion="7")
    return stored


def _kubelet_doc(configmap: dict[str, Any]) -> dict[str, Any]:
    doc = yaml.safe_load(configmap["data"]["kubelet"])
    assert isinstance(doc, dict)
    return doc


def test_unreadable_kubelet_config_starts_again_from_defaults() -> None:
    stored = _stored(kubelet_config_configmap(SETTINGS))
    stored["data"]["kubelet"] = "- not\n- a mapping\n"
    updated, changes = reconcile_kubelet_config(stored, SETTINGS)
    assert updated is not None and changes
    assert _kubelet_doc(updated)["rotateCertificates"] is True
    assert updated["metadata"]["resourceVersion"] == "7"  # a compare-and-swap on what was read


def test_kubeadm_config_is_rewritten_and_each_change_named() -> None:
    stored = _stored(kubeadm_config_configmap(SETTINGS))
    assert reconcile_kubeadm_config(stored, SETTINGS) == (None, [])
    updated, changes = reconcile_kubeadm_config(stored, MOVED)
    assert updated is not None
    assert changes == [
        "clusterName: 'kubernetes' -> 'edge'",
        "controllerManager.extraArgs: None -> [{'name': 'cluster-signing-duration', "
        "'value': '1h0m0s'}]",
        "networking.serviceSubnet: '10.96.0.0/12' -> '10.100.0.0/16'",
    ]
    doc = yaml.safe_load(updated["data"]["ClusterConfiguration"])
    assert doc == cluster_configuration(MOVED)


def test_kubelet_config_keeps_the_administrators_fields() -> None:
    stored = _stored(kubelet_config_configmap(SETTINGS))
    doc = _kubelet_doc(stored)
    doc["serverTLSBootstrap"] = True
    doc["clusterDomain"] = "corp.example"  # the server's field: set back
    stored["data"]["kubelet"] = yaml.safe_dump(doc)
    updated, changes = reconcile_kubelet_config(stored, MOVED)
    assert updated is not None
    assert changes == [
        "clusterDNS: ['10.96.0.10'] -> ['10.100.0.10']",
        "clusterDomain: 'corp.example' -> 'cluster.local'",
    ]
    result = _kubelet_doc(updated)
    assert result["serverTLSBootstrap"] is True
    assert result["clusterDNS"] == ["10.100.0.10"]
    # edited by hand, so kubeadm's signature no longer matched: the server does not sign it
    assert COMPONENT_CONFIG_HASH_ANNOTATION not in updated["metadata"].get("annotations", {})


def test_a_signed_kubelet_config_is_signed_again() -> None:
    stored = _stored(kubelet_config_configmap(SETTINGS))
    stored["metadata"]["annotations"]["team"] = "infra"
    updated, _ = reconcile_kubelet_config(stored, MOVED)
    assert updated is not None
    annotations = updated["metadata"]["annotations"]
    assert annotations["team"] == "infra"
    assert annotations[COMPONENT_CONFIG_HASH_ANNOTATION] == configmap_checksum(updated)
    assert reconcile_kubelet_config(updated, MOVED) == (None, [])


def test_checksum_is_kubeadms() -> None:
    """ChecksumForConfigMap: sha256 over the data values in key order, then binaryData."""
    configmap = {"data": {"b": "2", "a": "1"}, "binaryData": {"z": "AAE="}}
    expected = hashlib.sha256(b"12" + b"\x00\x01").hexdigest()
    assert configmap_checksum(configmap) == f"sha256:{expected}"


def test_cluster_configuration_shape() -> None:
    doc = cluster_configuration(SETTINGS)
    assert doc["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    assert doc["caCertificateValidityPeriod"] == "87600h0m0s"
    assert doc["controllerManager"] == {}  # the default signing duration needs no extraArg
    assert doc["kubernetesVersion"] == "v1.37.2"
    assert doc["etcd"] == {"local": {"dataDir": ""}}


def test_rbac_lets_tokens_and_nodes_read_exactly_the_two_configmaps() -> None:
    objects = {(o["kind"], o["metadata"]["name"]): o for o in config_rbac_objects()}
    role = objects[("Role", "kubeadm:kubelet-config")]
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["kubelet-config"],
            "verbs": ["get"],
        }
    ]
    binding = objects[("RoleBinding", "kubeadm:nodes-kubeadm-config")]
    assert [s["name"] for s in binding["subjects"]] == [
        "system:bootstrappers:kubeadm:default-node-token",
        "system:nodes",
    ]
