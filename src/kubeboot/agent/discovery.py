"""``kubeboot join`` discovery: find and trust the cluster from a token (node-facts §3.3-§3.6).

Token discovery, in order: anonymous, unverified GET of ``kube-public/cluster-info``
(polled every 5 s, first try at once, up to the discovery timeout, with a progress line);
the detached HS256 JWS for our token id checked in constant time with ``alg`` and ``kid``
enforced; any CA in the bundle must match a ``sha256:`` pin; a second fetch over TLS
verified with that CA must return byte-identical ``data.kubeconfig``. Without pins,
``--discovery-token-unsafe-skip-ca-verification`` is required and only the JWS binds the
content to the token.

Every refusal is a :class:`DiscoveryError` whose message says what to do, and nothing
is written to disk before discovery has succeeded (the caller writes).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from cryptography import x509

from kubeboot.agent.constants import CONFIGMAP_RESOURCE
from kubeboot.agent.kubeconfigs import BOOTSTRAP_USER, bootstrap_kubeconfig, ca_pem_of
from kubeboot.client.http import ApiUnreachable, HttpApiClient, user_agent
from kubeboot.client.kubeconfig import KubeconfigError, client_config_from_dict
from kubeboot.pki.jws import JwsError, verify_detached_jws
from kubeboot.pki.pins import PinError, PinSet, spki_pin
from kubeboot.resources.bootstrap_token import (
    CLUSTER_INFO_CONFIGMAP,
    CLUSTER_INFO_NAMESPACE,
    JWS_SIGNATURE_KEY_PREFIX,
    KUBECONFIG_KEY,
    parse_token,
)
from kubeboot.resources.decoding import DecodeError, decode_yaml
from kubeboot.resources.status import StatusError

__all__ = [
    "DiscoveryError",
    "cluster_from_cluster_info",
    "cluster_info_data",
    "discover_with_file",
    "discover_with_token",
]

RETRY_INTERVAL_SECONDS = 5.0
DEFAULT_TIMEOUT_SECONDS = 300.0


class DiscoveryError(Exception):
    """Discovery refused to trust the cluster; the message says why and what to do."""


class _NotYet(Exception):
    """A fetch result worth retrying (server down, JWS not published yet)."""


def _server_url(endpoint: str) -> str:
    return endpoint.rstrip("/") if endpoint.startswith("https://") else f"https://{endpoint}"


def _anonymous(server: str, ca_pem: bytes | None) -> HttpApiClient:
    cluster: dict[str, Any] = {"server": server}
    if ca_pem is None:
        cluster["insecure-skip-tls-verify"] = True
    else:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode("ascii")
    conf = {
        "clusters": [{"name": "kubernetes", "cluster": cluster}],
        "users": [{"name": "token-bootstrap-client", "user": {}}],
        "contexts": [
            {"name": "d", "context": {"cluster": "kubernetes", "user": "token-bootstrap-client"}}
        ],
        "current-context": "d",
    }
    return HttpApiClient(client_config_from_dict(conf), timeout=10.0, user_agent=user_agent("join"))


async def _fetch_cluster_info(server: str, ca_pem: bytes | None, token_id: str) -> tuple[str, str]:
    """(kubeconfig text, JWS) from one GET; _NotYet when worth retrying."""
    async with _anonymous(server, ca_pem) as client:
        try:
            cm = await client.get(
                CONFIGMAP_RESOURCE, CLUSTER_INFO_CONFIGMAP, CLUSTER_INFO_NAMESPACE
            )
        except ApiUnreachable as e:
            raise _NotYet(f"cannot reach {server}: {e}") from e
        except StatusError as e:
            raise _NotYet(f"{server} answered {e.code} {e.reason}: {e.message}") from e
    kubeconfig, jws = cluster_info_data(cm, token_id)
    if not jws:
        raise _NotYet(
            f"no signature for token id {token_id!r} in cluster-info: the token is unknown, "
            "expired, spent (kubeboot tokens created with --max-uses or --node-name are "
            "deleted once used), or not a signing token; create one with `kubeboot token "
            "create` on the control plane (usages must include signing)"
        )
    return kubeconfig, jws


def cluster_info_data(cm: Any, token_id: str) -> tuple[str, str | None]:
    """The kubeconfig text and our token's JWS from a cluster-info ConfigMap, checked.

    The answer comes from an unverified, anonymous GET: every shape is checked before use,
    and a malformed one is a one-line refusal (never a traceback).
    """
    where = f"{CLUSTER_INFO_NAMESPACE}/{CLUSTER_INFO_CONFIGMAP}"
    data = cm.get("data") if isinstance(cm, dict) else None
    if data is not None and not isinstance(data, dict):
        raise DiscoveryError(f"{where}: data is not a map of strings; do not trust this server")
    kubeconfig = (data or {}).get(KUBECONFIG_KEY)
    if not kubeconfig:
        raise DiscoveryError(
            f"{where} has no kubeconfig: the cluster is not set up for token bootstrapping "
            "(is this the right server?)"
        )
    jws = (data or {}).get(JWS_SIGNATURE_KEY_PREFIX + token_id)
    if not isinstance(kubeconfig, str) or not isinstance(jws, str | None):
        raise DiscoveryError(f"{where}: data is not a map of strings; do not trust this server")
    return kubeconfig, jws


async def _poll(
    fetch: Callable[[], Any], limit_seconds: float, interval: float, progress: Callable[[str], None]
) -> tuple[str, str]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_seconds
    attempt = 0
    while True:
        attempt += 1
        try:
            result: tuple[str, str] = await fetch()
            return result
        except _NotYet as e:
            left = deadline - loop.time()
            if left <= 0:
                raise DiscoveryError(f"gave up after {limit_seconds:.0f}s: {e}") from e
            progress(f"[discovery] attempt {attempt} failed: {e}; retrying in {interval:.0f}s")
            await asyncio.sleep(min(interval, left))


def cluster_from_cluster_info(kubeconfig_text: str) -> tuple[str | None, bytes]:
    """(server or None, CA bundle PEM) of cluster-info's kubeconfig, as kubeadm reads it.

    Only embedded data is trusted (kubeadm's ``certificate-authority-data``): a
    ``certificate-authority`` path would make this node read a file the server names, so it
    is refused. YAML is decoded with the server's bounded decoder (no alias bombs).
    """
    bad = "cluster-info holds no usable kubeconfig"
    try:
        conf = decode_yaml(kubeconfig_text.encode("utf-8", errors="replace")).value
    except DecodeError as e:
        raise DiscoveryError(f"{bad}: {e}") from None
    clusters = conf.get("clusters") if isinstance(conf, dict) else None
    if not isinstance(clusters, list) or not clusters:
        raise DiscoveryError(f"{bad}: it lists no clusters")
    entry = clusters[0]
    cluster = entry.get("cluster") if isinstance(entry, dict) else None
    if not isinstance(cluster, dict):
        raise DiscoveryError(f"{bad}: its first cluster entry is not a map")
    if cluster.get("certificate-authority"):
        raise DiscoveryError(
            "cluster-info names a certificate-authority file on this machine "
            f"({str(cluster['certificate-authority'])[:100]!r}); only embedded "
            "certificate-authority-data is trusted (as kubeadm): do not trust this server"
        )
    server = cluster.get("server")
    if server is not None and (not isinstance(server, str) or not server.startswith("https://")):
        raise DiscoveryError(f"{bad}: its server is not an https:// URL")
    data = cluster.get("certificate-authority-data")
    if not isinstance(data, str) or not data:
        raise DiscoveryError("cluster-info names no certificate authority")
    try:
        ca_pem = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise DiscoveryError(
            "cluster-info's certificate-authority-data is not base64; do not trust this server"
        ) from None
    return server, ca_pem


async def discover_with_token(
    endpoint: str,
    token: str,
    pins: Sequence[str],
    *,
    unsafe_skip_ca_verification: bool = False,
    discovery_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    interval: float = RETRY_INTERVAL_SECONDS,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The bootstrap kubeconfig (token user, pinned CA) for ``endpoint``; raises on refusal."""
    parsed = parse_token(token)
    if parsed is None:
        raise DiscoveryError(
            "the token must look like [a-z0-9]{6}.[a-z0-9]{16} (for example "
            "abcdef.0123456789abcdef); print a valid one with `kubeboot token create`"
        )
    token_id, token_secret = parsed
    try:
        pin_set = PinSet(pins)
    except PinError as e:
        raise DiscoveryError(f"--discovery-token-ca-cert-hash: {e}") from e
    if not pin_set and not unsafe_skip_ca_verification:
        raise DiscoveryError(
            "using token-based discovery without --discovery-token-ca-cert-hash can be unsafe; "
            "pass the CA hash printed by the control plane (sha256:...), or "
            "--discovery-token-unsafe-skip-ca-verification to continue"
        )
    server = _server_url(endpoint)
    first, jws = await _poll(
        lambda: _fetch_cluster_info(server, None, token_id), discovery_seconds, interval, progress
    )
    try:
        verify_detached_jws(jws, first, token_id, token_secret)
    except JwsError as e:
        raise DiscoveryError(
            f"failed to verify the JWS signature of cluster-info ({e}); the token secret is "
            "wrong or the answer was tampered with: do not trust this API server"
        ) from e
    cluster_server, ca_pem = cluster_from_cluster_info(first)
    try:
        cas = x509.load_pem_x509_certificates(ca_pem)
    except ValueError as e:
        raise DiscoveryError(f"cluster-info CA does not parse: {e}") from e
    if pin_set:
        try:
            pin_set.check_any(cas)
        except PinError as e:
            raise DiscoveryError(_pin_mismatch(cas, pins)) from e
        second, _ = await _poll(
            lambda: _fetch_cluster_info(server, ca_pem, token_id),
            discovery_seconds,
            interval,
            progress,
        )
        if second != first:
            raise DiscoveryError(
                "the second, TLS-verified cluster-info was different from the first; "
                "someone may be intercepting the connection"
            )
    return bootstrap_kubeconfig(cluster_server or server, ca_pem, token)


def _pin_mismatch(cas: Sequence[x509.Certificate], pins: Sequence[str]) -> str:
    """What a wrong ``--discovery-token-ca-cert-hash`` is told: the hash it should have been
    (if this is the intended cluster) and the ones it was given."""
    found = ", ".join(spki_pin(c) for c in cas)
    noun, verb = ("CA", "matches") if len(cas) == 1 else ("CAs", "match")
    return (
        f"the cluster's {noun} {found} {verb} none of the given pins ({', '.join(pins)}); "
        "if this is your cluster, pass that hash as --discovery-token-ca-cert-hash, "
        "otherwise you are talking to another API server"
    )


async def discover_with_file(
    location: str, token: str | None, *, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    """The bootstrap kubeconfig from ``--discovery-file`` (a path or an https URL)."""
    if location.startswith("https://"):
        try:
            headers = {"User-Agent": user_agent("join")}
            async with (
                aiohttp.ClientSession(headers=headers) as session,
                session.get(location) as resp,
            ):
                if resp.status != 200:
                    raise DiscoveryError(f"{location} answered HTTP {resp.status}")
                text = await resp.text()
        except aiohttp.ClientError as e:
            raise DiscoveryError(f"cannot download {location}: {e}") from e
        base = Path.cwd()
    else:
        path = Path(location.removeprefix("file://"))
        try:
            text = await asyncio.to_thread(path.read_text)
        except OSError as e:
            raise DiscoveryError(f"cannot read --discovery-file {path}: {e}") from e
        base = path.parent
    try:
        conf = yaml.safe_load(text)
        context = conf.get("current-context")
        clusters = {c["name"]: c["cluster"] for c in conf.get("clusters") or []}
        users = {u["name"]: u["user"] for u in conf.get("users") or []}
        ctx = next((c["context"] for c in conf.get("contexts") or [] if c["name"] == context), None)
        cluster = dict(clusters[ctx["cluster"]] if ctx else next(iter(clusters.values())))
        user = dict(users.get(ctx.get("user", ""), {}) if ctx else {})
    except (yaml.YAMLError, AttributeError, KeyError, StopIteration, TypeError) as e:
        raise DiscoveryError(f"--discovery-file {location} is not a usable kubeconfig: {e}") from e
    if cluster.get("certificate-authority"):
        cluster["certificate-authority"] = str(base / str(cluster["certificate-authority"]))
    ca_pem = ca_pem_of(cluster)
    if ca_pem is None:
        raise DiscoveryError(f"--discovery-file {location} names no certificate authority")
    server = str(cluster.get("server") or "")
    if token is not None:
        return bootstrap_kubeconfig(server, ca_pem, token)
    if not any(user.get(k) for k in ("token", "client-certificate-data", "client-certificate")):
        raise DiscoveryError(
            f"--discovery-file {location} holds no credentials for the TLS bootstrap; "
            "pass --token too"
        )
    try:
        client_config_from_dict(
            {
                "clusters": [{"name": "kubernetes", "cluster": cluster}],
                "users": [{"name": BOOTSTRAP_USER, "user": user}],
                "contexts": [
                    {"name": "d", "context": {"cluster": "kubernetes", "user": BOOTSTRAP_USER}}
                ],
                "current-context": "d",
            }
        )
    except KubeconfigError as e:
        raise DiscoveryError(str(e)) from e
    conf_out = bootstrap_kubeconfig(server, ca_pem, "")
    conf_out["users"][0]["user"] = user
    return conf_out
