"""csrapproving: auto-approve kubelet client CSRs after a SubjectAccessReview (server-facts §6.1).

Decision (pure, :func:`recognized_approvals`): skip CSRs with a certificate or an
Approved/Denied condition; otherwise the recognizers, in order,

1. ``selfnodeclient``: ``spec.username`` equals the subject CN and the nodeclient rule holds;
2. ``nodeclient``: signer ``kubernetes.io/kube-apiserver-client-kubelet`` and the kubelet
   client rules of :func:`kubeboot.pki.csr.validate_kubelet_client_csr`.

For each recognizer that matches, a SubjectAccessReview *as the requester* (username, uid,
groups, extra from the CSR) for ``create`` on ``certificatesigningrequests/<subresource>``;
the first allowed one appends ``Approved/AutoApproved`` with upstream's message and PUTs
``/approval``. A CSR that is recognised but not allowed is retried with backoff; one that no
recognizer matches is left alone. Nothing is ever denied.

``insecure_group`` (``--insecure-experimental-approve-all-kubelet-csrs-for-group``) brings
back the alpha "group auto-approver" of Kubernetes 1.4-1.6 (removed in 1.7): a kubelet
client CSR (the ``nodeclient`` shape above) whose ``spec.groups`` holds that group is
approved *without* a SubjectAccessReview, with upstream's message "Auto approving of all
kubelet CSRs is enabled on the controller manager". Anyone with a credential in the group
gets a node identity of their choosing, hence the warning at start; the RBAC binding to
``system:certificates.k8s.io:certificatesigningrequests:nodeclient`` does the same safely.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

from kubeboot.client.interface import ApiClient, JsonObject
from kubeboot.controllers.certificates import (
    CSR_RESOURCE,
    conditions,
    has_certificate,
    request_pem,
    with_status,
)
from kubeboot.controllers.runtime import Informer, WorkQueue, object_key, run_workers
from kubeboot.pki.csr import (
    KUBELET_CLIENT_SIGNER,
    csr_facts,
    parse_csr_pem,
    validate_kubelet_client_csr,
)
from kubeboot.resources.registry import find_resource

__all__ = [
    "CONTROLLER_NAME",
    "Recognized",
    "approval_condition",
    "recognized_approvals",
    "run_csrapproving",
    "subject_access_review",
]

log = logging.getLogger("kubeboot.controllers.csrapproving")

CONTROLLER_NAME = "csrapproving"
WORKERS = 5
_SAR_RESOURCE = find_resource("authorization.k8s.io", "v1", "subjectaccessreviews")


@dataclass(frozen=True, slots=True)
class Recognized:
    subresource: str
    message: str


_SELF_NODE_CLIENT = Recognized(
    "selfnodeclient", "Auto approving self kubelet client certificate after SubjectAccessReview."
)
_NODE_CLIENT = Recognized(
    "nodeclient", "Auto approving kubelet client certificate after SubjectAccessReview."
)
_GROUP = Recognized("", "Auto approving of all kubelet CSRs is enabled on the controller manager")


def recognized_approvals(csr: JsonObject) -> list[Recognized]:
    """The recognizers matching ``csr``, in the order SARs are tried; [] means leave it alone.

    Raises :class:`kubeboot.pki.csr.CsrError` when the request does not parse (retried).
    """
    if has_certificate(csr):
        return []
    if any(c.get("type") in ("Approved", "Denied") for c in conditions(csr)):
        return []
    spec = csr.get("spec") or {}
    if spec.get("signerName") != KUBELET_CLIENT_SIGNER:
        return []
    facts = csr_facts(parse_csr_pem(request_pem(csr)))
    if validate_kubelet_client_csr(facts, spec.get("usages") or []) is not None:
        return []
    matches = []
    if spec.get("username") == facts.common_name:
        matches.append(_SELF_NODE_CLIENT)
    matches.append(_NODE_CLIENT)
    return matches


def subject_access_review(csr: JsonObject, subresource: str) -> JsonObject:
    """The SAR body that replays the requester stored in the CSR."""
    spec = csr.get("spec") or {}
    sar_spec: JsonObject = {
        "user": spec.get("username", ""),
        "groups": list(spec.get("groups") or []),
        "resourceAttributes": {
            "group": "certificates.k8s.io",
            "resource": "certificatesigningrequests",
            "verb": "create",
            "subresource": subresource,
        },
    }
    if spec.get("uid"):
        sar_spec["uid"] = spec["uid"]
    if spec.get("extra"):
        sar_spec["extra"] = copy.deepcopy(spec["extra"])
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": sar_spec,
    }


def approval_condition(recognized: Recognized) -> JsonObject:
    """Timestamps are left out: the server fills them in (server-facts §4.7)."""
    return {
        "type": "Approved",
        "status": "True",
        "reason": "AutoApproved",
        "message": recognized.message,
    }


class NotApprovedYet(Exception):
    """Recognised but no SAR allowed it: upstream's "ignorable" error, retried with backoff."""


async def _approve(client: ApiClient, csr: JsonObject, recognized: Recognized) -> None:
    updated = with_status(csr, conditions=[*conditions(csr), approval_condition(recognized)])
    await client.update(CSR_RESOURCE, updated, subresource="approval")


async def approve_csr(client: ApiClient, csr: JsonObject, insecure_group: str = "") -> bool:
    """Run the SARs and approve; False when nothing matched; raises to retry with backoff."""
    matches = recognized_approvals(csr)
    if not matches:
        return False
    if insecure_group and insecure_group in ((csr.get("spec") or {}).get("groups") or []):
        await _approve(client, csr, _GROUP)
        log.info(
            "approved CSR without a SubjectAccessReview (insecure group approval)",
            extra={"csr": object_key(csr), "group": insecure_group},
        )
        return True
    assert _SAR_RESOURCE is not None
    for recognized in matches:
        review = await client.create(
            _SAR_RESOURCE, subject_access_review(csr, recognized.subresource)
        )
        if (review.get("status") or {}).get("allowed") is True:
            await _approve(client, csr, recognized)
            return True
    names = ", ".join(r.subresource for r in matches)
    raise NotApprovedYet(
        f'recognized csr "{object_key(csr)}" as [{names}] but subject access review was '
        "not approved"
    )


async def run_csrapproving(
    client: ApiClient, informer: Informer, *, insecure_group: str = ""
) -> None:
    if insecure_group:
        log.info(
            "approving kubelet client CSRs of group %r without a SubjectAccessReview "
            "(--insecure-experimental-approve-all-kubelet-csrs-for-group)",
            insecure_group,
        )
    queue: WorkQueue[str] = WorkQueue()
    informer.add_handler(lambda _event, obj: queue.add(object_key(obj)))

    async def handle(key: str) -> None:
        csr = informer.get(key)
        if csr is not None:
            await approve_csr(client, csr, insecure_group)

    await run_workers(CONTROLLER_NAME, queue, handle, WORKERS)
