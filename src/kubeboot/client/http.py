"""``HttpApiClient``: the ``ApiClient`` protocol over HTTPS, for any Kubernetes API server.

One aiohttp session per client (keep-alive, one owner; ``close()`` ends it). It uses only
the public REST API, so the admin CLI and the node agent work against kubeboot's server
and a real kube-apiserver alike. Paths come from ``ResourceInfo``; bodies are JSON both
ways; a non-2xx answer is rebuilt into the ``StatusError`` the server meant
(``status_error_from_dict``), and a server that cannot be reached raises
:class:`ApiUnreachable` instead, because no ``Status`` exists for it (the agent's
server-health rule, node-facts §2.5, tells the two apart).

Bounds: every response body is capped (``max_body_bytes``); a watch line is capped by the
same limit; each request has a total timeout, and a watch has a read timeout a little above
its ``timeoutSeconds``.
"""

from __future__ import annotations

import errno
import json
import ssl
from collections.abc import AsyncGenerator, Mapping
from typing import Any, Literal
from urllib.parse import quote

import aiohttp

from kubeboot import __version__
from kubeboot.client.interface import JsonObject, PatchType, WatchEventDict
from kubeboot.client.kubeconfig import ClientConfig, load_client_config
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.status import (
    Expired,
    InternalError,
    StatusError,
    status_error_from_dict,
)

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "ApiUnreachable",
    "ClientRole",
    "HttpApiClient",
    "WatchDecoder",
    "error_from_response",
    "resource_path",
    "user_agent",
]

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_TIMEOUT_SECONDS = 30.0
# A watch with no timeoutSeconds is ended by the server after 5-10 min (server-facts §8.4);
# reading nothing for longer than this means the connection is dead.
_WATCH_IDLE_SECONDS = 15 * 60
# Server-side apply; a JSON body is YAML, so objects go as they are.
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
_PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}


ClientRole = Literal["agent", "join", "cli"]


def user_agent(role: ClientRole | None = None) -> str:
    """``kubeboot/<version> (<role>)``, the User-Agent of every client kubeboot makes.

    One product token, like client-go's ``kubelet/v1.37.2 (linux/amd64) ...``, with the role
    as its comment, so a server's logs and audit events tell a joining node (``join``:
    discovery and the first CSR) from a running agent (``agent``) and an admin (``cli``).
    """
    return f"kubeboot/{__version__}" + (f" ({role})" if role else "")


class ApiUnreachable(Exception):
    """The API server did not answer (DNS, connect, TLS handshake, timeout, cut stream)."""


def resource_path(
    res: ResourceInfo,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """``/apis/<g>/<v>[/namespaces/<ns>]/<plural>[/<name>[/<sub>]]``, segments escaped."""
    parts = [res.gv.path]
    if res.namespaced and namespace:
        parts.append(f"namespaces/{quote(namespace, safe='')}")
    parts.append(res.plural)
    if name is not None:
        if not name:
            raise ValueError(f"an empty name is not a {res.kind} name")
        parts.append(quote(name, safe=""))
        if subresource:
            parts.append(quote(subresource, safe=""))
    elif subresource:
        raise ValueError("a subresource needs an object name")
    return "/".join(parts)


def error_from_response(http_code: int, body: bytes) -> StatusError:
    """The error a non-2xx answer stands for: its ``Status`` if it sent one, else by code."""
    status: Any = None
    try:
        status = json.loads(body)
    except ValueError:
        status = None
    if isinstance(status, dict) and status.get("kind") == "Status":
        return status_error_from_dict(status, http_code)
    text = body[:512].decode("utf-8", "replace").strip()
    message = f"the server responded with HTTP {http_code}" + (f": {text}" if text else "")
    return status_error_from_dict({"message": message}, http_code)


class WatchDecoder:
    """Splits a watch stream (newline-delimited JSON events) into events; no I/O.

    Bytes go in as they arrive, complete events come out. A line longer than ``max_line``
    raises, so a broken or hostile server cannot make the client buffer without bound.
    """

    def __init__(self, max_line: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self._buffer = bytearray()
        self._max_line = max_line

    def feed(self, data: bytes) -> list[WatchEventDict]:
        self._buffer += data
        events: list[WatchEventDict] = []
        while (end := self._buffer.find(b"\n")) >= 0:
            line = bytes(self._buffer[:end]).strip()
            del self._buffer[: end + 1]
            if line:
                events.append(self._decode(line))
        if len(self._buffer) > self._max_line:
            raise InternalError(f"watch event larger than {self._max_line} bytes")
        return events

    def finish(self) -> list[WatchEventDict]:
        """Events left when the stream ends (a last line without its newline)."""
        line = bytes(self._buffer).strip()
        self._buffer.clear()
        return [self._decode(line)] if line else []

    @staticmethod
    def _decode(line: bytes) -> WatchEventDict:
        try:
            event = json.loads(line)
        except ValueError as e:
            raise InternalError(f"watch stream sent a line that is not JSON: {e}") from e
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise InternalError("watch stream sent an event without a type")
        if event["type"] == "ERROR":
            status = event.get("object") or {}
            code = int(status.get("code") or 500) if isinstance(status, dict) else 500
            error = status_error_from_dict(status if isinstance(status, dict) else {}, code)
            if code == 410 and not isinstance(error, Expired):
                error = Expired(error.message)
            raise error
        return event


class HttpApiClient:
    """``ApiClient`` over one keep-alive aiohttp session; build with ``from_kubeconfig``."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        user_agent: str = f"kubeboot/{__version__}",
        linger: bool = True,
    ) -> None:
        self.config = config
        self._timeout = timeout
        self._max_body = max_body_bytes
        self._user_agent = user_agent
        # linger=False: close the session as soon as nothing is in flight, for a client
        # that talks rarely (the agent); see release_idle for why an idle session costs.
        self._linger = linger
        self._session: aiohttp.ClientSession | None = None
        # Requests and watches between send and release, per session. A session replaced
        # by ``reconfigure`` is closed when its last one ends (see there).
        self._in_flight: dict[aiohttp.ClientSession, int] = {}

    @classmethod
    def from_kubeconfig(
        cls, kubeconfig: str | None = None, *, context: str | None = None, **kwargs: Any
    ) -> HttpApiClient:
        return cls(load_client_config(kubeconfig, context=context), **kwargs)

    @property
    def server(self) -> str:
        return self.config.server

    async def __aenter__(self) -> HttpApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        sessions = {*self._in_flight, *([self._session] if self._session else [])}
        self._session = None
        self._in_flight.clear()
        for session in sessions:
            await session.close()

    async def reconfigure(self, config: ClientConfig) -> None:
        """Use new credentials (a rotated client certificate) from the next request on.

        New requests go out on a new session. The old session is closed at once if it is
        idle, else when its last request or watch ends: a watch in flight keeps its
        connection (made with the old, still valid certificate) until the server ends it
        (``timeoutSeconds``), instead of being cut. Cutting it is what the kubelet does, but
        here it would stall: on Python < 3.12.8 closing a TLS transport waits up to 30 s for
        the peer's close_notify before the reader sees the end. Everyone holding this client
        keeps a working client.
        """
        self.config = config
        old, self._session = self._session, None
        if old is not None and not self._in_flight.get(old):
            self._in_flight.pop(old, None)
            await old.close()

    async def release_idle(self) -> bool:
        """Close the session if nothing is in flight; the next request opens a new one.

        For a client that will sit idle for a long time (the agent between rotations): it
        then holds no connection and no timer (aiohttp's closed-transport cleanup wakes every
        2 s for as long as a connector lives). Returns whether it closed anything.
        """
        session = self._session
        if session is None or self._in_flight.get(session):
            return False
        self._session = None
        self._in_flight.pop(session, None)
        await session.close()
        return True

    def _acquire(self) -> aiohttp.ClientSession:
        session = self._get_session()
        self._in_flight[session] = self._in_flight.get(session, 0) + 1
        return session

    async def _release(self, session: aiohttp.ClientSession) -> None:
        left = self._in_flight.get(session, 0) - 1
        if left > 0:
            self._in_flight[session] = left
            return
        self._in_flight.pop(session, None)
        if session is not self._session:  # replaced by reconfigure (or closed): finish it
            await session.close()
        elif not self._linger:
            self._session = None
            await session.close()

    # -- the ApiClient protocol ------------------------------------------------------------

    async def get(self, res: ResourceInfo, name: str, namespace: str | None = None) -> JsonObject:
        return await self.request_json("GET", resource_path(res, namespace, name))

    async def list(
        self,
        res: ResourceInfo,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 0,
        continue_token: str | None = None,
        resource_version: str | None = None,
    ) -> JsonObject:
        params = _params(
            labelSelector=label_selector,
            fieldSelector=field_selector,
            limit=str(limit) if limit else None,
            resourceVersion=resource_version,
        )
        if continue_token:
            params["continue"] = continue_token
        return await self.request_json("GET", resource_path(res, namespace), params=params)

    async def create(
        self, res: ResourceInfo, obj: JsonObject, namespace: str | None = None
    ) -> JsonObject:
        ns = namespace or _namespace_of(res, obj)
        return await self.request_json("POST", resource_path(res, ns), body=obj)

    async def update(
        self,
        res: ResourceInfo,
        obj: JsonObject,
        namespace: str | None = None,
        *,
        subresource: str | None = None,
    ) -> JsonObject:
        name = str((obj.get("metadata") or {}).get("name") or "")
        ns = namespace or _namespace_of(res, obj)
        return await self.request_json("PUT", resource_path(res, ns, name, subresource), body=obj)

    async def patch(
        self,
        res: ResourceInfo,
        name: str,
        patch: Any,
        patch_type: PatchType = "merge",
        namespace: str | None = None,
        *,
        subresource: str | None = None,
    ) -> JsonObject:
        return await self.request_json(
            "PATCH",
            resource_path(res, namespace, name, subresource),
            body=patch,
            content_type=_PATCH_CONTENT_TYPES[patch_type],
        )

    async def apply(
        self,
        res: ResourceInfo,
        obj: JsonObject,
        namespace: str | None = None,
        *,
        field_manager: str,
        force: bool = False,
    ) -> JsonObject:
        name = str((obj.get("metadata") or {}).get("name") or "")
        ns = namespace or _namespace_of(res, obj)
        params = {"fieldManager": field_manager, **({"force": "true"} if force else {})}
        return await self.request_json(
            "PATCH",
            resource_path(res, ns, name, None),
            params=params,
            body=obj,  # JSON is YAML
            content_type=APPLY_CONTENT_TYPE,
        )

    async def delete(
        self,
        res: ResourceInfo,
        name: str,
        namespace: str | None = None,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
    ) -> JsonObject:
        body: JsonObject | None = None
        preconditions = _params(uid=uid, resourceVersion=resource_version)
        if preconditions:
            body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": preconditions}
        return await self.request_json("DELETE", resource_path(res, namespace, name), body=body)

    async def watch(
        self,
        res: ResourceInfo,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = False,
    ) -> AsyncGenerator[WatchEventDict, None]:
        params = _params(
            watch="true",
            resourceVersion=resource_version,
            labelSelector=label_selector,
            fieldSelector=field_selector,
            timeoutSeconds=str(timeout_seconds) if timeout_seconds is not None else None,
            allowWatchBookmarks="true" if allow_bookmarks else None,
        )
        idle = (timeout_seconds + 30) if timeout_seconds is not None else _WATCH_IDLE_SECONDS
        timeout = aiohttp.ClientTimeout(total=None, connect=self._timeout, sock_read=idle)
        decoder = WatchDecoder(self._max_body)
        async with self._open("GET", resource_path(res, namespace), params, timeout) as resp:
            try:
                async for chunk in resp.content.iter_any():
                    for event in decoder.feed(chunk):
                        yield event
            except (aiohttp.ClientError, TimeoutError) as e:
                raise ApiUnreachable(f"watch ended: {_cause(e, self.server)}") from e
            for event in decoder.finish():
                yield event

    # -- raw access (discovery, /healthz) -------------------------------------------------

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> JsonObject:
        data = await self.request_bytes(
            method, path, params=params, body=body, content_type=content_type
        )
        try:
            obj = json.loads(data) if data else {}
        except ValueError as e:
            raise InternalError(f"{method} {path}: the server sent invalid JSON: {e}") from e
        if not isinstance(obj, dict):
            raise InternalError(f"{method} {path}: the server sent JSON that is not an object")
        return obj

    async def request_bytes(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> bytes:
        """One request; the raw 2xx body, or the error the server (or its absence) means."""
        payload = None if body is None else json.dumps(body).encode()
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        async with self._open(method, path, params, timeout, payload, content_type) as resp:
            try:
                return await self._read_body(resp)
            except (aiohttp.ClientError, TimeoutError) as e:
                raise ApiUnreachable(f"{_cause(e, self.server)} ({method} {path})") from e

    # -- internals --------------------------------------------------------------------------

    def _open(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        limits: aiohttp.ClientTimeout,
        payload: bytes | None = None,
        content_type: str = "application/json",
    ) -> _Response:
        return _Response(self, method, path, params, limits, payload, content_type)

    async def _send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        limits: aiohttp.ClientTimeout,
        payload: bytes | None,
        content_type: str,
    ) -> aiohttp.ClientResponse:
        """Send, retrying once with refreshed credentials after a 401 (tokenFile, exec)."""
        auth = await self.config.auth.value()
        resp = await self._send_once(
            session, method, path, params, limits, payload, content_type, auth
        )
        if resp.status == 401 and self.config.auth.refreshable:
            resp.release()
            auth = await self.config.auth.refresh()
            resp = await self._send_once(
                session, method, path, params, limits, payload, content_type, auth
            )
        if resp.status >= 300:
            try:
                body = await self._read_body(resp)
            except (aiohttp.ClientError, TimeoutError) as e:
                raise ApiUnreachable(f"{_cause(e, self.server)} ({method} {path})") from e
            finally:
                resp.release()
            raise error_from_response(resp.status, body)
        return resp

    async def _send_once(
        self,
        session: aiohttp.ClientSession,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        limits: aiohttp.ClientTimeout,
        payload: bytes | None,
        content_type: str,
        auth: str | None,
    ) -> aiohttp.ClientResponse:
        headers = {"Accept": "application/json", "User-Agent": self._user_agent}
        if payload is not None:
            headers["Content-Type"] = content_type
        if auth:
            headers["Authorization"] = auth
        ssl_arg: ssl.SSLContext | bool = self.config.ssl_context or True
        try:
            return await session.request(
                method,
                self.server + path,
                params=dict(params or {}),
                data=payload,
                headers=headers,
                timeout=limits,
                ssl=ssl_arg,
                server_hostname=self.config.tls_server_name,
                proxy=self.config.proxy,
                allow_redirects=False,
            )
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError, OSError) as e:
            raise ApiUnreachable(f"{_cause(e, self.server)} ({method} {path})") from e

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Connections are made on demand; the session is created inside the loop.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=16, enable_cleanup_closed=True),
                trust_env=self.config.proxy is None,
            )
        return self._session

    async def _read_body(self, resp: aiohttp.ClientResponse) -> bytes:
        if resp.content_length is not None and resp.content_length > self._max_body:
            raise InternalError(f"response of {resp.content_length} bytes exceeds the limit")
        chunks = bytearray()
        async for chunk in resp.content.iter_any():
            chunks += chunk
            if len(chunks) > self._max_body:
                raise InternalError(f"response larger than {self._max_body} bytes")
        return bytes(chunks)


class _Response:
    """``async with``: send the request, give the 2xx response, always release it."""

    def __init__(
        self,
        client: HttpApiClient,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        limits: aiohttp.ClientTimeout,
        payload: bytes | None,
        content_type: str,
    ) -> None:
        self._args = (method, path, params, limits, payload, content_type)
        self._client = client
        self._resp: aiohttp.ClientResponse | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        self._session = self._client._acquire()
        try:
            self._resp = await self._client._send(self._session, *self._args)
        except BaseException:
            await self._client._release(self._session)
            raise
        return self._resp

    async def __aexit__(self, *exc: object) -> None:
        if self._resp is not None:
            self._resp.release()
        if self._session is not None:
            await self._client._release(self._session)


def _params(**values: str | None) -> dict[str, str]:
    return {k: v for k, v in values.items() if v is not None}


def _namespace_of(res: ResourceInfo, obj: Mapping[str, Any]) -> str | None:
    if not res.namespaced:
        return None
    ns = (obj.get("metadata") or {}).get("namespace")
    return str(ns) if ns else None


def _cause(e: BaseException, server: str) -> str:
    """What went wrong, for a person: "connection refused to https://10.0.0.1:6443", not
    aiohttp's ``ClientConnectorError … ssl:<ssl.SSLContext object at 0x…>``."""
    if isinstance(e, aiohttp.ClientConnectorCertificateError):
        return f"the TLS certificate of {server} is not trusted: {e.certificate_error}"
    if isinstance(e, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve the host of {server}: {e.os_error.strerror or e.os_error}"
    if isinstance(e, aiohttp.ClientConnectorError):
        os_error = e.os_error
        if isinstance(os_error, ConnectionRefusedError) or os_error.errno == errno.ECONNREFUSED:
            return f"connection refused to {server}"
        if isinstance(os_error, ssl.SSLError):
            return f"TLS handshake with {server} failed: {os_error.reason or os_error}"
        return f"cannot connect to {server}: {os_error.strerror or os_error}"
    if isinstance(e, ssl.SSLError):
        return f"TLS with {server} failed: {e.reason or e}"
    if isinstance(e, aiohttp.ServerDisconnectedError):
        return f"{server} closed the connection"
    if isinstance(e, TimeoutError):
        return f"no answer from {server} in time"
    text = str(e)
    return f"{server}: {type(e).__name__}: {text}" if text else f"{server}: {type(e).__name__}"
