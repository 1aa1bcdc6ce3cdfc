"""Flag types and flag groups the commands share, in upstream's spelling.

* :class:`GoDuration` takes Go durations (``--ttl 24h``, ``--cluster-signing-duration 8760h``);
* :func:`split_csv` reads comma-separated flags (``--etcd-servers``, ``--controllers``);
* :func:`etcd_client_options` adds kube-apiserver's etcd TLS and prefix flags.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from kubeboot.durations import parse_go_duration

__all__ = ["GoDuration", "etcd_client_options", "split_csv"]


def split_csv(value: str) -> tuple[str, ...]:
    """``a, b,,c`` → ``("a", "b", "c")``: blanks around and between commas are dropped."""
    return tuple(v.strip() for v in value.split(",") if v.strip())


class GoDuration(click.ParamType[dt.timedelta]):
    """A click parameter type for Go duration flags."""

    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> dt.timedelta:
        if isinstance(value, dt.timedelta):
            return value
        try:
            return parse_go_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


F = TypeVar("F", bound=Callable[..., object])

_OPTIONS = (
    click.option(
        "--etcd-cafile",
        type=click.Path(path_type=Path, exists=True),
        default=None,
        help="CA bundle that signed the etcd members' serving certificates (https:// URLs).",
    ),
    click.option(
        "--etcd-certfile",
        type=click.Path(path_type=Path, exists=True),
        default=None,
        help="Client certificate for etcd's --client-cert-auth (with --etcd-keyfile).",
    ),
    click.option(
        "--etcd-keyfile",
        type=click.Path(path_type=Path, exists=True),
        default=None,
        help="Private key of --etcd-certfile.",
    ),
    click.option(
        "--etcd-prefix",
        default="/registry",
        show_default=True,
        help="Key prefix of every object in etcd.",
    ),
)


def etcd_client_options(command: F) -> F:
    """Add ``--etcd-cafile``, ``--etcd-certfile``, ``--etcd-keyfile`` and ``--etcd-prefix``."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command
