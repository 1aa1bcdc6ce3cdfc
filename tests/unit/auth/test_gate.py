"""The authentication step: rate budgets on the injected clock, anonymous CIDRs, messages."""

from __future__ import annotations

import pytest

from kubeboot.auth.chain import AuthenticatorChain
from kubeboot.auth.gate import AuthenticationGate
from kubeboot.auth.interface import Credentials
from kubeboot.auth.ratelimit import BucketPolicy, RateLimits
from kubeboot.auth.sources import RFC1918_AND_LOOPBACK, SourceNetworks
from kubeboot.auth.static_token import StaticTokenAuthenticator, parse_token_file
from kubeboot.auth.users import ANONYMOUS_USER
from kubeboot.clock import FakeClock
from kubeboot.resources.status import TooManyRequests, Unauthorized
from tests.unit.auth.auth_pki import NOW

TOKEN = "s3cret-static-token"


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "bogus", "10.0.0.0/8,", "fd00::/129"])
def test_bad_cidrs_name_the_entry(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a CIDR"):
        SourceNetworks(bad.split(","))


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("10.1.2.3", True),
        ("172.31.255.255", True),
        ("172.32.0.1", False),
        ("192.168.1.1", True),
        ("127.0.0.1", True),
        ("::1", True),
        ("::ffff:10.0.0.9", True),  # IPv4-mapped on a dual-stack socket
        ("::ffff:8.8.8.8", False),
        ("8.8.8.8", False),
        ("2001:db8::1", False),
        ("fe80::1%eth0", False),
        ("", False),  # unknown peer: fail closed
        ("not-an-ip", False),
    ],
)
def test_rfc1918_example(address: str, allowed: bool) -> None:
    assert SourceNetworks(RFC1918_AND_LOOPBACK).allows(address) is allowed


def test_no_cidrs_allows_everyone() -> None:
    nets = SourceNetworks()
    assert nets.unrestricted and nets.allows("8.8.8.8") and nets.allows("")
    assert str(nets) == "any address"


def _gate(clock: FakeClock, cidrs: tuple[str, ...] = ()) -> AuthenticationGate:
    chain = AuthenticatorChain(
        tokens=[StaticTokenAuthenticator(parse_token_file(f"{TOKEN},ops,1", "f"))]
    )
    limits = RateLimits.build(
        clock, anonymous=BucketPolicy(1.0, 2), failed_auth=BucketPolicy(0.5, 1)
    )
    return AuthenticationGate(chain, limits, SourceNetworks(cidrs))


def creds(addr: str, bearer: str | None = None) -> Credentials:
    return Credentials(bearer=bearer, client_cert_der=None, remote_addr=addr)


async def test_anonymous_outside_the_cidrs_is_told_why() -> None:
    gate = _gate(FakeClock(NOW), ("10.0.0.0/8",))
    assert (await gate.authenticate(creds("10.9.9.9"))).name == ANONYMOUS_USER
    with pytest.raises(Unauthorized) as err:
        await gate.authenticate(creds("203.0.113.5"))
    assert err.value.message == (
        "anonymous requests are not accepted from 203.0.113.5 "
        "(--anonymous-allowed-cidrs=10.0.0.0/8); present a bearer token or a client certificate"
    )
    assert (await gate.authenticate(creds("203.0.113.5", TOKEN))).name == "ops"


async def test_budgets_use_the_injected_clock() -> None:
    clock = FakeClock(NOW)
    gate = _gate(clock)
    for _ in range(2):
        await gate.authenticate(creds("10.0.0.1"))
    with pytest.raises(TooManyRequests, match="too many anonymous requests") as err:
        await gate.authenticate(creds("10.0.0.1"))
    assert err.value.retry_after == 1
    await gate.authenticate(creds("10.0.0.2"))  # another source is unaffected
    clock.advance(1.0)  # no real time passes: only the fake clock refills the bucket
    await gate.authenticate(creds("10.0.0.1"))


async def test_a_throttled_guesser_is_not_even_checked() -> None:
    clock = FakeClock(NOW)
    gate = _gate(clock)
    with pytest.raises(Unauthorized) as err:
        await gate.authenticate(creds("10.0.0.1", "wrong-token"))
    assert "wrong-token" not in err.value.message
    # over budget: even the right token waits, and the answer says for how long
    with pytest.raises(TooManyRequests, match="failed authentication attempts") as throttled:
        await gate.authenticate(creds("10.0.0.1", TOKEN))
    assert throttled.value.retry_after == 2
    assert TOKEN not in throttled.value.message
    clock.advance(2.0)
    assert (await gate.authenticate(creds("10.0.0.1", TOKEN))).name == "ops"
