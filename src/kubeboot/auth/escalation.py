"""RBAC escalation prevention: upstream's ``Covers`` and ``ConfirmNoEscalation`` wording.

A user may write a Role or ClusterRole only with rules she already holds, and bind a role only
if she holds every rule in it — unless she may ``escalate`` that role kind or ``bind`` that
role (``kubeboot.api.registry.rbac_policy`` asks those questions). This module is the pure
half: whether one rule set covers another, and the 403 text kube-apiserver writes when not.

Coverage, as ``k8s.io/component-helpers/auth/rbac/validation``:

* every servant rule is broken down into atoms of one verb, one API group, one resource and
  at most one resourceName (or one verb and one non-resource URL);
* an atom is covered when one owner rule has its verb (or ``*``), its group (or ``*``), its
  resource (``*``, the same string, or ``*/<sub>`` for ``<res>/<sub>``), and either no
  resourceNames or the atom's name; an atom without a name needs an owner rule without names;
  a URL atom is covered by the same URL or a ``<prefix>*`` owner URL.

The message, as ``pkg/registry/rbac/validation``: ``user "bob" (groups=["devs"
"system:authenticated"]) is attempting to grant RBAC permissions not currently held:`` then
one line per uncovered rule, in upstream's ``CompactString`` form (``{APIGroups:[""],
Resources:["secrets"], Verbs:["get" "list"]}``), atoms of one group/resource/name merged
across verbs, lines sorted and unique.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from kubeboot.auth.interface import UserInfo
from kubeboot.auth.rbac import PolicyRule, aggregate_errors

__all__ = [
    "FULL_AUTHORITY",
    "breakdown",
    "compact_rules",
    "compact_string",
    "covers",
    "escalation_message",
    "go_quote",
    "go_quote_list",
]

# ``*`` on everything: what the aggregationRule of a ClusterRole demands of its writer.
FULL_AUTHORITY = (
    PolicyRule(verbs=("*",), api_groups=("*",), resources=("*",)),
    PolicyRule(verbs=("*",), non_resource_urls=("*",)),
)


def breakdown(rule: PolicyRule) -> list[PolicyRule]:
    """Upstream's ``BreakdownRule``: atoms in group → resource → verb → name order."""
    atoms = [
        PolicyRule(
            verbs=(verb,),
            api_groups=(group,),
            resources=(resource,),
            resource_names=(name,) if name is not None else (),
        )
        for group in rule.api_groups
        for resource in rule.resources
        for verb in rule.verbs
        for name in (rule.resource_names or (None,))
    ]
    atoms += [
        PolicyRule(verbs=(verb,), non_resource_urls=(url,))
        for url in rule.non_resource_urls
        for verb in rule.verbs
    ]
    return atoms


def _resources_cover(owned: Sequence[str], wanted: Sequence[str]) -> bool:
    if "*" in owned:
        return True
    for path in wanted:
        if path in owned:
            continue
        _, slash, sub = path.partition("/")
        if not slash or f"*/{sub}" not in owned:
            return False
    return True


def _url_covers(owner: str, path: str) -> bool:
    return owner == path or (owner.endswith("*") and path.startswith(owner.rstrip("*")))


def _rule_covers(owner: PolicyRule, atom: PolicyRule) -> bool:
    """Upstream's ``ruleCovers``: every dimension of ``atom`` within ``owner``."""
    if "*" not in owner.verbs and not set(atom.verbs) <= set(owner.verbs):
        return False
    if "*" not in owner.api_groups and not set(atom.api_groups) <= set(owner.api_groups):
        return False
    if not _resources_cover(owner.resources, atom.resources):
        return False
    if not all(
        any(_url_covers(o, p) for o in owner.non_resource_urls) for p in atom.non_resource_urls
    ):
        return False
    if not atom.resource_names:
        return not owner.resource_names
    return not owner.resource_names or set(atom.resource_names) <= set(owner.resource_names)


def covers(
    owner_rules: Sequence[PolicyRule], servant_rules: Iterable[PolicyRule]
) -> tuple[bool, list[PolicyRule]]:
    """Whether ``owner_rules`` allow everything ``servant_rules`` do, and the atoms they miss."""
    missing = [
        atom
        for rule in servant_rules
        for atom in breakdown(rule)
        if not any(_rule_covers(owner, atom) for owner in owner_rules)
    ]
    return not missing, missing


def compact_rules(rules: Sequence[PolicyRule]) -> list[PolicyRule]:
    """Upstream's ``CompactRules``: one rule per (group, resource, name), verbs merged.

    Only "simple" rules (one group, one resource, at most one name, no URLs) merge; the rest
    pass through unchanged, ahead of the merged ones.
    """
    merged: dict[tuple[str, str, str | None], PolicyRule] = {}
    passed: list[PolicyRule] = []
    for rule in rules:
        simple = (
            len(rule.api_groups) == 1
            and len(rule.resources) == 1
            and len(rule.resource_names) <= 1
            and not rule.non_resource_urls
        )
        if not simple:
            passed.append(rule)
            continue
        key = (rule.api_groups[0], rule.resources[0], next(iter(rule.resource_names), None))
        known = merged.get(key)
        merged[key] = (
            rule
            if known is None
            else PolicyRule(
                verbs=(*known.verbs, *rule.verbs),
                api_groups=known.api_groups,
                resources=known.resources,
                resource_names=known.resource_names,
            )
        )
    return [*passed, *merged.values()]


_GO_ESCAPES = {
    "\a": r"\a",
    "\b": r"\b",
    "\f": r"\f",
    "\n": r"\n",
    "\r": r"\r",
    "\t": r"\t",
    "\v": r"\v",
    "\\": "\\\\",
    '"': '\\"',
}


def go_quote(value: str) -> str:
    """Go's ``%q`` of a string (``strconv.Quote``): printable runes kept, others escaped."""
    out = []
    for ch in value:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def go_quote_list(values: Iterable[str]) -> str:
    """Go's ``%q`` of a ``[]string``: ``["a" "b"]``."""
    return "[" + " ".join(go_quote(v) for v in values) + "]"


def compact_string(rule: PolicyRule) -> str:
    """Upstream's ``CompactString``: only the non-empty fields, in a fixed order."""
    parts = [
        f"{label}:{go_quote_list(values)}"
        for label, values in (
            ("APIGroups", rule.api_groups),
            ("Resources", rule.resources),
            ("NonResourceURLs", rule.non_resource_urls),
            ("ResourceNames", rule.resource_names),
            ("Verbs", rule.verbs),
        )
        if values
    ]
    return "{" + ", ".join(parts) + "}"


def escalation_message(
    user: UserInfo, missing: Sequence[PolicyRule], resolution_errors: Sequence[str] = ()
) -> str:
    """The reason ``ConfirmNoEscalation`` gives (wrapped by the caller in a Forbidden)."""
    lines = sorted({compact_string(rule) for rule in compact_rules(missing)})
    message = (
        f"user {go_quote(user.name)} (groups={go_quote_list(user.groups)}) is attempting to "
        "grant RBAC permissions not currently held:\n" + "\n".join(lines)
    )
    if resolution_errors:
        message += f"; resolution errors: [{aggregate_errors(resolution_errors)}]"
    return message
