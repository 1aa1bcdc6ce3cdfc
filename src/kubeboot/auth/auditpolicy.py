"""``--audit-policy-file``: which requests the audit log records (``audit.k8s.io/v1`` Policy).

The rules and their matching are upstream's (``apiserver/pkg/audit/policy/checker.go``): the
first rule whose ``users``, ``userGroups``, ``verbs``, ``resources``/``namespaces`` or
``nonResourceURLs`` all match decides the level; a request no rule matches is not logged
(level ``None``). ``omitStages`` at the top and per rule drop events of those stages.
Matching uses the authenticated user, not an impersonated one, as upstream's audit filter
runs before impersonation.

Levels: ``None`` and ``Metadata`` are supported. ``Request`` and ``RequestResponse`` would
record request and response bodies, which kubeboot's audit log never holds (it may contain
Secrets' data); a policy that asks for them is refused at start with a message saying so,
rather than logged at a level it did not ask for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubeboot.auth.audit import AuditRecord

__all__ = ["AuditPolicy", "AuditPolicyError", "PolicyRule", "load_audit_policy"]

_STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
_LEVELS = ("None", "Metadata", "Request", "RequestResponse")
_RULE_FIELDS = {
    "level",
    "users",
    "userGroups",
    "verbs",
    "resources",
    "namespaces",
    "nonResourceURLs",
    "omitStages",
    "omitManagedFields",
}


class AuditPolicyError(ValueError):
    """The policy file cannot be used; the message names the file and the rule."""


@dataclass(frozen=True, slots=True)
class GroupResources:
    group: str
    resources: tuple[str, ...]
    resource_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PolicyRule:
    level: str
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: tuple[str, ...] = ()

    def matches(self, record: AuditRecord) -> bool:
        user = record.user
        if self.users and (user is None or user.name not in self.users):
            return False
        if self.user_groups and (user is None or not set(user.groups) & set(self.user_groups)):
            return False
        if self.verbs and record.verb not in self.verbs:
            return False
        if self.resources or self.namespaces:
            return self._matches_resource(record)
        if self.non_resource_urls:
            return record.object_ref is None and self._matches_path(record.request_uri)
        return True

    def _matches_resource(self, record: AuditRecord) -> bool:
        ref = record.object_ref
        if ref is None:
            return False
        if self.namespaces and ref.get("namespace", "") not in self.namespaces:
            return False
        if not self.resources:
            return True
        resource, sub = ref.get("resource", ""), ref.get("subresource", "")
        combined = f"{resource}/{sub}" if sub else resource
        for gr in self.resources:
            if gr.group != ref.get("apiGroup", ""):
                continue
            if not gr.resources:
                return True
            if gr.resource_names and ref.get("name", "") not in gr.resource_names:
                continue
            for res in gr.resources:
                if res in (combined, "*"):
                    return True
                if sub and res.startswith("*/") and res[2:] == sub:
                    return True
                if res.endswith("/*") and res[:-2] == resource:
                    return True
        return False

    def _matches_path(self, uri: str) -> bool:
        path = uri.split("?", 1)[0]
        for spec in self.non_resource_urls:
            if spec == "*" or spec == path:
                return True
            if spec.endswith("*") and path.startswith(spec[:-1]):
                return True
        return False


@dataclass(frozen=True, slots=True)
class AuditPolicy:
    rules: tuple[PolicyRule, ...]
    omit_stages: tuple[str, ...] = ()

    def logs(self, record: AuditRecord, stage: str) -> bool:
        """Whether ``record``'s event at ``stage`` goes to the log under this policy."""
        if stage in self.omit_stages:
            return False
        for rule in self.rules:
            if rule.matches(record):
                return rule.level != "None" and stage not in rule.omit_stages
        return False


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AuditPolicyError(f"{where} must be a list of strings")
    return tuple(value)


def _stages(value: Any, where: str) -> tuple[str, ...]:
    stages = _strings(value, where)
    for stage in stages:
        if stage not in _STAGES:
            raise AuditPolicyError(
                f"{where}: unknown stage {stage!r} (one of {', '.join(_STAGES)})"
            )
    return stages


def _rule(raw: Any, where: str) -> PolicyRule:
    if not isinstance(raw, dict):
        raise AuditPolicyError(f"{where} must be a mapping")
    unknown = sorted(set(raw) - _RULE_FIELDS)
    if unknown:
        raise AuditPolicyError(f"{where}: unknown field(s) {', '.join(unknown)}")
    level = raw.get("level")
    if level not in _LEVELS:
        raise AuditPolicyError(f"{where}.level must be one of {', '.join(_LEVELS)}, not {level!r}")
    if level in ("Request", "RequestResponse"):
        raise AuditPolicyError(
            f"{where}.level {level} is not supported: kubeboot's audit log never records request "
            "or response bodies; use Metadata"
        )
    resources = []
    for i, gr in enumerate(raw.get("resources") or []):
        if not isinstance(gr, dict):
            raise AuditPolicyError(f"{where}.resources[{i}] must be a mapping")
        resources.append(
            GroupResources(
                group=str(gr.get("group", "")),
                resources=_strings(gr.get("resources"), f"{where}.resources[{i}].resources"),
                resource_names=_strings(
                    gr.get("resourceNames"), f"{where}.resources[{i}].resourceNames"
                ),
            )
        )
    rule = PolicyRule(
        level=level,
        users=_strings(raw.get("users"), f"{where}.users"),
        user_groups=_strings(raw.get("userGroups"), f"{where}.userGroups"),
        verbs=_strings(raw.get("verbs"), f"{where}.verbs"),
        resources=tuple(resources),
        namespaces=_strings(raw.get("namespaces"), f"{where}.namespaces"),
        non_resource_urls=_strings(raw.get("nonResourceURLs"), f"{where}.nonResourceURLs"),
        omit_stages=_stages(raw.get("omitStages"), f"{where}.omitStages"),
    )
    if rule.non_resource_urls and (rule.resources or rule.namespaces):
        # upstream's validation: a rule is about resources or about paths, never both
        raise AuditPolicyError(
            f"{where}: nonResourceURLs cannot be combined with resources or namespaces"
        )
    return rule


def parse_audit_policy(doc: Any, source: str = "audit policy") -> AuditPolicy:
    if not isinstance(doc, dict):
        raise AuditPolicyError(f"{source}: not a Policy object")
    if doc.get("apiVersion") not in ("audit.k8s.io/v1",) or doc.get("kind") != "Policy":
        raise AuditPolicyError(
            f"{source}: expected apiVersion audit.k8s.io/v1 and kind Policy, got "
            f"{doc.get('apiVersion')!r} {doc.get('kind')!r}"
        )
    raw_rules: Sequence[Any] = doc.get("rules") or []
    if not isinstance(raw_rules, list) or not raw_rules:
        raise AuditPolicyError(f"{source}: a policy needs at least one rule")
    return AuditPolicy(
        rules=tuple(_rule(r, f"{source}: rules[{i}]") for i, r in enumerate(raw_rules)),
        omit_stages=_stages(doc.get("omitStages"), f"{source}: omitStages"),
    )


def load_audit_policy(path: Path) -> AuditPolicy:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise AuditPolicyError(f"cannot read the audit policy {path}: {exc}") from exc
    return parse_audit_policy(doc, str(path))
