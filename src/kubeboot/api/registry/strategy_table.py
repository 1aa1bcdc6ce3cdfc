"""Which strategy governs each resource (kube-apiserver's per-kind ``rest.Storage`` wiring).

The table sits apart from ``strategies`` (the generic strategy and the small per-kind ones) and
``csr_strategy`` (the CSR rules, which build on the generic one), so that both can be imported
here without either importing the other's user.
"""

from __future__ import annotations

from kubeboot.api.registry.csinode_strategy import CSINodeStrategy
from kubeboot.api.registry.csr_strategy import CSRStrategy
from kubeboot.api.registry.ledger_strategy import RejoinDenialStrategy, RevocationStrategy
from kubeboot.api.registry.serviceaccount_strategy import ServiceAccountStrategy
from kubeboot.api.registry.strategies import (
    ConfigMapStrategy,
    EventStrategy,
    LeaseStrategy,
    NamespaceStrategy,
    NodeStrategy,
    RoleBindingStrategy,
    RoleStrategy,
    SecretStrategy,
    Strategy,
)

__all__ = ["strategy_for"]

_DEFAULT = Strategy()

_table: dict[str, Strategy] = {
    "certificatesigningrequests": CSRStrategy(),
    "secrets": SecretStrategy(),
    "configmaps": ConfigMapStrategy(),
    "namespaces": NamespaceStrategy(),
    "nodes": NodeStrategy(),
    "roles": RoleStrategy(namespaced=True),
    "clusterroles": RoleStrategy(namespaced=False),
    "rolebindings": RoleBindingStrategy(namespaced=True),
    "clusterrolebindings": RoleBindingStrategy(namespaced=False),
    "leases": LeaseStrategy(),
    "events": EventStrategy(),
    "csinodes": CSINodeStrategy(),
    "serviceaccounts": ServiceAccountStrategy(),
    "certificaterevocations": RevocationStrategy(),
    "rejoindenials": RejoinDenialStrategy(),
}


def strategy_for(plural: str) -> Strategy:
    """The strategy for ``plural``; resources without special rules get the generic one."""
    return _table.get(plural, _DEFAULT)
