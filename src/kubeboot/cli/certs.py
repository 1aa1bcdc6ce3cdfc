"""``kubeboot certs``: the server's own certificates, as ``kubeadm certs`` shows and renews them.

* ``check-expiration`` prints kubeadm's two tables (``CERTIFICATE  EXPIRES  RESIDUAL TIME
  CERTIFICATE AUTHORITY  EXTERNALLY MANAGED``, then the CA table) with kubeadm's names
  (``admin.conf``, ``apiserver``; CA ``ca``), date format (``Jan 02, 2006 15:04 UTC``) and
  residual-time format (apimachinery's ``ShortHumanDuration``,
  :func:`kubeboot.durations.short_human_duration`: ``364d``, ``<invalid>`` once expired),
  laid out as Go's ``tabwriter`` does;
* ``renew <name|all>`` renews unconditionally, whatever the expiry (kubeadm's semantics), with
  a new key and the same subject and SANs; externally managed certificates are refused by
  name and skipped by ``all``. A running server needs no restart: it reloads the serving
  pair by itself, and ``admin.conf`` is read by each client.

It reads the files the server recorded in ``<data-dir>/pki/files.json`` at its last start
(so certificates given by flags are reported as externally managed), and works with the
server running or stopped.

The group is a table of subcommands (:data:`SUBCOMMANDS`), like ``kubeboot`` itself: another
``certs`` command is one more entry and one more module.
"""

from __future__ import annotations

import datetime as dt
import importlib
from pathlib import Path

import click

from kubeboot.api.server.config import DEFAULT_DATA_DIR
from kubeboot.cli.commandline import UpstreamCommand, UpstreamGroup
from kubeboot.cli.options import CommandError
from kubeboot.clock import SystemClock
from kubeboot.durations import short_human_duration
from kubeboot.pki.authority import CertificateAuthority
from kubeboot.pki.renewal import (
    ADMIN_CONF,
    APISERVER,
    CertificateFiles,
    ManagedCertificate,
    managed_certificates,
    renew_admin_conf,
    renew_serving,
)

__all__ = ["SUBCOMMANDS", "certs", "data_dir_option", "render_expiration"]

# name -> (module, attribute); the group loads a subcommand only when it runs.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "check-expiration": ("kubeboot.cli.certs", "check_expiration"),
    "renew": ("kubeboot.cli.certs", "renew"),
    "issued": ("kubeboot.cli.ledger", "issued"),
    "revoke": ("kubeboot.cli.ledger", "revoke_command"),
}

# kubeadm's descriptions, as ``certs renew`` prints them ("<description> renewed").
_RENEWED = {
    ADMIN_CONF: "certificate embedded in the kubeconfig file for the admin to use and for "
    "kubeboot itself",
    APISERVER: "certificate for serving the Kubernetes API",
}


class _CertsGroup(UpstreamGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        command = getattr(importlib.import_module(target[0]), target[1])
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_CertsGroup)
def certs() -> None:
    """Certificates: the server's own (expiry, renewal, as `kubeadm certs`) and the ones the
    cluster issued (the ledger, revocation).

    \b
    Example:
      kubeboot certs check-expiration --data-dir /var/lib/kubeboot
      kubeboot certs renew admin.conf --data-dir /var/lib/kubeboot
      kubeboot certs issued --expiring-within 720h
      kubeboot certs revoke --node worker-1 --reason decommissioned
    """


def data_dir_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--data-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=DEFAULT_DATA_DIR,
        show_default=True,
        help="The server's --data-dir.",
    )(f)


def _tabwriter(lines: list[list[str]], minwidth: int = 10, padding: int = 3) -> str:
    """Go's ``tabwriter.NewWriter(w, 10, 4, 3, ' ', 0)`` for lines of tab-separated cells.

    A cell followed by a tab is padded to its column's width (widest cell + padding, at
    least ``minwidth``); the last cell of a line is written as is. A line without tabs ends
    a block of columns, as in Go.
    """
    out: list[str] = []
    block: list[list[str]] = []

    def flush() -> None:
        widths: dict[int, int] = {}
        for cells in block:
            for i, cell in enumerate(cells[:-1]):
                widths[i] = max(widths.get(i, 0), max(len(cell) + padding, minwidth))
        for cells in block:
            padded = [cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1])]
            out.append("".join(padded) + cells[-1])
        block.clear()

    for cells in lines:
        if len(cells) == 1:
            flush()
            out.append(cells[0])
        else:
            block.append(cells)
    flush()
    return "\n".join(out) + "\n"


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def render_expiration(entries: list[ManagedCertificate], now: dt.datetime) -> str:
    """kubeadm's ``certs check-expiration`` text output."""
    lines: list[list[str]] = [
        ["CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY", "EXTERNALLY MANAGED"]
    ]
    for e in (e for e in entries if not e.is_ca):
        if e.certificate is None:
            lines.append([f"!MISSING! {e.name}", "", "", "", ""])
            continue
        lines.append(
            [
                e.name,
                _date(e.certificate.not_valid_after_utc),
                short_human_duration(e.certificate.not_valid_after_utc - now),
                e.authority,
                f"{_yes_no(e.externally_managed):<8}",
            ]
        )
    lines.append([""])
    lines.append(["CERTIFICATE AUTHORITY", "EXPIRES", "RESIDUAL TIME", "EXTERNALLY MANAGED"])
    for e in (e for e in entries if e.is_ca):
        if e.certificate is None:
            lines.append([f"!MISSING! {e.name}", "", "", ""])
            continue
        lines.append(
            [
                e.name,
                _date(e.certificate.not_valid_after_utc),
                short_human_duration(e.certificate.not_valid_after_utc - now),
                f"{_yes_no(e.externally_managed):<8}",
            ]
        )
    return _tabwriter(lines)


def _date(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%b %d, %Y %H:%M UTC")


def _files(data_dir: Path) -> CertificateFiles:
    if not data_dir.is_dir():
        raise CommandError(f"{data_dir} is not a kubeboot data dir (give the server's --data-dir)")
    try:
        return CertificateFiles.load(data_dir)
    except (OSError, ValueError, KeyError) as exc:
        raise CommandError(f"cannot read {data_dir}/pki/files.json: {exc}") from exc


@click.command("check-expiration", cls=UpstreamCommand)
@data_dir_option
def check_expiration(data_dir: Path) -> None:
    """Show when the server's certificates and the CA expire."""
    entries = managed_certificates(_files(data_dir))
    click.echo(render_expiration(entries, SystemClock().now()), nl=False)


@click.command(cls=UpstreamCommand)
@click.argument("name", type=click.Choice(["all", ADMIN_CONF, APISERVER]))
@data_dir_option
def renew(name: str, data_dir: Path) -> None:
    """Renew a certificate (admin.conf, apiserver) or all, whatever its expiry.

    \b
    A running server needs no restart: it reloads the serving certificate within seconds.
    """
    files = _files(data_dir)
    if files.ca_external and not files.ca_key.exists():
        raise CommandError(f"the CA key {files.ca_key} is not here; renew where the CA is kept")
    try:
        ca = CertificateAuthority.load(files.ca_cert, files.ca_key)
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot load the CA from {files.ca_cert}: {exc}") from exc
    clock = SystemClock()
    wanted = [ADMIN_CONF, APISERVER] if name == "all" else [name]
    for item in wanted:
        if item == APISERVER and files.serving_external:
            message = (
                f"{APISERVER} is externally managed ({files.serving_cert}, given by "
                "--tls-cert-file); renew it where it was issued"
            )
            if name != "all":
                raise CommandError(message)
            click.echo(f"[renew] {message}; skipped")
            continue
        try:
            if item == APISERVER:
                renew_serving(ca, files.serving_cert, files.serving_key, clock)
            else:
                renew_admin_conf(ca, files.admin_conf, clock)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot renew {item}: {exc}") from exc
        click.echo(f"{_RENEWED[item]} renewed")
    click.echo(
        "\nDone renewing certificates. A running kubeboot server picks up the new serving "
        "certificate by itself (no restart); copies of admin.conf elsewhere keep the old one."
    )
