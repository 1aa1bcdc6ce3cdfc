"""Controller selection (``--controllers``) and the controller manager's settings.

``--controllers`` follows kube-controller-manager exactly: a comma-separated list where
``name`` enables, ``-name`` disables, and ``*`` enables everything not disabled by default;
the first explicit mention of a controller wins; without ``*`` only named controllers run.
``bootstrapsigner`` and ``tokencleaner`` are off by default (kubeadm passes
``--controllers=*,bootstrapsigner,tokencleaner``). Both the short alias and the canonical
upstream name are accepted.
"""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from kubeboot.pki.authority import DEFAULT_CLUSTER_SIGNING_DURATION

__all__ = [
    "CONTROLLER_ALIASES",
    "DISABLED_BY_DEFAULT",
    "ControllerConfig",
    "ControllersFlagError",
    "enabled_controllers",
]

# alias -> canonical name (cmd/kube-controller-manager/names)
CONTROLLER_ALIASES = MappingProxyType(
    {
        "bootstrapsigner": "bootstrap-signer-controller",
        "clusterrole-aggregation": "clusterrole-aggregation-controller",
        "csrapproving": "certificatesigningrequest-approving-controller",
        "csrcleaner": "certificatesigningrequest-cleaner-controller",
        "csrsigning": "certificatesigningrequest-signing-controller",
        "namespace": "namespace-controller",
        "nodelifecycle": "node-lifecycle-controller",
        "root-ca-cert-publisher": "root-ca-certificate-publisher-controller",
        "serviceaccount": "serviceaccount-controller",
        "serviceaccount-token": "serviceaccount-token-controller",
        "tokencleaner": "token-cleaner-controller",
        "ttl": "ttl-controller",
    }
)
DISABLED_BY_DEFAULT = frozenset({"bootstrapsigner", "tokencleaner"})
_BY_CANONICAL = {canonical: alias for alias, canonical in CONTROLLER_ALIASES.items()}


class ControllersFlagError(ValueError):
    """An unknown controller name in ``--controllers``."""


def _alias(name: str) -> str:
    if name in CONTROLLER_ALIASES:
        return name
    if name in _BY_CANONICAL:
        return _BY_CANONICAL[name]
    raise ControllersFlagError(f'"{name}" is not in the list of known controllers')


def enabled_controllers(flag: Iterable[str]) -> frozenset[str]:
    """The aliases of the controllers to run for a ``--controllers`` value (already split)."""
    entries = [e.strip() for e in flag if e.strip()]
    decided: dict[str, bool] = {}
    star = False
    for entry in entries:
        if entry == "*":
            star = True
            continue
        enable = not entry.startswith("-")
        name = _alias(entry.removeprefix("-"))
        decided.setdefault(name, enable)
    enabled = set()
    for name in CONTROLLER_ALIASES:
        if name in decided:
            if decided[name]:
                enabled.add(name)
        elif star and name not in DISABLED_BY_DEFAULT:
            enabled.add(name)
    return frozenset(enabled)


def _default_identity() -> str:
    """``<hostname>_<uuid>``, the identity format kube-controller-manager uses for its Lease."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    controllers: tuple[str, ...] = ("*",)
    cluster_signing_cert_file: Path | None = None
    cluster_signing_key_file: Path | None = None
    # --cluster-signing-{kubelet-serving,kubelet-client,kube-apiserver-client,legacy-unknown}-
    # {cert,key}-file: signerName -> (cert, key); exclusive with the generic pair above.
    signer_files: Mapping[str, tuple[Path, Path]] = field(default_factory=dict)
    cluster_signing_duration: dt.timedelta = DEFAULT_CLUSTER_SIGNING_DURATION
    # --root-ca-file: the CA bundle published as kube-root-ca.crt (and put into legacy token
    # Secrets); root-ca-cert-publisher is skipped without one, as upstream fails without it.
    root_ca_file: Path | None = None
    leader_elect: bool = True
    # --service-account-private-key-file: the key that signs legacy token Secrets
    # (serviceaccount-token is skipped without one, as upstream).
    service_account_private_key_file: Path | None = None
    # Legacy token Secrets for the controllers' own ServiceAccounts at start (kubeboot's
    # --legacy-controller-token-secrets; needs serviceaccount-token to be filled in).
    legacy_token_secrets: bool = False
    # The alpha group auto-approver of 1.4-1.6 (csrapproving; "" = off). Insecure.
    approve_all_kubelet_csrs_for_group: str = ""
    lease_namespace: str = "kube-system"
    lease_name: str = "kube-controller-manager"
    lease_duration: dt.timedelta = dt.timedelta(seconds=15)
    renew_deadline: dt.timedelta = dt.timedelta(seconds=10)
    retry_period: dt.timedelta = dt.timedelta(seconds=2)
    identity: str = field(default_factory=_default_identity)
