"""``kubeboot approver``: run the serving-certificate policy approver against any cluster.

The controller is :mod:`kubeboot.controllers.servingapprover` (rules there, and in
``docs/cli.md``); this module only turns flags into a :class:`ServingPolicy`, connects with
the kubeconfig and prints one line per decision. ``--once`` reviews the CSRs pending now
and exits (for scripts and cron); without it the approver watches until interrupted.

The identity it runs as needs: ``get``/``list``/``watch`` on certificatesigningrequests,
``update`` on ``certificatesigningrequests/approval``, ``approve`` on ``signers``
``kubernetes.io/kubelet-serving``, and ``get`` on nodes (``docs/cli.md`` has the RBAC).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import click

from kubeboot.cli.commandline import UpstreamCommand
from kubeboot.cli.options import KubeconfigRef, kubeconfig_options, run_api
from kubeboot.client.http import HttpApiClient
from kubeboot.client.interface import JsonObject
from kubeboot.controllers.certificates import CSR_RESOURCE
from kubeboot.controllers.servingapprover import (
    FIELD_SELECTOR,
    ServingPolicy,
    Verdict,
    apply_verdict,
    review,
    run_servingapprover,
)

__all__ = ["approver", "describe"]

log = logging.getLogger("kubeboot.approver")


def describe(csr: JsonObject, verdict: Verdict) -> str:
    name = (csr.get("metadata") or {}).get("name", "")
    verb = {"approve": "approved", "deny": "denied", "skip": "skipped", "wait": "waiting on"}
    return f"{verb[verdict.action]} csr {name}: {verdict.reason}"


async def review_pending_once(client: HttpApiClient, policy: ServingPolicy) -> list[str]:
    listed = await client.list(CSR_RESOURCE, field_selector=FIELD_SELECTOR)
    lines = []
    for csr in listed.get("items") or []:
        verdict = await review(client, csr, policy)
        if verdict.reason.startswith("already") or verdict.reason.startswith("certificate"):
            continue
        await apply_verdict(client, csr, verdict)
        lines.append(describe(csr, verdict))
    return lines


@click.command(cls=UpstreamCommand)
@click.option(
    "--allowed-dns-names",
    type=click.IntRange(1, 1000),
    default=1,
    show_default=True,
    help="Most DNS SANs a serving CSR may carry.",
)
@click.option(
    "--max-expiration-sec",
    type=click.IntRange(0, 367 * 24 * 3600),
    default=367 * 24 * 3600,
    show_default=True,
    help="Largest spec.expirationSeconds approved.",
)
@click.option(
    "--ignore-non-system-node",
    is_flag=True,
    help="Skip (instead of deny) CSRs whose requester is not system:node:<name>.",
)
@click.option(
    "--skip-deny-step",
    is_flag=True,
    help="Never deny: leave non-compliant CSRs pending for a human.",
)
@click.option("--once", is_flag=True, help="Review the pending CSRs once and exit.")
@kubeconfig_options
def approver(
    allowed_dns_names: int,
    max_expiration_sec: int,
    ignore_non_system_node: bool,
    skip_deny_step: bool,
    once: bool,
    kubeconfig: Path | None,
    context: str | None,
) -> None:
    """Approve kubelet-serving CSRs whose SANs are the requesting node's own addresses.

    Approves when the requester is system:node:<n> in system:nodes, the CN is
    system:node:<n>, and every DNS/IP SAN is among Node <n>'s status.addresses;
    denies (with the reason in the condition) otherwise.

    \b
    Example:
      kubeboot approver --kubeconfig ./kubeboot-data/admin.conf --once
    """
    policy = ServingPolicy(
        allowed_dns_names=allowed_dns_names,
        max_expiration_seconds=max_expiration_sec,
        ignore_non_system_node=ignore_non_system_node,
        skip_deny=skip_deny_step,
    )
    kube = KubeconfigRef(kubeconfig, context)
    if once:
        lines = run_api(kube, lambda client: review_pending_once(client, policy))
        for line in lines:
            click.echo(line)
        if not lines:
            click.echo("no pending kubelet-serving CSRs")
        return

    def report(csr: JsonObject, verdict: Verdict) -> None:
        if verdict.action == "wait":
            log.info(describe(csr, verdict))
        else:
            click.echo(describe(csr, verdict))

    async def watch(client: HttpApiClient) -> None:
        log.info(f"watching kubelet-serving CSRs on {client.server}")
        await run_servingapprover(client, policy, report)

    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        run_api(kube, watch)
