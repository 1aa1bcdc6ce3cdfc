"""``kubeboot token create|list|delete|generate``: ``kubeadm token`` (node-facts §3.1, §3.2).

Flags, defaults, output and messages are kubeadm's: ``--ttl 24h0m0s`` (``0`` = never
expires), ``--usages signing,authentication``, ``--groups
system:bootstrappers:kubeadm:default-node-token``; ``list`` prints kubeadm's columns through
a tabwriter (minwidth 10, padding 3) and ``-o json|yaml`` prints kubeadm's output API object
(``output.kubeadm.k8s.io/v1alpha3`` ``BootstrapToken``) per token; ``delete`` takes ids or
full tokens and stops at the first error. The Secret itself is built by
:func:`kubeboot.resources.bootstrap_token.build_secret`, the token by ``generate_token``.

Beyond kubeadm (docs/beyond-upstream.md): ``--node-name N`` binds the token to one node and
``--max-uses K`` limits how many CSRs it may create, as extra keys of the Secret
(:mod:`kubeboot.resources.token_binding`) that upstream ignores and a kubeboot server
enforces at CSR admission; ``--print-join-command --node-name N`` makes a single-use token
unless ``--max-uses`` says otherwise. ``list`` shows them in a ``USES`` and a ``NODE`` column.
A real kube-apiserver does not enforce them, so against one the command refuses them.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from cryptography import x509

from kubeboot.cli.commandline import UpstreamGroup
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
from kubeboot.clock import SystemClock, format_time
from kubeboot.clusterinit import join_command
from kubeboot.durations import short_human_duration
from kubeboot.pki.pins import spki_pin
from kubeboot.resources import bootstrap_token as bt
from kubeboot.resources import token_binding as tb
from kubeboot.resources.ledger import ISSUED_CERTIFICATES
from kubeboot.resources.registry import ResourceInfo, find_resource
from kubeboot.resources.status import AlreadyExists, Forbidden, NotFound, StatusError
from kubeboot.resources.validation import is_dns1123_subdomain

__all__ = [
    "OUTPUT_API_VERSION",
    "TokenInfo",
    "token",
    "token_from_secret",
    "token_id_of",
    "token_output_object",
    "token_table",
]

log = logging.getLogger("kubeboot.token")

OUTPUT_API_VERSION = "output.kubeadm.k8s.io/v1alpha3"
DEFAULT_TTL = "24h0m0s"
DEFAULT_USAGES = ",".join(bt.KNOWN_USAGES)
F = TypeVar("F", bound=Callable[..., Any])


def _secrets() -> ResourceInfo:
    res = find_resource("", "v1", "secrets")
    assert res is not None
    return res


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A bootstrap token as kubeadm reads it back from its Secret (``BootstrapTokenFromSecret``)."""

    token: str
    description: str
    expires: dt.datetime | None
    usages: tuple[str, ...]
    groups: tuple[str, ...]

    @property
    def token_id(self) -> str:
        return self.token.partition(".")[0]


def token_from_secret(secret: Mapping[str, Any]) -> TokenInfo:
    """kubeadm's reading rules; raises ValueError with kubeadm's reason when they fail."""
    name = str((secret.get("metadata") or {}).get("name", ""))
    data = bt.decode_data(secret)
    token_id = data.get(bt.TOKEN_ID_KEY)
    if not token_id:
        raise ValueError(f"bootstrap token secret {name!r} has no token ID data")
    if name != bt.secret_name(token_id):
        raise ValueError(
            f"bootstrap token name is not of the form '{bt.SECRET_NAME_PREFIX}(token-id)'. "
            f"Actual: {name!r}. Expected: {bt.secret_name(token_id)!r}"
        )
    token_secret = data.get(bt.TOKEN_SECRET_KEY)
    if not token_secret:
        raise ValueError(f"bootstrap token secret {name!r} has no token secret data")
    full = f"{token_id}.{token_secret}"
    if bt.parse_token(full) is None:
        raise ValueError(f"bootstrap token in secret {name!r} does not match {bt.TOKEN_PATTERN}")
    try:
        expires = bt.get_expiration(data)
    except ValueError as e:
        raise ValueError(f"can't parse expiration time of bootstrap token {name!r}: {e}") from e
    usages = tuple(sorted(u for u in bt.KNOWN_USAGES if bt.has_usage(data, u)))
    extra = data.get(bt.AUTH_EXTRA_GROUPS_KEY, "")
    groups = tuple(extra.split(",")) if extra else ()
    return TokenInfo(full, data.get(bt.DESCRIPTION_KEY, ""), expires, usages, groups)


def token_table(tokens: Sequence[TokenInfo], now: dt.datetime) -> str:
    rows = []
    for t in tokens:
        ttl = "<forever>" if t.expires is None else short_human_duration(t.expires - now)
        expires = "<never>" if t.expires is None else format_time(t.expires)
        rows.append(
            [
                t.token,
                ttl,
                expires,
                ",".join(t.usages) or "<none>",
                t.description or "<none>",
                ",".join(t.groups) or "<none>",
            ]
        )
    header = ["TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS"]
    return tabulate(header, rows, minwidth=10, padding=3)


def token_output_object(t: TokenInfo) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "kind": "BootstrapToken",
        "apiVersion": OUTPUT_API_VERSION,
        "token": t.token,
    }
    if t.description:
        obj["description"] = t.description
    if t.expires is not None:
        obj["expires"] = format_time(t.expires)
    obj["usages"] = list(t.usages)
    obj["groups"] = list(t.groups)
    return obj


def token_id_of(value: str) -> str:
    """The id in a full token or a bare id; ValueError with kubeadm's message otherwise."""
    parsed = bt.parse_token(value)
    if parsed is not None:
        return parsed[0]
    if bt.TOKEN_ID_PATTERN.fullmatch(value):
        return value
    raise ValueError(
        f"given token didn't match pattern {bt.TOKEN_ID_PATTERN.pattern!r} or "
        f"{bt.TOKEN_PATTERN.pattern!r}"
    )


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def validated_usages(value: str) -> list[str]:
    usages = _split(value)
    for usage in usages:
        if usage not in bt.KNOWN_USAGES:
            raise click.BadParameter(
                f"invalid bootstrap token usage string: {usage}, valid usage options: "
                f"{','.join(bt.KNOWN_USAGES)}",
                param_hint="--usages",
            )
    return usages


def validated_groups(value: str, usages: Sequence[str]) -> list[str]:
    groups = _split(value)
    for group in groups:
        if not bt.EXTRA_GROUP_PATTERN.fullmatch(group):
            raise click.BadParameter(
                f"bootstrap group {group!r} is invalid (must match "
                f"{bt.EXTRA_GROUP_PATTERN.pattern})",
                param_hint="--groups",
            )
    if groups and "authentication" not in usages:
        raise click.BadParameter(
            '--groups cannot be specified unless --usages includes "authentication"',
            param_hint="--groups",
        )
    return groups


async def create_token(
    client: HttpApiClient,
    token_value: str,
    *,
    ttl: dt.timedelta,
    usages: Sequence[str],
    groups: Sequence[str],
    description: str,
    binding: Mapping[str, str] | None = None,
) -> dt.datetime | None:
    """Create the Secret; the expiration it got (None: never). Shared with ``kubeconfig``.
    ``binding``: kubeboot's extra keys (:func:`kubeboot.resources.token_binding.binding_data`)."""
    expiration = SystemClock().now() + ttl if ttl > dt.timedelta(0) else None
    secret = bt.build_secret(
        token_value,
        usages=usages,
        extra_groups=groups,
        expiration=expiration,
        description=description,
    )
    for key, value in (binding or {}).items():
        secret["data"][key] = base64.b64encode(value.encode()).decode("ascii")
    try:
        await client.create(_secrets(), secret, bt.TOKEN_NAMESPACE)
    except AlreadyExists as e:
        token_id = token_value.partition(".")[0]
        raise CommandError(f'a token with id "{token_id}" already exists') from e
    return expiration


def ttl_option(default: str, help_text: str) -> Callable[[F], F]:
    return click.option(
        "--ttl", type=GoDuration(), default=default, show_default=True, help=help_text
    )


@click.group(cls=UpstreamGroup)
def token() -> None:
    """Manage bootstrap tokens (kubeadm token), stored as Secrets in kube-system.

    \b
    Example:
      kubeboot token create --ttl 2h --description "worker-1"
      kubeboot token list
      kubeboot token delete abcdef
    """


@token.command()
def generate() -> None:
    """Print a random bootstrap token; nothing is sent to the server.

    \b
    Example (create it later with `kubeboot token create <token>`):
      TOKEN=$(kubeboot token generate)
    """
    click.echo(bt.generate_token())


@token.command()
@click.argument("token_value", metavar="[TOKEN]", required=False)
@ttl_option(DEFAULT_TTL, "Time before the token is deleted (Go duration); 0 never expires.")
@click.option(
    "--usages",
    default=DEFAULT_USAGES,
    show_default=True,
    help="Comma-separated ways the token may be used: signing, authentication.",
)
@click.option(
    "--groups",
    default=bt.KUBEADM_DEFAULT_NODE_TOKEN_GROUP,
    show_default=True,
    help="Comma-separated extra groups the token authenticates as (system:bootstrappers:…).",
)
@click.option("--description", default="", help="A human-friendly description of the token.")
@click.option(
    "--print-join-command",
    is_flag=True,
    help="Print the full `kubeboot join` command instead of only the token.",
)
@click.option(
    "--node-name",
    default=None,
    help="kubeboot servers: the token may only request the kubelet client certificate of "
    "this node (system:node:<name>). With --print-join-command it defaults to --max-uses 1.",
)
@click.option(
    "--max-uses",
    type=click.IntRange(min=1),
    default=None,
    help="kubeboot servers: how many CSRs (joins) the token may create; a spent token is "
    "deleted by the token cleaner.",
)
@kubeconfig_options
def create(
    token_value: str | None,
    ttl: dt.timedelta,
    usages: str,
    groups: str,
    description: str,
    print_join_command: bool,
    node_name: str | None,
    max_uses: int | None,
    kubeconfig: Path | None,
    context: str | None,
) -> None:
    """Create a bootstrap token on the server and print it.

    \b
    Example:
      kubeboot token create --ttl 1h --print-join-command
      kubeboot token create --print-join-command --node-name worker-1   # single use
    """
    if token_value is not None and bt.parse_token(token_value) is None:
        raise click.BadParameter(
            f'the bootstrap token "{token_value}" was not of the form "{bt.TOKEN_PATTERN.pattern}"',
            param_hint="TOKEN",
        )
    if ttl < dt.timedelta(0):
        raise click.BadParameter("must not be negative (0 means never expires)", param_hint="--ttl")
    usage_list = validated_usages(usages)
    group_list = validated_groups(groups, usage_list)
    if node_name is not None and (problems := is_dns1123_subdomain(node_name)):
        raise click.BadParameter("; ".join(problems), param_hint="--node-name")
    if print_join_command and node_name and max_uses is None:
        max_uses = 1  # a join command for one machine: single use unless told otherwise
    binding = tb.binding_data(node_name, max_uses)
    value = token_value or bt.generate_token()
    kube = KubeconfigRef(kubeconfig, context)
    ca_pem = kube.ca_pem("the join command cannot pin it") if print_join_command else b""

    async def work(client: HttpApiClient) -> None:
        if binding:
            await require_kubeboot_server(client)
        await create_token(
            client,
            value,
            ttl=ttl,
            usages=usage_list,
            groups=group_list,
            description=description,
            binding=binding,
        )

    run_api(kube, work)
    if print_join_command:
        ca = x509.load_pem_x509_certificates(ca_pem)[0]
        command = join_command(kube.config().server, value, spki_pin(ca))
        click.echo(f"{command} --node-name {node_name}" if node_name else command)
    else:
        click.echo(value)


async def require_kubeboot_server(client: HttpApiClient) -> None:
    """Node binding and use limits are enforced by kubeboot servers only: refuse to create a
    token whose limits the server would silently ignore (a real kube-apiserver)."""
    try:
        await client.list(ISSUED_CERTIFICATES, limit=1)
    except Forbidden:
        return  # served, only not readable by this user
    except NotFound as exc:
        raise CommandError(
            "--node-name and --max-uses are enforced by kubeboot servers only, and this "
            "server does not serve ledger.kubeboot.io; create the token without them"
        ) from exc


@token.command(name="list")
@output_option("text", "json", "yaml", default="text")
@kubeconfig_options
def list_tokens(output: str, kubeconfig: Path | None, context: str | None) -> None:
    """List bootstrap tokens, expired ones included (their TTL shows <invalid>).

    \b
    Example:
      kubeboot token list -o yaml
    """
    kube = KubeconfigRef(kubeconfig, context)

    async def work(client: HttpApiClient) -> list[dict[str, Any]]:
        listed = await client.list(
            _secrets(), bt.TOKEN_NAMESPACE, field_selector=f"type={bt.SECRET_TYPE}"
        )
        return list(listed.get("items") or [])

    tokens: list[TokenInfo] = []
    for secret in run_api(kube, work):
        try:
            tokens.append(token_from_secret(secret))
        except ValueError as e:
            log.warning(f"[token] {e}; skipping")
    if output == "text":
        click.echo(token_table(tokens, SystemClock().now()), nl=False)
        return
    for i, t in enumerate(tokens):
        if output == "yaml" and i:
            click.echo("---")
        click.echo(dump(token_output_object(t), output), nl=False)


@token.command()
@click.argument("tokens", metavar="TOKEN_OR_ID...", nargs=-1, required=True)
@kubeconfig_options
def delete(tokens: tuple[str, ...], kubeconfig: Path | None, context: str | None) -> None:
    """Delete bootstrap tokens, given by id or in full; stops at the first error.

    \b
    Example:
      kubeboot token delete abcdef abcdef.0123456789abcdef
    """
    ids = []
    for value in tokens:
        try:
            ids.append(token_id_of(value))
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="TOKEN_OR_ID") from e
    kube = KubeconfigRef(kubeconfig, context)

    async def work(client: HttpApiClient) -> None:
        for token_id in ids:
            try:
                await client.delete(_secrets(), bt.secret_name(token_id), bt.TOKEN_NAMESPACE)
            except NotFound as e:
                raise CommandError(
                    f'failed to delete bootstrap token "{token_id}": {e.message}; '
                    "`kubeboot token list` shows the tokens that exist"
                ) from e
            except StatusError as e:
                raise CommandError(f'failed to delete bootstrap token "{token_id}": {e}') from e
            click.echo(f'bootstrap token "{token_id}" deleted')

    run_api(kube, work)
