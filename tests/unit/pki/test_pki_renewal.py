"""The server's certificate policy (2/3 renewal, expiry warnings), kubeadm's residual-time
format, and the reloader's refusal of a half-written pair."""

from __future__ import annotations

import contextlib
import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from kubeboot.api.server.servingcert import ServingCertReloader
from kubeboot.auth.x509 import make_server_ssl_context
from kubeboot.clock import FakeClock
from kubeboot.durations import short_human_duration
from kubeboot.pki.authority import create_self_signed_ca
from kubeboot.pki.renewal import (
    ADMIN_CONF,
    APISERVER,
    CA,
    expiry_warning,
    renew_serving,
    renewal_deadline,
    renewal_due,
)

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (dt.timedelta(seconds=-5), "<invalid>"),
        (dt.timedelta(seconds=-1), "0s"),
        (dt.timedelta(seconds=59), "59s"),
        (dt.timedelta(minutes=59, seconds=59), "59m"),
        (dt.timedelta(hours=23, minutes=59), "23h"),
        (dt.timedelta(days=364, hours=23), "364d"),
        (dt.timedelta(days=365), "1y"),
        (dt.timedelta(days=3649), "9y"),
    ],
)
def test_short_human_duration_as_apimachinery(delta: dt.timedelta, text: str) -> None:
    assert short_human_duration(delta) == text


def test_renewal_at_two_thirds_and_warnings(tmp_path: Path) -> None:
    clock = FakeClock(START)
    ca = create_self_signed_ca(clock=clock)
    cert, _ = ca.issue_serving_cert(
        common_name="kube-apiserver", dns_names=["localhost"], ips=[], clock=clock
    )
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    deadline = renewal_deadline(cert)
    assert deadline == cert.not_valid_before_utc + life * 2 / 3
    assert not renewal_due(cert, deadline - dt.timedelta(seconds=1))
    assert renewal_due(cert, deadline)
    assert expiry_warning(APISERVER, cert, deadline) is None  # renewed long before a warning
    late = cert.not_valid_after_utc - dt.timedelta(days=10)
    warning = expiry_warning(ADMIN_CONF, cert, late)
    assert warning is not None
    assert "renew it with `kubeboot certs renew admin.conf`" in warning
    assert "(10 days left)" in warning
    gone = expiry_warning(ADMIN_CONF, cert, cert.not_valid_after_utc + dt.timedelta(days=1))
    assert gone is not None and "expired at" in gone
    ca_cert = ca.certificate
    assert expiry_warning(CA, ca_cert, ca_cert.not_valid_after_utc - dt.timedelta(days=400)) is None
    ca_warning = expiry_warning(CA, ca_cert, ca_cert.not_valid_after_utc - dt.timedelta(days=300))
    assert ca_warning is not None and "Rotating the CA" in ca_warning


def test_reloader_swaps_only_a_whole_pair(tmp_path: Path) -> None:
    clock = FakeClock(START)
    ca = create_self_signed_ca(clock=clock)
    cert_file, key_file = tmp_path / "apiserver.crt", tmp_path / "apiserver.key"
    first = renew_serving(ca, cert_file, key_file, clock, dns_names=["localhost"], ips=[])
    (tmp_path / "ca.crt").write_bytes(ca.certificate_pem)
    ctx = make_server_ssl_context(cert_file, key_file, tmp_path / "ca.crt")
    reloader = ServingCertReloader(ctx, cert_file, key_file)
    assert not reloader.check()  # nothing changed
    # Half a renewal: a new key next to the old certificate is not loaded.
    old_cert = cert_file.read_bytes()
    second = renew_serving(ca, cert_file, key_file, clock, dns_names=["localhost"], ips=[])
    new_cert = cert_file.read_bytes()
    cert_file.write_bytes(old_cert)
    assert not reloader.check()
    assert _served(ctx) == first.public_bytes(Encoding.DER)
    cert_file.write_bytes(new_cert)  # the rest of the renewal
    assert reloader.check()
    assert _served(ctx) == second.public_bytes(Encoding.DER)


def _served(server_ctx: ssl.SSLContext) -> bytes:
    """The certificate a handshake with ``server_ctx`` presents (in memory, no socket)."""
    client_ctx = ssl.create_default_context()
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    der = client.getpeercert(binary_form=True)
    assert der is not None
    return der
