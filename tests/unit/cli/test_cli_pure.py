"""Pure parts of the admin CLI: layouts, durations, token reading, CSR decisions."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import click
import pytest

from kubeboot.cli.bootstrapconfig import default_output_path, token_kubeconfig
from kubeboot.cli.csr import (
    APPROVE,
    DENY,
    AlreadyDecided,
    approval_update,
    condition_summary,
    select_csrs,
)
from kubeboot.cli.output import tabulate
from kubeboot.cli.token import (
    TokenInfo,
    token_from_secret,
    token_id_of,
    token_table,
    validated_groups,
)
from kubeboot.durations import human_duration, short_human_duration
from kubeboot.resources import bootstrap_token as bt

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def _secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


@pytest.mark.parametrize(
    ("seconds", "short", "human"),
    [
        (-5, "<invalid>", "<invalid>"),
        (-1, "0s", "0s"),
        (59, "59s", "59s"),
        (119, "1m", "119s"),
        (150, "2m", "2m30s"),
        (3599, "59m", "59m"),
        (3 * 3600 + 60, "3h", "3h1m"),
        (30 * 3600, "1d", "30h"),
        (3 * 86400 + 3600, "3d", "3d1h"),
        (400 * 86400, "1y", "400d"),
    ],
)
def test_durations_match_apimachinery(seconds: int, short: str, human: str) -> None:
    delta = dt.timedelta(seconds=seconds)
    assert short_human_duration(delta) == short
    assert human_duration(delta) == human


def test_tabulate_is_tabwriter_left_aligned_with_an_unpadded_last_column() -> None:
    text = tabulate(["A", "BB", "C"], [["xxxxx", "y", "z"]], minwidth=4, padding=3)
    assert text == "A       BB   C\nxxxxx   y    z\n"


def test_token_from_secret_refuses_what_kubeadm_refuses() -> None:
    with pytest.raises(ValueError, match="has no token ID data"):
        token_from_secret(_secret("bootstrap-token-abcdef", {"token-secret": "x" * 16}))
    with pytest.raises(ValueError, match="is not of the form"):
        token_from_secret(_secret("other", {"token-id": "abcdef", "token-secret": "0" * 16}))
    with pytest.raises(ValueError, match="has no token secret data"):
        token_from_secret(_secret("bootstrap-token-abcdef", {"token-id": "abcdef"}))
    with pytest.raises(ValueError, match="can't parse expiration"):
        token_from_secret(
            _secret(
                "bootstrap-token-abcdef",
                {"token-id": "abcdef", "token-secret": "0" * 16, "expiration": "tomorrow"},
            )
        )


def test_token_from_secret_sorts_usages_and_keeps_groups() -> None:
    info = token_from_secret(
        _secret(
            "bootstrap-token-abcdef",
            {
                "token-id": "abcdef",
                "token-secret": "0123456789abcdef",
                "usage-bootstrap-signing": "true",
                "usage-bootstrap-authentication": "True",  # not exactly "true": off
                "auth-extra-groups": "system:bootstrappers:a,system:bootstrappers:b",
            },
        )
    )
    assert info.usages == ("signing",)
    assert info.groups == ("system:bootstrappers:a", "system:bootstrappers:b")
    assert info.expires is None


def test_token_table_marks_expired_and_never_expiring_tokens() -> None:
    expired = TokenInfo("aaaaaa.0123456789abcdef", "", NOW - dt.timedelta(hours=1), (), ())
    forever = TokenInfo("bbbbbb.0123456789abcdef", "d", None, ("signing",), ())
    lines = token_table([expired, forever], NOW).splitlines()
    assert lines[1].split() == [
        "aaaaaa.0123456789abcdef", "<invalid>", "2026-01-01T11:00:00Z", "<none>", "<none>",
        "<none>",
    ]  # fmt: skip
    assert lines[2].split() == [
        "bbbbbb.0123456789abcdef", "<forever>", "<never>", "signing", "d", "<none>",
    ]  # fmt: skip


def test_token_id_of_accepts_ids_and_tokens_only() -> None:
    assert token_id_of("abcdef") == "abcdef"
    assert token_id_of("abcdef.0123456789abcdef") == "abcdef"
    for bad in ("ABCDEF", "abcde", "abcdef.short", ""):
        with pytest.raises(ValueError, match="didn't match pattern"):
            token_id_of(bad)


def test_groups_must_be_bootstrappers_and_need_authentication() -> None:
    with pytest.raises(click.BadParameter, match="is invalid"):
        validated_groups("system:bootstrappers:ok,system:masters", ["authentication"])
    with pytest.raises(click.BadParameter, match="--usages includes"):
        validated_groups("system:bootstrappers:ok", ["signing"])
    assert validated_groups("", ["signing"]) == []


def _csr(name: str, *types: str, signer: str = "kubernetes.io/kubelet-serving") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "resourceVersion": "7"},
        "spec": {"signerName": signer, "request": ""},
        "status": {"conditions": [{"type": t, "status": "True"} for t in types]},
    }


def test_approving_a_denied_csr_is_refused_and_denying_an_approved_one_too() -> None:
    with pytest.raises(AlreadyDecided, match="already Denied and cannot be approved"):
        approval_update(_csr("a", "Denied"), APPROVE, NOW)
    with pytest.raises(AlreadyDecided, match="already Approved and cannot be denied"):
        approval_update(_csr("a", "Approved"), DENY, NOW)
    assert approval_update(_csr("a", "Approved"), APPROVE, NOW) is None


def test_approval_update_appends_kubectls_condition_shape_without_mutating() -> None:
    original = _csr("a")
    updated = approval_update(original, APPROVE, NOW)
    assert updated is not None
    assert original["status"]["conditions"] == []
    assert updated["metadata"]["resourceVersion"] == "7"  # compare-and-swap on write
    assert updated["status"]["conditions"] == [
        {
            "type": "Approved",
            "status": "True",
            "reason": "KubebootApprove",
            "message": "This CSR was approved by kubeboot csr approve.",
            "lastUpdateTime": "2026-01-01T12:00:00Z",
        }
    ]


def test_condition_summary_matches_kubectl() -> None:
    assert condition_summary(_csr("a")) == "Pending"
    assert condition_summary(_csr("a", "Approved", "Denied")) == "Denied"
    issued = _csr("a", "Approved")
    issued["status"]["certificate"] = "Y2VydA=="
    assert condition_summary(issued) == "Approved,Issued"
    assert condition_summary(_csr("a", "Approved", "Failed")) == "Approved,Failed"


def test_selection_without_names_is_pending_only_and_filters_by_signer() -> None:
    items = [_csr("b"), _csr("a", "Approved"), _csr("c", signer="other")]
    chosen = select_csrs(items, [], node=None, signer=None, pending_only=True)
    assert [c["metadata"]["name"] for c in chosen] == ["b", "c"]
    chosen = select_csrs(
        items, [], node=None, signer="kubernetes.io/kubelet-serving", pending_only=False
    )
    assert [c["metadata"]["name"] for c in chosen] == ["a", "b"]
    assert select_csrs(items, ["zz"], node=None, signer=None, pending_only=False) == []


def test_bootstrap_kubeconfig_layout_and_default_path() -> None:
    conf = token_kubeconfig(
        "https://10.0.0.1:6443",
        b"-----BEGIN CERTIFICATE-----\n",
        "abcdef.0123456789abcdef",
        {"tls-server-name": "kubernetes", "insecure-skip-tls-verify": True},
    )
    assert conf["current-context"] == "tls-bootstrap-token-user@kubernetes"
    assert conf["contexts"][0]["context"]["namespace"] == "kube-system"
    cluster = conf["clusters"][0]["cluster"]
    assert cluster["tls-server-name"] == "kubernetes"
    assert "insecure-skip-tls-verify" not in cluster  # the CA is embedded instead
    assert conf["users"] == [
        {"name": "tls-bootstrap-token-user", "user": {"token": "abcdef.0123456789abcdef"}}
    ]
    assert str(default_output_path({"HOME": "/h"})) == "/h/.kubeboot/config/bootstrap.conf"
    env = {"HOME": "/h", "CONFIG_DIR": "/c", "FILE_NAME": "n.conf"}
    assert str(default_output_path(env)) == "/c/n.conf"
    assert bt.KUBEADM_DEFAULT_NODE_TOKEN_GROUP.startswith("system:bootstrappers:")
