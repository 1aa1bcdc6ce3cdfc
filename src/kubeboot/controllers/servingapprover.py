"""servingapprover: a policy approver for kubelet serving certificates (node-facts §5).

postfinance/kubelet-csr-approver's rules, with one change: instead of resolving DNS SANs
(slow, and a lookup failure denies for good), every SAN must be one of the addresses the
node published in its Node object (``status.addresses``, read as the kubelet reads them,
:func:`kubeboot.agent.templates.serving_sans`). Decision (pure, :func:`review_serving_csr`):

1. **skip**: signer is not ``kubernetes.io/kubelet-serving``; already Approved or Denied;
   certificate already issued; the request does not parse;
2. **deny** (or skip with ``ignore_non_system_node``): requester not ``system:node:<n>``;
3. **deny**: requester not in ``system:nodes``; no DNS/IP SAN; CN ≠ requester; email or
   URI SANs; more DNS SANs than ``allowed_dns_names``; ``expirationSeconds`` above
   ``max_expiration_seconds``;
4. **wait** (look again later): the Node ``<n>`` does not exist yet;
5. **deny**: a DNS or IP SAN that is not among the Node's addresses;
6. **approve**.

With ``skip_deny`` a deny becomes a skip (the CSR stays pending for a human). Approval and
denial write the ``/approval`` subresource with postfinance's reasons and messages; the
runtime (informer → queue → workers) re-queues on Conflict and re-checks ``wait`` verdicts
after :data:`NODE_WAIT_SECONDS`.

Trust note: a node may edit its own Node's addresses (the Node authorizer lets it), so this
policy proves "the node asked for names it claims", as upstream's does; it stops a node from
asking for *another* node's name, and any name it did not publish.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from kubeboot.agent.templates import serving_sans
from kubeboot.client.interface import ApiClient, JsonObject
from kubeboot.controllers.certificates import (
    CSR_RESOURCE,
    conditions,
    has_certificate,
    request_pem,
    with_status,
)
from kubeboot.controllers.runtime import Informer, Requeue, WorkQueue, object_key, run_workers
from kubeboot.pki.csr import KUBELET_SERVING_SIGNER, CsrError, csr_facts, parse_csr_pem
from kubeboot.resources.registry import find_resource
from kubeboot.resources.status import NotFound

__all__ = [
    "APPROVE_MESSAGE",
    "APPROVE_REASON",
    "CONTROLLER_NAME",
    "DENY_REASON",
    "NODE_WAIT_SECONDS",
    "ServingPolicy",
    "Verdict",
    "apply_verdict",
    "decision_condition",
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
_NODE_PREFIX = "system:node:"
_NODES_GROUP = "system:nodes"
_NODE_RESOURCE = find_resource("", "v1", "nodes")
FIELD_SELECTOR = f"spec.signerName={KUBELET_SERVING_SIGNER}"

Action = Literal["approve", "deny", "skip", "wait"]


@dataclass(frozen=True, slots=True)
class ServingPolicy:
    allowed_dns_names: int = 1
    max_expiration_seconds: int = 367 * 24 * 3600
    ignore_non_system_node: bool = False
    skip_deny: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    reason: str
    node: str | None = None


def _deny(policy: ServingPolicy, reason: str, node: str | None = None) -> Verdict:
    return Verdict("skip" if policy.skip_deny else "deny", reason, node)


def requested_node(csr: JsonObject) -> str | None:
    """The node named by the requester (``system:node:<n>``), or None."""
    username = str((csr.get("spec") or {}).get("username") or "")
    return username.removeprefix(_NODE_PREFIX) if username.startswith(_NODE_PREFIX) else None


def review_serving_csr(csr: JsonObject, node: JsonObject | None, policy: ServingPolicy) -> Verdict:
    """The verdict for one CSR, given the Node it names (None: not found / not fetched)."""
    spec = csr.get("spec") or {}
    if spec.get("signerName") != KUBELET_SERVING_SIGNER:
        return Verdict(
            "skip", f"signer is {spec.get('signerName')!r}, not {KUBELET_SERVING_SIGNER}"
        )
    if any(c.get("type") in ("Approved", "Denied") for c in conditions(csr)):
        return Verdict("skip", "already approved or denied")
    if has_certificate(csr):
        return Verdict("skip", "certificate already issued")
    try:
        facts = csr_facts(parse_csr_pem(request_pem(csr)))
    except (CsrError, ValueError) as e:
        return Verdict("skip", f"request does not parse: {e}")
    username = str(spec.get("username") or "")
    name = requested_node(csr)
    if name is None:
        reason = f"CSR username {username!r} does not start with {_NODE_PREFIX!r}"
        return Verdict("skip", reason) if policy.ignore_non_system_node else _deny(policy, reason)
    if _NODES_GROUP not in (spec.get("groups") or []):
        return _deny(policy, f"the requester is not in the {_NODES_GROUP} group", name)
    if not facts.dns_names and not facts.ips:
        return _deny(policy, "the CSR has no DNS or IP SAN", name)
    if facts.common_name != username:
        return _deny(
            policy, f"CN {facts.common_name!r} does not match the requester {username!r}", name
        )
    if facts.emails or facts.uris:
        return _deny(policy, "the CSR has email or URI SANs", name)
    if len(facts.dns_names) > policy.allowed_dns_names:
        return _deny(
            policy,
            f"the CSR has {len(facts.dns_names)} DNS SANs, more than the "
            f"{policy.allowed_dns_names} allowed",
            name,
        )
    seconds = spec.get("expirationSeconds")
    if isinstance(seconds, int) and seconds > policy.max_expiration_seconds:
        return _deny(
            policy,
            f"expirationSeconds {seconds} exceeds the maximum {policy.max_expiration_seconds}",
            name,
        )
    if node is None:
        return Verdict("wait", f"Node {name!r} does not exist (yet)", name)
    addresses = (node.get("status") or {}).get("addresses") or []
    node_dns, node_ips = serving_sans(addresses)
    for dns in facts.dns_names:
        if dns not in node_dns:
            return _deny(policy, f"DNS SAN {dns!r} is not an address of Node {name!r}", name)
    known_ips = {str(ip) for ip in node_ips}
    for ip in facts.ips:
        if str(ipaddress.ip_address(ip)) not in known_ips:
            return _deny(policy, f"IP SAN {ip} is not an address of Node {name!r}", name)
    return Verdict("approve", "SANs are the Node's addresses", name)


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


async def review(client: ApiClient, csr: JsonObject, policy: ServingPolicy) -> Verdict:
    """Fetch the Node the CSR names (if it gets that far) and decide."""
    verdict = review_serving_csr(csr, None, policy)
    if verdict.action != "wait" or verdict.node is None:
        return verdict
    assert _NODE_RESOURCE is not None
    try:
        node = await client.get(_NODE_RESOURCE, verdict.node)
    except NotFound:
        return verdict
    return review_serving_csr(csr, node, policy)


async def apply_verdict(client: ApiClient, csr: JsonObject, verdict: Verdict) -> None:
    """Write an approve/deny verdict to ``/approval`` (CAS on the resourceVersion read)."""
    if verdict.action not in ("approve", "deny"):
        return
    updated = with_status(csr, conditions=[*conditions(csr), decision_condition(verdict)])
    await client.update(CSR_RESOURCE, updated, subresource="approval")


Report = Callable[[JsonObject, Verdict], None]


async def run_servingapprover(
    client: ApiClient, policy: ServingPolicy, report: Report | None = None
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
        verdict = await review(client, csr, policy)
        if verdict.action in ("approve", "deny"):
            await apply_verdict(client, csr, verdict)
        if report is not None and not verdict.reason.startswith("already"):
            report(csr, verdict)
        if verdict.action == "wait":
            raise Requeue(NODE_WAIT_SECONDS)

    async with asyncio.TaskGroup() as group:
        group.create_task(informer.run())
        group.create_task(run_workers(CONTROLLER_NAME, queue, handle, WORKERS))
