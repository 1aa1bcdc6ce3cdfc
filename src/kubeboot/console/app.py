"""The console's web server: aiohttp, one page, two actions, guarded three ways.

The console acts with the kubeconfig's credentials (often cluster-admin), so a request it
serves must come from the person who started it:

1. **Access token.** Start-up prints ``http://127.0.0.1:<port>/?token=<random>``; that URL
   sets an ``HttpOnly``, ``SameSite=Strict`` cookie holding the token and redirects to
   ``/``. Every other request needs the cookie (compared in constant time); without it the
   answer is 401. Binding to 127.0.0.1 alone would let any local user act as the admin.
2. **Host check.** Only ``Host`` values naming the bound address (or ``localhost``) are
   served, so a DNS-rebinding page cannot make the browser talk to the console as its own
   origin.
3. **CSRF.** Approve/deny are POST forms carrying a token derived from the access token
   (HMAC); a POST without it, or whose ``Origin`` is another site, is 403 and does nothing.
   The Strict cookie already keeps cross-site POSTs unauthenticated; the form token also
   covers browsers that ignore SameSite.

Responses carry a Content-Security-Policy that allows no script, no frame, no external
resource: the page is HTML and inline SVG with inline styles, nothing else.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from kubeboot.client.http import HttpApiClient
from kubeboot.client.interface import JsonObject
from kubeboot.clock import Clock
from kubeboot.console.model import (
    cert_spans_from_csrs,
    cert_spans_from_ledger,
    is_pending,
    recent_revocations,
    token_rows,
)
from kubeboot.console.pages import (
    Dashboard,
    PendingCsr,
    Section,
    render_dashboard,
    render_denied,
)
from kubeboot.controllers.certificates import CSR_RESOURCE, conditions, with_status
from kubeboot.controllers.servingapprover import explain
from kubeboot.controllers.servingpolicy import ServingPolicy
from kubeboot.pki.csr import KUBELET_SERVING_SIGNER
from kubeboot.resources import bootstrap_token as bt
from kubeboot.resources.ledger import ISSUED_CERTIFICATES, REVOCATIONS
from kubeboot.resources.registry import find_resource
from kubeboot.resources.status import StatusError

__all__ = [
    "COOKIE",
    "ConsoleState",
    "allowed_hosts",
    "build_console_app",
    "decision",
    "start_console",
]

log = logging.getLogger("kubeboot.console")

COOKIE = "kubeboot-console"
_SECRETS = find_resource("", "v1", "secrets")
_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# What kubectl writes for `kubectl certificate approve|deny`, with the console's name.
_DECISIONS = {
    "approve": ("Approved", "KubebootConsoleApprove", "This CSR was approved by kubeboot console."),
    "deny": ("Denied", "KubebootConsoleDeny", "This CSR was denied by kubeboot console."),
}


@dataclass
class ConsoleState:
    client: HttpApiClient
    policy: ServingPolicy
    clock: Clock
    identity: str
    access_token: str
    allowed_hosts: frozenset[str]

    @property
    def csrf_token(self) -> str:
        key = self.access_token.encode()
        return hmac.new(key, b"kubeboot-console-csrf", hashlib.sha256).hexdigest()

    @staticmethod
    def new_access_token() -> str:
        return secrets.token_urlsafe(24)


STATE = web.AppKey("console_state", ConsoleState)


def decision(csr: JsonObject, verb: str) -> JsonObject:
    """The CSR with the console's Approved/Denied condition appended (for ``/approval``)."""
    kind, reason, message = _DECISIONS[verb]
    condition = {"type": kind, "status": "True", "reason": reason, "message": message}
    return with_status(csr, conditions=[*conditions(csr), condition])


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


@web.middleware
async def _guard(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    state = request.app[STATE]
    if request.host not in state.allowed_hosts:
        return _html(render_denied(f"Host {request.host!r} is not this console's address."), 403)
    token = request.query.get("token")
    if request.method == "GET" and token is not None:
        if not hmac.compare_digest(token.encode(), state.access_token.encode()):
            return _html(render_denied("That access token is not this console's."), 401)
        redirect = web.HTTPSeeOther("/")
        redirect.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
        raise redirect
    cookie = request.cookies.get(COOKIE, "")
    if not hmac.compare_digest(cookie.encode(), state.access_token.encode()):
        return _html(
            render_denied(
                "Open the URL that `kubeboot console` printed (it carries the access token)."
            ),
            401,
        )
    response = await handler(request)
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Not no-referrer: with it Chrome sends "Origin: null" on the forms' POSTs, which the
    # CSRF check must refuse; same-origin keeps URLs from ever leaving for another site.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


async def _section(read: Awaitable[list[Any]]) -> Section[Any]:
    try:
        return Section(await read)
    except StatusError as exc:
        if exc.code == 404:
            return Section(available=False)
        return Section(error=f"{exc.code} {exc.reason}: {exc.message}")


async def _dashboard(request: web.Request) -> web.Response:
    state = request.app[STATE]
    client, now = state.client, state.clock.now()
    try:
        csrs: list[JsonObject] = (await client.list(CSR_RESOURCE)).get("items") or []
        csr_error = ""
    except StatusError as exc:
        csrs, csr_error = [], f"{exc.code} {exc.reason}: {exc.message}"

    async def pending() -> list[PendingCsr]:
        out = []
        for csr in (c for c in csrs if is_pending(c)):
            serving = (csr.get("spec") or {}).get("signerName") == KUBELET_SERVING_SIGNER
            why = await explain(client, csr, state.policy, state.clock) if serving else None
            out.append(PendingCsr(csr, why))
        return out

    async def tokens() -> list[Any]:
        assert _SECRETS is not None
        listed = await client.list(
            _SECRETS, bt.TOKEN_NAMESPACE, field_selector=f"type={bt.SECRET_TYPE}"
        )
        return token_rows(listed.get("items") or [], now)

    async def revocations() -> list[Any]:
        return (await client.list(REVOCATIONS)).get("items") or []

    async def ledger() -> list[Any]:
        return (await client.list(ISSUED_CERTIFICATES)).get("items") or []

    pending_section, token_section, revoked, entries = await asyncio.gather(
        _section(pending()), _section(tokens()), _section(revocations()), _section(ledger())
    )
    if csr_error:
        pending_section = Section(error=csr_error)
    if entries.available and not entries.error:
        serials = frozenset(str((r.get("spec") or {}).get("serialNumber")) for r in revoked.items)
        spans: Section[Any] = Section(cert_spans_from_ledger(entries.items, serials))
        source = "kubeboot's issuance ledger (revoked certificates left out)"
    else:
        spans = Section(error=csr_error) if csr_error else Section(cert_spans_from_csrs(csrs))
        source = "the certificates in CertificateSigningRequests"
    view = Dashboard(
        server=client.server,
        identity=state.identity,
        now=now,
        pending=pending_section,
        tokens=token_section,
        spans=spans,
        spans_source=source,
        revocations=Section(
            recent_revocations(revoked.items), revoked.error, available=revoked.available
        ),
        flash=request.query.get("done", ""),
        problem=request.query.get("problem", ""),
    )
    return _html(render_dashboard(view, state.csrf_token))


async def _decide(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    verb, name = request.match_info["verb"], request.match_info["name"]
    origin = request.headers.get("Origin")
    if origin is not None and origin.removeprefix("http://") not in state.allowed_hosts:
        return _html(render_denied(f"Cross-site request from {origin!r} refused."), 403)
    form = await request.post()
    token = str(form.get("csrf", ""))
    if not hmac.compare_digest(token.encode(), state.csrf_token.encode()):
        return _html(render_denied("Missing or wrong CSRF token: reload the page and retry."), 403)
    try:
        csr = await state.client.get(CSR_RESOURCE, name)
        await state.client.update(CSR_RESOURCE, decision(csr, verb), subresource="approval")
    except StatusError as exc:
        log.info("console: %s csr %s failed: %s", verb, name, exc.message)
        raise web.HTTPSeeOther(f"/?problem={quote(f'{verb} {name}: {exc.message}')}") from None
    done = "approved" if verb == "approve" else "denied"
    log.info("console: %s csr %s as %s", done, name, state.identity)
    raise web.HTTPSeeOther(f"/?done={quote(f'{done} {name}')}")


def build_console_app(state: ConsoleState) -> web.Application:
    # 64 KiB: the forms carry one token; nothing bigger is ever legitimate.
    app = web.Application(middlewares=[_guard], client_max_size=64 * 1024)
    app[STATE] = state
    app.router.add_get("/", _dashboard)
    app.router.add_post(r"/csrs/{name}/{verb:approve|deny}", _decide)
    return app


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """``Host`` values that name this console: the bound address, and localhost on loopback."""
    bracketed = f"[{host}]" if ":" in host else host
    names = {f"{bracketed}:{port}"}
    if host in ("127.0.0.1", "::1", "localhost"):
        names |= {f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"}
    return frozenset(names)


async def start_console(
    state_for: Callable[[frozenset[str]], ConsoleState], host: str, port: int
) -> tuple[web.AppRunner, str]:
    """Serve on ``host:port`` (0: any free port); the runner, and the URL with the token."""
    # The allowed Host values need the port, known only once bound: bind, then build.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    state = state_for(allowed_hosts(host, bound))
    runner = web.AppRunner(build_console_app(state), access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    bracketed = f"[{host}]" if ":" in host else host
    return runner, f"http://{bracketed}:{bound}/?token={state.access_token}"
