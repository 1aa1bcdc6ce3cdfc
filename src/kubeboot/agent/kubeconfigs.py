"""The two kubeconfigs the node side writes, and reading the CA out of a cluster entry.

* ``kubelet_kubeconfig`` (node-facts §1.8): ``default-cluster`` / ``default-auth`` /
  ``default-context``, namespace ``default``, client-certificate and client-key both
  ``<cert-dir>/kubelet-client-current.pem``. The whole bootstrap cluster entry is carried
  over (server, CA file or data, insecure flag, and also ``tls-server-name`` and
  ``proxy-url``, which upstream drops; §8).
* ``bootstrap_kubeconfig`` (node-facts §3.3 step 7): what ``kubeadm join`` writes to
  ``bootstrap-kubelet.conf``: cluster ``kubernetes``, user ``tls-bootstrap-token-user``.

Both are written atomically with mode 0600 (upstream writes in place, non-atomically).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from kubeboot.pki.files import ensure_private_dir, write_atomic

__all__ = [
    "BOOTSTRAP_USER",
    "bootstrap_kubeconfig",
    "ca_pem_of",
    "kubelet_kubeconfig",
    "write_kubeconfig",
]

BOOTSTRAP_USER = "tls-bootstrap-token-user"
_CARRIED_CLUSTER_FIELDS = (
    "server",
    "certificate-authority",
    "certificate-authority-data",
    "insecure-skip-tls-verify",
    "tls-server-name",
    "proxy-url",
)


def kubelet_kubeconfig(cluster: Mapping[str, Any], current_pem: Path) -> dict[str, Any]:
    carried = {k: cluster[k] for k in _CARRIED_CLUSTER_FIELDS if cluster.get(k) not in (None, "")}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "default-cluster", "cluster": carried}],
        "users": [
            {
                "name": "default-auth",
                "user": {"client-certificate": str(current_pem), "client-key": str(current_pem)},
            }
        ],
        "contexts": [
            {
                "name": "default-context",
                "context": {
                    "cluster": "default-cluster",
                    "user": "default-auth",
                    "namespace": "default",
                },
            }
        ],
        "current-context": "default-context",
        "preferences": {},
    }


def bootstrap_kubeconfig(server: str, ca_pem: bytes, token: str) -> dict[str, Any]:
    context = f"{BOOTSTRAP_USER}@kubernetes"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kubernetes",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode("ascii"),
                },
            }
        ],
        "users": [{"name": BOOTSTRAP_USER, "user": {"token": token}}],
        "contexts": [
            {"name": context, "context": {"cluster": "kubernetes", "user": BOOTSTRAP_USER}}
        ],
        "current-context": context,
        "preferences": {},
    }


def write_kubeconfig(path: Path, conf: Mapping[str, Any]) -> None:
    ensure_private_dir(path.parent)
    write_atomic(path, yaml.safe_dump(dict(conf), sort_keys=True).encode())


def ca_pem_of(cluster: Mapping[str, Any]) -> bytes | None:
    """The CA bundle a cluster entry trusts (file or data), or None if it names none."""
    data = cluster.get("certificate-authority-data")
    if data:
        raw = str(data)
        return raw.encode() if "-----BEGIN" in raw else base64.b64decode(raw)
    path = cluster.get("certificate-authority")
    if path:
        return Path(str(path)).read_bytes()
    return None
