"""The serving approver's policy, rule by rule, with the evidence each rule looked at.

Pure: :func:`explain_serving_csr` takes the CSR, the Node it names, the evidence the server
recorded and the policy, and returns every rule's outcome plus the verdict they add up to.
The controller (:mod:`kubeboot.controllers.servingapprover`) acts on the verdict;
``kubeboot approver explain`` and the console print the rules.

Preconditions (a CSR that is not this approver's business is **skipped**, no rule runs):
the signer is ``kubernetes.io/kubelet-serving``; no Approved/Denied condition; no
certificate yet; the request parses.

Rules, in order (postfinance/kubelet-csr-approver's, plus kubeboot's evidence rule):

============== ===============================================================
requester      ``spec.username`` is ``system:node:<n>`` (a skip, not a deny,
               with ``ignore_non_system_node``)
group          the requester is in ``system:nodes``
sans           at least one DNS or IP SAN
common-name    CN = the requester
no-email-uri   no email or URI SANs
dns-count      at most ``allowed_dns_names`` DNS SANs
expiration     ``spec.expirationSeconds`` ≤ ``max_expiration_seconds``
dns-regex      every DNS SAN matches ``dns_name_regex`` (when set)
ip-ranges      every IP SAN is inside one of ``allowed_ip_ranges`` (when set)
node-addresses every SAN is among Node ``<n>``'s ``status.addresses`` (wait while
               the Node does not exist)
ip-evidence    every IP SAN is an address the server saw ``<n>``'s authenticated
               connections come from, or the source address of a CSR one of
               ``<n>``'s certificates was issued for (the issuance ledger), with
               ``ip_evidence``; wait while the CSR is younger than
               ``evidence_grace_seconds`` and the address is not seen
============== ===============================================================

Verdict: the first failing rule denies (a skip with ``skip_deny``); otherwise any waiting
rule waits; otherwise approve. Every rule runs even after a failure, so an explanation shows
all that is wrong at once.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from kubeboot.agent.templates import serving_sans
from kubeboot.client.interface import JsonObject
from kubeboot.controllers.certificates import conditions, has_certificate, request_pem
from kubeboot.pki.csr import KUBELET_SERVING_SIGNER, CsrError, CsrFacts, csr_facts, parse_csr_pem
from kubeboot.resources.nodesources import CONFIGMAP_NAME, NAMESPACE, SourceSighting

__all__ = [
    "Evidence",
    "Explanation",
    "IssuedFrom",
    "PolicyError",
    "RuleResult",
    "ServingPolicy",
    "Verdict",
    "explain_serving_csr",
    "load_policy",
    "policy_from_mapping",
    "requested_node",
]

Action = Literal["approve", "deny", "skip", "wait"]
Outcome = Literal["pass", "fail", "wait", "n/a"]

NODE_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
APPROVED_BECAUSE = "SANs are the Node's addresses"


class PolicyError(ValueError):
    """A policy file or flag value that does not describe a policy (message names the key)."""


@dataclass(frozen=True, slots=True)
class ServingPolicy:
    allowed_dns_names: int = 1
    max_expiration_seconds: int = 367 * 24 * 3600
    ignore_non_system_node: bool = False
    skip_deny: bool = False
    dns_name_regex: str = ""
    allowed_ip_ranges: tuple[str, ...] = ()
    ip_evidence: bool = False
    evidence_grace_seconds: int = 30

    def __post_init__(self) -> None:
        try:
            re.compile(self.dns_name_regex)
        except re.error as exc:
            raise PolicyError(f"dnsNameRegex {self.dns_name_regex!r}: {exc}") from exc
        for cidr in self.allowed_ip_ranges:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise PolicyError(f"allowedIPRanges: {exc}") from exc


# The policy file's keys (camelCase, as the rest of kubeboot's configuration files).
_KEYS: dict[str, tuple[str, type]] = {
    "allowedDNSNames": ("allowed_dns_names", int),
    "maxExpirationSeconds": ("max_expiration_seconds", int),
    "ignoreNonSystemNode": ("ignore_non_system_node", bool),
    "skipDeny": ("skip_deny", bool),
    "dnsNameRegex": ("dns_name_regex", str),
    "allowedIPRanges": ("allowed_ip_ranges", list),
    "ipEvidence": ("ip_evidence", bool),
    "evidenceGraceSeconds": ("evidence_grace_seconds", int),
}


def policy_from_mapping(raw: Mapping[str, Any], base: ServingPolicy | None = None) -> ServingPolicy:
    """A policy from the file's keys over ``base``; unknown keys and wrong types are errors."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _KEYS:
            raise PolicyError(f"unknown key {key!r}; known: {', '.join(sorted(_KEYS))}")
        attr, kind = _KEYS[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise PolicyError(f"{key}: {value!r} is not a {kind.__name__}")
        values[attr] = tuple(str(v) for v in value) if isinstance(value, list) else value
    base = base or ServingPolicy()
    merged = {name: getattr(base, name) for name in base.__dataclass_fields__}
    return ServingPolicy(**{**merged, **values})


def load_policy(value: str) -> ServingPolicy:
    """``--serving-approver-policy``: inline YAML/JSON (starts with ``{``) or a file path."""
    text = value if value.lstrip().startswith("{") else Path(value).read_text()
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise PolicyError(f"not YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise PolicyError("the policy must be a mapping of keys to values")
    return policy_from_mapping(raw)


@dataclass(frozen=True, slots=True)
class IssuedFrom:
    """A certificate of the node's in the issuance ledger, and where its CSR came from."""

    address: str
    serial: str
    signer: str
    not_before: str


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the server recorded about a node, beyond what the node says about itself.

    ``connections``: where its authenticated requests came from (``recorded`` is False when
    the cluster keeps no such record: not a kubeboot server, or one not running the serving
    approver). ``issued``: the source addresses of the CSRs its certificates were issued
    for, from kubeboot's issuance ledger (``ledger`` False: the cluster serves none).
    """

    connections: tuple[SourceSighting, ...] = ()
    recorded: bool = True
    issued: tuple[IssuedFrom, ...] = ()
    ledger: bool = False

    @property
    def addresses(self) -> frozenset[str]:
        return frozenset(
            [s.address for s in self.connections] + [i.address for i in self.issued if i.address]
        )

    def describe(self) -> str:
        parts = []
        if not self.recorded:
            parts.append(
                f"no ConfigMap {NAMESPACE}/{CONFIGMAP_NAME}: the server records no node "
                "sources (kubeboot server with --controllers=...,servingapprover does)"
            )
        elif not self.connections:
            parts.append("no authenticated connection of this node seen yet")
        else:
            parts.append(
                "seen from "
                + ", ".join(
                    f"{s.address} ({s.via}, first {s.first_seen:%Y-%m-%dT%H:%M:%SZ}, "
                    f"last {s.last_seen:%Y-%m-%dT%H:%M:%SZ})"
                    for s in self.connections
                )
            )
        if self.issued:
            parts.append(
                "ledger: "
                + ", ".join(
                    f"{i.address} (CSR of certificate {i.serial}, {i.signer}, {i.not_before})"
                    for i in self.issued
                    if i.address
                )
            )
        elif self.ledger:
            parts.append("ledger: no certificate of this node recorded with a source address")
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    reason: str
    node: str | None = None


@dataclass(frozen=True, slots=True)
class RuleResult:
    rule: str
    outcome: Outcome
    detail: str


@dataclass(frozen=True, slots=True)
class Explanation:
    verdict: Verdict
    rules: tuple[RuleResult, ...] = field(default=())


def requested_node(csr: JsonObject) -> str | None:
    """The node named by the requester (``system:node:<n>``), or None."""
    username = str((csr.get("spec") or {}).get("username") or "")
    return username.removeprefix(NODE_PREFIX) if username.startswith(NODE_PREFIX) else None


def _precondition(
    csr: JsonObject, evaluate_decided: bool
) -> tuple[Verdict | None, CsrFacts | None]:
    spec = csr.get("spec") or {}
    if spec.get("signerName") != KUBELET_SERVING_SIGNER:
        reason = f"signer is {spec.get('signerName')!r}, not {KUBELET_SERVING_SIGNER}"
        return Verdict("skip", reason), None
    if not evaluate_decided:
        if any(c.get("type") in ("Approved", "Denied") for c in conditions(csr)):
            return Verdict("skip", "already approved or denied"), None
        if has_certificate(csr):
            return Verdict("skip", "certificate already issued"), None
    try:
        return None, csr_facts(parse_csr_pem(request_pem(csr)))
    except (CsrError, ValueError) as e:
        return Verdict("skip", f"request does not parse: {e}"), None


def _age_seconds(csr: JsonObject, now: dt.datetime | None) -> float | None:
    created = (csr.get("metadata") or {}).get("creationTimestamp")
    if now is None or not isinstance(created, str):
        return None
    try:
        when = dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return (now - when).total_seconds()


class _Rules:
    """The rules over one parsed CSR; each method returns one :class:`RuleResult`."""

    def __init__(
        self,
        csr: JsonObject,
        facts: CsrFacts,
        node: JsonObject | None,
        evidence: Evidence | None,
        policy: ServingPolicy,
        now: dt.datetime | None,
    ) -> None:
        self.csr, self.facts, self.node, self.policy = csr, facts, node, policy
        self.evidence, self.now = evidence, now
        self.spec = csr.get("spec") or {}
        self.username = str(self.spec.get("username") or "")
        self.name = requested_node(csr)
        self.ips = [str(ipaddress.ip_address(ip)) for ip in facts.ips]

    def all(self) -> list[RuleResult]:
        return [
            self.requester(),
            self.group(),
            self.sans(),
            self.common_name(),
            self.no_email_uri(),
            self.dns_count(),
            self.expiration(),
            self.dns_regex(),
            self.ip_ranges(),
            self.node_addresses(),
            self.ip_evidence(),
        ]

    def requester(self) -> RuleResult:
        if self.name is None:
            detail = f"CSR username {self.username!r} does not start with {NODE_PREFIX!r}"
            return RuleResult("requester", "fail", detail)
        return RuleResult("requester", "pass", f"{self.username}")

    def group(self) -> RuleResult:
        if NODES_GROUP not in (self.spec.get("groups") or []):
            return RuleResult("group", "fail", f"the requester is not in the {NODES_GROUP} group")
        return RuleResult("group", "pass", f"requester in {NODES_GROUP}")

    def sans(self) -> RuleResult:
        if not self.facts.dns_names and not self.facts.ips:
            return RuleResult("sans", "fail", "the CSR has no DNS or IP SAN")
        shown = ", ".join([*self.facts.dns_names, *self.ips])
        return RuleResult("sans", "pass", f"SANs: {shown}")

    def common_name(self) -> RuleResult:
        cn = self.facts.common_name
        if cn != self.username:
            detail = f"CN {cn!r} does not match the requester {self.username!r}"
            return RuleResult("common-name", "fail", detail)
        return RuleResult("common-name", "pass", f"CN {cn}")

    def no_email_uri(self) -> RuleResult:
        if self.facts.emails or self.facts.uris:
            return RuleResult("no-email-uri", "fail", "the CSR has email or URI SANs")
        return RuleResult("no-email-uri", "pass", "no email or URI SANs")

    def dns_count(self) -> RuleResult:
        count, allowed = len(self.facts.dns_names), self.policy.allowed_dns_names
        if count > allowed:
            detail = f"the CSR has {count} DNS SANs, more than the {allowed} allowed"
            return RuleResult("dns-count", "fail", detail)
        return RuleResult("dns-count", "pass", f"{count} DNS SANs (at most {allowed})")

    def expiration(self) -> RuleResult:
        seconds, most = self.spec.get("expirationSeconds"), self.policy.max_expiration_seconds
        if isinstance(seconds, int) and seconds > most:
            detail = f"expirationSeconds {seconds} exceeds the maximum {most}"
            return RuleResult("expiration", "fail", detail)
        asked = "not set" if seconds is None else str(seconds)
        return RuleResult("expiration", "pass", f"expirationSeconds {asked} (at most {most})")

    def dns_regex(self) -> RuleResult:
        pattern = self.policy.dns_name_regex
        if not pattern:
            return RuleResult("dns-regex", "n/a", "no dnsNameRegex in the policy")
        for dns in self.facts.dns_names:
            if re.fullmatch(pattern, dns) is None:
                detail = f"DNS SAN {dns!r} does not match {pattern!r}"
                return RuleResult("dns-regex", "fail", detail)
        return RuleResult("dns-regex", "pass", f"every DNS SAN matches {pattern!r}")

    def ip_ranges(self) -> RuleResult:
        ranges = self.policy.allowed_ip_ranges
        if not ranges:
            return RuleResult("ip-ranges", "n/a", "no allowedIPRanges in the policy")
        networks = [ipaddress.ip_network(r, strict=False) for r in ranges]
        for ip in self.ips:
            if not any(ipaddress.ip_address(ip) in net for net in networks):
                detail = f"IP SAN {ip} is outside {', '.join(ranges)}"
                return RuleResult("ip-ranges", "fail", detail)
        return RuleResult("ip-ranges", "pass", f"every IP SAN inside {', '.join(ranges)}")

    def node_addresses(self) -> RuleResult:
        if self.name is None:
            return RuleResult("node-addresses", "n/a", "no node named by the requester")
        if self.node is None:
            return RuleResult("node-addresses", "wait", f"Node {self.name!r} does not exist (yet)")
        node_dns, node_ips = serving_sans((self.node.get("status") or {}).get("addresses") or [])
        shown = ", ".join([*node_dns, *(str(ip) for ip in node_ips)]) or "none"
        for dns in self.facts.dns_names:
            if dns not in node_dns:
                detail = f"DNS SAN {dns!r} is not an address of Node {self.name!r} ({shown})"
                return RuleResult("node-addresses", "fail", detail)
        known_ips = {str(ip) for ip in node_ips}
        for ip in self.ips:
            if ip not in known_ips:
                detail = f"IP SAN {ip} is not an address of Node {self.name!r} ({shown})"
                return RuleResult("node-addresses", "fail", detail)
        return RuleResult("node-addresses", "pass", f"Node {self.name!r} has {shown}")

    def ip_evidence(self) -> RuleResult:
        if not self.policy.ip_evidence:
            return RuleResult("ip-evidence", "n/a", "ipEvidence is off in the policy")
        if not self.ips:
            return RuleResult("ip-evidence", "pass", "no IP SANs to prove")
        if self.name is None:
            return RuleResult("ip-evidence", "n/a", "no node named by the requester")
        evidence = self.evidence or Evidence(recorded=False)
        seen = evidence.addresses
        missing = [ip for ip in self.ips if ip not in seen]
        if not missing:
            return RuleResult("ip-evidence", "pass", evidence.describe())
        detail = (
            f"IP SAN {missing[0]} was never the source of an authenticated connection of "
            f"{NODE_PREFIX}{self.name}: {evidence.describe()}"
        )
        age = _age_seconds(self.csr, self.now)
        if evidence.recorded and age is not None and age < self.policy.evidence_grace_seconds:
            return RuleResult("ip-evidence", "wait", detail)
        return RuleResult("ip-evidence", "fail", detail)


def explain_serving_csr(
    csr: JsonObject,
    node: JsonObject | None,
    policy: ServingPolicy,
    evidence: Evidence | None = None,
    now: dt.datetime | None = None,
    *,
    evaluate_decided: bool = False,
) -> Explanation:
    """Every rule's outcome and the verdict (``now``: for the evidence grace period).

    ``evaluate_decided`` runs the rules on a CSR already approved, denied or issued too (what
    ``approver explain`` shows: the verdict this policy *would* reach).
    """
    skipped, facts = _precondition(csr, evaluate_decided)
    if skipped is not None or facts is None:
        return Explanation(skipped or Verdict("skip", "request does not parse"))
    checks = _Rules(csr, facts, node, evidence, policy, now)
    rules = tuple(checks.all())
    name = checks.name
    failed = next((r for r in rules if r.outcome == "fail"), None)
    if failed is not None:
        lenient = failed.rule == "requester" and policy.ignore_non_system_node
        action: Action = "skip" if policy.skip_deny or lenient else "deny"
        return Explanation(Verdict(action, failed.detail, name), rules)
    waiting = next((r for r in rules if r.outcome == "wait"), None)
    if waiting is not None:
        return Explanation(Verdict("wait", waiting.detail, name), rules)
    because = APPROVED_BECAUSE
    if any(r.rule == "ip-evidence" and r.outcome == "pass" for r in rules) and checks.ips:
        because += "; its IP SANs are where its authenticated connections come from"
    return Explanation(Verdict("approve", because, name), rules)
