"""The authenticator chain's composition rules (server-facts §3.4, §3.5), unhappy paths first."""

from __future__ import annotations

import pytest

from kubeboot.auth.bootstrap_token import BootstrapTokenAuthenticator
from kubeboot.auth.chain import AuthenticatorChain
from kubeboot.auth.interface import AuthenticationFailed, CredentialRevoked, Credentials, UserInfo
from kubeboot.auth.static_token import StaticTokenAuthenticator, parse_token_file
from kubeboot.auth.users import ANONYMOUS, add_authenticated_group, node_name_of
from kubeboot.auth.x509 import ClientCertAuthenticator
from kubeboot.clock import FakeClock
from kubeboot.resources import bootstrap_token as bt
from tests.unit.auth.auth_pki import CA, HOUR, NOW, der

BOOTSTRAP = "abcdef.0123456789abcdef"
STATIC = "static-admin-token"


@pytest.fixture
def chain(cluster_ca: CA, clock: FakeClock) -> AuthenticatorChain:
    secrets = {"abcdef": bt.build_secret(BOOTSTRAP, expiration=NOW + HOUR)}
    return AuthenticatorChain(
        client_certs=ClientCertAuthenticator([cluster_ca.cert], clock),
        tokens=[
            StaticTokenAuthenticator(parse_token_file(f'{STATIC},admin,1,"system:masters"', "f")),
            BootstrapTokenAuthenticator(secrets.get, clock),
        ],
    )


def creds(bearer: str | None = None, cert: bytes | None = None) -> Credentials:
    return Credentials(bearer=bearer, client_cert_der=cert, remote_addr="10.0.0.1")


async def test_failures_are_401_never_anonymous(
    chain: AuthenticatorChain, cluster_ca: CA, rogue_ca: CA
) -> None:
    expired = der(cluster_ca.issue("u", not_after=NOW - HOUR)[0])
    foreign = der(rogue_ca.issue("u")[0])
    cases = [
        (creds("not-a-known-token"), "invalid bearer token"),
        (creds("abcdef.ffffffffffffffff"), "secret does not match"),
        (creds("zzzzzz.0123456789abcdef"), "secret does not match"),
        (creds(cert=expired), "has expired"),
        (creds(cert=foreign), "unknown authority"),
        (creds("nope", cert=foreign), "unknown authority; invalid bearer token"),
    ]
    for c, message in cases:
        with pytest.raises(AuthenticationFailed, match=message) as info:
            await chain.authenticate(c)
        assert c.bearer is None or c.bearer not in str(info.value)


async def test_anonymous_only_without_credentials(chain: AuthenticatorChain) -> None:
    assert await chain.authenticate(creds()) == ANONYMOUS
    chain.anonymous = False
    with pytest.raises(AuthenticationFailed, match="anonymous access is off"):
        await chain.authenticate(creds())


async def test_successes(chain: AuthenticatorChain, cluster_ca: CA, rogue_ca: CA) -> None:
    node = der(cluster_ca.issue("system:node:w1", ("system:nodes",))[0])
    foreign = der(rogue_ca.issue("u")[0])
    no_cn = der(cluster_ca.issue("", ("system:nodes",))[0])
    assert await chain.authenticate(creds(STATIC)) == UserInfo(
        "admin", "1", ("system:masters", "system:authenticated")
    )
    boot = await chain.authenticate(creds(BOOTSTRAP, cert=foreign))  # good bearer + bad cert
    assert (boot.name, boot.groups) == (
        "system:bootstrap:abcdef",
        ("system:bootstrappers", "system:authenticated"),
    )
    user = await chain.authenticate(creds("garbage", cert=node))  # a good cert wins
    assert (user.name, user.groups) == ("system:node:w1", ("system:nodes", "system:authenticated"))
    assert await chain.authenticate(creds(cert=no_cn)) == ANONYMOUS  # empty CN is "not mine"


async def test_certificates_ignored_without_a_client_ca(rogue_ca: CA) -> None:
    chain = AuthenticatorChain()
    assert await chain.authenticate(creds(cert=der(rogue_ca.issue("u")[0]))) == ANONYMOUS


@pytest.mark.parametrize(
    ("user", "groups"),
    [
        (UserInfo("system:anonymous", groups=("g",)), ("g",)),
        (UserInfo("u", groups=("system:authenticated", "g")), ("system:authenticated", "g")),
        (UserInfo("u", groups=("system:unauthenticated",)), ("system:unauthenticated",)),
        (UserInfo("u", groups=("g",)), ("g", "system:authenticated")),
    ],
)
def test_group_adder(user: UserInfo, groups: tuple[str, ...]) -> None:
    assert add_authenticated_group(user).groups == groups


@pytest.mark.parametrize(
    ("user", "node"),
    [
        (UserInfo("system:node:w1"), None),  # not in system:nodes
        (UserInfo("system:node:", groups=("system:nodes",)), None),
        (UserInfo("w1", groups=("system:nodes",)), None),
        (UserInfo("system:node:w1", groups=("system:nodes",)), "w1"),
    ],
)
def test_node_name_of(user: UserInfo, node: str | None) -> None:
    assert node_name_of(user) == node


async def test_a_revoked_certificate_is_told_but_a_good_bearer_still_wins(
    cluster_ca: CA, clock: FakeClock
) -> None:
    def check(serial: int, subject: str) -> None:
        raise CredentialRevoked(f"client certificate serial {serial:x} was revoked")

    chain = AuthenticatorChain(
        client_certs=ClientCertAuthenticator([cluster_ca.cert], clock, revoked=check),
        tokens=[
            StaticTokenAuthenticator(parse_token_file(f'{STATIC},admin,1,"system:masters"', "f"))
        ],
    )
    cert = der(cluster_ca.issue("system:node:w1", ("system:nodes",))[0])
    with pytest.raises(CredentialRevoked, match="was revoked"):
        await chain.authenticate(creds(cert=cert))
    with pytest.raises(CredentialRevoked, match="was revoked; invalid bearer token"):
        await chain.authenticate(creds("nope", cert=cert))
    assert (await chain.authenticate(creds(STATIC, cert=cert))).name == "admin"
