"""``kubeboot kubeconfig bootstrap``: Krustlet's ``bootstrap.sh`` (node-facts §4.3) in one step.

Creates a bootstrap token (``usage-bootstrap-authentication`` and ``-signing``, group
``system:bootstrappers:kubeadm:default-node-token``) and writes the kubeconfig a node
bootstraps with: what ``kubectl config view --flatten --minify`` of the admin's current
context gives after bootstrap.sh's edits —

* one cluster ``kubernetes`` with the current context's ``server`` and the CA embedded as
  ``certificate-authority-data`` (``tls-server-name`` and ``proxy-url`` carried over);
* user ``tls-bootstrap-token-user`` with ``token: <id>.<secret>``;
* context ``tls-bootstrap-token-user@kubernetes``, namespace ``kube-system``, current.

The path is ``$CONFIG_DIR/$FILE_NAME`` (defaults ``$HOME/.kubeboot/config`` and
``bootstrap.conf``), written atomically with mode 0600 (bootstrap.sh leaves it to the
umask); ``--output -`` prints it instead.

TTL default: **1h**, as bootstrap.sh, not kubeadm's 24h. The file is made to be copied to
one node and used at once; a token that authenticates anyone holding the file should not
outlive that. ``--ttl`` changes it (``0`` = never expires).

A kubeconfig whose cluster has no CA is refused *before* a token is created: a bootstrap
kubeconfig without the CA would make the node trust whatever answers.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from typing import Any

import click
import yaml

from kubeboot.agent.kubeconfigs import BOOTSTRAP_USER, bootstrap_kubeconfig, write_kubeconfig
from kubeboot.cli.commandline import UpstreamGroup
from kubeboot.cli.options import KubeconfigRef, kubeconfig_options, run_api
from kubeboot.cli.token import create_token, ttl_option
from kubeboot.client.http import HttpApiClient
from kubeboot.clock import format_time
from kubeboot.resources import bootstrap_token as bt

__all__ = [
    "BOOTSTRAP_CONTEXT",
    "BOOTSTRAP_NAMESPACE",
    "default_output_path",
    "kubeconfig",
    "token_kubeconfig",
]

log = logging.getLogger("kubeboot.kubeconfig")

BOOTSTRAP_CONTEXT = f"{BOOTSTRAP_USER}@kubernetes"
BOOTSTRAP_NAMESPACE = "kube-system"
DEFAULT_TTL = "1h"
_CARRIED = ("tls-server-name", "proxy-url")


def default_output_path(environ: dict[str, str] | os._Environ[str] = os.environ) -> Path:
    """``$CONFIG_DIR/$FILE_NAME``, defaults ``$HOME/.kubeboot/config`` and ``bootstrap.conf``."""
    config_dir = environ.get("CONFIG_DIR") or str(
        Path(environ.get("HOME", "~")) / ".kubeboot/config"
    )
    file_name = environ.get("FILE_NAME") or "bootstrap.conf"
    return Path(config_dir).expanduser() / file_name


def token_kubeconfig(
    server: str, ca_pem: bytes, token: str, cluster: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The minified, flattened bootstrap kubeconfig (kubeadm's layout plus the namespace)."""
    conf = bootstrap_kubeconfig(server, ca_pem, token)
    for key in _CARRIED:
        if cluster and cluster.get(key):
            conf["clusters"][0]["cluster"][key] = cluster[key]
    conf["contexts"][0]["context"]["namespace"] = BOOTSTRAP_NAMESPACE
    assert conf["current-context"] == BOOTSTRAP_CONTEXT
    return conf


@click.group(cls=UpstreamGroup)
def kubeconfig() -> None:
    """Write kubeconfigs for nodes.

    \b
    Example:
      kubeboot kubeconfig bootstrap --output ./bootstrap.conf
    """


@kubeconfig.command()
@ttl_option(DEFAULT_TTL, "Lifetime of the token in the file (Go duration); 0 never expires.")
@click.option(
    "--description",
    default="bootstrap kubeconfig written by kubeboot kubeconfig bootstrap",
    show_default=True,
    help="Description stored with the token.",
)
@click.option(
    "--output",
    "output",
    default=None,
    help="Where to write; '-' prints to stdout. [default: $CONFIG_DIR/$FILE_NAME, i.e. "
    "$HOME/.kubeboot/config/bootstrap.conf]",
)
@kubeconfig_options
def bootstrap(
    ttl: dt.timedelta,
    description: str,
    output: str | None,
    kubeconfig: Path | None,
    context: str | None,
) -> None:
    """Create a bootstrap token and write a kubeconfig a node can join with (Krustlet style).

    \b
    Example (then on the node: kubeboot agent --bootstrap-kubeconfig bootstrap.conf ...):
      CONFIG_DIR=./node FILE_NAME=bootstrap.conf kubeboot kubeconfig bootstrap --ttl 30m
    """
    if ttl < dt.timedelta(0):
        raise click.BadParameter("must not be negative (0 means never expires)", param_hint="--ttl")
    kube = KubeconfigRef(kubeconfig, context)
    ca_pem = kube.ca_pem("a bootstrap kubeconfig would not let the node verify the server")
    config = kube.config()
    token_value = bt.generate_token()

    async def work(client: HttpApiClient) -> dt.datetime | None:
        return await create_token(
            client,
            token_value,
            ttl=ttl,
            usages=bt.KNOWN_USAGES,
            groups=[bt.KUBEADM_DEFAULT_NODE_TOKEN_GROUP],
            description=description,
        )

    expiration = run_api(kube, work)
    conf = token_kubeconfig(config.server, ca_pem, token_value, dict(config.cluster))
    expires = format_time(expiration) if expiration else "never"
    token_id = token_value.partition(".")[0]
    if output == "-":
        click.echo(yaml.safe_dump(conf, sort_keys=True), nl=False)
        log.info(f"bootstrap token {token_id} expires {expires}")
        return
    path = Path(output) if output else default_output_path()
    write_kubeconfig(path, conf)
    click.echo(f"wrote {path} (bootstrap token {token_id}, expires {expires})")
