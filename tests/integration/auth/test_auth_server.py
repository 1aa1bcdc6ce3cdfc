"""Authentication, authorization and rate limits against the real server over TLS.

Every authenticator's good and bad paths (issue 3, "Done means"), the TLS-bootstrapping RBAC
objects of upstream's guides, ``kubectl auth can-i`` with a bootstrap token, and a wrong-token
flood from one address measured against a legitimate client on another.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubeboot.api.server.serve import Server
from kubeboot.resources import bootstrap_token as bt
from tests.conftest import RunningServer, anonymous_ssl_context, server_config, token_kubeconfig

TOKEN = "abcdef.0123456789abcdef"
CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
SECRETS = "/api/v1/namespaces/kube-system/secrets"
CLUSTER_INFO = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
NOW = dt.datetime.now(dt.UTC)


async def _status(
    running: RunningServer,
    path: str,
    *,
    token: str | None = None,
    ctx: ssl.SSLContext | None = None,
    local: str | None = None,
) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    connector = aiohttp.TCPConnector(
        ssl=ctx or anonymous_ssl_context(running), local_addr=(local, 0) if local else None
    )
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(running.url + path, headers=headers) as resp,
    ):
        await resp.read()
        return resp.status


async def _create_token_secret(admin: aiohttp.ClientSession, token: str, **edits: Any) -> None:
    secret = bt.build_secret(token, expiration=NOW + dt.timedelta(hours=1))
    secret.update(edits)
    async with admin.post(SECRETS, json=secret) as resp:
        assert resp.status == 201, await resp.text()


async def _eventually(running: RunningServer, path: str, token: str, want: int) -> None:
    """The token cache follows a watch: wait (briefly) for it to see a write."""
    deadline = time.monotonic() + 5
    while (got := await _status(running, path, token=token)) != want:
        assert time.monotonic() < deadline, f"{path} with the token gave {got}, not {want}"
        await asyncio.sleep(0.05)


async def test_bootstrap_token_paths(
    server: RunningServer, admin_http: aiohttp.ClientSession
) -> None:
    past = bt.build_secret("expird.0123456789abcdef", expiration=NOW - dt.timedelta(hours=1))
    off = bt.build_secret("usgoff.0123456789abcdef", usages=["signing"])
    opaque = bt.build_secret("opaque.0123456789abcdef") | {"type": "Opaque"}
    for secret in (past, off, opaque):
        async with admin_http.post(SECRETS, json=secret) as resp:
            assert resp.status == 201, await resp.text()
    await _create_token_secret(admin_http, TOKEN)
    await _eventually(server, "/api", TOKEN, 200)  # good token: discovery
    for bad in (
        "abcdef.ffffffffffffffff",  # wrong secret
        "zzzzzz.0123456789abcdef",  # unknown id
        "expird.0123456789abcdef",  # expired
        "usgoff.0123456789abcdef",  # usage-bootstrap-authentication off
        "opaque.0123456789abcdef",  # wrong Secret type
        "abcdef0123456789abcdef",  # malformed
    ):
        assert await _status(server, "/api", token=bad) == 401, bad
    assert await _status(server, SECRETS, token=TOKEN) == 403  # no Secrets for bootstrappers
    async with admin_http.delete(f"{SECRETS}/bootstrap-token-abcdef") as resp:
        assert resp.status == 200
    await _eventually(server, "/api", TOKEN, 401)  # deleted secret


def _client_ctx(
    running: RunningServer, tmp: Path, cert: x509.Certificate, key: Any
) -> ssl.SSLContext:
    ctx = anonymous_ssl_context(running)
    crt, pem = tmp / "c.crt", tmp / "c.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx.load_cert_chain(str(crt), str(pem))
    return ctx


def _issue(
    issuer_key: Any, issuer: x509.Name, cn: str, not_before: dt.datetime, not_after: dt.datetime
) -> tuple[x509.Certificate, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(issuer_key, hashes.SHA256())
    )
    return cert, key


async def test_bad_client_certificates_get_401_not_a_reset(
    server: RunningServer, tmp_path: Path
) -> None:
    ca_cert = x509.load_pem_x509_certificate(server.ca_file.read_bytes())
    ca_key = serialization.load_pem_private_key(
        (server.data_dir / "pki" / "ca.key").read_bytes(), None
    )
    hour = dt.timedelta(hours=1)
    expired = _issue(ca_key, ca_cert.subject, "late", NOW - 3 * hour, NOW - hour)
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    foreign = _issue(rogue_key, ca_cert.subject, "evil", NOW - hour, NOW + hour)
    good = _issue(ca_key, ca_cert.subject, "jane", NOW - hour, NOW + hour)
    for cert, key in (expired, foreign):
        assert (
            await _status(server, "/version", ctx=_client_ctx(server, tmp_path, cert, key)) == 401
        )
    assert await _status(server, "/version", ctx=_client_ctx(server, tmp_path, *good)) == 200
    assert await _status(server, SECRETS, ctx=_client_ctx(server, tmp_path, *good)) == 403


async def test_cluster_info_needs_the_kubeadm_binding(
    server: RunningServer, admin_http: aiohttp.ClientSession
) -> None:
    rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/kube-public"
    name = "kubeadm:bootstrap-signer-clusterinfo"
    cm = {"metadata": {"name": "cluster-info"}, "data": {"kubeconfig": "x"}}
    async with admin_http.post("/api/v1/namespaces/kube-public/configmaps", json=cm) as resp:
        assert resp.status in (201, 409)  # the first start publishes cluster-info
    for plural in ("rolebindings", "roles"):  # start from a cluster without kubeadm's binding
        async with admin_http.delete(f"{rbac}/{plural}/{name}") as resp:
            assert resp.status in (200, 404)
    deadline = time.monotonic() + 5
    while await _status(server, CLUSTER_INFO) != 403:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert await _status(server, CLUSTER_INFO) == 403
    assert await _status(server, "/healthz") == 200
    assert await _status(server, "/api") == 403  # discovery is for authenticated users
    assert await _status(server, CLUSTER_INFO, token="nope") == 401  # never anonymous
    role = {
        "metadata": {"name": name},
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": ["cluster-info"],
                "verbs": ["get"],
            }
        ],
    }
    binding = {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:anonymous"}
        ],
    }
    for plural, obj in (("roles", role), ("rolebindings", binding)):
        async with admin_http.post(f"{rbac}/{plural}", json=obj) as resp:
            assert resp.status == 201, await resp.text()
    deadline = time.monotonic() + 5
    while await _status(server, CLUSTER_INFO) != 200:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert await _status(server, "/api/v1/namespaces/kube-public/configmaps") == 403


@pytest.fixture
async def strict_server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    tokens = tmp_path / "token.csv"
    tokens.write_text('static-admin-token,ops,uid-1,"system:masters"\n,skipped,uid-0\n')
    srv = Server(server_config(tmp_path / "data", anonymous_auth=False, token_auth_file=tokens))
    await srv.start()
    assert srv.pki is not None
    try:
        yield RunningServer(
            srv.url,
            tmp_path / "data",
            srv.admin_kubeconfig,
            srv.pki.ca_file if hasattr(srv.pki, "ca_file") else srv.pki.ca_cert_file,
            server=srv,
        )
    finally:
        await srv.stop()


async def test_anonymous_disabled_and_static_tokens(strict_server: RunningServer) -> None:
    assert await _status(strict_server, "/version") == 401
    assert await _status(strict_server, "/healthz") == 401
    assert await _status(strict_server, SECRETS, token="static-admin-token") == 200
    assert await _status(strict_server, SECRETS, token="static-admin-toke") == 401


# (kubectl auth can-i arguments, expected answer) for a kubeadm join token's user
CAN_I = [
    (["create", "certificatesigningrequests"], "yes"),
    (["watch", "certificatesigningrequests"], "yes"),
    (["create", "certificatesigningrequests", "--subresource=nodeclient"], "yes"),
    (["create", "certificatesigningrequests", "--subresource=selfnodeclient"], "no"),
    (["get", "secrets", "-n", "kube-system"], "no"),
    (["delete", "certificatesigningrequests"], "no"),
    (["get", "configmaps/cluster-info", "-n", "kube-public"], "no"),
]


async def test_kubectl_can_i_and_whoami_for_a_join_token(
    server: RunningServer, admin_http: aiohttp.ClientSession
) -> None:
    crb = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"
    group = "system:bootstrappers:kubeadm:default-node-token"
    for name, role in (
        ("kubeadm:kubelet-bootstrap", "system:node-bootstrapper"),
        (
            "kubeadm:node-autoapprove-bootstrap",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        ),
    ):
        obj = {
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
        }
        async with admin_http.post(crb, json=obj) as resp:
            assert resp.status in (201, 409), await resp.text()  # first start may create them
    secret = bt.build_secret(TOKEN, extra_groups=[group], expiration=NOW + dt.timedelta(hours=1))
    async with admin_http.post(SECRETS, json=secret) as resp:
        assert resp.status == 201
    await _eventually(server, CSRS, TOKEN, 200)
    kubeconfig = token_kubeconfig(server, TOKEN)
    for args, want in CAN_I:
        result = await asyncio.to_thread(
            server.kubectl, "auth", "can-i", *args, check=False, kubeconfig=kubeconfig
        )
        assert result.stdout.strip() == want, (args, result.stdout, result.stderr)
    who = await asyncio.to_thread(
        server.kubectl, "auth", "whoami", "-o", "json", kubeconfig=kubeconfig
    )
    info = json.loads(who.stdout)["status"]["userInfo"]
    assert info["username"] == "system:bootstrap:abcdef"
    assert info["groups"] == ["system:bootstrappers", group, "system:authenticated"]


async def test_wrong_token_flood_is_throttled_without_slowing_others(
    server: RunningServer, admin_http: aiohttp.ClientSession
) -> None:
    await _create_token_secret(admin_http, TOKEN)
    await _eventually(server, "/api", TOKEN, 200)
    codes: dict[int, int] = {}
    latencies: list[float] = []
    stop = asyncio.Event()

    async def flood() -> None:
        connector = aiohttp.TCPConnector(ssl=anonymous_ssl_context(server), limit=16)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one() -> None:
                while not stop.is_set():
                    async with session.get(
                        server.url + "/api",
                        headers={"Authorization": "Bearer abcdef.wrongwrongwrongw"},
                    ) as resp:
                        codes[resp.status] = codes.get(resp.status, 0) + 1

            await asyncio.gather(*(one() for _ in range(16)))

    async def legit() -> None:
        connector = aiohttp.TCPConnector(
            ssl=anonymous_ssl_context(server), local_addr=("127.0.0.2", 0)
        )
        async with aiohttp.ClientSession(connector=connector) as session:
            for _ in range(40):
                start = time.perf_counter()
                async with session.get(
                    server.url + "/api", headers={"Authorization": f"Bearer {TOKEN}"}
                ) as resp:
                    assert resp.status == 200
                latencies.append(time.perf_counter() - start)
        stop.set()

    started = time.perf_counter()
    await asyncio.gather(flood(), legit())
    elapsed = time.perf_counter() - started
    total = sum(codes.values())
    print(
        f"\nflood: {total} wrong-token requests in {elapsed:.2f}s ({total / elapsed:.0f}/s), "
        f"codes {codes}; legitimate p50 {sorted(latencies)[len(latencies) // 2] * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms"
    )
    assert codes.get(401, 0) <= 20 + int(elapsed * 5) + 1  # burst + rate * time
    assert codes.get(429, 0) > 0
    assert max(latencies) < 1.0
