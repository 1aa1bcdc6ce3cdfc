"""The default RBAC objects kube-apiserver creates at start, and their reconciliation.

The objects are upstream's ``bootstrappolicy`` (server-facts §7.1) as they appear in
``kubectl get -o yaml`` on a real cluster: label ``kubernetes.io/bootstrapping: rbac-defaults``,
annotation ``rbac.authorization.kubernetes.io/autoupdate: "true"``. Only those that matter for
bootstrapping are here, plus the controller roles that kubeboot's controllers run under.

:func:`reconcile` is upstream's ``reconciliation`` without the removal of extra permissions
(kube-apiserver never removes them at start): a missing object is created; an object whose
autoupdate annotation is ``"false"`` is left alone; otherwise missing rules (those not
*covered* by the existing rules) and missing subjects are added, labels and annotations the
user set are kept, and a binding whose roleRef changed is recreated. So an administrator can
extend a default role, or switch a default off for good, without start-up undoing it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from kubeboot.auth.rbac import PolicyRule
from kubeboot.auth.users import ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, MASTERS_GROUP

__all__ = [
    "AUTOUPDATE_ANNOTATION",
    "Change",
    "default_cluster_role_bindings",
    "default_cluster_roles",
    "default_role_bindings",
    "default_roles",
    "node_policy_rules",
    "reconcile",
]

Obj = dict[str, Any]
AUTOUPDATE_ANNOTATION = "rbac.authorization.kubernetes.io/autoupdate"
_API_VERSION = "rbac.authorization.k8s.io/v1"
_CERTS = "certificates.k8s.io"
_READ = ("get", "list", "watch")


def _rule(
    verbs: Sequence[str],
    groups: Sequence[str] = (),
    resources: Sequence[str] = (),
    names: Sequence[str] = (),
    urls: Sequence[str] = (),
) -> Obj:
    rule: Obj = {"verbs": list(verbs)}
    if urls:
        rule["nonResourceURLs"] = list(urls)
    else:
        rule["apiGroups"] = list(groups)
        rule["resources"] = list(resources)
    if names:
        rule["resourceNames"] = list(names)
    return rule


def _meta(name: str, namespace: str = "") -> Obj:
    meta: Obj = {
        "name": name,
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "annotations": {AUTOUPDATE_ANNOTATION: "true"},
    }
    if namespace:
        meta["namespace"] = namespace
    return meta


def _role(kind: str, name: str, rules: list[Obj], namespace: str = "") -> Obj:
    return {
        "apiVersion": _API_VERSION,
        "kind": kind,
        "metadata": _meta(name, namespace),
        "rules": rules,
    }


def _binding(
    kind: str, name: str, role_kind: str, role: str, subjects: list[Obj], namespace: str = ""
) -> Obj:
    return {
        "apiVersion": _API_VERSION,
        "kind": kind,
        "metadata": _meta(name, namespace),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": subjects,
    }


def _group(name: str) -> Obj:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": name}


def _user(name: str) -> Obj:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}


def _service_account(name: str, namespace: str = "kube-system") -> Obj:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


_HEALTH_URLS = ["/healthz", "/livez", "/readyz", "/version", "/version/"]
_EVENTS = _rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"])
_SIGNER_APPROVERS = {
    "kube-apiserver-client-approver": "kubernetes.io/kube-apiserver-client",
    "kube-apiserver-client-kubelet-approver": "kubernetes.io/kube-apiserver-client-kubelet",
    "kubelet-serving-approver": "kubernetes.io/kubelet-serving",
    "legacy-unknown-approver": "kubernetes.io/legacy-unknown",
}


def _node_rules() -> list[Obj]:
    """Upstream's ``NodeRules()`` with v1.37's default feature gates (CSIVolumeHealth off;
    DynamicResourceAllocation, ClusterTrustBundle, PodCertificateRequest and
    KubeletServiceAccountTokenForCredentialProviders on): what ``system:node`` holds and the
    Node authorizer grants."""
    return [
        _rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
        _rule(
            ["create"],
            ["authorization.k8s.io"],
            ["localsubjectaccessreviews", "subjectaccessreviews"],
        ),
        _rule(_READ, [""], ["services"]),
        _rule(["create", "get", "list", "watch"], [""], ["nodes"]),
        _rule(["patch", "update"], [""], ["nodes/status"]),
        _rule(["patch", "update"], [""], ["nodes"]),
        _rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
        _rule(_READ, [""], ["pods"]),
        _rule(["create", "delete"], [""], ["pods"]),
        _rule(["patch", "update"], [""], ["pods/status"]),
        _rule(["create"], [""], ["pods/eviction"]),
        _rule(_READ, [""], ["configmaps", "secrets"]),
        _rule(["get"], [""], ["persistentvolumeclaims", "persistentvolumes"]),
        _rule(["get"], [""], ["endpoints"]),
        _rule(["create", "get", "list", "watch"], [_CERTS], ["certificatesigningrequests"]),
        _rule(["create", "delete", "get", "patch", "update"], ["coordination.k8s.io"], ["leases"]),
        _rule(["get"], ["storage.k8s.io"], ["volumeattachments"]),
        _rule(["create"], [""], ["serviceaccounts/token"]),
        _rule(["get", "patch", "update"], [""], ["persistentvolumeclaims/status"]),
        _rule(_READ, ["storage.k8s.io"], ["csidrivers"]),
        _rule(["create", "delete", "get", "patch", "update"], ["storage.k8s.io"], ["csinodes"]),
        _rule(_READ, ["node.k8s.io"], ["runtimeclasses"]),
        _rule(["get"], ["resource.k8s.io"], ["resourceclaims"]),
        _rule(["deletecollection"], ["resource.k8s.io"], ["resourceslices"]),
        _rule(_READ, [_CERTS], ["clustertrustbundles"]),
        _rule(["get"], [""], ["serviceaccounts"]),
        _rule(["create", "get", "list", "watch"], [_CERTS], ["podcertificaterequests"]),
    ]


def node_policy_rules() -> tuple[PolicyRule, ...]:
    """``system:node``'s rules as the Node authorizer evaluates them."""
    return tuple(PolicyRule.from_dict(r) for r in _node_rules())


def _controller_manager_rules() -> list[Obj]:
    """Upstream's ``system:kube-controller-manager`` (its own Lease, reads, SARs)."""
    lease = "kube-controller-manager"
    return [
        _EVENTS,
        _rule(["create"], ["coordination.k8s.io"], ["leases"]),
        _rule(["get", "update"], ["coordination.k8s.io"], ["leases"], [lease]),
        _rule(["create"], [""], ["endpoints"]),
        _rule(["get", "update"], [""], ["endpoints"], [lease]),
        _rule(["create"], [""], ["secrets", "serviceaccounts"]),
        _rule(["delete"], [""], ["secrets"]),
        _rule(["get"], [""], ["configmaps", "namespaces", "secrets", "serviceaccounts"]),
        _rule(["update"], [""], ["secrets", "serviceaccounts"]),
        _rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
        _rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
        _rule(["list", "watch"], ["*"], ["*"]),
        _rule(["create"], [""], ["serviceaccounts/token"]),
    ]


def default_cluster_roles() -> list[Obj]:
    roles = [
        _role(
            "ClusterRole",
            "cluster-admin",
            [_rule(["*"], ["*"], ["*"]), _rule(["*"], urls=["*"])],
        ),
        _role(
            "ClusterRole",
            "system:discovery",
            [
                _rule(
                    ["get"],
                    urls=sorted(
                        [
                            *_HEALTH_URLS,
                            "/api",
                            "/api/*",
                            "/apis",
                            "/apis/*",
                            "/openapi",
                            "/openapi/*",
                        ]
                    ),
                )
            ],
        ),
        _role("ClusterRole", "system:public-info-viewer", [_rule(["get"], urls=_HEALTH_URLS)]),
        _role(
            "ClusterRole",
            "system:basic-user",
            [
                _rule(
                    ["create"],
                    ["authorization.k8s.io"],
                    ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                _rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"]),
            ],
        ),
        _role(
            "ClusterRole",
            "system:node-bootstrapper",
            [_rule(["create", "get", "list", "watch"], [_CERTS], ["certificatesigningrequests"])],
        ),
        _role(
            "ClusterRole",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            [_rule(["create"], [_CERTS], ["certificatesigningrequests/nodeclient"])],
        ),
        _role(
            "ClusterRole",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            [_rule(["create"], [_CERTS], ["certificatesigningrequests/selfnodeclient"])],
        ),
        _role("ClusterRole", "system:node", _node_rules()),
        _role(
            "ClusterRole",
            "system:controller:certificate-controller",
            [
                _rule(["delete", "get", "list", "watch"], [_CERTS], ["certificatesigningrequests"]),
                _rule(
                    ["update"],
                    [_CERTS],
                    ["certificatesigningrequests/approval", "certificatesigningrequests/status"],
                ),
                _rule(
                    ["approve"],
                    [_CERTS],
                    ["signers"],
                    ["kubernetes.io/kube-apiserver-client-kubelet"],
                ),
                _rule(
                    ["sign"],
                    [_CERTS],
                    ["signers"],
                    [
                        "kubernetes.io/kube-apiserver-client",
                        "kubernetes.io/kube-apiserver-client-kubelet",
                        "kubernetes.io/kubelet-serving",
                        "kubernetes.io/legacy-unknown",
                    ],
                ),
                _rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
                _EVENTS,
            ],
        ),
    ]
    roles.append(
        _role("ClusterRole", "system:kube-controller-manager", _controller_manager_rules())
    )
    roles += [
        _role(
            "ClusterRole",
            "system:controller:service-account-controller",
            [_rule(["create"], [""], ["serviceaccounts"]), _EVENTS],
        ),
        _role(
            "ClusterRole",
            "system:controller:root-ca-cert-publisher",
            [_rule(["create", "update"], [""], ["configmaps"]), _EVENTS],
        ),
        _role(
            "ClusterRole",
            "system:controller:node-controller",
            [
                _rule(["get", "list", "watch", "update", "delete", "patch"], [""], ["nodes"]),
                _rule(["patch", "update"], [""], ["nodes/status"]),
                _rule(["patch", "update"], [""], ["pods/status"]),
                _rule(["list", "watch", "get", "delete"], [""], ["pods"]),
                _rule(["get", "list", "watch"], ["coordination.k8s.io"], ["leases"]),
                _EVENTS,
            ],
        ),
        _role(
            "ClusterRole",
            "system:controller:ttl-controller",
            [_rule(["update", "patch", "list", "watch"], [""], ["nodes"]), _EVENTS],
        ),
        _role(
            "ClusterRole",
            "system:controller:namespace-controller",
            [
                _rule(["delete", "get", "list", "watch"], [""], ["namespaces"]),
                _rule(["update"], [""], ["namespaces/finalize", "namespaces/status"]),
                _rule(["delete", "deletecollection", "get", "list"], ["*"], ["*"]),
            ],
        ),
    ]
    roles += [
        # Who may read the ServiceAccount issuer's OIDC discovery (bound to every
        # ServiceAccount; anonymous relying parties need a binding of their own, as upstream).
        _role(
            "ClusterRole",
            "system:service-account-issuer-discovery",
            [
                _rule(
                    ["get"],
                    urls=[
                        "/.well-known/openid-configuration",
                        "/.well-known/openid-configuration/",
                        "/openid/v1/jwks",
                        "/openid/v1/jwks/",
                    ],
                )
            ],
        ),
        # Delegated authentication and authorization (TokenReview, SubjectAccessReview).
        _role(
            "ClusterRole",
            "system:auth-delegator",
            [
                _rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
                _rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
            ],
        ),
    ]
    roles += [
        _role(
            "ClusterRole",
            f"system:certificates.k8s.io:{name}",
            [_rule(["approve"], [_CERTS], ["signers"], [signer])],
        )
        for name, signer in _SIGNER_APPROVERS.items()
    ]
    return roles


def default_cluster_role_bindings() -> list[Obj]:
    def crb(name: str, subjects: list[Obj], role: str | None = None) -> Obj:
        return _binding("ClusterRoleBinding", name, "ClusterRole", role or name, subjects)

    return [
        crb("cluster-admin", [_group(MASTERS_GROUP)]),
        crb("system:discovery", [_group(ALL_AUTHENTICATED)]),
        crb("system:basic-user", [_group(ALL_AUTHENTICATED)]),
        crb("system:public-info-viewer", [_group(ALL_AUTHENTICATED), _group(ALL_UNAUTHENTICATED)]),
        crb("system:node", []),
        crb("system:kube-controller-manager", [_user("system:kube-controller-manager")]),
        crb("system:service-account-issuer-discovery", [_group("system:serviceaccounts")]),
        *(
            crb(f"system:controller:{sa}", [_service_account(sa)])
            for sa in (
                "certificate-controller",
                "service-account-controller",
                "root-ca-cert-publisher",
                "namespace-controller",
                "node-controller",
                "ttl-controller",
            )
        ),
    ]


def default_roles() -> list[Obj]:
    """Namespaced controller roles (upstream's ``namespace_policy.go``)."""
    return [
        _role(
            "Role",
            "system:controller:bootstrap-signer",
            [_rule(_READ, [""], ["secrets"])],
            "kube-system",
        ),
        _role(
            "Role",
            "system:controller:token-cleaner",
            [_rule(["delete", "get", "list", "watch"], [""], ["secrets"]), _EVENTS],
            "kube-system",
        ),
        _role(
            "Role",
            "system:controller:bootstrap-signer",
            [
                _rule(_READ, [""], ["configmaps"]),
                _rule(["update"], [""], ["configmaps"], ["cluster-info"]),
                _EVENTS,
            ],
            "kube-public",
        ),
    ]


def default_role_bindings() -> list[Obj]:
    return [
        _binding(
            "RoleBinding",
            r["metadata"]["name"],
            "Role",
            r["metadata"]["name"],
            [_service_account(r["metadata"]["name"].removeprefix("system:controller:"))],
            r["metadata"]["namespace"],
        )
        for r in default_roles()
    ]


# --- reconciliation --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """One write start-up must make: create, update (CAS on the read), or delete + create."""

    action: Literal["create", "update", "recreate"]
    obj: Obj


def _atoms(rule: PolicyRule) -> Iterable[PolicyRule]:
    """A rule as single-verb, single-resource rules, the unit upstream's ``Covers`` checks."""
    for verb in rule.verbs:
        for url in rule.non_resource_urls:
            yield PolicyRule(verbs=(verb,), non_resource_urls=(url,))
        for group in rule.api_groups:
            for resource in rule.resources:
                for name in rule.resource_names or ("",):
                    yield PolicyRule(
                        verbs=(verb,),
                        api_groups=(group,),
                        resources=(resource,),
                        resource_names=(name,) if name else (),
                    )


def _covers(owner: PolicyRule, atom: PolicyRule) -> bool:
    if "*" not in owner.verbs and atom.verbs[0] not in owner.verbs:
        return False
    if atom.non_resource_urls:
        url = atom.non_resource_urls[0]
        return any(
            o in ("*", url) or (o.endswith("*") and url.startswith(o[:-1]))
            for o in owner.non_resource_urls
        )
    resource = atom.resources[0]
    sub = resource.partition("/")[2]
    names_covered = not owner.resource_names or (
        bool(atom.resource_names) and atom.resource_names[0] in owner.resource_names
    )
    return (
        ("*" in owner.api_groups or atom.api_groups[0] in owner.api_groups)
        and any(o in ("*", resource) or (sub and o == f"*/{sub}") for o in owner.resources)
        and names_covered
    )


def _merge_meta(existing: Obj, desired: Obj) -> Obj:
    meta = copy.deepcopy(existing.get("metadata") or {})
    for key in ("labels", "annotations"):
        merged = dict(desired["metadata"].get(key) or {})
        merged.update(meta.get(key) or {})
        meta[key] = merged
    return meta


def _reconcile_one(existing: Obj | None, desired: Obj) -> Change | None:
    if existing is None:
        return Change("create", copy.deepcopy(desired))
    annotations = (existing.get("metadata") or {}).get("annotations") or {}
    if annotations.get(AUTOUPDATE_ANNOTATION) == "false":
        return None
    result = copy.deepcopy(existing)
    result["metadata"] = _merge_meta(existing, desired)
    if "rules" in desired:
        owners = [PolicyRule.from_dict(r) for r in existing.get("rules") or ()]
        missing = [
            r
            for r in desired["rules"]
            if not all(any(_covers(o, a) for o in owners) for a in _atoms(PolicyRule.from_dict(r)))
        ]
        result["rules"] = [*(existing.get("rules") or []), *copy.deepcopy(missing)]
    else:
        if existing.get("roleRef") != desired["roleRef"]:
            recreated = copy.deepcopy(desired)
            recreated["metadata"] = _merge_meta(existing, desired)
            recreated["metadata"].pop("resourceVersion", None)
            recreated["metadata"].pop("uid", None)
            return Change("recreate", recreated)
        subjects = list(existing.get("subjects") or [])
        subjects += [copy.deepcopy(s) for s in desired["subjects"] if s not in subjects]
        result["subjects"] = subjects
    return None if result == existing else Change("update", result)


def _key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return (str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name")))


def reconcile(existing: Iterable[Obj], desired: Iterable[Obj]) -> list[Change]:
    """The writes that bring ``existing`` up to ``desired`` (same kind(s), any namespaces)."""
    by_key = {_key(o): o for o in existing}
    return [c for d in desired if (c := _reconcile_one(by_key.get(_key(d)), d)) is not None]
