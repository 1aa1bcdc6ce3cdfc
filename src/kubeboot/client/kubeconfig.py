"""Kubeconfig loading: a thin adapter over lightkube's loader (see ``docs/dependencies.md``).

lightkube parses the file into typed models, builds the ``ssl.SSLContext`` (CA file or data,
client certificate file or data, ``insecure-skip-tls-verify``) and implements the
credentials (``token``, ``tokenFile``, ``exec`` plugins, basic auth) as ``httpx.Auth``
flows. This module adds only what lightkube leaves out and kubectl does:

* ``KUBECONFIG`` with several files, merged by kubectl's rules: a missing file is skipped,
  the first file that sets ``current-context`` wins, and for each cluster, user and context
  name the first definition wins. Relative paths are resolved against the file that holds
  them, before merging, so the merge cannot re-anchor them.
* ``tls-server-name`` and ``proxy-url`` on the cluster, which lightkube's model drops.
* The ``Authorization`` header as a string, obtained by driving lightkube's auth flow once
  (and again after a 401, which is when ``tokenFile`` and ``exec`` credentials refresh).

The raw cluster and user dicts are kept, because the agent copies the cluster entry of a
bootstrap kubeconfig into the kubeconfig it writes (node-facts §1.8, and §8: keep
``tls-server-name`` and ``proxy-url`` instead of dropping them).
"""

from __future__ import annotations

import base64
import binascii
import copy
import os
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    import httpx2

__all__ = [
    "DEFAULT_KUBECONFIG",
    "AuthHeader",
    "ClientConfig",
    "KubeconfigError",
    "client_config_from_dict",
    "kubeconfig_paths",
    "load_client_config",
    "merge_kubeconfigs",
]

DEFAULT_KUBECONFIG = "~/.kube/config"

# Fields holding file paths that kubectl resolves relative to the kubeconfig file.
_CLUSTER_PATH_FIELDS = ("certificate-authority",)
_USER_PATH_FIELDS = ("client-certificate", "client-key", "tokenFile")


class KubeconfigError(Exception):
    """The kubeconfig cannot be used; the message names the file and what to fix."""


class AuthHeader:
    """The ``Authorization`` header of one kubeconfig user, refreshed after a 401.

    Wraps lightkube's ``httpx.Auth`` object: a flow is started with a dummy request, the
    header it sets is the answer; ``refresh`` answers the flow's request with a 401, which
    makes ``tokenFile`` re-read the file and ``exec`` run the plugin again.
    """

    def __init__(self, auth: httpx2.Auth | None, *, static: str | None = None) -> None:
        self._auth = auth
        self._value: str | None = static

    @property
    def refreshable(self) -> bool:
        if self._auth is None:
            return False
        from lightkube.config import client_adapter

        return isinstance(self._auth, client_adapter.BearerTokenFileAuth | client_adapter.ExecAuth)

    async def value(self) -> str | None:
        if self._auth is None:
            return self._value
        if self._value is None:
            self._value = await self._drive(unauthorized=False)
        return self._value

    async def refresh(self) -> str | None:
        if self._auth is None:
            return None
        self._value = await self._drive(unauthorized=True)
        return self._value

    async def _drive(self, *, unauthorized: bool) -> str | None:
        import httpx2
        from lightkube.core.exceptions import ConfigError

        assert self._auth is not None
        request = httpx2.Request("GET", "https://kubeconfig.invalid/")
        flow = self._auth.async_auth_flow(request)
        try:
            sent = await flow.__anext__()
            if unauthorized:
                sent = await flow.asend(httpx2.Response(401, request=request))
        except StopAsyncIteration:
            pass
        except ConfigError as e:
            raise KubeconfigError(f"kubeconfig credentials failed: {e}") from e
        finally:
            await flow.aclose()
        header = sent.headers.get("Authorization") if sent is not None else None
        return str(header) if header else None


@dataclass(frozen=True)
class ClientConfig:
    """Everything a connection needs, resolved from one context of a (merged) kubeconfig."""

    server: str
    ssl_context: ssl.SSLContext | None  # None for plain http:// servers
    auth: AuthHeader
    namespace: str = "default"
    tls_server_name: str | None = None
    proxy: str | None = None
    context_name: str = ""
    # The raw entries (paths already absolute), for writing derived kubeconfigs.
    cluster: Mapping[str, Any] = field(default_factory=dict)
    user: Mapping[str, Any] = field(default_factory=dict)


def kubeconfig_paths(explicit: str | os.PathLike[str] | None = None) -> list[Path]:
    """The files kubectl would read: ``--kubeconfig``, else ``$KUBECONFIG``, else the default."""
    if explicit:
        return [Path(explicit).expanduser()]
    env = os.environ.get("KUBECONFIG", "")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path(DEFAULT_KUBECONFIG).expanduser()]


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise KubeconfigError(f"{path}: not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise KubeconfigError(f"{path}: a kubeconfig must be a mapping, not {type(data).__name__}")
    return data


def _absolutize(entry: dict[str, Any], fields: Iterable[str], base: Path) -> None:
    for key in fields:
        value = entry.get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            entry[key] = str((base / value).resolve())


def merge_kubeconfigs(documents: Sequence[tuple[Path, Mapping[str, Any]]]) -> dict[str, Any]:
    """Merge parsed kubeconfigs with kubectl's first-wins rules; paths become absolute."""
    merged: dict[str, Any] = {"apiVersion": "v1", "kind": "Config"}
    sections: dict[str, dict[str, dict[str, Any]]] = {"clusters": {}, "users": {}, "contexts": {}}
    inner = {"clusters": "cluster", "users": "user", "contexts": "context"}
    for path, doc in documents:
        base = path.parent
        if "current-context" not in merged and doc.get("current-context"):
            merged["current-context"] = doc["current-context"]
        for section, key in inner.items():
            for item in doc.get(section) or []:
                name = item.get("name") if isinstance(item, dict) else None
                if not isinstance(name, str) or name in sections[section]:
                    continue
                entry = copy.deepcopy(item.get(key) or {})
                if section == "clusters":
                    _absolutize(entry, _CLUSTER_PATH_FIELDS, base)
                elif section == "users":
                    _absolutize(entry, _USER_PATH_FIELDS, base)
                sections[section][name] = entry
    for section, key in inner.items():
        merged[section] = [{"name": n, key: e} for n, e in sections[section].items()]
    return merged


def client_config_from_dict(
    conf: Mapping[str, Any], *, context: str | None = None, source: str = "<kubeconfig>"
) -> ClientConfig:
    """Resolve one context of an already-merged kubeconfig dict (paths must be absolute)."""
    plain = _plain_client_config(conf, context, source)
    if plain is not None:
        return plain
    return _lightkube_client_config(conf, context, source)


def _lightkube_client_config(
    conf: Mapping[str, Any], context: str | None, source: str
) -> ClientConfig:
    """Any kubeconfig lightkube supports, through lightkube's loader."""
    from lightkube.config import client_adapter
    from lightkube.config.kubeconfig import KubeConfig, SingleConfig
    from lightkube.config.models import User
    from lightkube.core.exceptions import ConfigError

    try:
        single = KubeConfig.from_dict(dict(conf)).get(context)
    except (ConfigError, KeyError, TypeError, ValueError) as e:
        raise KubeconfigError(f"{source}: {_describe(e)}") from e
    assert isinstance(single, SingleConfig)
    raw_context = _find(conf, "contexts", "context", single.context_name)
    raw_cluster = _find(conf, "clusters", "cluster", str(raw_context.get("cluster", "")))
    raw_user = _find(conf, "users", "user", str(raw_context.get("user") or ""))
    server = single.cluster.server
    if not server.startswith(("https://", "http://")):
        raise KubeconfigError(f"{source}: cluster server {server!r} is not an http(s) URL")
    ssl_context: ssl.SSLContext | None = None
    if server.startswith("https://"):
        try:
            ssl_context = client_adapter.verify_cluster(
                single.cluster, single.user or User(), single.abs_file, False
            )
        except (OSError, ssl.SSLError, ConfigError, ValueError) as e:
            raise KubeconfigError(f"{source}: cannot load TLS files: {_describe(e)}") from e
    try:
        auth = client_adapter.user_auth(single.user)
    except ConfigError as e:
        raise KubeconfigError(f"{source}: {e}") from e
    return ClientConfig(
        server=server.rstrip("/"),
        ssl_context=ssl_context,
        auth=AuthHeader(auth),
        namespace=single.namespace,
        tls_server_name=raw_cluster.get("tls-server-name") or None,
        proxy=raw_cluster.get("proxy-url") or None,
        context_name=single.context_name,
        cluster=raw_cluster,
        user=raw_user,
    )


def load_client_config(
    kubeconfig: str | os.PathLike[str] | None = None, *, context: str | None = None
) -> ClientConfig:
    """Load like kubectl: ``--kubeconfig`` (must exist), else merged ``$KUBECONFIG``."""
    paths = kubeconfig_paths(kubeconfig)
    documents: list[tuple[Path, Mapping[str, Any]]] = []
    for path in paths:
        if not path.exists():
            if kubeconfig:
                raise KubeconfigError(f"kubeconfig {path} does not exist")
            continue
        documents.append((path.absolute(), _read(path)))
    if not documents:
        names = ", ".join(str(p) for p in paths)
        raise KubeconfigError(f"no kubeconfig found (looked at {names}); pass --kubeconfig")
    source = ", ".join(str(p) for p, _ in documents)
    return client_config_from_dict(merge_kubeconfigs(documents), context=context, source=source)


# What a "plain" kubeconfig may hold: an https server with a CA (file or data), a client
# certificate and key as files, a static token. That is every kubeconfig the node agent
# writes and uses between rotations, and kubeadm's bootstrap-kubelet.conf.
_PLAIN_CLUSTER_KEYS = frozenset(
    {
        "server",
        "certificate-authority",
        "certificate-authority-data",
        "insecure-skip-tls-verify",
        "tls-server-name",
        "proxy-url",
    }
)
_PLAIN_USER_KEYS = frozenset({"client-certificate", "client-key", "token"})


def _plain_client_config(
    conf: Mapping[str, Any], context: str | None, source: str
) -> ClientConfig | None:
    """The ``ClientConfig`` of a plain kubeconfig without importing lightkube, or None.

    Why: lightkube's loader and httpx2 are 5.9 MB of RSS in the node agent (docs/agent.md),
    which needs only this subset. It builds what lightkube's ``verify_cluster`` builds for
    these inputs (a default context trusting the CA, CA file before CA data, no
    verification for ``insecure-skip-tls-verify`` without a CA, the client pair loaded
    into it) and the ``Bearer`` header of lightkube's token auth. Anything else (no CA and
    no insecure flag, inline client data, ``tokenFile``, exec, basic auth, a missing reference)
    returns None and goes through lightkube, errors included.
    """
    name = context or conf.get("current-context")
    if not isinstance(name, str) or not name:
        return None
    if not _defined(conf, "contexts", name):
        return None
    raw_context = _find(conf, "contexts", "context", name)
    cluster_name = str(raw_context.get("cluster") or "")
    user_name = str(raw_context.get("user") or "")
    if not _defined(conf, "clusters", cluster_name):
        return None
    if user_name and not _defined(conf, "users", user_name):
        return None
    cluster = _find(conf, "clusters", "cluster", cluster_name)
    user = _find(conf, "users", "user", user_name) if user_name else {}
    server = cluster.get("server")
    ca_file, ca_data = (
        cluster.get("certificate-authority"),
        cluster.get("certificate-authority-data"),
    )
    cert, key, token = user.get("client-certificate"), user.get("client-key"), user.get("token")
    if (
        set(cluster) - _PLAIN_CLUSTER_KEYS
        or set(user) - _PLAIN_USER_KEYS
        or not isinstance(server, str)
        or not server.startswith("https://")
        or not (ca_file or ca_data or cluster.get("insecure-skip-tls-verify") is True)
        or bool(cert) != bool(key)
        or (token is not None and not isinstance(token, str))
    ):
        return None
    try:
        if ca_file:
            ssl_context = ssl.create_default_context(cafile=str(ca_file))
        elif not ca_data:  # insecure-skip-tls-verify, no CA: kubeadm's first discovery GET
            ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no trust store to load
            ssl_context.check_hostname = False
            ssl_context.verify_mode = ssl.CERT_NONE
        else:
            pem = base64.b64decode(str(ca_data), validate=True).decode("ascii")
            ssl_context = ssl.create_default_context(cadata=pem)
        if cert:
            ssl_context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError, ValueError, binascii.Error) as e:
        raise KubeconfigError(f"{source}: cannot load TLS files: {_describe(e)}") from e
    return ClientConfig(
        server=server.rstrip("/"),
        ssl_context=ssl_context,
        auth=AuthHeader(None, static=f"Bearer {token}" if token else None),
        namespace=str(raw_context.get("namespace") or "default"),
        tls_server_name=cluster.get("tls-server-name") or None,
        proxy=cluster.get("proxy-url") or None,
        context_name=name,
        cluster=cluster,
        user=user,
    )


def _defined(conf: Mapping[str, Any], section: str, name: str) -> bool:
    return any(
        isinstance(item, dict) and item.get("name") == name for item in conf.get(section) or []
    )


def _find(conf: Mapping[str, Any], section: str, key: str, name: str) -> dict[str, Any]:
    for item in conf.get(section) or []:
        if isinstance(item, dict) and item.get("name") == name:
            entry = item.get(key) or {}
            return dict(entry) if isinstance(entry, dict) else {}
    return {}


def _describe(e: BaseException) -> str:
    if isinstance(e, KeyError):
        return f"{e.args[0]!r} is referenced but not defined"
    return str(e) or type(e).__name__
