"""nodelifecycle and ttl: what kube-controller-manager writes on every Node
(upstream ``pkg/controller/nodelifecycle``, its NoSchedule tainting pass and label
reconciliation, and ``pkg/controller/ttl``).

* **Condition taints** (``nodelifecycle``): a Node carries exactly the ``NoSchedule`` taints
  its conditions call for — ``node.kubernetes.io/not-ready`` while Ready is False,
  ``…/unreachable`` while it is Unknown, ``…/memory-pressure``, ``…/disk-pressure``,
  ``…/pid-pressure`` and ``…/network-unavailable`` while those are True, and
  ``…/unschedulable`` for ``spec.unschedulable``. The API server taints a new Node
  not-ready (TaintNodesByCondition); this pass removes that taint as soon as the Node's
  conditions no longer call for it (a Node without a Ready condition has none, as upstream).
  Other taints (their effects, their keys) are left alone.
* **Labels** (``nodelifecycle``): the deprecated ``beta.kubernetes.io/os|arch`` labels follow
  ``kubernetes.io/os|arch``.
* **TTL annotation** (``ttl``): ``node.alpha.kubernetes.io/ttl``, the seconds a kubelet may
  cache Secrets and ConfigMaps, by cluster size (``0`` up to 100 nodes).

Not done (kubeboot runs no workloads): marking Nodes whose kubelet went silent as Unknown
and the NoExecute taints and evictions that follow (docs/controllers.md).
"""

from __future__ import annotations

from typing import Any

from kubeboot.client.interface import ApiClient, JsonObject
from kubeboot.controllers.runtime import Informer, WorkQueue, run_workers
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.status import Conflict, NotFound

__all__ = [
    "NODELIFECYCLE",
    "TTL",
    "TTL_ANNOTATION",
    "condition_taints",
    "desired_labels",
    "run_node_controllers",
    "ttl_seconds",
]

NODELIFECYCLE = "nodelifecycle"
TTL = "ttl"
TTL_ANNOTATION = "node.alpha.kubernetes.io/ttl"
_NO_SCHEDULE = "NoSchedule"
# condition type -> status -> taint key (upstream's nodeConditionToTaintKeyStatusMap)
_CONDITION_TAINTS = {
    "Ready": {"False": "node.kubernetes.io/not-ready", "Unknown": "node.kubernetes.io/unreachable"},
    "MemoryPressure": {"True": "node.kubernetes.io/memory-pressure"},
    "DiskPressure": {"True": "node.kubernetes.io/disk-pressure"},
    "NetworkUnavailable": {"True": "node.kubernetes.io/network-unavailable"},
    "PIDPressure": {"True": "node.kubernetes.io/pid-pressure"},
}
_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
_MANAGED_KEYS = {key for by_status in _CONDITION_TAINTS.values() for key in by_status.values()}
_MANAGED_KEYS.add(_UNSCHEDULABLE)
# (primary, deprecated) labels kept equal (upstream's labelReconcileInfo)
_LABEL_PAIRS = (
    ("kubernetes.io/os", "beta.kubernetes.io/os"),
    ("kubernetes.io/arch", "beta.kubernetes.io/arch"),
)
# (up to this many nodes, ttl seconds) — upstream's ttlBoundaries, read upward
_TTL_STEPS = ((100, 0), (500, 15), (1000, 30), (2000, 60), (10000, 300))


def condition_taints(node: JsonObject) -> list[JsonObject]:
    """The NoSchedule taints the Node's conditions and ``spec.unschedulable`` call for."""
    wanted = []
    for cond in (node.get("status") or {}).get("conditions") or []:
        if not isinstance(cond, dict):
            continue
        key = _CONDITION_TAINTS.get(str(cond.get("type")), {}).get(str(cond.get("status")))
        if key:
            wanted.append({"key": key, "effect": _NO_SCHEDULE})
    if (node.get("spec") or {}).get("unschedulable"):
        wanted.append({"key": _UNSCHEDULABLE, "effect": _NO_SCHEDULE})
    return wanted


def reconciled_taints(node: JsonObject) -> list[JsonObject] | None:
    """The Node's taints with the condition taints swapped in, or None when already right."""
    taints = [t for t in (node.get("spec") or {}).get("taints") or [] if isinstance(t, dict)]

    def managed(t: JsonObject) -> bool:
        return t.get("effect") == _NO_SCHEDULE and t.get("key") in _MANAGED_KEYS

    have = {(t.get("key"), t.get("effect")) for t in taints if managed(t)}
    wanted = condition_taints(node)
    if have == {(t["key"], t["effect"]) for t in wanted}:
        return None
    kept = [
        t
        for t in taints
        if not managed(t)
        or (t.get("key"), t.get("effect")) in {(w["key"], w["effect"]) for w in wanted}
    ]
    kept_keys = {(t.get("key"), t.get("effect")) for t in kept}
    return kept + [w for w in wanted if (w["key"], w["effect"]) not in kept_keys]


def desired_labels(node: JsonObject) -> dict[str, str]:
    """Deprecated labels to set so they equal their primary ones."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    return {
        secondary: labels[primary]
        for primary, secondary in _LABEL_PAIRS
        if primary in labels and labels.get(secondary) != labels[primary]
    }


def ttl_seconds(node_count: int) -> int:
    for limit, seconds in _TTL_STEPS:
        if node_count <= limit:
            return seconds
    return 600


async def _patch(client: ApiClient, res: ResourceInfo, name: str, patch: JsonObject) -> bool:
    try:
        await client.patch(res, name, patch, "merge")
    except (NotFound, Conflict):
        return False  # gone or changed meanwhile: its next event brings it back
    return True


async def run_node_controllers(
    clients: dict[str, ApiClient], nodes: Informer, node_res: ResourceInfo
) -> None:
    """Run the enabled ones (``clients``: controller alias -> its identity) until cancelled."""
    queue: WorkQueue[str] = WorkQueue()

    def on_node(event: str, obj: JsonObject) -> None:
        if event != "DELETED":
            queue.add(str((obj.get("metadata") or {}).get("name", "")))
        elif TTL in clients:  # the cluster shrank: every node's ttl may change
            for other in nodes.items():
                queue.add(str(other["metadata"].get("name", "")))

    nodes.add_handler(on_node)

    async def handle(name: str) -> None:
        node = nodes.get(name)
        if node is None:
            return
        meta = node.get("metadata") or {}
        if NODELIFECYCLE in clients:
            patch: dict[str, Any] = {}
            taints = reconciled_taints(node)
            if taints is not None:
                patch["spec"] = {"taints": taints}
            labels = desired_labels(node)
            if labels:
                patch["metadata"] = {"labels": labels}
            if patch:
                # The taints list is replaced whole: only over the version it was computed from.
                patch.setdefault("metadata", {})["resourceVersion"] = meta.get("resourceVersion")
                if not await _patch(clients[NODELIFECYCLE], node_res, name, patch):
                    return
        if TTL in clients:
            ttl = str(ttl_seconds(len(nodes.items())))
            if (meta.get("annotations") or {}).get(TTL_ANNOTATION) != ttl:
                patch = {"metadata": {"annotations": {TTL_ANNOTATION: ttl}}}
                await _patch(clients[TTL], node_res, name, patch)

    await nodes.wait_synced()
    for obj in nodes.items():
        on_node("ADDED", obj)
    await run_workers(NODELIFECYCLE, queue, handle, 1)
