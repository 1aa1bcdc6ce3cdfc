"""RBAC: pure rule evaluation over an index of Roles, ClusterRoles and their bindings.

The rules are upstream's ``rbac/v1`` helpers, quoted in behaviour:

* verbs, apiGroups, resources: ``*`` matches anything; a resource request for a subresource
  matches ``<resource>/<sub>`` or ``*/<sub>``, never the bare ``<resource>``;
* ``resourceNames`` empty matches every name; otherwise the request's name must be listed (so
  ``list`` and ``create``, which carry no name, never match a rule with names);
* ``nonResourceURLs``: ``*`` matches all, ``/x/*`` matches by prefix, otherwise exact;
* subjects: ``User`` by name, ``Group`` by membership, ``ServiceAccount`` as the user
  ``system:serviceaccount:<ns>:<name>`` where an empty namespace means the binding's own;
* ClusterRoleBindings apply everywhere; RoleBindings only in their namespace, and may point at
  a ClusterRole (its rules then apply in that namespace only).

Everything here is a function of an :class:`RbacIndex`. :class:`MirroredRbac` keeps one current
from four store mirrors and rebuilds it lazily when a mirror's generation moves, so the cost
of a decision is a few dict lookups per group of the user, not a scan of every binding.
Answers are ``Allow`` with upstream's reason (``RBAC: allowed by ClusterRoleBinding "x" of
ClusterRole "y" to Group "z"``) or ``NoOpinion``, so a union can ask the next authorizer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kubeboot.auth.interface import Attributes, Decision, UserInfo, Verdict
from kubeboot.auth.mirror import StoreMirror, resource_info
from kubeboot.auth.users import SERVICE_ACCOUNT_PREFIX
from kubeboot.storage.interface import Store

__all__ = [
    "Binding",
    "MirroredRbac",
    "PolicyRule",
    "RbacAuthorizer",
    "RbacIndex",
    "RuleResolver",
    "RuleSet",
    "aggregate_errors",
    "rule_allows",
]

Obj = Mapping[str, Any]


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


@dataclass(frozen=True, slots=True)
class PolicyRule:
    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, rule: Obj) -> PolicyRule:
        return cls(
            verbs=_strings(rule.get("verbs")),
            api_groups=_strings(rule.get("apiGroups")),
            resources=_strings(rule.get("resources")),
            resource_names=_strings(rule.get("resourceNames")),
            non_resource_urls=_strings(rule.get("nonResourceURLs")),
        )


def _resource_matches(rule: PolicyRule, resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for r in rule.resources:
        if r in ("*", combined):
            return True
        if subresource and r == "*/" + subresource:
            return True
    return False


def _url_matches(rule: PolicyRule, path: str) -> bool:
    for url in rule.non_resource_urls:
        if url in ("*", path):
            return True
        if url.endswith("*") and path.startswith(url[:-1]):
            return True
    return False


def rule_allows(rule: PolicyRule, attrs: Attributes) -> bool:
    """Upstream's ``RuleAllows``."""
    if "*" not in rule.verbs and attrs.verb not in rule.verbs:
        return False
    if not attrs.resource_request:
        return _url_matches(rule, attrs.path)
    return (
        ("*" in rule.api_groups or attrs.api_group in rule.api_groups)
        and _resource_matches(rule, attrs.resource, attrs.subresource)
        and (not rule.resource_names or attrs.name in rule.resource_names)
    )


@dataclass(frozen=True, slots=True)
class RuleSet:
    """What an authorizer can say a user may do in a namespace (upstream's ``RulesFor``).

    ``incomplete`` says the rules do not enumerate everything the user may do (a node: the
    Node authorizer decides per object); ``errors`` are the texts of what failed while
    resolving them (a binding to a role that does not exist), the evaluationError of a
    SelfSubjectRulesReview.
    """

    rules: tuple[PolicyRule, ...] = ()
    incomplete: bool = False
    errors: tuple[str, ...] = ()


class RuleResolver(Protocol):
    """``authorizer.RuleResolver``: the rules ``user`` holds in ``namespace``."""

    def rules_for(self, user: UserInfo, namespace: str) -> RuleSet: ...


@dataclass(frozen=True, slots=True)
class Binding:
    """One (binding, subject) pair: what a matching subject gets, and how to say why."""

    kind: str  # "ClusterRoleBinding" or "RoleBinding"
    namespace: str  # "" for ClusterRoleBindings
    name: str
    role_kind: str  # "ClusterRole" or "Role"
    role_name: str
    subject: str  # upstream's describeSubject: Group "system:masters"
    subject_index: int = 0  # position of that subject in the binding's list

    def describe(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f'{self.kind} "{where}" of {self.role_kind} "{self.role_name}" to {self.subject}'


_SubjectKey = tuple[str, str]  # ("User", name) or ("Group", name)


def _subject_keys(subject: Obj, binding_namespace: str) -> tuple[_SubjectKey, str] | None:
    kind, name = subject.get("kind"), subject.get("name")
    if not isinstance(kind, str) or not isinstance(name, str) or not name:
        return None
    if kind in ("User", "Group"):
        return (kind, name), f'{kind} "{name}"'
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        if not isinstance(namespace, str) or not namespace:
            return None
        return ("User", f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"), (
            f'ServiceAccount "{name}/{namespace}"'
        )
    return None


def _rules(role: Obj) -> tuple[PolicyRule, ...]:
    rules = role.get("rules")
    if not isinstance(rules, list):
        return ()
    return tuple(PolicyRule.from_dict(r) for r in rules if isinstance(r, Mapping))


def _meta(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


@dataclass(frozen=True, slots=True)
class RbacIndex:
    """Roles by name and bindings by subject: everything a decision reads."""

    cluster_roles: Mapping[str, tuple[PolicyRule, ...]]
    roles: Mapping[tuple[str, str], tuple[PolicyRule, ...]]
    # subject → bindings, sorted by (namespace, name) so reasons are deterministic
    cluster_bindings: Mapping[_SubjectKey, tuple[Binding, ...]]
    namespaced_bindings: Mapping[tuple[str, _SubjectKey], tuple[Binding, ...]]

    @classmethod
    def build(
        cls,
        cluster_roles: Iterable[Obj],
        roles: Iterable[Obj],
        cluster_role_bindings: Iterable[Obj],
        role_bindings: Iterable[Obj],
    ) -> RbacIndex:
        cluster: dict[_SubjectKey, list[Binding]] = defaultdict(list)
        namespaced: dict[tuple[str, _SubjectKey], list[Binding]] = defaultdict(list)
        for kind, objs in (
            ("ClusterRoleBinding", cluster_role_bindings),
            ("RoleBinding", role_bindings),
        ):
            for obj in objs:
                namespace, name = _meta(obj)
                ref = obj.get("roleRef") or {}
                role_kind, role_name = str(ref.get("kind")), ref.get("name")
                allowed = (
                    ("ClusterRole",) if kind == "ClusterRoleBinding" else ("ClusterRole", "Role")
                )
                if role_kind not in allowed or not isinstance(role_name, str):
                    continue
                for index, subject in enumerate(obj.get("subjects") or ()):
                    if not isinstance(subject, Mapping):
                        continue
                    keyed = _subject_keys(subject, namespace)
                    if keyed is None:
                        continue
                    key, described = keyed
                    b = Binding(kind, namespace, name, role_kind, role_name, described, index)
                    if kind == "ClusterRoleBinding":
                        cluster[key].append(b)
                    else:
                        namespaced[(namespace, key)].append(b)

        def ordered(bindings: list[Binding]) -> tuple[Binding, ...]:
            return tuple(sorted(bindings, key=lambda b: (b.namespace, b.name)))

        return cls(
            cluster_roles={_meta(r)[1]: _rules(r) for r in cluster_roles},
            roles={_meta(r): _rules(r) for r in roles},
            cluster_bindings={k: ordered(v) for k, v in cluster.items()},
            namespaced_bindings={k: ordered(v) for k, v in namespaced.items()},
        )

    def _role_rules(self, b: Binding) -> tuple[PolicyRule, ...] | None:
        if b.role_kind == "ClusterRole":
            return self.cluster_roles.get(b.role_name)
        return self.roles.get((b.namespace, b.role_name))

    def bindings_for(self, user: UserInfo, namespace: str) -> list[Binding]:
        """Upstream's ``VisitRulesFor`` order: ClusterRoleBindings, then the namespace's
        RoleBindings; each binding once, however many of its subjects the user matches."""
        keys = _keys_of(user)
        candidates = [b for k in keys for b in self.cluster_bindings.get(k, ())]
        if namespace:
            candidates += [
                b for k in keys for b in self.namespaced_bindings.get((namespace, k), ())
            ]
        # One entry per binding, described by its first subject the user matches (upstream's
        # appliesTo), ClusterRoleBindings first, each kind in name order.
        unique: dict[tuple[str, str, str], Binding] = {}
        for b in candidates:
            key = (b.kind, b.namespace, b.name)
            known = unique.get(key)
            if known is None or b.subject_index < known.subject_index:
                unique[key] = b
        return sorted(unique.values(), key=lambda b: (b.kind != "ClusterRoleBinding", b.name))

    def role_rules(self, b: Binding, plural_errors: bool = False) -> tuple[PolicyRule, ...] | str:
        """The binding's role's rules, or why not: the NotFound text of the role getter.

        The authorizer reads roles through listers (``clusterrole.rbac…``); the escalation
        check through the registry (``clusterroles.rbac…``), as upstream does.
        """
        rules = self._role_rules(b)
        if rules is not None:
            return rules
        resource = "clusterrole" if b.role_kind == "ClusterRole" else "role"
        if plural_errors:
            resource += "s"
        return f'{resource}.rbac.authorization.k8s.io "{b.role_name}" not found'

    def rules_for(
        self, user: UserInfo, namespace: str, plural_errors: bool = False
    ) -> tuple[list[PolicyRule], list[str]]:
        """Upstream's ``RulesFor``: every rule the user holds in ``namespace`` ("" for cluster
        scope only), and the errors resolving them (roles that do not exist)."""
        rules: list[PolicyRule] = []
        errors: list[str] = []
        for b in self.bindings_for(user, namespace):
            found = self.role_rules(b, plural_errors)
            if isinstance(found, str):
                errors.append(found)
            else:
                rules.extend(found)
        return rules, errors

    def authorize(self, attrs: Attributes) -> Decision:
        missing: list[str] = []
        for b in self.bindings_for(attrs.user, attrs.namespace):
            rules = self.role_rules(b)
            if isinstance(rules, str):
                missing.append(rules)
                continue
            if any(rule_allows(r, attrs) for r in rules):
                return Decision(Verdict.ALLOW, f"RBAC: allowed by {b.describe()}")
        reason = f"RBAC: {aggregate_errors(missing)}" if missing else ""
        return Decision(Verdict.NO_OPINION, reason)


def aggregate_errors(errors: Sequence[str]) -> str:
    """``utilerrors.NewAggregate(errs).Error()``: one message bare, several ``[a, b]``, unique."""
    unique = list(dict.fromkeys(errors))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def _keys_of(user: UserInfo) -> list[_SubjectKey]:
    return [("User", user.name), *(("Group", g) for g in user.groups)]


class RbacAuthorizer:
    """``--authorization-mode=RBAC`` over whatever index ``current`` returns now."""

    def __init__(self, current: Callable[[], RbacIndex]) -> None:
        self._current = current

    def authorize(self, attrs: Attributes) -> Decision:
        return self._current().authorize(attrs)

    def rules_for(self, user: UserInfo, namespace: str) -> RuleSet:
        """The rules of every role bound to the user there; a missing role is an error (in
        the listers' words, as the authorizer reads roles), never incomplete."""
        rules, errors = self._current().rules_for(user, namespace)
        return RuleSet(tuple(rules), errors=tuple(errors))


class MirroredRbac:
    """Four store mirrors of the RBAC collections and the index built from them."""

    def __init__(self, store: Store) -> None:
        group = "rbac.authorization.k8s.io"
        self.mirrors = tuple(
            StoreMirror(store, resource_info(group, "v1", plural).storage_prefix())
            for plural in ("clusterroles", "roles", "clusterrolebindings", "rolebindings")
        )
        self._built_at: tuple[int, ...] | None = None
        self._index = RbacIndex.build((), (), (), ())

    def index(self) -> RbacIndex:
        generations = tuple(m.generation for m in self.mirrors)
        if generations != self._built_at:
            self._index = RbacIndex.build(*(m.values() for m in self.mirrors))
            self._built_at = generations
        return self._index
