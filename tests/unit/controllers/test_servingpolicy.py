"""The serving policy's rules one by one: the evidence rule, name patterns, IP ranges, the
policy file, and the node-sources record they read. Unhappy paths first."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from kubeboot.controllers.servingpolicy import (
    Evidence,
    IssuedFrom,
    PolicyError,
    ServingPolicy,
    explain_serving_csr,
    load_policy,
)
from kubeboot.resources.nodesources import (
    MAX_ADDRESSES_PER_NODE,
    SourceSighting,
    canonical_address,
    decode_sightings,
    encode_sightings,
    merge_sightings,
    node_sources_from_configmap,
)
from tests.unit.cli.test_servingapprover import NODE, csr

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
LEDGER = IssuedFrom("10.0.0.5", "1f", "kubernetes.io/kube-apiserver-client-kubelet", "t")
EVIDENCE = ServingPolicy(ip_evidence=True, evidence_grace_seconds=30)


def seen(address: str, minutes_ago: int = 1) -> SourceSighting:
    when = NOW - dt.timedelta(minutes=minutes_ago)
    return SourceSighting(address, "client-certificate", when, when)


def created(obj: dict[str, Any], seconds_ago: int) -> dict[str, Any]:
    stamp = NOW - dt.timedelta(seconds=seconds_ago)
    obj["metadata"]["creationTimestamp"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    return obj


def rule(explanation: Any, name: str) -> tuple[str, str]:
    (found,) = [r for r in explanation.rules if r.rule == name]
    return found.outcome, found.detail


@pytest.mark.parametrize(
    ("evidence", "age", "action", "detail"),
    [
        (Evidence(recorded=False), 300, "deny", "the server records no node sources"),
        (Evidence(), 300, "deny", "no authenticated connection of this node seen yet"),
        (Evidence((seen("10.0.0.9"),)), 300, "deny", "seen from 10.0.0.9 (client-certificate"),
        (Evidence((seen("10.0.0.9"),)), 5, "wait", "IP SAN 10.0.0.5 was never the source"),
        (Evidence(recorded=False), 5, "deny", "records no node sources"),  # no point waiting
        (Evidence((seen("10.0.0.9"), seen("10.0.0.5"))), 300, "approve", "seen from 10.0.0.9"),
        (Evidence(ledger=True), 300, "deny", "ledger: no certificate of this node recorded"),
        (Evidence(issued=(LEDGER,), ledger=True), 300, "approve", "ledger: 10.0.0.5 (CSR of"),
    ],
)
def test_ip_evidence(evidence: Evidence, age: int, action: str, detail: str) -> None:
    result = explain_serving_csr(created(csr(), age), NODE, EVIDENCE, evidence, NOW)
    assert result.verdict.action == action
    assert detail in rule(result, "ip-evidence")[1]


def test_evidence_rule_is_off_unless_asked_and_moot_without_ip_sans() -> None:
    off = explain_serving_csr(csr(), NODE, ServingPolicy(), Evidence(recorded=False), NOW)
    assert rule(off, "ip-evidence")[0] == "n/a"
    assert off.verdict.action == "approve"
    dns_only = explain_serving_csr(csr(ips=()), NODE, EVIDENCE, Evidence(recorded=False), NOW)
    assert rule(dns_only, "ip-evidence") == ("pass", "no IP SANs to prove")


def test_every_rule_runs_and_the_first_failure_decides() -> None:
    result = explain_serving_csr(
        csr(cn="system:node:w2", ips=("10.0.0.6",)), NODE, EVIDENCE, Evidence(), NOW
    )
    outcomes = {r.rule: r.outcome for r in result.rules}
    assert outcomes["common-name"] == outcomes["node-addresses"] == "fail"
    assert outcomes["ip-evidence"] == "fail"
    assert result.verdict.reason.startswith("CN 'system:node:w2' does not match")


@pytest.mark.parametrize(
    ("policy", "obj", "rule_name", "outcome"),
    [
        (ServingPolicy(dns_name_regex=r"w\d+\.example"), csr(), "dns-regex", "fail"),
        (ServingPolicy(dns_name_regex=r"w\d+"), csr(), "dns-regex", "pass"),
        (ServingPolicy(allowed_ip_ranges=("192.168.0.0/16",)), csr(), "ip-ranges", "fail"),
        (ServingPolicy(allowed_ip_ranges=("10.0.0.0/24",)), csr(), "ip-ranges", "pass"),
        (ServingPolicy(), csr(), "ip-ranges", "n/a"),
    ],
)
def test_name_pattern_and_ip_ranges(
    policy: ServingPolicy, obj: dict[str, Any], rule_name: str, outcome: str
) -> None:
    result = explain_serving_csr(obj, NODE, policy)
    assert rule(result, rule_name)[0] == outcome
    assert (result.verdict.action == "deny") == (outcome == "fail")


def test_decided_csrs_are_skipped_unless_explained() -> None:
    done = csr(conditions=("Approved",))
    assert explain_serving_csr(done, NODE, ServingPolicy()).verdict.action == "skip"
    assert explain_serving_csr(done, NODE, ServingPolicy(), evaluate_decided=True).rules


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{bogus: 1}", "unknown key 'bogus'"),
        ("{allowedDNSNames: yes}", "allowedDNSNames: True is not a int"),
        ("{ipEvidence: 1}", "ipEvidence: 1 is not a bool"),
        ("{allowedIPRanges: [10.0.0.0/33]}", "allowedIPRanges"),
        ("{dnsNameRegex: '('}", "dnsNameRegex '('"),
        ("{a: [", "not YAML"),
    ],
)
def test_bad_policies_name_the_key(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message.replace("(", r"\(")):
        load_policy(text)


def test_policy_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("ipEvidence: true\nallowedIPRanges: [10.0.0.0/8]\nallowedDNSNames: 2\n")
    assert load_policy(str(path)) == ServingPolicy(
        allowed_dns_names=2, allowed_ip_ranges=("10.0.0.0/8",), ip_evidence=True
    )


def test_sightings_merge_bounded_newest_first() -> None:
    day = dt.timedelta(days=1)
    old = SourceSighting("10.0.0.1", "token", NOW - 2 * day, NOW - day)
    again = SourceSighting("10.0.0.1", "token", NOW, NOW)
    (merged,) = merge_sightings([old], [again])
    assert (merged.first_seen, merged.last_seen) == (old.first_seen, NOW)
    many = [seen(f"10.0.1.{i}", minutes_ago=i) for i in range(10)]
    kept = merge_sightings([], many)
    assert [s.address for s in kept] == [f"10.0.1.{i}" for i in range(MAX_ADDRESSES_PER_NODE)]
    assert decode_sightings(encode_sightings(kept)) == kept


def test_malformed_record_entries_count_as_none() -> None:
    good = encode_sightings([seen("10.0.0.5")])
    record = {"data": {"w1": good, "w2": "not json", "w3": '[{"address": "nope"}]'}}
    assert set(node_sources_from_configmap(record)) == {"w1"}
    assert canonical_address("::ffff:10.0.0.5") == "10.0.0.5"
    assert canonical_address("fe80::1%eth0") == "fe80::1"
    assert canonical_address("unix") is None
