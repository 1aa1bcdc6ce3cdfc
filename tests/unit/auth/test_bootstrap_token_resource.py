"""The bootstrap-token accessors: the rules other components rely on, unhappy paths first."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from kubeboot.resources import bootstrap_token as bt

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abcdef",
        "abcdef.",
        "ABCDEF.0123456789abcdef",  # upper case
        "abcde.0123456789abcdef",  # short id
        "abcdef.0123456789abcde",  # short secret
        "abcdef.0123456789abcdef0",  # long secret
        "abcdef:0123456789abcdef",  # wrong separator
        "abcdef.0123456789abcdef\n",  # Go's \z: no trailing newline
        " abcdef.0123456789abcdef",
    ],
)
def test_parse_token_rejects_malformed(token: str) -> None:
    assert bt.parse_token(token) is None


def test_parse_token_splits_id_and_secret() -> None:
    assert bt.parse_token("abcdef.0123456789abcdef") == ("abcdef", "0123456789abcdef")


@pytest.mark.parametrize(
    ("data", "expired"),
    [
        ({"expiration": "tomorrow"}, True),  # unparseable counts as expired
        ({"expiration": "2026-01-01T00:00:00"}, True),  # no offset: unparseable
        ({"expiration": "2026-01-01T00:00:00Z"}, True),  # remaining == 0 is expired
        ({"expiration": "2025-12-31T23:59:59Z"}, True),
        ({"expiration": "2026-01-01T00:00:01Z"}, False),
        ({"expiration": "2026-01-01T01:00:00+02:00"}, True),  # offsets are honoured
        ({}, False),  # absent: never expires
    ],
)
def test_is_expired(data: dict[str, str], expired: bool) -> None:
    assert bt.is_expired(data, NOW) is expired


@pytest.mark.parametrize(
    "extra",
    [
        "system:bootstrappers:",  # must end in [a-z0-9]
        "system:bootstrappers:a, system:bootstrappers:b",  # no trimming after the comma
        "system:nodes",
        "system:bootstrappers:UPPER",
        "system:bootstrappers:a,",  # empty element
        "system:bootstrappers:" + "a" * 257,
    ],
)
def test_get_groups_rejects_invalid_extra_group(extra: str) -> None:
    with pytest.raises(bt.InvalidExtraGroup):
        bt.get_groups({"auth-extra-groups": extra})


def test_get_groups_sorted_unique_with_default() -> None:
    data = {
        "auth-extra-groups": "system:bootstrappers:z,"
        "system:bootstrappers:kubeadm:default-node-token,system:bootstrappers:z"
    }
    assert bt.get_groups(data) == [
        "system:bootstrappers",
        "system:bootstrappers:kubeadm:default-node-token",
        "system:bootstrappers:z",
    ]
    assert bt.get_groups({}) == ["system:bootstrappers"]


@pytest.mark.parametrize(
    ("value", "on"), [("True", False), ("1", False), ("true ", False), ("true", True)]
)
def test_has_usage_exactly_true(value: str, on: bool) -> None:
    assert bt.has_usage({"usage-bootstrap-authentication": value}, "authentication") is on
    assert bt.has_usage({}, "authentication") is False


def test_decode_data_drops_undecodable_values() -> None:
    secret = {
        "data": {
            "token-id": base64.b64encode(b"abcdef").decode(),
            "token-secret": "not base64!",
            "description": base64.b64encode(b"\xff\xfe").decode(),
        }
    }
    assert bt.decode_data(secret) == {"token-id": "abcdef"}
    assert bt.decode_data({}) == {}
    assert bt.decode_data({"data": None}) == {}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"usages": ["signing", "bogus"]}, "unknown usage"),
        ({"extra_groups": ["system:masters"]}, "does not match"),
    ],
)
def test_build_secret_refuses_tokens_the_authenticator_would_reject(
    kwargs: dict[str, list[str]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        bt.build_secret("abcdef.0123456789abcdef", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must match"):
        bt.build_secret("abcdef")


def test_build_secret_round_trips_through_accessors() -> None:
    secret = bt.build_secret(
        "abcdef.0123456789abcdef",
        usages=["authentication"],
        extra_groups=["system:bootstrappers:kubeadm:default-node-token"],
        expiration=NOW + dt.timedelta(hours=24),
        description="joins",
    )
    assert secret["metadata"] == {"name": "bootstrap-token-abcdef", "namespace": "kube-system"}
    assert secret["type"] == "bootstrap.kubernetes.io/token"
    data = bt.decode_data(secret)
    assert data["expiration"] == "2026-01-02T00:00:00Z"
    assert bt.has_usage(data, "authentication")
    assert not bt.has_usage(data, "signing")
    assert not bt.is_expired(data, NOW)
    assert bt.get_groups(data)[-1] == "system:bootstrappers:kubeadm:default-node-token"
    assert bt.token_id_from_secret_name(secret["metadata"]["name"]) == "abcdef"
    assert bt.token_id_from_secret_name("bootstrap-token-abc") is None


def test_generate_token_is_well_formed_and_fresh() -> None:
    tokens = {bt.generate_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(bt.parse_token(t) is not None for t in tokens)
