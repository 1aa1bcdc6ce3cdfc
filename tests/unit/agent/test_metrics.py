"""The ``/metrics`` text: upstream's names exactly (counters without ``_total``), +Inf TTL."""

from __future__ import annotations

from kubeboot.agent.constants import CLIENT_PREFIX, SERVER_PREFIX
from kubeboot.agent.metrics import exposition


def _samples(text: bytes) -> dict[str, str]:
    lines = text.decode().splitlines()
    return dict(line.split(" ", 1) for line in lines if not line.startswith("#"))


def test_no_certificate_is_plus_inf_and_counters_keep_upstream_names() -> None:
    text = exposition({CLIENT_PREFIX: 3600.5, SERVER_PREFIX: None}, {SERVER_PREFIX: 2})
    assert _samples(text) == {
        "kubelet_certificate_manager_client_ttl_seconds": "3600.5",
        "kubelet_certificate_manager_server_ttl_seconds": "+Inf",
        "kubelet_certificate_manager_client_expiration_renew_errors": "0.0",
        "kubelet_server_expiration_renew_errors": "2.0",
    }
    assert b"# TYPE kubelet_server_expiration_renew_errors counter\n" in text
    assert b"# TYPE kubelet_certificate_manager_client_ttl_seconds gauge\n" in text
    assert text.endswith(b"\n")


def test_expired_certificate_has_a_negative_ttl() -> None:
    text = exposition({CLIENT_PREFIX: -12.0}, {})
    assert _samples(text)["kubelet_certificate_manager_client_ttl_seconds"] == "-12.0"
