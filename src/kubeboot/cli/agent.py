"""``kubeboot agent``: the kubelet's certificate side, with the kubelet's flag names."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from kubeboot.agent.constants import DEFAULT_CERT_DIR

__all__ = ["agent", "agent_options", "run_agent"]


def agent_options(f: click.decorators.FC) -> click.decorators.FC:
    """The flags ``agent`` and ``join`` share, named and defaulted as the kubelet's."""
    options = [
        click.option(
            "--kubeconfig",
            type=click.Path(path_type=Path),
            default=Path("/etc/kubernetes/kubelet.conf"),
            show_default=True,
            help="Kubeconfig the agent writes and uses (points at kubelet-client-current.pem).",
        ),
        click.option(
            "--cert-dir",
            type=click.Path(path_type=Path),
            default=Path(DEFAULT_CERT_DIR),
            show_default=True,
            help="Directory for kubelet-client-*.pem and kubelet-server-*.pem.",
        ),
        click.option(
            "--node-name",
            "--hostname-override",
            "node_name",
            default=None,
            help="Node name (default: the lower-cased hostname).",
        ),
        click.option(
            "--node-ip", "node_ips", multiple=True, help="Node IP (repeatable); a serving SAN."
        ),
        click.option(
            "--rotate-certificates/--no-rotate-certificates",
            default=True,
            show_default=True,
            help="Renew the client certificate at 70-90 % of its lifetime.",
        ),
        click.option(
            "--rotate-server-certificates",
            is_flag=True,
            help="Request (and renew) the serving certificate from the API server.",
        ),
        click.option(
            "--bootstrap-timeout",
            type=float,
            default=3600.0,
            show_default=True,
            help="Seconds to wait for the bootstrap CSR to be signed.",
        ),
        click.option(
            "--rotation-wait",
            type=float,
            default=900.0,
            show_default=True,
            help="Seconds to wait for one renewal CSR before backing off.",
        ),
        click.option(
            "--metrics-bind-address",
            default=None,
            help="Serve /metrics on host:port (off by default).",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def run_agent(
    *,
    kubeconfig: Path,
    bootstrap_kubeconfig: Path | None,
    cert_dir: Path,
    node_name: str | None,
    node_ips: tuple[str, ...],
    rotate_certificates: bool,
    rotate_server_certificates: bool,
    bootstrap_timeout: float,
    rotation_wait: float,
    metrics_bind_address: str | None,
    daemon: bool = True,
) -> None:
    from kubeboot.agent.daemon import Agent, AgentError, AgentOptions, default_node_name
    from kubeboot.clock import SystemClock

    options = AgentOptions(
        kubeconfig=kubeconfig,
        bootstrap_kubeconfig=bootstrap_kubeconfig,
        cert_dir=cert_dir,
        node_name=node_name or default_node_name(),
        node_ips=list(node_ips),
        rotate_certificates=rotate_certificates,
        rotate_server_certificates=rotate_server_certificates,
        bootstrap_wait_seconds=bootstrap_timeout,
        rotation_wait_seconds=rotation_wait,
        metrics_address=metrics_bind_address,
    )
    agent = Agent(options, SystemClock(), say=lambda line: print(line, flush=True))
    try:
        asyncio.run(agent.run() if daemon else agent.ensure_client_certificate())
    except (AgentError, OSError) as e:
        # OSError: a file the agent must write (kubeconfig, cert-dir) cannot be; the message
        # names the path, and what was already written is complete (atomic writes).
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


@click.command()
@click.option(
    "--bootstrap-kubeconfig",
    type=click.Path(path_type=Path),
    default=None,
    help="Kubeconfig with a bootstrap credential, used when --kubeconfig is missing or invalid.",
)
@agent_options
def agent(bootstrap_kubeconfig: Path | None, **kwargs: object) -> None:
    """Obtain, store and rotate the node's client and serving certificates.

    \b
    Bootstrap from a kubeconfig written with kubectl config set-credentials --token=...:
      kubeboot agent --bootstrap-kubeconfig bootstrap.conf --kubeconfig kubelet.conf \\
        --cert-dir ./pki --node-name worker-1 --node-ip 10.0.0.5 --rotate-server-certificates
    """
    run_agent(bootstrap_kubeconfig=bootstrap_kubeconfig, **kwargs)  # type: ignore[arg-type]
