"""The resource table: one ``ResourceInfo`` per served resource (design rule 3).

Routing, discovery documents, RBAC resource names, OpenAPI, field-selector support and the
storage key layout all read this table; adding a resource means adding a row here and, if it
has special rules, a strategy in ``kubeboot.api.registry.strategies``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ALL_VERBS",
    "READ_ONLY",
    "RESOURCES",
    "GroupVersion",
    "ResourceInfo",
    "find_by_kind",
    "find_resource",
    "group_versions",
    "served_groups",
    "subresource_verbs",
]

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
# Subresources answer get/patch/update, except those that only take a whole object
# (finalize) or only create (serviceaccounts/token: TokenRequest).
_SUBRESOURCE_VERBS: dict[str, tuple[str, ...]] = {"finalize": ("update",), "token": ("create",)}


def subresource_verbs(subresource: str) -> tuple[str, ...]:
    return _SUBRESOURCE_VERBS.get(subresource, ("get", "patch", "update"))


CREATE_ONLY = ("create",)
READ_ONLY = ("get", "list", "watch")
# Why the workload kinds a kubelet watches are served read-only (docs/api.md, "Kinds kubeboot
# serves read-only"): kubeboot schedules and runs nothing, so their truth is "none".
_NO_WORKLOADS = "kubeboot runs no workloads"


@dataclass(frozen=True, slots=True)
class GroupVersion:
    group: str
    version: str

    @property
    def api_version(self) -> str:
        """``v1`` for the core group, ``<group>/<version>`` otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def path(self) -> str:
        """URL prefix: ``/api/v1`` or ``/apis/<group>/<version>``."""
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    gv: GroupVersion
    kind: str
    plural: str
    singular: str
    namespaced: bool
    verbs: tuple[str, ...] = ALL_VERBS
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    # Field selectors beyond metadata.name / metadata.namespace (server-facts §8.5).
    field_selectors: tuple[str, ...] = ()
    # Virtual resources (reviews) are never stored: create computes and returns an answer.
    stored: bool = True
    categories: tuple[str, ...] = field(default=())
    # DELETE answers the deleted object (upstream's ReturnDeletedObject: namespaces, pods,
    # services, serviceaccounts...) instead of a Success Status naming it.
    returns_deleted_object: bool = False
    # For a kind served with fewer verbs than upstream on purpose: why, appended to the 405
    # a refused verb gets, so the client learns it is deliberate and not a kubeboot bug.
    refusal_note: str = ""
    # The version upstream stores the kind in, when it is not the served one (a kind newly
    # GA is stored at its beta version for a release); discovery's storageVersionHash says it.
    storage_version: str = ""

    def verb_refused(self, verb: str) -> str:
        """The message of the 405 for ``verb`` on this resource (upstream's, plus why)."""
        kind = f"{self.plural}.{self.group}" if self.group else self.plural
        message = f'{verb} is not supported on resources of kind "{kind}"'
        return f"{message}: {self.refusal_note}" if self.refusal_note else message

    @property
    def group(self) -> str:
        return self.gv.group

    @property
    def api_version(self) -> str:
        return self.gv.api_version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def storage_prefix(self, namespace: str | None = None) -> str:
        """Key prefix for a collection; namespaced prefixes end in ``/<ns>/``."""
        base = f"/{self.group or 'core'}/{self.plural}/"
        if self.namespaced and namespace:
            return f"{base}{namespace}/"
        return base

    def storage_key(self, namespace: str | None, name: str) -> str:
        return f"{self.storage_prefix(namespace)}{name}"


CORE = GroupVersion("", "v1")
CERTIFICATES = GroupVersion("certificates.k8s.io", "v1")
RBAC = GroupVersion("rbac.authorization.k8s.io", "v1")
COORDINATION = GroupVersion("coordination.k8s.io", "v1")
AUTHORIZATION = GroupVersion("authorization.k8s.io", "v1")
AUTHENTICATION = GroupVersion("authentication.k8s.io", "v1")
STORAGE = GroupVersion("storage.k8s.io", "v1")
NODE = GroupVersion("node.k8s.io", "v1")
RESOURCE = GroupVersion("resource.k8s.io", "v1")
# kubeboot's own group (docs/beyond-upstream.md): the issuance ledger and revocation.
LEDGER = GroupVersion("ledger.kubeboot.io", "v1")

RESOURCES: tuple[ResourceInfo, ...] = (
    ResourceInfo(
        CORE,
        "Namespace",
        "namespaces",
        "namespace",
        namespaced=False,
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
        short_names=("ns",),
        subresources=("status", "finalize"),
        field_selectors=("status.phase", "name"),
        returns_deleted_object=True,
    ),
    ResourceInfo(
        CORE,
        "Secret",
        "secrets",
        "secret",
        namespaced=True,
        field_selectors=("type",),
    ),
    ResourceInfo(
        CORE, "ConfigMap", "configmaps", "configmap", namespaced=True, short_names=("cm",)
    ),
    ResourceInfo(
        CORE,
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        namespaced=True,
        short_names=("sa",),
        subresources=("token",),
        returns_deleted_object=True,
    ),
    ResourceInfo(
        CORE,
        "Node",
        "nodes",
        "node",
        namespaced=False,
        short_names=("no",),
        subresources=("status",),
        field_selectors=("spec.unschedulable",),
    ),
    ResourceInfo(
        CORE,
        "Event",
        "events",
        "event",
        namespaced=True,
        short_names=("ev",),
        field_selectors=(
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ),
    ),
    ResourceInfo(
        CERTIFICATES,
        "CertificateSigningRequest",
        "certificatesigningrequests",
        "certificatesigningrequest",
        namespaced=False,
        short_names=("csr",),
        subresources=("approval", "status"),
        field_selectors=("spec.signerName",),
    ),
    # What a kubelet lists and watches (facts/real-k8s.md): served so that it runs for good,
    # read-only and empty because nothing runs here. Field selectors are upstream's.
    ResourceInfo(
        CORE,
        "Pod",
        "pods",
        "pod",
        namespaced=True,
        verbs=READ_ONLY,
        short_names=("po",),
        categories=("all",),
        field_selectors=(
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ),
        refusal_note=f"{_NO_WORKLOADS}; pods is a read-only collection that is always empty",
    ),
    ResourceInfo(
        CORE,
        "Service",
        "services",
        "service",
        namespaced=True,
        verbs=READ_ONLY,
        short_names=("svc",),
        categories=("all",),
        field_selectors=("spec.clusterIP", "spec.type"),
        refusal_note=(
            f"{_NO_WORKLOADS}; services is read-only and holds only default/kubernetes, "
            "the API server's own Service, which the server maintains"
        ),
    ),
    ResourceInfo(RBAC, "ClusterRole", "clusterroles", "clusterrole", namespaced=False),
    ResourceInfo(
        RBAC, "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", namespaced=False
    ),
    ResourceInfo(RBAC, "Role", "roles", "role", namespaced=True),
    ResourceInfo(RBAC, "RoleBinding", "rolebindings", "rolebinding", namespaced=True),
    ResourceInfo(COORDINATION, "Lease", "leases", "lease", namespaced=True),
    ResourceInfo(
        STORAGE,
        "CSINode",
        "csinodes",
        "csinode",
        namespaced=False,
        subresources=("status",),
    ),
    ResourceInfo(
        STORAGE,
        "CSIDriver",
        "csidrivers",
        "csidriver",
        namespaced=False,
        verbs=READ_ONLY,
        refusal_note=f"{_NO_WORKLOADS}; csidrivers is a read-only collection that is always empty",
    ),
    ResourceInfo(
        NODE,
        "RuntimeClass",
        "runtimeclasses",
        "runtimeclass",
        namespaced=False,
        verbs=READ_ONLY,
        refusal_note=(
            f"{_NO_WORKLOADS}; runtimeclasses is a read-only collection that is always empty"
        ),
    ),
    ResourceInfo(
        CERTIFICATES,
        "PodCertificateRequest",
        "podcertificaterequests",
        "podcertificaterequest",
        namespaced=True,
        verbs=READ_ONLY,
        field_selectors=("spec.signerName", "spec.podName", "spec.nodeName"),
        storage_version="v1beta1",
        refusal_note=(
            f"{_NO_WORKLOADS}, so no pod asks for a certificate; podcertificaterequests is a "
            "read-only collection that is always empty"
        ),
    ),
    ResourceInfo(
        RESOURCE,
        "ResourceSlice",
        "resourceslices",
        "resourceslice",
        namespaced=False,
        verbs=("deletecollection", *READ_ONLY),
        field_selectors=("spec.nodeName", "spec.driver", "spec.pool.name"),
        refusal_note=(
            f"{_NO_WORKLOADS}; resourceslices is always empty (list, watch and a kubelet's "
            "deletecollection of its own slices are served, and find nothing)"
        ),
    ),
    ResourceInfo(
        AUTHORIZATION,
        "SubjectAccessReview",
        "subjectaccessreviews",
        "subjectaccessreview",
        namespaced=False,
        verbs=CREATE_ONLY,
        stored=False,
    ),
    ResourceInfo(
        AUTHORIZATION,
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        namespaced=False,
        verbs=CREATE_ONLY,
        stored=False,
    ),
    ResourceInfo(
        AUTHORIZATION,
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        "selfsubjectrulesreview",
        namespaced=False,
        verbs=CREATE_ONLY,
        stored=False,
    ),
    ResourceInfo(
        AUTHORIZATION,
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        "localsubjectaccessreview",
        namespaced=True,
        verbs=CREATE_ONLY,
        stored=False,
    ),
    ResourceInfo(
        AUTHENTICATION,
        "SelfSubjectReview",
        "selfsubjectreviews",
        "selfsubjectreview",
        namespaced=False,
        verbs=CREATE_ONLY,
        stored=False,
    ),
    ResourceInfo(
        AUTHENTICATION,
        "TokenReview",
        "tokenreviews",
        "tokenreview",
        namespaced=False,
        verbs=CREATE_ONLY,
        stored=False,
    ),
    # kubeboot's own group, last as an extension group would be (docs/beyond-upstream.md).
    # The issuance ledger: written by the server itself when a certificate is issued
    # (kubeboot.ledger.recorder), read-only to every client.
    ResourceInfo(
        LEDGER,
        "IssuedCertificate",
        "issuedcertificates",
        "issuedcertificate",
        namespaced=False,
        verbs=READ_ONLY,
        short_names=("icert",),
        field_selectors=("spec.nodeName", "spec.signerName", "spec.serialNumber"),
        refusal_note=(
            "the issuance ledger is written by the server when it issues a certificate; "
            "revoke a certificate with `kubeboot certs revoke` instead"
        ),
    ),
    ResourceInfo(
        LEDGER,
        "CertificateRevocation",
        "certificaterevocations",
        "certificaterevocation",
        namespaced=False,
        verbs=("create", "delete", "get", "list", "watch"),
        short_names=("crev",),
        field_selectors=("spec.nodeName", "spec.serialNumber"),
        refusal_note="a revocation is created or deleted whole, never changed",
    ),
    ResourceInfo(
        LEDGER,
        "RejoinDenial",
        "rejoindenials",
        "rejoindenial",
        namespaced=False,
        verbs=("create", "delete", "get", "list", "watch"),
        field_selectors=("spec.nodeName",),
        refusal_note="a denial is created or deleted whole, never changed",
    ),
)

_BY_GV_PLURAL: dict[tuple[str, str, str], ResourceInfo] = {
    (r.group, r.gv.version, r.plural): r for r in RESOURCES
}
_BY_GROUP_KIND: dict[tuple[str, str], ResourceInfo] = {(r.group, r.kind): r for r in RESOURCES}


def find_resource(group: str, version: str, plural: str) -> ResourceInfo | None:
    return _BY_GV_PLURAL.get((group, version, plural))


def find_by_kind(group: str, kind: str) -> ResourceInfo | None:
    return _BY_GROUP_KIND.get((group, kind))


def served_groups() -> frozenset[str]:
    """The named API groups served (the core group is "")."""
    return frozenset(gv.group for gv in group_versions() if gv.group)


def group_versions() -> list[GroupVersion]:
    """Served group versions, core first, in a stable order."""
    seen: list[GroupVersion] = []
    for r in RESOURCES:
        if r.gv not in seen:
            seen.append(r.gv)
    return seen
