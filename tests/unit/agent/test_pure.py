"""Pure agent decisions: CSR naming, rotation timing, retry delays, templates, validity.

Unhappy paths first: these functions decide when a node loses its identity, so each
boundary (expiry, not-yet-valid, wrong key, wrong CA, missing SAN) has a row.
"""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kubeboot.agent.naming import node_csr_name
from kubeboot.agent.rotation import RetryState, retry_delay, rotation_deadline
from kubeboot.agent.templates import (
    client_template,
    serving_sans,
    serving_template,
    template_mismatch,
)
from kubeboot.agent.validity import check_pair
from tests.unit.agent.agent_ca import NOW, NodeCA


def test_csr_name_is_deterministic_and_covers_every_input() -> None:
    base = (b"spki", "system:node:n1", ["system:nodes"], ["digital signature", "client auth"])
    name = node_csr_name(*base)
    assert name == node_csr_name(*base)
    assert name.startswith("node-csr-")
    assert len(name) == len("node-csr-") + 43
    assert "=" not in name
    variants = [
        (b"spkj", *base[1:]),
        (base[0], "system:node:n2", *base[2:]),
        (*base[:2], ["system:masters"], base[3]),
        (*base[:3], ["client auth", "digital signature"]),
    ]
    assert len({node_csr_name(*v) for v in variants} | {name}) == 5


def test_csr_name_separates_items() -> None:
    # "|" after each encoded item means moving a character across items changes the name.
    assert node_csr_name(b"ab", "c", [], []) != node_csr_name(b"a", "bc", [], [])


def test_rotation_deadline_spans_70_to_90_percent() -> None:
    nb = NOW
    na = NOW + dt.timedelta(seconds=1000)
    assert rotation_deadline(nb, na, 0.0) == nb + dt.timedelta(seconds=700)
    assert rotation_deadline(nb, na, 0.5) == nb + dt.timedelta(seconds=800)
    assert rotation_deadline(nb, na, 0.999) < nb + dt.timedelta(seconds=900)
    with pytest.raises(ValueError, match="draw"):
        rotation_deadline(nb, na, 1.0)


def test_retry_delays_follow_upstream_then_back_off_long_after_denial() -> None:
    state = RetryState()
    delays = []
    for _ in range(7):
        state = state.failed(denied=False)
        delays.append(retry_delay(state, denied=False, draw=0.0))
    assert delays == [2.0, 4.0, 8.0, 16.0, 32.0, 32.0, 32.0]
    assert retry_delay(RetryState(1, 0), denied=False, draw=0.99) == pytest.approx(2.198)
    denied = [retry_delay(RetryState(n, n), denied=True, draw=0.0) for n in (1, 2, 3, 5, 9)]
    assert denied == [300.0, 600.0, 1200.0, 3600.0, 3600.0]


def test_usages_depend_on_key_type() -> None:
    t = client_template("n1")
    assert t.usages(ec.generate_private_key(ec.SECP256R1())) == [
        "digital signature",
        "client auth",
    ]
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert t.usages(rsa_key) == ["digital signature", "client auth", "key encipherment"]
    s = serving_template("n1", [{"type": "InternalIP", "address": "10.0.0.1"}])
    assert s is not None
    assert s.usages(rsa_key) == ["digital signature", "key encipherment", "server auth"]


def test_serving_sans_from_node_addresses() -> None:
    addresses = [
        {"type": "Hostname", "address": "node-b"},
        {"type": "Hostname", "address": "10.0.0.9"},
        {"type": "InternalIP", "address": "10.0.0.2"},
        {"type": "ExternalIP", "address": "not-an-ip"},
        {"type": "InternalDNS", "address": "node-a.internal"},
        {"type": "InternalIP", "address": "10.0.0.2"},
        {"type": "InternalIP", "address": ""},
    ]
    dns, ips = serving_sans(addresses)
    assert dns == ("node-a.internal", "node-b")
    assert ips == (ipaddress.ip_address("10.0.0.2"), ipaddress.ip_address("10.0.0.9"))


def test_no_serving_request_without_an_ip() -> None:
    assert serving_template("n1", [{"type": "Hostname", "address": "n1"}]) is None


def test_template_mismatch_reports_missing_names_only() -> None:
    ca = NodeCA()
    template = serving_template(
        "n1",
        [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.1"}],
    )
    assert template is not None
    good, _ = ca.issue(dns=("n1", "extra"), ips=("10.0.0.1",))
    assert template_mismatch(x509.load_pem_x509_certificate(good), template) is None
    no_ip, _ = ca.issue(dns=("n1",))
    assert "10.0.0.1" in str(template_mismatch(x509.load_pem_x509_certificate(no_ip), template))
    other_cn, _ = ca.issue(cn="system:node:n2", dns=("n1",), ips=("10.0.0.1",))
    assert "common name" in str(
        template_mismatch(x509.load_pem_x509_certificate(other_cn), template)
    )


def test_check_pair_verdicts() -> None:
    ca, other = NodeCA(), NodeCA("other")
    cert, key = ca.issue()
    assert check_pair(cert, key, ca.pem, NOW).valid
    assert check_pair(cert, key, None, NOW).valid
    _, other_key = ca.issue()
    expired, expired_key = ca.issue(not_after=NOW - dt.timedelta(seconds=1))
    future, future_key = ca.issue(not_before=NOW + dt.timedelta(minutes=5))
    foreign, foreign_key = other.issue()
    cases = [
        (b"", key, "no certificate"),
        (cert, b"garbage", "client key unusable"),
        (expired, expired_key, "expired"),
        (future, future_key, "not valid before"),
        (cert, other_key, "does not match"),
        (foreign, foreign_key, "not issued by the cluster CA"),
    ]
    for cert_pem, key_pem, why in cases:
        verdict = check_pair(cert_pem, key_pem, ca.pem, NOW)
        assert not verdict.valid
        assert why in str(verdict.reason)
    # Another node's pair (the node name changed) is not ours.
    renamed = check_pair(cert, key, ca.pem, NOW, common_name="system:node:n2")
    assert not renamed.valid
    assert "is for system:node:n1, not system:node:n2" in str(renamed.reason)
    assert check_pair(cert, key, ca.pem, NOW, common_name="system:node:n1").valid
    # Expiry is exact: NotAfter == now is already expired.
    edge, edge_key = ca.issue(not_after=NOW)
    assert not check_pair(edge, edge_key, None, NOW).valid
