"""``kubeboot storage``: operations on a server's storage (``migrate`` SQLite → etcd)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import click

from kubeboot.cli.commandline import UpstreamGroup
from kubeboot.cli.flagtypes import etcd_client_options, split_csv

__all__ = ["storage"]


@click.group(cls=UpstreamGroup)
def storage() -> None:
    """Operations on a kubeboot server's storage."""


@storage.command()
@click.option(
    "--from",
    "source_dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="The SQLite server's --data-dir (holds state.db).",
)
@click.option(
    "--to",
    "etcd_servers",
    required=True,
    help="Comma-separated etcd client URLs, as --etcd-servers.",
)
@etcd_client_options
@click.option(
    "--force",
    is_flag=True,
    help="Copy into a target that already holds keys (keys both hold are overwritten).",
)
def migrate(
    source_dir: Path,
    etcd_servers: str,
    etcd_cafile: Path | None,
    etcd_certfile: Path | None,
    etcd_keyfile: Path | None,
    etcd_prefix: str,
    force: bool,
) -> None:
    """Copy every object from an embedded (SQLite) server to etcd, then verify the copy.

    Stop the server first: writes made after the copy starts are not copied. Objects keep
    their content but get new resourceVersions (etcd's revisions), so clients re-list.

    \b
    Example:
      kubeboot storage migrate --from ./kubeboot-data --to https://10.0.0.1:2379 \\
        --etcd-cafile etcd-ca.crt --etcd-certfile etcd-client.crt --etcd-keyfile etcd-client.key
    """
    database = source_dir / "state.db"
    if not database.is_file():
        raise click.BadParameter(
            f"{database} does not exist; give the data directory of a SQLite server",
            param_hint="--from",
        )
    servers = split_csv(etcd_servers)
    if not servers:
        raise click.BadParameter("no etcd URL given", param_hint="--to")
    code = asyncio.run(
        _migrate(database, servers, etcd_cafile, etcd_certfile, etcd_keyfile, etcd_prefix, force)
    )
    sys.exit(code)


async def _migrate(
    database: Path,
    servers: tuple[str, ...],
    cafile: Path | None,
    certfile: Path | None,
    keyfile: Path | None,
    prefix: str,
    force: bool,
) -> int:
    from kubeboot.storage.factory import StorageOptions, open_store
    from kubeboot.storage.interface import StoreError
    from kubeboot.storage.migrate import MigrationError, migrate_store

    started = time.monotonic()
    last_line = 0.0

    def progress(phase: str, done: int, total: int) -> None:
        nonlocal last_line
        now = time.monotonic()
        if done == total or now - last_line >= 1.0:
            last_line = now
            verb = "copied" if phase == "copy" else "verified"
            click.echo(f"  {verb} {done}/{total} keys")

    try:
        source = await open_store(StorageOptions(backend="sqlite", sqlite_path=database))
    except StoreError as e:
        click.echo(f"error: cannot open {database}: {e}", err=True)
        return 1
    try:
        target = await open_store(
            StorageOptions(
                backend="etcd3",
                etcd_servers=servers,
                etcd_cafile=cafile,
                etcd_certfile=certfile,
                etcd_keyfile=keyfile,
                etcd_prefix=prefix,
            )
        )
    except (StoreError, ValueError) as e:
        await source.close()
        click.echo(f"error: cannot reach etcd at {','.join(servers)}: {e}", err=True)
        return 1
    try:
        keys = await source.count("/")
        click.echo(
            f"migrating {keys} keys from {database} (revision "
            f"{await source.current_revision()}) to etcd {','.join(servers)} under {prefix}"
        )
        result = await migrate_store(source, target, force=force, progress=progress)
    except (MigrationError, StoreError) as e:
        click.echo(f"error: {e}", err=True)
        return 1
    finally:
        await target.close()
        await source.close()
    overwritten = f" ({result.overwritten} overwritten)" if result.overwritten else ""
    click.echo(
        f"done in {time.monotonic() - started:.1f}s: {result.keys} keys copied{overwritten} "
        f"and verified; etcd is at revision {result.target_revision}."
    )
    click.echo(
        "Objects have new resourceVersions: start the servers with --storage-backend etcd3 "
        "and let clients re-list."
    )
    return 0
