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

import copy
import os
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import yaml
from lightkube.config import client_adapter
from lightkube.config.kubeconfig import KubeConfig, SingleConfig
from lightkube.config.models import User
from lightkube.core.exceptions import ConfigError

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

    def __init__(self, auth: httpx2.Auth | None) -> None:
        self._auth = auth
        self._value: str | None = None

    @property
    def refreshable(self) -> bool:
        return isinstance(self._auth, client_adapter.BearerTokenFileAuth | client_adapter.ExecAuth)

    async def value(self) -> str | None:
        if self._auth is None:
            return None
        if self._value is None:
            self._value = await self._drive(unauthorized=False)
        return self._value

    async def refresh(self) -> str | None:
        if self._auth is None:
            return None
        self._value = await self._drive(unauthorized=True)
        return self._value

    async def _drive(self, *, unauthorized: bool) -> str | None:
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
