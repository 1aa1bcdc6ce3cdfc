"""The NodeRestriction admission plugin: upstream's ``plugin/pkg/admission/noderestriction``.

The Node authorizer lets a node create and update Nodes, Leases, CSINodes, CSRs… without
knowing which object a create makes or what an update changes; this plugin, run on every
create, update and delete by a node *before* defaulting and validation (it is a mutating
plugin upstream, so it sees the object as sent), limits those writes to the node's own:

* ``nodes``: only its own Node (``node "w1" is not allowed to modify node "w2"``). On create
  no ``spec.configSource`` and no forbidden labels; on update no new ``configSource``, no
  change of ``spec.taints`` or ``metadata.ownerReferences``, and no change of a forbidden
  label (``is not allowed to modify labels: …``). Forbidden: ``node-restriction.kubernetes.io/``
  labels, and ``kubernetes.io``/``k8s.io`` labels other than the kubelet's own
  (:data:`KUBELET_LABELS`, ``kubelet.kubernetes.io/``, ``node.kubernetes.io/``);
* ``leases``: only in ``kube-node-lease`` and only the one named after the node;
* ``certificatesigningrequests``: a create for the kubelet-serving or kubelet-client signer
  must ask for ``CN=system:node:<self>``;
* ``csinodes``: only the one named after the node (its ``/status`` needs CSIVolumeHealth,
  off in v1.37);
* ``resourceslices``: a create must carry ``spec.nodeName: <self>``;
* ``persistentvolumeclaims``: only ``/status``, and only its quantities and conditions.

Resources the table does not serve never reach their rule. Pods, service-account tokens and
PodCertificateRequests need lookups of pods, nodes and service accounts: add their rule to
:data:`_RULES` with the resource (a rule is ``(plugin, node, request) -> None``, raising
upstream's Forbidden via :meth:`AdmissionRequest.forbidden`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from cryptography import x509

from kubeboot.auth.admission import AdmissionRequest
from kubeboot.auth.node import NODE_LEASE_NAMESPACE, is_node_identity
from kubeboot.auth.users import node_name_of
from kubeboot.pki.csr import KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER, csr_facts
from kubeboot.pki.pem import decode_pem_blocks

__all__ = ["KUBELET_LABELS", "NodeRestriction"]

JsonObj = dict[str, Any]

KUBELET_LABELS = frozenset(
    {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "kubernetes.io/os",
        "kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch",
    }
)
"""Labels a kubelet may set on its own Node (``k8s.io/kubelet/pkg/apis.IsKubeletLabel``)."""
_KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")
_NODE_RESTRICTION_NAMESPACE = "node-restriction.kubernetes.io"


def _meta(obj: JsonObj | None) -> dict[str, Any]:
    meta = (obj or {}).get("metadata")
    return meta if isinstance(meta, dict) else {}


def _spec(obj: JsonObj | None) -> dict[str, Any]:
    spec = (obj or {}).get("spec")
    return spec if isinstance(spec, dict) else {}


def _label_namespace(key: str) -> str:
    prefix, slash, _ = key.partition("/")
    return prefix if slash else ""


def _is_kubelet_label(key: str) -> bool:
    if key in KUBELET_LABELS:
        return True
    ns = _label_namespace(key)
    return any(ns == n or ns.endswith("." + n) for n in _KUBELET_LABEL_NAMESPACES)


def _forbidden_labels(new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    """Upstream's ``getForbiddenLabels(getModifiedLabels(new, old))``, sorted."""
    modified = {
        k for k in new.keys() | old.keys() if (k in new) != (k in old) or new.get(k) != old.get(k)
    }
    forbidden = set()
    for key in modified:
        ns = _label_namespace(key)
        if ns == _NODE_RESTRICTION_NAMESPACE or ns.endswith("." + _NODE_RESTRICTION_NAMESPACE):
            forbidden.add(key)
        kubernetes = ns in ("kubernetes.io", "k8s.io") or ns.endswith((".kubernetes.io", ".k8s.io"))
        if kubernetes and not _is_kubelet_label(key):
            forbidden.add(key)
    return sorted(forbidden)


def _labels(obj: JsonObj | None) -> dict[str, Any]:
    labels = _meta(obj).get("labels")
    return labels if isinstance(labels, dict) else {}


def _empty(value: Any) -> Any:
    """Go's semantic equality treats nil and empty slices/maps alike."""
    return None if value in ([], {}) else value


def _admit_node(node: str, req: AdmissionRequest) -> None:
    if req.name != node:
        raise req.forbidden(f'node "{node}" is not allowed to modify node "{req.name}"')
    if req.operation == "create":
        if _spec(req.obj).get("configSource") is not None:
            raise req.forbidden(
                f'node "{node}" is not allowed to create pods with a non-nil configSource'
            )
        labels = _forbidden_labels(_labels(req.obj), {})
        if labels:
            raise req.forbidden(
                f'node "{node}" is not allowed to set the following labels: {", ".join(labels)}'
            )
    elif req.operation == "update":
        new_spec, old_spec = _spec(req.obj), _spec(req.old)
        source = new_spec.get("configSource")
        if source is not None and source != old_spec.get("configSource"):
            raise req.forbidden(
                f'node "{node}" is not allowed to update configSource to a new non-nil configSource'
            )
        if _empty(new_spec.get("taints")) != _empty(old_spec.get("taints")):
            raise req.forbidden(f'node "{node}" is not allowed to modify taints')
        owners, old_owners = (
            _meta(req.obj).get("ownerReferences"),
            _meta(req.old).get("ownerReferences"),
        )
        if _empty(owners) != _empty(old_owners):
            raise req.forbidden(f'node "{node}" is not allowed to modify ownerReferences')
        labels = _forbidden_labels(_labels(req.obj), _labels(req.old))
        if labels:
            raise req.forbidden(f"is not allowed to modify labels: {', '.join(labels)}")


def _admit_lease(node: str, req: AdmissionRequest) -> None:
    if req.namespace != NODE_LEASE_NAMESPACE:
        raise req.forbidden(
            f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace'
        )
    name = _meta(req.obj).get("name") if req.operation == "create" else req.name
    if name != node:
        raise req.forbidden("can only access node lease with the same name as the requesting node")


def _admit_csinode(node: str, req: AdmissionRequest) -> None:
    name = _meta(req.obj).get("name") if req.operation == "create" else req.name
    if name != node:
        raise req.forbidden("can only access CSINode with the same name as the requesting node")
    if req.subresource == "status":
        raise req.forbidden("CSIVolumeHealth feature gate is disabled")


def _admit_resource_slice(node: str, req: AdmissionRequest) -> None:
    operation = req.operation
    if operation not in ("create", "delete"):
        return
    slice_ = req.obj if operation == "create" else req.old
    if _spec(slice_).get("nodeName") != node:
        verb = "create" if operation == "create" else "delete"
        raise req.forbidden(
            f"can only {verb} ResourceSlice with the same NodeName as the requesting node"
        )


def _admit_pvc(node: str, req: AdmissionRequest) -> None:
    if req.subresource != "status":
        raise req.forbidden("may only update PVC status")
    if req.operation != "update":
        raise req.forbidden(f'unexpected operation "{req.operation.upper()}"')

    def comparable(pvc: JsonObj | None) -> JsonObj:
        copy = dict(pvc or {})
        meta = {
            k: v for k, v in _meta(pvc).items() if k not in ("resourceVersion", "managedFields")
        }
        status = (pvc or {}).get("status")
        status = {
            k: v
            for k, v in (status if isinstance(status, dict) else {}).items()
            if k
            not in ("capacity", "conditions", "allocatedResourceStatuses", "allocatedResources")
        }
        copy.update(metadata=meta, status=status)
        copy.pop("kind", None)
        copy.pop("apiVersion", None)
        return copy

    if comparable(req.obj) != comparable(req.old):
        raise req.forbidden(
            f'node "{node}" is not allowed to update fields other than status.quantity and '
            "status.conditions"
        )


def _admit_csr(node: str, req: AdmissionRequest) -> None:
    if req.operation != "create":
        return
    spec = _spec(req.obj)
    if spec.get("signerName") not in (KUBELET_SERVING_SIGNER, KUBELET_CLIENT_SIGNER):
        return
    try:
        common_name = _common_name(spec.get("request"))
    except ValueError as exc:
        raise req.forbidden(f"unable to parse csr: {exc}") from exc
    if common_name != f"system:node:{node}":
        raise req.forbidden(f"can only create a node CSR with CN=system:node:{node}")


def _common_name(request: Any) -> str:
    """The subject CN of the request's first PEM block (upstream's ``ParseCSR``: no signature
    check here; validation does that)."""
    try:
        pem = base64.b64decode(str(request or ""), validate=True)
    except (binascii.Error, ValueError):
        pem = b""
    blocks = decode_pem_blocks(pem)
    if not blocks or blocks[0].type != "CERTIFICATE REQUEST":
        raise ValueError("PEM block type must be CERTIFICATE REQUEST")
    try:
        csr = x509.load_der_x509_csr(blocks[0].der)
    except ValueError as exc:
        raise ValueError("x509: malformed certificate request") from exc
    return csr_facts(csr).common_name


_Rule = Callable[[str, AdmissionRequest], None]
_RULES: dict[tuple[str, str], _Rule] = {
    ("", "nodes"): _admit_node,
    ("coordination.k8s.io", "leases"): _admit_lease,
    ("certificates.k8s.io", "certificatesigningrequests"): _admit_csr,
    ("storage.k8s.io", "csinodes"): _admit_csinode,
    ("resource.k8s.io", "resourceslices"): _admit_resource_slice,
    ("", "persistentvolumeclaims"): _admit_pvc,
}


class NodeRestriction:
    """The plugin; a :data:`~kubeboot.auth.admission.MutatingAdmission` for ``RestService``."""

    async def __call__(self, req: AdmissionRequest) -> None:
        if not is_node_identity(req.user):
            return
        node = node_name_of(req.user)
        if node is None:
            raise req.forbidden(f'could not determine node from user "{req.user.name}"')
        rule = _RULES.get((req.group, req.resource))
        if rule is not None:
            rule(node, req)
