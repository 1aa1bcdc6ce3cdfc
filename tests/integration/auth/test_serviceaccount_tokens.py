"""ServiceAccount tokens end to end: a real server, real kubectl (issue 20).

``kubectl create token`` tokens authenticate until they expire (the server's clock is moved
past ``exp`` plus go-jose's minute of leeway) and stop when their ServiceAccount or bound
Secret goes; legacy token Secrets are filled by the tokens controller, and the seed's
``jsonpath | base64 -d`` prints a JWT kubectl can use; TokenReview answers for every token
kind; the OIDC discovery endpoints serve keys that verify the tokens; ``kubeboot approver``
runs with a ServiceAccount token and RBAC bound to its ServiceAccount.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import rsa

from kubeboot.api.server.serve import Server
from kubeboot.cli.main import cli
from kubeboot.clock import SystemClock
from kubeboot.pki.b64url import b64url_decode
from kubeboot.pki.jwt import parse_jwt, verify_jwt
from tests.conftest import (
    KUBECTL,
    RunningServer,
    admin_ssl_context,
    call_as,
    node_ssl_context,
    server_config,
)
from tests.integration.cli.test_approver import serving_csr

ISSUER = "https://kubernetes.default.svc.cluster.local"
STATIC_TOKEN = "0123456789abcdef0123456789abcdef"
pytestmark = pytest.mark.timeout(120)
# The approver's ClusterRole as docs/cli.md gives it.
APPROVER_ROLE = (
    (Path(__file__).resolve().parents[3] / "docs" / "cli.md")
    .read_text()
    .split("cat > approver-rbac.yaml <<'YAML'\n")[1]
    .split("YAML\n")[0]
)


class ShiftedClock(SystemClock):
    """The system clock plus ``offset`` seconds: expiry without waiting for it."""

    offset = 0.0

    def now(self) -> dt.datetime:
        return super().now() + dt.timedelta(seconds=self.offset)


@pytest.fixture
async def sa_server(tmp_path: Path) -> AsyncIterator[tuple[RunningServer, ShiftedClock]]:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text(f'{STATIC_TOKEN},static-user,42,"static-group"\n')
    clock = ShiftedClock()
    srv = Server(
        server_config(
            tmp_path / "data",
            token_auth_file=tokens,
            service_account_max_token_expiration=dt.timedelta(hours=2),
        ),
        clock=clock,
    )
    await srv.start()
    assert srv.pki is not None
    try:
        yield (
            RunningServer(
                srv.url, srv.config.data_dir, srv.admin_kubeconfig, srv.pki.ca_cert_file, server=srv
            ),
            clock,
        )
    finally:
        await srv.stop()


async def kubectl(
    running: RunningServer, *args: str, token: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """kubectl as the admin, or with ``--token`` only (a kubeconfig without credentials)."""
    if token is None:
        return await asyncio.to_thread(running.kubectl, *args, check=check)
    return await asyncio.to_thread(
        running.kubectl,
        "--server",
        running.url,
        "--certificate-authority",
        str(running.ca_file),
        "--token",
        token,
        *args,
        check=check,
        kubeconfig=Path("/dev/null"),
    )


async def whoami(running: RunningServer, token: str) -> subprocess.CompletedProcess[str]:
    return await kubectl(running, "auth", "whoami", "-o", "json", token=token, check=False)


async def token_review(running: RunningServer, token: str, **spec: Any) -> dict[str, Any]:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview"}
    status, answer = await call_as(
        running,
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        {**body, "spec": {"token": token, **spec}},
        ctx=admin_ssl_context(running),
    )
    assert status == 201, answer
    return dict(answer["status"])


def username(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["status"]["userInfo"]["username"])


async def test_create_token_authenticates_until_expiry_and_account_deletion(
    sa_server: tuple[RunningServer, ShiftedClock],
) -> None:
    running, clock = sa_server
    await kubectl(running, "create", "serviceaccount", "demo")
    token = (await kubectl(running, "create", "token", "demo", "--duration", "10m")).stdout
    token = token.strip()
    assert username(await whoami(running, token)) == "system:serviceaccount:default:demo"
    claims = parse_jwt(token).claims
    assert claims["iss"] == ISSUER and claims["aud"] == [ISSUER]
    assert claims["exp"] - claims["iat"] == 600
    assert claims["kubernetes.io"]["serviceaccount"]["name"] == "demo"

    clock.offset = 600 + 60 + 5  # past exp and go-jose's minute of leeway
    refused = await whoami(running, token)
    assert refused.returncode != 0 and "Unauthorized" in refused.stderr
    review = await token_review(running, token)
    assert review == {"error": "service account token has expired", "user": {}}

    clock.offset = 0
    second = (await kubectl(running, "create", "token", "demo")).stdout.strip()
    assert username(await whoami(running, second)).endswith(":demo")
    await kubectl(running, "delete", "serviceaccount", "demo")
    refused = await whoami(running, second)
    assert refused.returncode != 0 and "Unauthorized" in refused.stderr
    assert (await token_review(running, second))["error"] == 'serviceaccounts "demo" not found'
    # a new account of the same name does not revive the old account's tokens
    await kubectl(running, "create", "serviceaccount", "demo")
    review = await token_review(running, second)
    assert review["error"].startswith("service account UID (")


async def test_token_request_rules_as_upstream(
    sa_server: tuple[RunningServer, ShiftedClock],
) -> None:
    running, _ = sa_server
    await kubectl(running, "create", "serviceaccount", "demo")
    short = await kubectl(running, "create", "token", "demo", "--duration", "1m", check=False)
    assert short.stderr.strip() == (
        'error: failed to create token: TokenRequest.authentication.k8s.io "" is invalid: '
        "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 "
        "minutes"
    )
    missing = await kubectl(running, "create", "token", "nobody", check=False)
    assert missing.stderr.strip() == (
        'error: failed to create token: serviceaccounts "nobody" not found'
    )
    capped = await kubectl(running, "create", "token", "demo", "--duration", "3h")
    assert "requested expiration of 10800 seconds shortened to 7200 seconds" in capped.stderr
    claims = parse_jwt(capped.stdout.strip()).claims
    assert claims["exp"] - claims["iat"] == 7200

    # bound to a Secret: dies with it
    await kubectl(running, "create", "secret", "generic", "anchor", "--from-literal=a=b")
    bound = await kubectl(
        running,
        "create",
        "token",
        "demo",
        "--bound-object-kind",
        "Secret",
        "--bound-object-name",
        "anchor",
        "--audience",
        "vault",
    )
    token = bound.stdout.strip()
    assert parse_jwt(token).claims["kubernetes.io"]["secret"]["name"] == "anchor"
    assert (await token_review(running, token, audiences=["vault"]))["audiences"] == ["vault"]
    api = await token_review(running, token)
    assert api["error"] == (
        'token audiences ["vault"] is invalid for the target audiences ["' + ISSUER + '"]'
    )
    await kubectl(running, "delete", "secret", "anchor")
    gone = await token_review(running, token, audiences=["vault"])
    assert gone["error"] == "service account token has been invalidated"

    unknown = await kubectl(
        running,
        "create",
        "token",
        "demo",
        "--bound-object-kind",
        "Pod",
        "--bound-object-name",
        "p",
        check=False,
    )
    assert unknown.stderr.strip() == 'error: failed to create token: pods "p" not found'

    # RBAC: create serviceaccounts/token
    own = (await kubectl(running, "create", "token", "demo")).stdout.strip()
    forbidden = await kubectl(running, "create", "token", "default", token=own, check=False)
    assert (
        'serviceaccounts "default" is forbidden: User "system:serviceaccount:default:demo" '
        'cannot create resource "serviceaccounts/token" in API group "" in the namespace '
        '"default"'
    ) in forbidden.stderr


async def wait_for_token(running: RunningServer, secret: str, namespace: str) -> dict[str, Any]:
    for _ in range(100):
        got = await kubectl(running, "get", "secret", secret, "-n", namespace, "-o", "json")
        obj: dict[str, Any] = json.loads(got.stdout)
        if (obj.get("data") or {}).get("token"):
            return obj
        await asyncio.sleep(0.1)
    raise AssertionError(f"{namespace}/{secret} was never filled in")


async def test_legacy_token_secret_filled_used_and_removed(
    sa_server: tuple[RunningServer, ShiftedClock],
) -> None:
    running, _ = sa_server
    await kubectl(running, "create", "serviceaccount", "ci", "-n", "kube-public")
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "ci-token",
            "namespace": "kube-public",
            "annotations": {"kubernetes.io/service-account.name": "ci"},
        },
        "type": "kubernetes.io/service-account-token",
    }
    await asyncio.to_thread(running.kubectl, "create", "-f", "-", input=json.dumps(secret))
    filled = await wait_for_token(running, "ci-token", "kube-public")
    data = {k: base64.b64decode(v) for k, v in filled["data"].items()}
    assert data["namespace"] == b"kube-public"
    assert data["ca.crt"] == running.ca_file.read_bytes()
    uid = json.loads(
        (await kubectl(running, "get", "sa", "ci", "-n", "kube-public", "-o", "json")).stdout
    )["metadata"]["uid"]
    assert filled["metadata"]["annotations"]["kubernetes.io/service-account.uid"] == uid

    # the seed's command line, through a shell
    seed = (
        f"{KUBECTL} --kubeconfig {running.kubeconfig} -n kube-public get secret ci-token "
        "-o jsonpath={.data.token} | base64 -d"
    )
    printed = await asyncio.to_thread(
        subprocess.run, ["bash", "-c", seed], capture_output=True, text=True, check=True
    )
    token = printed.stdout
    assert parse_jwt(token).claims["iss"] == "kubernetes/serviceaccount"
    assert username(await whoami(running, token)) == "system:serviceaccount:kube-public:ci"
    review = await token_review(running, token)
    assert review["authenticated"] and review["audiences"] == [ISSUER]
    labels = json.loads(
        (
            await kubectl(running, "get", "secret", "ci-token", "-n", "kube-public", "-o", "json")
        ).stdout
    )["metadata"]["labels"]
    today = SystemClock().now().strftime("%Y-%m-%d")
    assert labels == {"kubernetes.io/legacy-token-last-used": today}

    await kubectl(running, "delete", "serviceaccount", "ci", "-n", "kube-public")
    for _ in range(100):
        left = await kubectl(running, "get", "secret", "ci-token", "-n", "kube-public", check=False)
        if left.returncode != 0:
            break
        await asyncio.sleep(0.1)
    assert 'secrets "ci-token" not found' in left.stderr
    refused = await whoami(running, token)
    assert refused.returncode != 0 and "Unauthorized" in refused.stderr


async def test_token_review_answers_for_every_token_kind(
    sa_server: tuple[RunningServer, ShiftedClock],
) -> None:
    running, _ = sa_server
    assert running.server is not None and running.server.init_result is not None
    bootstrap = running.server.init_result.token
    answer = await token_review(running, bootstrap)
    assert answer["authenticated"] and answer["audiences"] == [ISSUER]
    assert answer["user"]["username"] == f"system:bootstrap:{bootstrap.split('.')[0]}"
    static = await token_review(running, STATIC_TOKEN)
    assert static["user"] == {
        "username": "static-user",
        "uid": "42",
        "groups": ["static-group", "system:authenticated"],
    }
    # audience-agnostic tokens answer only for the API's audiences
    assert await token_review(running, STATIC_TOKEN, audiences=["vault"]) == {
        "error": "invalid bearer token",
        "user": {},
    }
    assert (await token_review(running, "not-a-token"))["error"] == "invalid bearer token"
    status, answer = await call_as(
        running,
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {}},
        ctx=admin_ssl_context(running),
    )
    assert (status, answer["message"]) == (
        400,
        "token is required for TokenReview in authentication",
    )
    # who may review: system:auth-delegator
    await kubectl(running, "create", "serviceaccount", "reviewer")
    token = (await kubectl(running, "create", "token", "reviewer")).stdout.strip()
    body = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token},
    }
    status, _ = await call_as(
        running, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", body, token=token
    )
    assert status == 403
    await kubectl(
        running,
        "create",
        "clusterrolebinding",
        "reviewer",
        "--clusterrole=system:auth-delegator",
        "--serviceaccount=default:reviewer",
    )
    for _ in range(50):
        status, answer = await call_as(
            running, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", body, token=token
        )
        if status == 201:
            break
        await asyncio.sleep(0.1)
    assert answer["status"]["user"]["username"] == "system:serviceaccount:default:reviewer"


def _rsa_key(jwk: dict[str, str]) -> rsa.RSAPublicKey:
    numbers = rsa.RSAPublicNumbers(
        int.from_bytes(b64url_decode(jwk["e"]), "big"),
        int.from_bytes(b64url_decode(jwk["n"]), "big"),
    )
    return numbers.public_key()


async def test_oidc_discovery_publishes_the_verifying_keys(
    sa_server: tuple[RunningServer, ShiftedClock],
) -> None:
    running, _ = sa_server
    status, _ = await call_as(running, "GET", "/.well-known/openid-configuration")
    assert status == 403  # anonymous needs a binding of its own, as upstream
    await kubectl(running, "create", "serviceaccount", "relying")
    token = (await kubectl(running, "create", "token", "relying")).stdout.strip()
    status, doc = await call_as(running, "GET", "/.well-known/openid-configuration", token=token)
    assert status == 200
    host = running.url.removeprefix("https://")
    assert doc == {
        "issuer": ISSUER,
        "jwks_uri": f"https://{host}/openid/v1/jwks",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }
    await kubectl(
        running,
        "create",
        "clusterrolebinding",
        "oidc-anonymous",
        "--clusterrole=system:service-account-issuer-discovery",
        "--group=system:unauthenticated",
    )
    for _ in range(50):
        status, jwks = await call_as(running, "GET", "/openid/v1/jwks")
        if status == 200:
            break
        await asyncio.sleep(0.1)
    assert status == 200
    (key,) = jwks["keys"]
    parsed = parse_jwt(token)
    assert key["kid"] == parsed.kid and key["alg"] == "RS256" and key["use"] == "sig"
    verify_jwt(parsed, _rsa_key(key))
    raw = await kubectl(running, "get", "--raw", "/openid/v1/jwks")
    assert json.loads(raw.stdout) == jwks


async def test_approver_runs_with_a_service_account_token(
    sa_server: tuple[RunningServer, ShiftedClock], tmp_path: Path
) -> None:
    running, _ = sa_server
    await kubectl(running, "create", "serviceaccount", "serving-approver", "-n", "kube-system")
    token = (
        await kubectl(running, "create", "token", "serving-approver", "-n", "kube-system")
    ).stdout.strip()
    kubeconfig = tmp_path / "approver.conf"
    for args in (
        (
            "set-cluster",
            "k",
            f"--server={running.url}",
            f"--certificate-authority={running.ca_file}",
            "--embed-certs",
        ),
        ("set-credentials", "approver", f"--token={token}"),
        ("set-context", "approver", "--cluster=k", "--user=approver"),
        ("use-context", "approver"),
    ):
        await asyncio.to_thread(running.kubectl, "config", *args, kubeconfig=kubeconfig)

    nodes_path, node = "/api/v1/nodes", "sa-node"
    admin = admin_ssl_context(running)
    status, _ = await call_as(
        running,
        "POST",
        nodes_path,
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}},
        ctx=admin,
    )
    assert status == 201
    addresses = [
        {"type": "InternalIP", "address": "10.1.2.3"},
        {"type": "Hostname", "address": node},
    ]
    status, _ = await call_as(
        running,
        "PATCH",
        f"{nodes_path}/{node}/status",
        {"status": {"addresses": addresses}},
        ctx=admin,
        content_type="application/merge-patch+json",
    )
    assert status == 200
    status, _ = await call_as(
        running,
        "POST",
        "/apis/certificates.k8s.io/v1/certificatesigningrequests",
        serving_csr("sa-appr", node, node, "10.1.2.3"),
        ctx=node_ssl_context(running, node),
    )
    assert status == 201

    def approve() -> Any:
        return CliRunner().invoke(cli, ["approver", "--once", "--kubeconfig", str(kubeconfig)])

    refused = await asyncio.to_thread(approve)
    assert refused.exit_code != 0
    assert "system:serviceaccount:kube-system:serving-approver" in refused.output + str(
        refused.stderr
    )

    await asyncio.to_thread(running.kubectl, "create", "-f", "-", input=APPROVER_ROLE)
    await kubectl(
        running,
        "create",
        "clusterrolebinding",
        "serving-approver",
        "--clusterrole=kubeboot-serving-approver",
        "--serviceaccount=kube-system:serving-approver",
    )
    for _ in range(50):
        done = await asyncio.to_thread(approve)
        if done.exit_code == 0:
            break
        await asyncio.sleep(0.1)
    assert done.exit_code == 0, done.output
    assert "approved csr sa-appr: SANs are the Node's addresses" in done.output
    got = await kubectl(
        running, "get", "csr", "sa-appr", "-o", "jsonpath={.status.conditions[0].type}"
    )
    assert got.stdout == "Approved"
