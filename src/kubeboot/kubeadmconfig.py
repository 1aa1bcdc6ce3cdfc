"""``kube-system/kubeadm-config`` and ``kube-system/kubelet-config``, kubeadm init's way.

``kubeadm join`` reads both with the bootstrap token before it writes anything on the node,
and fails without them (facts/real-k8s.md): ``kubeadm-config`` holds the ClusterConfiguration
(``kubeadm.k8s.io/v1beta4``), ``kubelet-config`` the KubeletConfiguration every joining
kubelet starts from. kubeadm's phases ``upload-config`` and ``kubelet-start`` create them with
two Roles and RoleBindings that let bootstrap tokens and nodes read them.

This module is pure: it builds the objects from :class:`ClusterSettings` (what the server's
flags say about the cluster) and decides, for the server's reconcile at each start, what has
to change in stored ones:

* ``kubeadm-config`` is the server's: it is rewritten whenever the flags say something else;
* in ``kubelet-config`` only the fields kubeboot derives from its flags are the server's
  (:data:`OWNED_KUBELET_FIELDS`); an administrator's other settings (``serverTLSBootstrap``…)
  are kept. kubeadm signs the ConfigMap it generated (annotation
  ``kubeadm.kubernetes.io/component-config.hash``, a sha256 over the data); the signature is
  renewed when the server rewrites a ConfigMap that carried a valid one, and left off one an
  administrator edited, which is what kubeadm calls user-supplied.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from kubeboot.durations import format_go_duration, timedelta_ns
from kubeboot.resources.bootstrap_token import KUBEADM_DEFAULT_NODE_TOKEN_GROUP, NODES_GROUP

__all__ = [
    "CERTIFICATES_DIR",
    "CLUSTER_CONFIGURATION_KEY",
    "COMPONENT_CONFIG_HASH_ANNOTATION",
    "KUBEADM_CONFIG_CONFIGMAP",
    "KUBELET_CONFIG_CONFIGMAP",
    "KUBELET_CONFIG_KEY",
    "KUBERNETES_VERSION",
    "OWNED_KUBELET_FIELDS",
    "ClusterSettings",
    "cluster_configuration",
    "config_rbac_objects",
    "configmap_checksum",
    "kubeadm_config_configmap",
    "kubelet_config_configmap",
    "kubelet_configuration",
    "reconcile_kubeadm_config",
    "reconcile_kubelet_config",
]

JsonObj = dict[str, Any]

KUBEADM_CONFIG_CONFIGMAP = "kubeadm-config"
CLUSTER_CONFIGURATION_KEY = "ClusterConfiguration"
KUBELET_CONFIG_CONFIGMAP = "kubelet-config"
KUBELET_CONFIG_KEY = "kubelet"
COMPONENT_CONFIG_HASH_ANNOTATION = "kubeadm.kubernetes.io/component-config.hash"
# The release whose kubeadm and kubelet this configuration is written for (and tested with:
# tests/real). kubeadm compares a joining kubelet's version with it.
KUBERNETES_VERSION = "v1.37.2"
_NAMESPACE = "kube-system"
_RBAC = "rbac.authorization.k8s.io"
# kubeadm's certificatesDir: where ``kubeadm join`` writes the cluster CA on every node
# (JoinConfiguration.caCertPath's default is ca.crt there), where the published kubelet
# configuration's clientCAFile points, and what ``kubeadm reset`` empties on a node. Never the
# server's own pki directory: a reset on a node beside the server would delete its CA.
CERTIFICATES_DIR = "/etc/kubernetes/pki"
# kube-controller-manager's default --cluster-signing-duration: kubeadm writes no extraArg then.
_DEFAULT_SIGNING_DURATION = dt.timedelta(hours=8760)


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """What the cluster says about itself in kubeadm's terms, derived from the server's flags."""

    control_plane_endpoint: str  # host:port, as nodes reach the API server
    service_subnet: str  # --service-cluster-ip-range
    cluster_dns: str  # the tenth address of the primary Service range, as kubeadm picks it
    cluster_name: str = "kubernetes"
    dns_domain: str = "cluster.local"
    kubernetes_version: str = KUBERNETES_VERSION
    encryption_algorithm: str = "ECDSA-P256"  # kubeadm's name for the CA's key type
    cert_sans: tuple[str, ...] = ()
    cluster_signing_duration: dt.timedelta = _DEFAULT_SIGNING_DURATION
    # {"local": {"dataDir": ...}} or {"external": {"endpoints": [...], ...}}
    etcd: Mapping[str, Any] = field(default_factory=lambda: {"local": {"dataDir": ""}})
    ca_validity: dt.timedelta = dt.timedelta(hours=87600)
    certificate_validity: dt.timedelta = dt.timedelta(hours=8760)


def cluster_configuration(settings: ClusterSettings) -> JsonObj:
    """The ClusterConfiguration ``kubeadm init`` would upload for this cluster."""
    api_server: JsonObj = {}
    if settings.cert_sans:
        api_server["certSANs"] = list(settings.cert_sans)
    controller_manager: JsonObj = {}
    if settings.cluster_signing_duration != _DEFAULT_SIGNING_DURATION:
        controller_manager["extraArgs"] = [
            {
                "name": "cluster-signing-duration",
                "value": format_go_duration(timedelta_ns(settings.cluster_signing_duration)),
            }
        ]
    return {
        "apiServer": api_server,
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "caCertificateValidityPeriod": format_go_duration(timedelta_ns(settings.ca_validity)),
        "certificateValidityPeriod": format_go_duration(
            timedelta_ns(settings.certificate_validity)
        ),
        "certificatesDir": CERTIFICATES_DIR,
        "clusterName": settings.cluster_name,
        "controlPlaneEndpoint": settings.control_plane_endpoint,
        "controllerManager": controller_manager,
        "dns": {},
        "encryptionAlgorithm": settings.encryption_algorithm,
        "etcd": dict(settings.etcd),
        "imageRepository": "registry.k8s.io",
        "kind": "ClusterConfiguration",
        "kubernetesVersion": settings.kubernetes_version,
        "networking": {
            "dnsDomain": settings.dns_domain,
            "serviceSubnet": settings.service_subnet,
        },
        "proxy": {},
        "scheduler": {},
    }


# The KubeletConfiguration fields the server derives from its flags; the rest of a stored
# kubelet-config is the administrator's.
OWNED_KUBELET_FIELDS = ("clusterDNS", "clusterDomain")


def kubelet_configuration(settings: ClusterSettings) -> JsonObj:
    """kubeadm's KubeletConfiguration after its defaulting (``componentconfigs.kubelet``):
    webhook authentication and authorization of the kubelet's API against the API server,
    client certificates checked against the cluster CA, client certificate rotation."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"cacheTTL": "0s", "enabled": True},
            "x509": {"clientCAFile": f"{CERTIFICATES_DIR}/ca.crt"},
        },
        "authorization": {
            "mode": "Webhook",
            "webhook": {"cacheAuthorizedTTL": "0s", "cacheUnauthorizedTTL": "0s"},
        },
        "cgroupDriver": "systemd",
        "clusterDNS": [settings.cluster_dns],
        "clusterDomain": settings.dns_domain,
        "containerRuntimeEndpoint": "",
        "cpuManagerReconcilePeriod": "0s",
        "crashLoopBackOff": {},
        "evictionPressureTransitionPeriod": "0s",
        "fileCheckFrequency": "0s",
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "httpCheckFrequency": "0s",
        "imageMaximumGCAge": "0s",
        "imageMinimumGCAge": "0s",
        "kind": "KubeletConfiguration",
        "logging": {
            "flushFrequency": 0,
            "options": {"json": {"infoBufferSize": "0"}, "text": {"infoBufferSize": "0"}},
            "verbosity": 0,
        },
        "memorySwap": {},
        "nodeStatusReportFrequency": "0s",
        "nodeStatusUpdateFrequency": "0s",
        "rotateCertificates": True,
        "runtimeRequestTimeout": "0s",
        "shutdownGracePeriod": "0s",
        "shutdownGracePeriodCriticalPods": "0s",
        "staticPodPath": "/etc/kubernetes/manifests",
        "streamingConnectionIdleTimeout": "0s",
        "syncFrequency": "0s",
        "volumeStatsAggPeriod": "0s",
    }


def _yaml(doc: JsonObj) -> str:
    """Keys sorted and block style, as kubeadm's marshalling (JSON → YAML) lays them out."""
    return yaml.safe_dump(doc, sort_keys=True, default_flow_style=False)


def configmap_checksum(configmap: JsonObj) -> str:
    """kubeadm's ``ChecksumForConfigMap``: sha256 over data values, then binaryData values,
    each in key order."""
    digest = hashlib.sha256()
    data = configmap.get("data") or {}
    for key in sorted(data):
        digest.update(str(data[key]).encode())
    binary = configmap.get("binaryData") or {}
    for key in sorted(binary):
        digest.update(base64.b64decode(binary[key]))
    return f"sha256:{digest.hexdigest()}"


def _configmap(name: str, key: str, doc: JsonObj, *, signed: bool) -> JsonObj:
    configmap: JsonObj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": _NAMESPACE},
        "data": {key: _yaml(doc)},
    }
    if signed:
        configmap["metadata"]["annotations"] = {
            COMPONENT_CONFIG_HASH_ANNOTATION: configmap_checksum(configmap)
        }
    return configmap


def kubeadm_config_configmap(settings: ClusterSettings) -> JsonObj:
    return _configmap(
        KUBEADM_CONFIG_CONFIGMAP,
        CLUSTER_CONFIGURATION_KEY,
        cluster_configuration(settings),
        signed=False,
    )


def kubelet_config_configmap(settings: ClusterSettings) -> JsonObj:
    return _configmap(
        KUBELET_CONFIG_CONFIGMAP, KUBELET_CONFIG_KEY, kubelet_configuration(settings), signed=True
    )


def _stored_doc(configmap: JsonObj, key: str) -> JsonObj | None:
    """The YAML document under ``key``, or None when it is missing or not a mapping."""
    text = (configmap.get("data") or {}).get(key)
    if not isinstance(text, str):
        return None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return doc if isinstance(doc, dict) else None


def _changes(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``field: old -> new`` for each leaf that differs, for the server's log."""
    out = []
    for key in sorted(set(old) | set(new)):
        path = f"{prefix}{key}"
        before, after = old.get(key), new.get(key)
        if isinstance(before, dict) and isinstance(after, dict):
            out += _changes(before, after, f"{path}.")
        elif before != after:
            out.append(f"{path}: {before!r} -> {after!r}")
    return out


def _with_data(stored: JsonObj, key: str, doc: JsonObj, *, resign: bool) -> JsonObj:
    """``stored`` with ``doc`` under ``key``; the kubeadm signature renewed if ``resign``."""
    metadata: JsonObj = dict(stored["metadata"])
    updated: JsonObj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": {**(stored.get("data") or {}), key: _yaml(doc)},
    }
    if stored.get("binaryData"):
        updated["binaryData"] = stored["binaryData"]
    annotations = dict(metadata.pop("annotations", None) or {})
    annotations.pop(COMPONENT_CONFIG_HASH_ANNOTATION, None)
    if resign:
        annotations[COMPONENT_CONFIG_HASH_ANNOTATION] = configmap_checksum(updated)
    if annotations:
        metadata["annotations"] = annotations
    return updated


def _signed(configmap: JsonObj) -> bool:
    annotations = configmap.get("metadata", {}).get("annotations") or {}
    return annotations.get(COMPONENT_CONFIG_HASH_ANNOTATION) == configmap_checksum(configmap)


def reconcile_kubeadm_config(
    stored: JsonObj, settings: ClusterSettings
) -> tuple[JsonObj | None, list[str]]:
    """(the ConfigMap to write, what changed) — (None, []) when it already says the truth."""
    desired = cluster_configuration(settings)
    current = _stored_doc(stored, CLUSTER_CONFIGURATION_KEY)
    if current == desired:
        return None, []
    changes = _changes(current or {}, desired)
    return _with_data(stored, CLUSTER_CONFIGURATION_KEY, desired, resign=False), changes


def reconcile_kubelet_config(
    stored: JsonObj, settings: ClusterSettings
) -> tuple[JsonObj | None, list[str]]:
    """Set the server's fields in a stored kubelet-config; keep everything else."""
    current = _stored_doc(stored, KUBELET_CONFIG_KEY)
    if current is None:  # unreadable: start again from kubeadm's defaults
        desired = kubelet_configuration(settings)
        return _with_data(stored, KUBELET_CONFIG_KEY, desired, resign=True), _changes({}, desired)
    owned = kubelet_configuration(settings)
    desired = {**current, **{f: owned[f] for f in OWNED_KUBELET_FIELDS}}
    if desired == current:
        return None, []
    changes = _changes(
        {f: current.get(f) for f in OWNED_KUBELET_FIELDS},
        {f: desired[f] for f in OWNED_KUBELET_FIELDS},
    )
    return _with_data(stored, KUBELET_CONFIG_KEY, desired, resign=_signed(stored)), changes


def _role(name: str, configmap: str) -> JsonObj:
    return {
        "apiVersion": f"{_RBAC}/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": _NAMESPACE},
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": [configmap],
                "verbs": ["get"],
            }
        ],
    }


def _binding(name: str, groups: tuple[str, str]) -> JsonObj:
    return {
        "apiVersion": f"{_RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": _NAMESPACE},
        "roleRef": {"apiGroup": _RBAC, "kind": "Role", "name": name},
        "subjects": [{"apiGroup": _RBAC, "kind": "Group", "name": g} for g in groups],
    }


def config_rbac_objects() -> list[JsonObj]:
    """kubeadm's Roles/RoleBindings that let joining nodes read the two ConfigMaps (subjects
    in kubeadm's order)."""
    return [
        _role("kubeadm:nodes-kubeadm-config", KUBEADM_CONFIG_CONFIGMAP),
        _binding("kubeadm:nodes-kubeadm-config", (KUBEADM_DEFAULT_NODE_TOKEN_GROUP, NODES_GROUP)),
        _role("kubeadm:kubelet-config", KUBELET_CONFIG_CONFIGMAP),
        _binding("kubeadm:kubelet-config", (NODES_GROUP, KUBEADM_DEFAULT_NODE_TOKEN_GROUP)),
    ]
