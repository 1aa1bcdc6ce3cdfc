"""``kubeboot certs issued`` and ``kubeboot certs revoke``: the issuance ledger and revocation.

Both work through the API (``--kubeconfig``) against a kubeboot server, whose
``ledger.kubeboot.io/v1`` group holds the ledger (docs/beyond-upstream.md):

* ``issued`` lists ``IssuedCertificate`` entries (``--node``, ``--expiring-within``), marking
  revoked ones, as a table (``-o wide`` adds the request's facts) or JSON/YAML;
* ``revoke --serial S`` or ``--node N`` creates ``CertificateRevocation`` objects (every
  replica's authenticator refuses those certificates at once); ``--deny-rejoin`` with
  ``--node`` also creates a ``RejoinDenial``. Revoking alone does not stop a node from
  joining again with a valid bootstrap token, and the command says so.

The table is a pure function of the listed objects (:func:`issued_table`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from kubeboot.cli.commandline import UpstreamCommand
from kubeboot.cli.flagtypes import GoDuration
from kubeboot.cli.options import (
    CommandError,
    KubeconfigRef,
    kubeconfig_options,
    output_option,
    run_api,
)
from kubeboot.cli.output import dump, tabulate
from kubeboot.client.http import HttpApiClient
from kubeboot.clock import SystemClock, parse_time
from kubeboot.durations import short_human_duration
from kubeboot.ledger.entries import rejoin_denial
from kubeboot.ledger.revoke import Revoked, issued_entries, revoke, revoke_node
from kubeboot.resources.ledger import (
    ISSUED_CERTIFICATES,
    REJOIN_DENIALS,
    REVOCATIONS,
    parse_serial,
    serial_name,
)
from kubeboot.resources.status import AlreadyExists, NotFound

__all__ = ["expiring_soon", "issued", "issued_table", "revoke_command"]

JsonObj = dict[str, Any]


def expiring_soon(
    items: Sequence[JsonObj], within: dt.timedelta, now: dt.datetime
) -> list[JsonObj]:
    """Entries whose certificate expires within ``within`` from ``now`` (expired ones too)."""
    return [i for i in items if _not_after(i) <= now + within]


def _not_after(item: JsonObj) -> dt.datetime:
    try:
        return parse_time(str((item.get("spec") or {}).get("notAfter") or ""))
    except ValueError:
        return dt.datetime.max.replace(tzinfo=dt.UTC)


def _status(item: JsonObj, revoked: set[str], now: dt.datetime) -> str:
    if item["metadata"]["name"] in revoked:
        return "Revoked"
    return "Expired" if _not_after(item) <= now else "Valid"


def issued_table(
    items: Sequence[JsonObj], revoked: set[str], now: dt.datetime, *, wide: bool = False
) -> str:
    header = ["SERIAL", "NODE", "SUBJECT", "SIGNER", "NOT AFTER", "EXPIRES IN", "STATUS"]
    if wide:
        header += ["CSR", "REQUESTOR", "APPROVER", "SOURCE", "SANS"]
    rows = []
    for item in sorted(items, key=_not_after):
        spec = item.get("spec") or {}
        row = [
            str(spec.get("serialNumber", "")),
            str(spec.get("nodeName") or "<none>"),
            str(spec.get("subject", "")),
            str(spec.get("signerName", "")),
            str(spec.get("notAfter", "")),
            short_human_duration(_not_after(item) - now),
            _status(item, revoked, now),
        ]
        if wide:
            sans = [*(spec.get("dnsNames") or []), *(spec.get("ipAddresses") or [])]
            row += [
                str(spec.get("csrName") or "<none>"),
                str(spec.get("requestingUser") or "<none>"),
                str(spec.get("approver") or "<unknown>"),
                str(spec.get("sourceAddress") or "<unknown>"),
                ",".join(sans) or "<none>",
            ]
        rows.append(row)
    return tabulate(header, rows)


@click.command(cls=UpstreamCommand)
@click.option(
    "--node", default=None, help="Only certificates of this node (CN system:node:<node>)."
)
@click.option(
    "--expiring-within",
    type=GoDuration(),
    default=None,
    help="Only certificates that expire within this Go duration (expired ones included), "
    "e.g. 720h.",
)
@output_option("table", "wide", "json", "yaml", default="table")
@kubeconfig_options
def issued(
    node: str | None,
    expiring_within: dt.timedelta | None,
    output: str,
    kubeconfig: Path | None,
    context: str | None,
) -> None:
    """List the certificates the cluster issued (the ledger; kubeboot servers only).

    \b
    Example:
      kubeboot certs issued --node worker-1 --expiring-within 720h -o wide
    """
    kube = KubeconfigRef(kubeconfig, context)

    async def work(client: HttpApiClient) -> tuple[list[JsonObj], set[str]]:
        items = [e async for e in issued_entries(client, node=node)]
        revocations = await client.list(REVOCATIONS)
        return items, {r["metadata"]["name"] for r in revocations.get("items") or []}

    try:
        items, revoked = run_api(kube, work)
    except CommandError as exc:
        if isinstance(exc.__cause__, NotFound):
            raise CommandError(
                "this server has no issuance ledger (ledger.kubeboot.io); it is a kubeboot "
                "server feature (docs/beyond-upstream.md)"
            ) from exc
        raise
    now = SystemClock().now()
    if expiring_within is not None:
        items = expiring_soon(items, expiring_within, now)
    if output in ("json", "yaml"):
        listed = {
            "apiVersion": ISSUED_CERTIFICATES.api_version,
            "kind": ISSUED_CERTIFICATES.list_kind,
            "metadata": {},
            "items": items,
        }
        click.echo(dump(listed, output), nl=False)
    elif items:
        click.echo(issued_table(items, revoked, now, wide=output == "wide"), nl=False)
    else:
        click.echo("No certificates found", err=True)


def _report(results: Sequence[Revoked]) -> None:
    for r in results:
        state = "was already revoked" if r.already else "revoked"
        click.echo(f"certificate {r.serial} {state}")


@click.command(name="revoke", cls=UpstreamCommand)
@click.option("--serial", default=None, help="Serial number (hex, as `openssl x509 -serial`).")
@click.option("--node", default=None, help="Revoke every unexpired certificate of this node.")
@click.option("--reason", default="", help="Why; kept in the revocation and told to the client.")
@click.option(
    "--deny-rejoin",
    is_flag=True,
    default=False,
    help="With --node: also refuse every new CSR for the node (a RejoinDenial).",
)
@kubeconfig_options
def revoke_command(
    serial: str | None,
    node: str | None,
    reason: str,
    deny_rejoin: bool,
    kubeconfig: Path | None,
    context: str | None,
) -> None:
    """Revoke certificates: every kubeboot replica refuses them at once (401).

    Revoking does not stop a node from joining again with a valid bootstrap token (that is
    how a wiped machine comes back); --deny-rejoin refuses its CSRs as well.

    \b
    Example:
      kubeboot certs revoke --node worker-1 --reason "decommissioned" --deny-rejoin
      kubeboot certs revoke --serial 5f3a9c0e... --reason "key leaked"
    """
    if (serial is None) == (node is None):
        raise click.UsageError("give exactly one of --serial and --node")
    if deny_rejoin and node is None:
        raise click.UsageError("--deny-rejoin needs --node")
    kube = KubeconfigRef(kubeconfig, context)
    clock = SystemClock()

    async def by_serial(client: HttpApiClient, wanted: str) -> tuple[list[Revoked], bool]:
        try:
            entry = await client.get(ISSUED_CERTIFICATES, wanted)
        except NotFound:
            return [await revoke(client, {"serialNumber": wanted}, reason)], False
        return [await revoke(client, entry["spec"], reason)], True

    async def by_node(client: HttpApiClient, name: str) -> tuple[list[Revoked], bool]:
        results = await revoke_node(client, name, reason, clock)
        if deny_rejoin:
            with contextlib.suppress(AlreadyExists):  # denied already: nothing to add
                await client.create(REJOIN_DENIALS, rejoin_denial(name, reason))
        return results, True

    if serial is not None:
        try:
            wanted = serial_name(parse_serial(serial))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--serial") from exc
        results, known = run_api(kube, lambda client: by_serial(client, wanted))
        _report(results)
        if not known:
            click.echo(
                f"warning: serial {wanted} is not in the issuance ledger; revoked anyway",
                err=True,
            )
        return
    assert node is not None
    results, _ = run_api(kube, lambda client: by_node(client, node))
    _report(results)
    if not results:
        click.echo(f"node {node} has no unexpired certificate in the issuance ledger", err=True)
    if deny_rejoin:
        click.echo(f"node {node} may not join again (rejoindenials.ledger.kubeboot.io/{node})")
    else:
        click.echo(
            f"note: node {node} can still join again with a valid bootstrap token (that is "
            "how a wiped machine comes back); add --deny-rejoin to refuse its CSRs",
            err=True,
        )
