"""Writer for the two kubeconfigs the server itself emits, in clientcmd's byte layout.

* :func:`cluster_info_kubeconfig` is the ``data.kubeconfig`` of ``kube-public/cluster-info``
  as kubeadm writes it (server-facts §6.4): one cluster named ``""`` with ``server`` and
  ``certificate-authority-data``, no contexts, no users. The bootstrapsigner signs these
  exact bytes and joining nodes compare them byte for byte across two fetches.
* :func:`admin_kubeconfig` is kubeadm's ``admin.conf``: cluster ``kubernetes``, user
  ``kubernetes-admin`` with embedded client certificate and key, context
  ``kubernetes-admin@kubernetes``.

Output matches ``clientcmd.Write`` (JSON → YAML via sigs.k8s.io/yaml): keys sorted, two-space
indentation, ``null`` for absent lists, ``{}`` for empty preferences. Reading and resolving
arbitrary kubeconfigs is deliberately not here.
"""

from __future__ import annotations

import base64
import json
import re

__all__ = ["admin_kubeconfig", "cluster_info_kubeconfig"]

# Strings go-yaml prints unquoted: start with a letter or digit, no ": " / " #" sequences,
# and not something YAML would read back as a bool, null or number.
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@\[\]%+=~-]*")
_RESERVED = re.compile(
    r"(?i:y|n|yes|no|true|false|on|off|null|~)|[-+]?[0-9][0-9_.eE+:-]*|[-+]?\.(?i:inf|nan)"
)


def _scalar(value: str) -> str:
    if _PLAIN.fullmatch(value) and not _RESERVED.fullmatch(value):
        return value
    # A YAML double-quoted scalar accepts JSON string escapes.
    return json.dumps(value)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def cluster_info_kubeconfig(server: str, ca_pem: bytes) -> str:
    """The ``kubeconfig`` value of the cluster-info ConfigMap."""
    return (
        "apiVersion: v1\n"
        "clusters:\n"
        "- cluster:\n"
        f"    certificate-authority-data: {_b64(ca_pem)}\n"
        f"    server: {_scalar(server)}\n"
        '  name: ""\n'
        "contexts: null\n"
        'current-context: ""\n'
        "kind: Config\n"
        "preferences: {}\n"
        "users: null\n"
    )


def admin_kubeconfig(
    server: str,
    ca_pem: bytes,
    client_cert_pem: bytes,
    client_key_pem: bytes,
    *,
    cluster_name: str = "kubernetes",
    user_name: str = "kubernetes-admin",
) -> str:
    """A kubeconfig with embedded credentials; contains a private key, so write it 0600."""
    context = f"{user_name}@{cluster_name}"
    return (
        "apiVersion: v1\n"
        "clusters:\n"
        "- cluster:\n"
        f"    certificate-authority-data: {_b64(ca_pem)}\n"
        f"    server: {_scalar(server)}\n"
        f"  name: {_scalar(cluster_name)}\n"
        "contexts:\n"
        "- context:\n"
        f"    cluster: {_scalar(cluster_name)}\n"
        f"    user: {_scalar(user_name)}\n"
        f"  name: {_scalar(context)}\n"
        f"current-context: {_scalar(context)}\n"
        "kind: Config\n"
        "preferences: {}\n"
        "users:\n"
        f"- name: {_scalar(user_name)}\n"
        "  user:\n"
        f"    client-certificate-data: {_b64(client_cert_pem)}\n"
        f"    client-key-data: {_b64(client_key_pem)}\n"
    )
