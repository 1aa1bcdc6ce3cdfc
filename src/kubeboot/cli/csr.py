"""``kubeboot csr list|approve|deny``: ``kubectl get csr`` / ``kubectl certificate approve|deny``
with selection by node and signer.

Selection (:func:`select_csrs`, pure): CSRs named on the command line, or, without names,
every CSR that matches ``--node`` (the subject CN ``system:node:<name>``, which is also how
bootstrap-token CSRs name their node) and ``--signer``. ``approve``/``deny`` without names
act only on *pending* CSRs and need at least one selector (``--node``, ``--signer`` or
``--all-pending``), so a bare ``kubeboot csr approve`` never approves everything.

Decision (:func:`approval_update`, pure): the condition kubectl writes (type, status
``True``, reason, message, ``lastUpdateTime``) appended to the conditions, sent to the
``/approval`` subresource with the resourceVersion read (a Conflict re-reads and retries).
A CSR that already carries the *opposite* decision is refused with an explanation (the
server would refuse too: Approved and Denied are mutually exclusive and cannot be removed);
one that already carries the same decision is left as it is.

``--wait`` polls until the selection finds something (the serving CSR of a node that is
just starting), printing a progress line on stderr.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from kubeboot.cli.commandline import UpstreamCommand, UpstreamGroup
from kubeboot.cli.flagtypes import GoDuration
from kubeboot.cli.options import (
    CommandError,
    KubeconfigRef,
    Progress,
    kubeconfig_options,
    output_option,
    run_api,
)
from kubeboot.cli.output import dump, tabulate
from kubeboot.client.http import HttpApiClient
from kubeboot.clock import SystemClock, format_time, parse_time
from kubeboot.controllers.certificates import CSR_RESOURCE, conditions, has_certificate, request_pem
from kubeboot.durations import human_duration
from kubeboot.pki.csr import CsrError, csr_facts, parse_csr_pem
from kubeboot.resources.status import Conflict, NotFound

__all__ = [
    "APPROVE",
    "DENY",
    "AlreadyDecided",
    "Decision",
    "approval_update",
    "condition_summary",
    "csr",
    "csr_node_name",
    "csr_table",
    "is_pending",
    "select_csrs",
]

_QUALIFIED = "certificatesigningrequest.certificates.k8s.io"
_NODE_PREFIX = "system:node:"
_CONFLICT_RETRIES = 5


@dataclass(frozen=True, slots=True)
class Decision:
    condition: str  # "Approved" | "Denied"
    opposite: str
    verb: str  # "approved" | "denied"
    reason: str
    message: str


APPROVE = Decision(
    "Approved",
    "Denied",
    "approved",
    "KubebootApprove",
    "This CSR was approved by kubeboot csr approve.",
)
DENY = Decision(
    "Denied", "Approved", "denied", "KubebootDeny", "This CSR was denied by kubeboot csr deny."
)


class AlreadyDecided(Exception):
    """The CSR carries the opposite decision; the message explains what to do instead."""


def csr_node_name(obj: dict[str, Any]) -> str | None:
    """The node a CSR is for: its subject CN minus ``system:node:``; None if not a node's."""
    try:
        cn = csr_facts(parse_csr_pem(request_pem(obj))).common_name
    except (CsrError, ValueError):
        return None
    return cn.removeprefix(_NODE_PREFIX) if cn.startswith(_NODE_PREFIX) else None


def is_pending(obj: dict[str, Any]) -> bool:
    decided = any(c.get("type") in ("Approved", "Denied", "Failed") for c in conditions(obj))
    return not decided and not has_certificate(obj)


def condition_summary(obj: dict[str, Any]) -> str:
    """kubectl's CONDITION column (server-facts §4.9): ``Approved,Issued``, ``Pending``…"""
    types = {c.get("type") for c in conditions(obj)}
    summary = "Denied" if "Denied" in types else "Approved" if "Approved" in types else "Pending"
    if "Failed" in types:
        summary += ",Failed"
    if has_certificate(obj):
        summary += ",Issued"
    return summary


def select_csrs(
    items: Sequence[dict[str, Any]],
    names: Sequence[str],
    *,
    node: str | None,
    signer: str | None,
    pending_only: bool,
) -> list[dict[str, Any]]:
    by_name = {str(o.get("metadata", {}).get("name")): o for o in items}
    if names:
        chosen = [by_name[n] for n in names if n in by_name]
    else:
        chosen = sorted(items, key=lambda o: str(o.get("metadata", {}).get("name")))
    out = []
    for obj in chosen:
        if signer is not None and (obj.get("spec") or {}).get("signerName") != signer:
            continue
        if node is not None and csr_node_name(obj) != node:
            continue
        if pending_only and not is_pending(obj):
            continue
        out.append(obj)
    return out


def approval_update(
    obj: dict[str, Any], decision: Decision, now: dt.datetime
) -> dict[str, Any] | None:
    """The object to PUT to ``/approval``; None if it already has this decision.

    Raises :class:`AlreadyDecided` when it carries the opposite one.
    """
    name = str(obj.get("metadata", {}).get("name"))
    types = {c.get("type") for c in conditions(obj)}
    if decision.opposite in types:
        if decision.condition == "Approved":
            raise AlreadyDecided(
                f"{_QUALIFIED}/{name} is already Denied and cannot be approved: Approved and "
                "Denied are mutually exclusive and a Denied condition cannot be removed. The "
                "node has to send a new request (restart its agent; `kubeboot csr list "
                "--all-pending` shows it), then approve that one"
            )
        raise AlreadyDecided(
            f"{_QUALIFIED}/{name} is already Approved and cannot be denied: an Approved "
            "condition cannot be removed. To stop trusting the node, delete its Node object "
            "and revoke its credentials instead"
        )
    if decision.condition in types:
        return None
    updated = copy.deepcopy(obj)
    status = updated.setdefault("status", {})
    status["conditions"] = [
        *conditions(updated),
        {
            "type": decision.condition,
            "status": "True",
            "reason": decision.reason,
            "message": decision.message,
            "lastUpdateTime": format_time(now),
        },
    ]
    return updated


def csr_table(items: Sequence[dict[str, Any]], now: dt.datetime) -> str:
    rows = []
    for obj in items:
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        created = meta.get("creationTimestamp")
        age = human_duration(now - parse_time(created)) if created else "<unknown>"
        seconds = spec.get("expirationSeconds")
        requested = human_duration(dt.timedelta(seconds=int(seconds))) if seconds else "<none>"
        rows.append(
            [
                str(meta.get("name", "")),
                age,
                str(spec.get("signerName") or "<none>"),
                str(spec.get("username", "")),
                requested,
                condition_summary(obj),
            ]
        )
    header = ["NAME", "AGE", "SIGNERNAME", "REQUESTOR", "REQUESTEDDURATION", "CONDITION"]
    return tabulate(header, rows, padding=3)


def _print(items: Sequence[dict[str, Any]], output: str) -> None:
    if output == "table":
        if items:
            click.echo(csr_table(items, SystemClock().now()), nl=False)
        else:
            click.echo("No resources found", err=True)
        return
    if output == "name":
        for obj in items:
            click.echo(f"{_QUALIFIED}/{obj['metadata']['name']}")
        return
    listed = {"apiVersion": "v1", "kind": "List", "metadata": {}, "items": list(items)}
    click.echo(dump(listed, output), nl=False)


def selection_options(f: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--node", default=None, help="Only CSRs for this node (CN system:node:<node>)."
            ),
            click.option(
                "--signer",
                default=None,
                help="Only CSRs for this signerName, e.g. kubernetes.io/kubelet-serving.",
            ),
            click.option("--all-pending", is_flag=True, help="Select every pending CSR."),
            click.option(
                "--wait",
                type=GoDuration(),
                default="0s",
                show_default=True,
                help="Wait up to this long (Go duration) until the selection is not empty.",
            ),
        ]
    ):
        f = option(f)
    return f


async def _select(
    client: HttpApiClient,
    names: Sequence[str],
    node: str | None,
    signer: str | None,
    pending_only: bool,
    wait: dt.timedelta,
) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait.total_seconds()
    what = ", ".join(
        p
        for p in (
            " ".join(names),
            f"node {node}" if node else "",
            f"signer {signer}" if signer else "",
        )
        if p
    )
    progress = Progress(f"waiting for {'pending ' if pending_only else ''}CSRs ({what or 'any'})")
    selector = f"spec.signerName={signer}" if signer else None
    while True:
        listed = await client.list(CSR_RESOURCE, field_selector=selector)
        chosen = select_csrs(
            listed.get("items") or [], names, node=node, signer=signer, pending_only=pending_only
        )
        complete = len(chosen) >= len(set(names)) if names else bool(chosen)
        if complete or loop.time() >= deadline:
            progress.done(f"{len(chosen)} found")
            return chosen
        progress.tick()
        await asyncio.sleep(min(1.0, max(0.0, deadline - loop.time())))


@click.group(cls=UpstreamGroup)
def csr() -> None:
    """List, approve and deny CertificateSigningRequests.

    \b
    Example (approve the serving certificate of node worker-1 when it asks):
      kubeboot csr approve --node worker-1 --signer kubernetes.io/kubelet-serving --wait 60s
    """


@csr.command(name="list")
@click.argument("names", nargs=-1)
@selection_options
@output_option("table", "json", "yaml", "name", default="table")
@kubeconfig_options
def list_csrs(
    names: tuple[str, ...],
    node: str | None,
    signer: str | None,
    all_pending: bool,
    wait: dt.timedelta,
    output: str,
    kubeconfig: Path | None,
    context: str | None,
) -> None:
    """List CSRs with kubectl's columns; --all-pending lists only pending ones.

    \b
    Example:
      kubeboot csr list --node worker-1 -o yaml
    """
    kube = KubeconfigRef(kubeconfig, context)

    async def work(client: HttpApiClient) -> list[dict[str, Any]]:
        return await _select(client, names, node, signer, all_pending, wait)

    items = run_api(kube, work)
    _print(items, output)
    missing = sorted(set(names) - {o["metadata"]["name"] for o in items})
    if missing and not (node or signer or all_pending):
        raise CommandError(
            f'{_QUALIFIED} "{missing[0]}" not found; `kubeboot csr list` shows the CSRs'
        )


def _decide_command(decision: Decision) -> click.Command:
    verb = "approve" if decision is APPROVE else "deny"

    @click.command(cls=UpstreamCommand, name=verb)
    @click.argument("names", nargs=-1)
    @selection_options
    @click.option("--reason", default=decision.reason, show_default=True, help="Condition reason.")
    @click.option(
        "--message", default=decision.message, show_default=True, help="Condition message."
    )
    @output_option("name", "json", "yaml", default="name")
    @kubeconfig_options
    def command(
        names: tuple[str, ...],
        node: str | None,
        signer: str | None,
        all_pending: bool,
        wait: dt.timedelta,
        reason: str,
        message: str,
        output: str,
        kubeconfig: Path | None,
        context: str | None,
    ) -> None:
        if not names and not (node or signer or all_pending):
            raise click.UsageError(
                f"name the CSRs to {verb}, or select pending ones with --node, --signer or "
                "--all-pending"
            )
        chosen_decision = dataclasses.replace(decision, reason=reason, message=message)
        kube = KubeconfigRef(kubeconfig, context)
        pending_only = not names

        async def work(client: HttpApiClient) -> tuple[list[dict[str, Any]], list[str]]:
            chosen = await _select(client, names, node, signer, pending_only, wait)
            errors: list[str] = []
            found = {o["metadata"]["name"] for o in chosen}
            errors.extend(
                f'{_QUALIFIED} "{n}" not found (or not selected by --node/--signer)'
                for n in names
                if n not in found
            )
            if not names and not chosen:
                if wait:
                    errors.append(f"no pending CSR matched the selection within {wait}")
                else:
                    click.echo("no pending CSR matches the selection", err=True)
            done = []
            for obj in chosen:
                try:
                    done.append(await _apply(client, obj, chosen_decision))
                except AlreadyDecided as e:
                    errors.append(str(e))
            return done, errors

        done, errors = run_api(kube, work)
        if output == "name":
            for obj in done:
                click.echo(f"{_QUALIFIED}/{obj['metadata']['name']} {decision.verb}")
        else:
            _print(done, output)
        if errors:
            for line in errors[:-1]:
                click.echo(f"error: {line}", err=True)
            raise CommandError(errors[-1])

    command.help = (
        f"{verb.capitalize()} CSRs by name, or every pending CSR that matches the selectors.\n\n"
        "Writes the /approval subresource with kubectl's condition shape.\n\n"
        "\b\nExample:\n"
        + (
            "  kubeboot csr approve --node worker-1 --signer kubernetes.io/kubelet-serving\n"
            if decision is APPROVE
            else "  kubeboot csr deny csr-abc12 --reason NotOurs --message 'unknown machine'\n"
        )
    )
    return command


async def _apply(client: HttpApiClient, obj: dict[str, Any], decision: Decision) -> dict[str, Any]:
    name = str(obj["metadata"]["name"])
    for _ in range(_CONFLICT_RETRIES):
        updated = approval_update(obj, decision, SystemClock().now())
        if updated is None:
            return obj
        try:
            return await client.update(CSR_RESOURCE, updated, subresource="approval")
        except Conflict:
            try:
                obj = await client.get(CSR_RESOURCE, name)
            except NotFound as e:
                raise AlreadyDecided(f'{_QUALIFIED} "{name}" was deleted meanwhile') from e
    raise CommandError(f"{_QUALIFIED}/{name} kept changing; try again")


csr.add_command(_decide_command(APPROVE))
csr.add_command(_decide_command(DENY))
