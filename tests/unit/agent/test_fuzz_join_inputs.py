"""Property tests of what a node and the token authenticator parse from others (issue 14).

Bootstrap tokens (and the Secrets behind them), detached JWS signatures, cluster-info
ConfigMaps and their kubeconfigs, and CSRs: each parser answers with its own refusal
(``DiscoveryError``, ``JwsError``, ``AuthenticationFailed``, ``CsrError``) or a value,
never another exception. ``make fuzz`` runs them long.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kubeboot.agent.discovery import DiscoveryError, cluster_from_cluster_info, cluster_info_data
from kubeboot.auth.bootstrap_token import BootstrapTokenAuthenticator
from kubeboot.auth.interface import AuthenticationFailed
from kubeboot.clock import FakeClock
from kubeboot.pki.csr import CsrError, parse_csr_pem, validate_csr_spec
from kubeboot.pki.jws import JwsError, detached_jws, verify_detached_jws
from kubeboot.resources import bootstrap_token as bt
from tests.fuzz_strategies import budget, json_values, odd_strings, yaml_texts

FUZZ = budget()
NOW = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


@FUZZ
@given(st.one_of(odd_strings, st.from_regex(r"[a-z0-9]{6}\.[a-z0-9]{16}", fullmatch=True)))
def test_tokens_parse_or_are_none(token: str) -> None:
    parsed = bt.parse_token(token)
    assert parsed is None or parsed == tuple(token.split("."))


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            ["token-id", "token-secret", "expiration", "usage-bootstrap-authentication",
             "auth-extra-groups", "description"]
        ),
        odd_strings,
    ),
    st.sampled_from(["abcdef.0123456789abcdef", "abcdef.xxxxxxxxxxxxxxxx"]),
)  # fmt: skip
def test_bootstrap_token_secrets_authenticate_or_refuse(data: dict[str, str], token: str) -> None:
    secret = {
        "metadata": {"name": "bootstrap-token-abcdef", "namespace": "kube-system"},
        "type": "bootstrap.kubernetes.io/token",
        "data": {
            k: base64.b64encode(v.encode("utf-8", "replace")).decode() for k, v in data.items()
        },
    }

    def lookup(token_id: str) -> dict[str, Any] | None:
        return secret if token_id == "abcdef" else None

    with contextlib.suppress(AuthenticationFailed):
        BootstrapTokenAuthenticator(lookup, FakeClock(NOW)).authenticate_token(token)


@FUZZ
@given(
    st.one_of(
        odd_strings, st.text(alphabet="eyJhbGciOiJIUzI1NiIsImtpZCI6ImFiY2RlZiJ9._-", max_size=80)
    )
)
def test_jws_verification_raises_only_jws_errors(jws: str) -> None:
    try:
        verify_detached_jws(jws, "content", "abcdef", "0123456789abcdef")
    except JwsError:
        return
    assert jws == detached_jws("content", "abcdef", "0123456789abcdef")


@FUZZ
@given(json_values)
def test_cluster_info_configmaps_refuse_or_yield_strings(cm: Any) -> None:
    try:
        kubeconfig, jws = cluster_info_data(cm, "abcdef")
    except DiscoveryError:
        return
    assert isinstance(kubeconfig, str) and isinstance(jws, str | None)


@FUZZ
@given(st.one_of(yaml_texts, json_values.map(str)))
def test_cluster_info_kubeconfigs_refuse_or_yield_embedded_ca(text: str) -> None:
    try:
        server, ca = cluster_from_cluster_info(text)
    except DiscoveryError:
        return
    assert server is None or server.startswith("https://")
    assert isinstance(ca, bytes) and ca


def _pem(body: bytes) -> bytes:
    begin, end = b"-----BEGIN CERTIFICATE REQUEST-----\n", b"-----END CERTIFICATE REQUEST-----\n"
    return begin + base64.encodebytes(body) + end


@FUZZ
@given(st.one_of(st.binary(max_size=400), st.binary(max_size=300).map(_pem)))
def test_csrs_parse_or_raise_csr_errors(raw: bytes) -> None:
    with contextlib.suppress(CsrError):
        parse_csr_pem(raw)
    spec = {
        "request": base64.b64encode(raw).decode(),
        "usages": ["client auth"],
        "signerName": "x/y",
    }
    assert isinstance(validate_csr_spec(spec), list)
