"""servingapprover: a policy approver for kubelet serving certificates (node-facts §5).

postfinance/kubelet-csr-approver's rules, with one change: instead of resolving DNS SANs
(slow, and a lookup failure denies for good), every SAN must be one of the addresses the
node published in its Node object (``status.addresses``, read as the kubelet reads them,
:func:`kubeboot.agent.templates.serving_sans`); optionally also name patterns, IP ranges,
and kubeboot's evidence rule (IP SANs must be addresses the server saw the node's
authenticated connections come from). The rules, pure, are in
:mod:`kubeboot.controllers.servingpolicy`; this module fetches what they look at (the Node,
the evidence) and acts on the verdict.

With ``skip_deny`` a deny becomes a skip (the CSR stays pending for a human). Approval and
denial write the ``/approval`` subresource with postfinance's reasons and messages; the
runtime (informer → queue → workers) re-queues on Conflict and re-checks ``wait`` verdicts
after :data:`NODE_WAIT_SECONDS`.

Trust note: a node may edit its own Node's addresses (the Node authorizer lets it), so the
Node rule proves "the node asked for names it claims", as upstream's does; it stops a node
from asking for *another* node's name, and any name it did not publish. The evidence rule
proves more for IP SANs; what exactly is in ``docs/beyond-upstream.md``.

Runs standalone (``kubeboot approver``, any cluster) or in the server
(``--controllers=...,servingapprover``), where the evidence of this replica's own
connections is read from memory as well as from the shared record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from kubeboot.client.interface import ApiClient, JsonObject
from kubeboot.clock import Clock, SystemClock
from kubeboot.controllers.certificates import CSR_RESOURCE, conditions, with_status
from kubeboot.controllers.runtime import Informer, Requeue, WorkQueue, object_key, run_workers
from kubeboot.controllers.servingpolicy import (
    Evidence,
    Explanation,
    IssuedFrom,
    ServingPolicy,
    Verdict,
    explain_serving_csr,
    requested_node,
)
from kubeboot.pki.csr import KUBELET_SERVING_SIGNER
from kubeboot.resources.ledger import ISSUED_CERTIFICATES
from kubeboot.resources.nodesources import (
    CONFIGMAP_NAME,
    NAMESPACE,
    SourceSighting,
    canonical_address,
    merge_sightings,
    node_sources_from_configmap,
)
from kubeboot.resources.registry import find_resource
from kubeboot.resources.status import Forbidden, NotFound

__all__ = [
    "APPROVE_MESSAGE",
    "APPROVE_REASON",
    "CONTROLLER_NAME",
    "DENY_REASON",
    "NODE_WAIT_SECONDS",
    "LocalSightings",
    "ServingPolicy",
    "Verdict",
    "apply_verdict",
    "decision_condition",
    "explain",
    "review",
    "review_serving_csr",
    "run_servingapprover",
]

log = logging.getLogger("kubeboot.controllers.servingapprover")

CONTROLLER_NAME = "servingapprover"
WORKERS = 2
NODE_WAIT_SECONDS = 5.0
APPROVE_REASON = "kubelet-serving cert validated"
APPROVE_MESSAGE = "CSR complied with kubeboot approver validation process"
DENY_REASON = "kubelet-serving cert denied"
_NODE_RESOURCE = find_resource("", "v1", "nodes")
_CONFIGMAP_RESOURCE = find_resource("", "v1", "configmaps")
FIELD_SELECTOR = f"spec.signerName={KUBELET_SERVING_SIGNER}"

# This replica's own sightings of a node (the in-server approver), merged with the record.
LocalSightings = Callable[[str], tuple[SourceSighting, ...]]


def review_serving_csr(csr: JsonObject, node: JsonObject | None, policy: ServingPolicy) -> Verdict:
    """The verdict for one CSR, given the Node it names (None: not found / not fetched)."""
    return explain_serving_csr(csr, node, policy).verdict


def decision_condition(verdict: Verdict) -> JsonObject:
    """postfinance's condition for an approve or deny verdict (timestamps: the server's)."""
    if verdict.action == "approve":
        return {
            "type": "Approved",
            "status": "True",
            "reason": APPROVE_REASON,
            "message": APPROVE_MESSAGE,
        }
    return {
        "type": "Denied",
        "status": "True",
        "reason": DENY_REASON,
        "message": (
            f"CSR not complying with kubeboot approver validation process. Reason: {verdict.reason}"
        ),
    }


async def _issued_from(client: ApiClient, node: str) -> tuple[tuple[IssuedFrom, ...], bool]:
    """The ledger's entries for ``node`` with a source address; (entries, ledger served)."""
    try:
        listed = await client.list(ISSUED_CERTIFICATES, field_selector=f"spec.nodeName={node}")
    except NotFound:  # not a kubeboot server, or one without the ledger
        return (), False
    except Forbidden as exc:
        log.info("servingapprover: cannot read the issuance ledger: %s", exc.message)
        return (), False
    issued = []
    for entry in listed.get("items") or []:
        spec = entry.get("spec") or {}
        address = canonical_address(str(spec.get("sourceAddress") or ""))
        if address is not None:
            issued.append(
                IssuedFrom(
                    address,
                    str(spec.get("serialNumber") or ""),
                    str(spec.get("signerName") or ""),
                    str(spec.get("notBefore") or ""),
                )
            )
    return tuple(issued), True


async def _evidence(client: ApiClient, node: str, local: LocalSightings | None) -> Evidence:
    """The recorded sightings of ``node`` (plus this replica's, in the server) and the
    addresses its certificates' CSRs came from (the ledger)."""
    assert _CONFIGMAP_RESOURCE is not None
    mine = local(node) if local is not None else ()
    issued, ledger = await _issued_from(client, node)
    try:
        configmap = await client.get(_CONFIGMAP_RESOURCE, CONFIGMAP_NAME, NAMESPACE)
    except NotFound:
        return Evidence(mine, recorded=local is not None, issued=issued, ledger=ledger)
    recorded = node_sources_from_configmap(configmap).get(node, ())
    return Evidence(merge_sightings(recorded, mine), issued=issued, ledger=ledger)


async def explain(
    client: ApiClient,
    csr: JsonObject,
    policy: ServingPolicy,
    clock: Clock | None = None,
    local: LocalSightings | None = None,
    *,
    evaluate_decided: bool = False,
) -> Explanation:
    """Fetch what the rules look at (the Node, the evidence when the policy uses it), decide."""
    node_obj: JsonObject | None = None
    evidence: Evidence | None = None
    name = requested_node(csr)
    first = explain_serving_csr(csr, None, policy, evaluate_decided=evaluate_decided)
    if name is not None and first.rules:
        assert _NODE_RESOURCE is not None
        try:
            node_obj = await client.get(_NODE_RESOURCE, name)
        except NotFound:
            node_obj = None
        if policy.ip_evidence:
            evidence = await _evidence(client, name, local)
    now = (clock or SystemClock()).now()
    return explain_serving_csr(
        csr, node_obj, policy, evidence, now, evaluate_decided=evaluate_decided
    )


async def review(
    client: ApiClient,
    csr: JsonObject,
    policy: ServingPolicy,
    clock: Clock | None = None,
    local: LocalSightings | None = None,
) -> Verdict:
    return (await explain(client, csr, policy, clock, local)).verdict


async def apply_verdict(client: ApiClient, csr: JsonObject, verdict: Verdict) -> None:
    """Write an approve/deny verdict to ``/approval`` (CAS on the resourceVersion read)."""
    if verdict.action not in ("approve", "deny"):
        return
    updated = with_status(csr, conditions=[*conditions(csr), decision_condition(verdict)])
    await client.update(CSR_RESOURCE, updated, subresource="approval")


Report = Callable[[JsonObject, Verdict], None]


async def run_servingapprover(
    client: ApiClient,
    policy: ServingPolicy,
    report: Report | None = None,
    *,
    clock: Clock | None = None,
    local: LocalSightings | None = None,
) -> None:
    """Watch kubelet-serving CSRs and approve/deny them until cancelled."""
    informer = Informer(client, CSR_RESOURCE, field_selector=FIELD_SELECTOR)
    queue: WorkQueue[str] = WorkQueue()
    informer.add_handler(
        lambda event, obj: queue.add(object_key(obj)) if event != "DELETED" else None
    )

    async def handle(key: str) -> None:
        csr = informer.get(key)
        if csr is None:
            return
        verdict = await review(client, csr, policy, clock, local)
        if verdict.action in ("approve", "deny"):
            await apply_verdict(client, csr, verdict)
        if report is not None and not verdict.reason.startswith("already"):
            report(csr, verdict)
        if verdict.action == "wait":
            raise Requeue(NODE_WAIT_SECONDS)

    async with asyncio.TaskGroup() as group:
        group.create_task(informer.run())
        group.create_task(run_workers(CONTROLLER_NAME, queue, handle, WORKERS))
