"""``default/kubernetes``: the API server's own Service, the one object ``services`` holds.

kube-apiserver creates it at start (``pkg/controlplane/controller/kubernetesservice``) with
the first address of ``--service-cluster-ip-range`` and port 443 → its secure port; clients
read it (upstream's e2e suite at setup, ``kubectl cluster-info``). kubeboot runs no
workloads, so no other Service exists here, and nothing routes to this one's ClusterIP: it
describes the API server, as upstream's does, for the clients that look it up.

The object is upstream's after its Service defaulting (clusterIPs, ipFamilies, policies).
"""

from __future__ import annotations

import ipaddress
from typing import Any

__all__ = [
    "DEFAULT_SERVICE_CIDR",
    "KUBERNETES_SERVICE_NAME",
    "ServiceCidrError",
    "kubernetes_service",
    "parse_service_cidrs",
    "service_ip",
]

KUBERNETES_SERVICE_NAME = "kubernetes"
# kubeadm's default networking.serviceSubnet (kube-apiserver's own default is 10.0.0.0/24;
# kubeboot stands in for a kubeadm cluster, so it takes kubeadm's; docs/api.md).
DEFAULT_SERVICE_CIDR = "10.96.0.0/12"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ServiceCidrError(ValueError):
    """A ``--service-cluster-ip-range`` value kube-apiserver would refuse too."""


def parse_service_cidrs(value: str) -> tuple[Network, ...]:
    """One or two CIDRs (dual stack: of different families); the first is primary."""
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if not parts:
        raise ServiceCidrError("--service-cluster-ip-range must contain at least one valid cidr")
    if len(parts) > 2:
        raise ServiceCidrError("--service-cluster-ip-range must not contain more than two entries")
    networks: list[Network] = []
    for part in parts:
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ServiceCidrError(
                f'--service-cluster-ip-range: "{part}" is not a CIDR (e.g. 10.96.0.0/12)'
            ) from exc
    if len(networks) == 2 and networks[0].version == networks[1].version:
        raise ServiceCidrError(
            "--service-cluster-ip-range[0] and --service-cluster-ip-range[1] must be of "
            "different IP family"
        )
    for net in networks:
        if net.num_addresses < 4:
            raise ServiceCidrError(
                f"--service-cluster-ip-range: {net} is too small to hold a Service address"
            )
    return tuple(networks)


def service_ip(network: Network, index: int) -> str:
    """The ``index``-th address of the range (1: the API server's, 10: kubeadm's DNS)."""
    return str(network.network_address + index)


def kubernetes_service(primary: Network, secure_port: int) -> dict[str, Any]:
    cluster_ip = service_ip(primary, 1)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": KUBERNETES_SERVICE_NAME,
            "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "clusterIP": cluster_ip,
            "clusterIPs": [cluster_ip],
            "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4" if primary.version == 4 else "IPv6"],
            "ipFamilyPolicy": "SingleStack",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": secure_port}],
            "sessionAffinity": "None",
            "type": "ClusterIP",
        },
        "status": {"loadBalancer": {}},
    }
