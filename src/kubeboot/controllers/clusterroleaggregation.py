"""clusterrole-aggregation: the rules of a ClusterRole with an ``aggregationRule`` are the
union of the rules of the ClusterRoles its selectors match (upstream
``pkg/controller/clusterroleaggregation``).

So ``admin``, ``edit`` and ``view`` get their rules from ``system:aggregate-to-*`` and from
any ClusterRole a user labels ``rbac.authorization.k8s.io/aggregate-to-edit: "true"``.

Decision (pure, :func:`aggregated_rules`): for each selector in order, the matching
ClusterRoles sorted by name, the role itself skipped, each rule once (first occurrence
wins); nothing is written when that equals the role's rules. Any ClusterRole event enqueues
every aggregating role, as upstream's handler does, since a change anywhere can change what
a selector matches. The write is upstream's: a forced server-side apply of ``rules`` alone
under the field manager ``clusterrole-aggregation-controller``, as the controller's own
identity, which holds ``escalate`` on clusterroles so the escalation check lets it grant
what it gathers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kubeboot.client.interface import ApiClient, JsonObject
from kubeboot.controllers.runtime import Informer, WorkQueue, object_key, run_workers
from kubeboot.resources.registry import ResourceInfo

__all__ = [
    "CONTROLLER_NAME",
    "InvalidSelector",
    "aggregated_rules",
    "run_clusterrole_aggregation",
    "selector_matches",
]

CONTROLLER_NAME = "clusterrole-aggregation"
FIELD_MANAGER = "clusterrole-aggregation-controller"


class InvalidSelector(ValueError):
    """A selector ``LabelSelectorAsSelector`` refuses (an unknown operator, values misused)."""


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """``metav1.LabelSelectorAsSelector(selector).Matches(labels)``; an empty selector
    matches everything."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or ():
        key, op = str(expr.get("key") or ""), expr.get("operator")
        values = [str(v) for v in expr.get("values") or ()]
        present = key in labels
        if op in ("In", "NotIn"):
            if not values:
                raise InvalidSelector("for 'in', 'notin' operators, values set can't be empty")
            inside = present and labels[key] in values
            if inside != (op == "In"):
                return False
        elif op in ("Exists", "DoesNotExist"):
            if values:
                raise InvalidSelector("values set must be empty for exists and does not exist")
            if present != (op == "Exists"):
                return False
        else:
            raise InvalidSelector(f'"{op}" is not a valid label selector operator')
    return True


def aggregated_rules(
    role: Mapping[str, Any], cluster_roles: Iterable[Mapping[str, Any]]
) -> list[Any] | None:
    """The rules ``role`` aggregates, or None when it has no ``aggregationRule``."""
    rule = role.get("aggregationRule")
    if not isinstance(rule, Mapping):
        return None
    name = (role.get("metadata") or {}).get("name")
    candidates = sorted(cluster_roles, key=lambda r: str((r.get("metadata") or {}).get("name")))
    rules: list[Any] = []
    for selector in rule.get("clusterRoleSelectors") or ():
        for other in candidates:
            meta = other.get("metadata") or {}
            if meta.get("name") == name or not selector_matches(selector, meta.get("labels") or {}):
                continue
            rules += [r for r in other.get("rules") or () if r not in rules]
    return rules


async def run_clusterrole_aggregation(
    client: ApiClient, cluster_roles: Informer, res: ResourceInfo
) -> None:
    """Run until cancelled; ``client`` is the controller's own identity (it patches)."""
    queue: WorkQueue[str] = WorkQueue()

    def on_cluster_role(event: str, obj: JsonObject) -> None:
        for role in cluster_roles.items():
            if isinstance(role.get("aggregationRule"), Mapping):
                queue.add(object_key(role))

    cluster_roles.add_handler(on_cluster_role)

    async def handle(name: str) -> None:
        role = cluster_roles.get(name)
        if role is None:
            return
        rules = aggregated_rules(role, cluster_roles.items())
        if rules is None or rules == (role.get("rules") or []):
            return
        applied = {
            "apiVersion": res.api_version,
            "kind": res.kind,
            "metadata": {"name": name},
            "rules": rules,
        }
        await client.apply(res, applied, field_manager=FIELD_MANAGER, force=True)

    await cluster_roles.wait_synced()
    on_cluster_role("ADDED", {})  # whatever was listed before the handler was added
    await run_workers(CONTROLLER_NAME, queue, handle, 1)
