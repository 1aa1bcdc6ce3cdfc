"""Node-bound, limited-use tokens: the pure decisions (kubeboot.resources.token_binding)."""

from __future__ import annotations

import datetime as dt

import pytest

from kubeboot.clock import format_time
from kubeboot.resources import token_binding as tb
from kubeboot.resources.ledger import parse_serial, serial_name

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
KUBELET = "kubernetes.io/kube-apiserver-client-kubelet"


@pytest.mark.parametrize(
    ("data", "signer", "cn", "fragment"),
    [
        # unhappy paths first
        ({tb.NODE_NAME_KEY: "w1"}, KUBELET, "system:node:w2", "bound to node 'w1'"),
        ({tb.NODE_NAME_KEY: "w1"}, "kubernetes.io/kubelet-serving", "system:node:w1", "signer"),
        ({tb.MAX_USES_KEY: "1", tb.USES_KEY: "1"}, KUBELET, "system:node:w1", "is spent"),
        ({tb.MAX_USES_KEY: "2", tb.USES_KEY: "5"}, KUBELET, "system:node:w1", "is spent"),
        ({tb.MAX_USES_KEY: "-1"}, KUBELET, "system:node:w1", "unreadable"),
        ({tb.MAX_USES_KEY: "0"}, KUBELET, "system:node:w1", "unreadable"),
        ({tb.MAX_USES_KEY: "many"}, KUBELET, "system:node:w1", "unreadable"),
        ({tb.NODE_NAME_KEY: "w1", tb.MAX_USES_KEY: "1"}, KUBELET, "system:node:w1", None),
        ({tb.MAX_USES_KEY: "3", tb.USES_KEY: "2"}, "example.com/any", "anything", None),
        ({}, "example.com/any", "anything", None),
    ],
)
def test_csr_refusal(data: dict[str, str], signer: str, cn: str, fragment: str | None) -> None:
    refusal = tb.csr_refusal("abcdef", tb.binding_of(data), signer, cn)
    if fragment is None:
        assert refusal is None
    else:
        assert refusal is not None and fragment in refusal
        assert "abcdef" in refusal  # names the token, never its secret


def test_spend_counts_and_stamps() -> None:
    data = tb.binding_data("w1", 2)
    assert data == {tb.NODE_NAME_KEY: "w1", tb.MAX_USES_KEY: "2", tb.USES_KEY: "0"}
    once = tb.spend(data, NOW)
    assert once[tb.USES_KEY] == "1" and once[tb.LAST_USED_KEY] == format_time(NOW)
    assert not tb.binding_of(once).spent
    twice = tb.binding_of(tb.spend(once, NOW))
    assert twice.spent and twice.cleanup_at() == NOW + tb.SPENT_GRACE


def test_unbound_token_is_not_limited() -> None:
    assert tb.binding_data(None, None) == {}
    assert not tb.binding_of({"token-id": "abcdef"}).limited


@pytest.mark.parametrize(
    ("text", "serial"),
    [("5F3A", 0x5F3A), ("serial=00AB", 0xAB), ("0x1f", 0x1F), ("ab:cd:ef", 0xABCDEF)],
)
def test_parse_serial(text: str, serial: int) -> None:
    assert parse_serial(text) == serial


@pytest.mark.parametrize("text", ["", "xyz", "1" * 41])
def test_parse_serial_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a serial number"):
        parse_serial(text)


def test_serial_name_is_lowercase_hex_without_leading_zeros() -> None:
    assert serial_name(0x00AB) == "ab"
