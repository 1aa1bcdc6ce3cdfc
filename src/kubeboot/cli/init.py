"""``kubeboot init``: kubeadm init's bootstrapping phase against a running API server.

Calls :func:`kubeboot.clusterinit.init_cluster` over HTTPS with the admin kubeconfig, so it
works against ``kubeboot server`` (which already ran it at its first start: a re-run then
changes nothing) and against any cluster whose kubeconfig carries the CA. The server URL
and CA published in ``cluster-info`` are the kubeconfig's.
"""

from __future__ import annotations

from pathlib import Path

import click

from kubeboot.cli.commandline import UpstreamCommand
from kubeboot.cli.options import KubeconfigRef, kubeconfig_options, run_api
from kubeboot.client.http import HttpApiClient
from kubeboot.clock import SystemClock
from kubeboot.clusterinit import InitResult, init_cluster

__all__ = ["init"]


@click.command(cls=UpstreamCommand)
@kubeconfig_options
def init(kubeconfig: Path | None, context: str | None) -> None:
    """Publish cluster-info, kubeadm's bootstrap RBAC and a first token; print the join command.

    Every step is create-if-missing: re-running changes nothing and prints the same
    join command while the first token is valid.

    \b
    Example:
      kubeboot init --kubeconfig ./kubeboot-data/admin.conf
    """
    kube = KubeconfigRef(kubeconfig, context)
    ca_pem = kube.ca_pem("cluster-info cannot publish it")
    server = kube.config().server

    async def work(client: HttpApiClient) -> InitResult:
        return await init_cluster(client, server=server, ca_pem=ca_pem, clock=SystemClock())

    result = run_api(kube, work)
    state = "created" if result.token_created else "reused (still valid)"
    click.echo(f"cluster-info and bootstrap RBAC are in place on {server}")
    click.echo(f"bootstrap token {result.token.partition('.')[0]}: {state}")
    click.echo("")
    click.echo("Join a node with:")
    click.echo(f"  {result.join_command}")
