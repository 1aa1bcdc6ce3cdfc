"""``kubeboot console``: the web console (:mod:`kubeboot.console`) over any cluster.

Connects with the kubeconfig (kubeboot or any Kubernetes API server), asks the server who
that identity is (a SelfSubjectReview; the context name when the server does not answer
one), binds 127.0.0.1 by default, prints the URL with the access token and serves until
interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import click

from kubeboot.cli.approver import build_policy, policy_options
from kubeboot.cli.commandline import UpstreamCommand
from kubeboot.cli.options import KubeconfigRef, kubeconfig_options, run_api
from kubeboot.client.http import HttpApiClient
from kubeboot.clock import SystemClock
from kubeboot.console.app import ConsoleState, start_console
from kubeboot.controllers.servingpolicy import ServingPolicy
from kubeboot.resources.registry import find_resource
from kubeboot.resources.status import StatusError

__all__ = ["console", "identity_of"]

log = logging.getLogger("kubeboot.console")
_REVIEWS = find_resource("authentication.k8s.io", "v1", "selfsubjectreviews")
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


async def identity_of(client: HttpApiClient, fallback: str) -> str:
    """``user (groups)`` as the server sees the kubeconfig's credentials."""
    assert _REVIEWS is not None
    try:
        review = await client.create(_REVIEWS, {"apiVersion": "authentication.k8s.io/v1"})
    except StatusError:
        return fallback
    info = (review.get("status") or {}).get("userInfo") or {}
    groups = ", ".join(g for g in info.get("groups") or [] if g != "system:authenticated")
    return f"{info.get('username', fallback)}" + (f" ({groups})" if groups else "")


async def serve(client: HttpApiClient, policy: ServingPolicy, host: str, port: int) -> None:
    identity = await identity_of(client, client.server)
    token = ConsoleState.new_access_token()
    runner, url = await start_console(
        lambda hosts: ConsoleState(client, policy, SystemClock(), identity, token, hosts),
        host,
        port,
    )
    click.echo(f"kubeboot console for {client.server}, acting as {identity}")
    click.echo(f"open {url}")
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


@click.command(cls=UpstreamCommand)
@click.option(
    "--address",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but loopback lets other machines reach a page that "
    "acts with your credentials (the access token still guards it).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8001,
    show_default=True,
    help="Port to listen on (0: any free port; the printed URL says which).",
)
@policy_options
@kubeconfig_options
def console(
    address: str,
    port: int,
    policy_source: str,
    allowed_dns_names: int | None,
    max_expiration_sec: int | None,
    ignore_non_system_node: bool | None,
    skip_deny_step: bool | None,
    kubeconfig: Path | None,
    context: str | None,
) -> None:
    """Serve a web console: pending CSRs with approve/deny, tokens, certificate expiry.

    Works against any cluster through the kubeconfig, with its credentials: the page shows
    what that identity may read, and its buttons act as that identity. The pending
    kubelet-serving CSRs carry the policy approver's explanation (--policy: the rules of
    `kubeboot approver`). Open the printed URL: it carries the access token.

    \b
    Example:
      kubeboot console --kubeconfig ./kubeboot-data/admin.conf --policy '{ipEvidence: true}'
    """
    if address not in _LOOPBACK:
        log.warning("console listening on %s: reachable beyond this machine", address)
    policy = build_policy(
        policy_source, allowed_dns_names, max_expiration_sec, ignore_non_system_node, skip_deny_step
    )
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        run_api(KubeconfigRef(kubeconfig, context), lambda c: serve(c, policy, address, port))
