"""Flag value types and flag groups the commands share, parsed as upstream parses them.

* :class:`GoDuration`: Go's ``time.ParseDuration`` (``--ttl 24h``, ``--bootstrap-timeout
  25s``, ``--cluster-signing-duration 8760h``); errors are pflag's
  (``invalid argument "25" for "--bootstrap-timeout" flag: time: missing unit in duration
  "25"``);
* :class:`NodeIPs`: the kubelet's ``--node-ip``, a comma-separated single IP or dual-stack
  pair (``10.0.0.1,fd00::1``); repeated flags add up; every entry must be an IP;
* :class:`StringList`: pflag's ``StringSlice`` (``--discovery-token-ca-cert-hash a,b`` and
  repeated flags add up; ``--ignore-preflight-errors``);
* :class:`FeatureGates`: component-base's ``--feature-gates=Name=true,Other=false`` against
  the gates a command knows;
* :func:`split_csv` reads comma-separated flags (``--etcd-servers``, ``--controllers``);
* :func:`etcd_client_options` adds kube-apiserver's etcd TLS and prefix flags.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from kubeboot.cli.commandline import parse_bool
from kubeboot.durations import format_go_duration, parse_go_duration, timedelta_ns

__all__ = [
    "FeatureGates",
    "GoDuration",
    "NodeIPs",
    "StringList",
    "etcd_client_options",
    "go_duration_text",
    "split_csv",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def split_csv(value: str) -> tuple[str, ...]:
    """``a, b,,c`` → ``("a", "b", "c")``: blanks around and between commas are dropped."""
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _fail(
    value: object, param: click.Parameter | None, ctx: click.Context | None, why: str
) -> NoReturn:
    """pflag's ``invalid argument "<value>" for "<flag>" flag: <why>``."""
    names = param.opts if isinstance(param, click.Option) else []
    longs = [n for n in names if n.startswith("--")]
    shown = longs[0] if longs else (names[0] if names else "?")
    raise click.UsageError(f'invalid argument "{value}" for "{shown}" flag: {why}', ctx)


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
            _fail(value, param, ctx, str(exc))


def go_duration_text(delta: dt.timedelta) -> str:
    """A timedelta as Go prints a Duration (``1h0m0s``): how defaults are shown."""
    return format_go_duration(timedelta_ns(delta))


def _ip(text: str) -> IPAddress:
    """An IP as Go's ``netutils.ParseIPSloppy`` reads it (IPv4 with leading zeros allowed)."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        parts = text.split(".")
        if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts):
            return ipaddress.IPv4Address(".".join(str(int(p)) for p in parts))
        raise


class NodeIPs(click.ParamType[tuple[IPAddress, ...]]):
    """The kubelet's ``--node-ip``: one IP, or a dual-stack pair, comma-separated.

    Upstream's rules (``component-helpers/node/util.ParseNodeIPArgument``): blanks around
    entries are trimmed; at most two, and two must be of different families; a pair may
    not contain ``0.0.0.0`` or ``::``. The kubelet logs and ignores an entry that is not an
    IP; kubeboot refuses it (a typo would otherwise silently drop the node's address).
    """

    name = "ip[,ip]"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[IPAddress, ...]:
        if isinstance(value, tuple):
            return value
        ips = []
        for entry in str(value).split(","):
            try:
                ips.append(_ip(entry.strip()))
            except ValueError:
                _fail(value, param, ctx, f'could not parse "{entry.strip()}" as an IP address')
        check_node_ips(ips, lambda why: _fail(value, param, ctx, why))
        return tuple(ips)


def check_node_ips(ips: list[IPAddress], fail: Callable[[str], object]) -> None:
    """The dual-stack rules on the node's IPs, whichever flags or files they came from."""
    if len(ips) > 2 or (len(ips) == 2 and ips[0].version == ips[1].version):
        fail("must contain either a single IP or a dual-stack pair of IPs")
    elif len(ips) == 2 and any(ip.is_unspecified for ip in ips):
        fail("dual-stack node IP cannot include '0.0.0.0' or '::'")


class StringList(click.ParamType[tuple[str, ...]]):
    """pflag's ``StringSlice``: comma-separated values (CSV rules), repeatable."""

    name = "strings"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        text = str(value)
        return tuple(v for v in (p.strip() for p in text.split(","))) if text else ()


class FeatureGates(click.ParamType[dict[str, bool]]):
    """component-base's ``--feature-gates``: ``Name=bool`` pairs, comma-separated, against the
    gates this command knows (``known``: name → what it does here, for the help text)."""

    name = "mapStringBool"

    def __init__(self, known: Mapping[str, str]) -> None:
        self.known = dict(known)

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> dict[str, bool]:
        if isinstance(value, dict):
            return value
        gates: dict[str, bool] = {}
        for pair in str(value).split(","):
            if not pair.strip():
                continue
            name, eq, raw = pair.strip().partition("=")
            if not eq:
                _fail(value, param, ctx, f"missing bool value for {name}")
            try:
                enabled = parse_bool(raw.strip())
            except ValueError as e:
                _fail(value, param, ctx, f"invalid value of {name}={raw}, err: {e}")
            if name not in self.known:
                known = ", ".join(sorted(self.known))
                _fail(
                    value, param, ctx, f"unrecognized feature gate: {name} (kubeboot knows {known})"
                )
            gates[name] = enabled
        return gates


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


def first_given(ctx: click.Context, *names: str) -> Any:
    """The value of the first of ``names`` given on the command line (or None)."""
    from click.core import ParameterSource

    for name in names:
        if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE:
            return ctx.params.get(name)
    return None
