"""``kubeboot join``: kubeadm's token discovery, then the agent's client bootstrap."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from kubeboot.cli.agent import agent_flags, agent_options, run_agent

__all__ = ["join"]


@click.command()
@click.argument("server", required=False)
@click.option("--token", default=None, help="Bootstrap token <id>.<secret>.")
@click.option(
    "--discovery-token-ca-cert-hash",
    "pins",
    multiple=True,
    help="sha256:<hex> of the cluster CA's public key (repeatable).",
)
@click.option(
    "--discovery-token-unsafe-skip-ca-verification",
    is_flag=True,
    help="Trust cluster-info on the token's signature alone (no CA pinning).",
)
@click.option(
    "--discovery-file",
    default=None,
    help="Kubeconfig (path or https URL) to discover the cluster from instead of the token.",
)
@click.option("--discovery-timeout", type=float, default=300.0, show_default=True, help="Seconds.")
@click.option(
    "--bootstrap-kubeconfig",
    type=click.Path(path_type=Path),
    default=Path("/etc/kubernetes/bootstrap-kubelet.conf"),
    show_default=True,
    help="Where to write the TLS-bootstrap kubeconfig (kept for re-bootstrap after expiry).",
)
@click.option(
    "--daemon/--no-daemon",
    default=True,
    show_default=True,
    help="Keep running as the agent after the client certificate is issued.",
)
@agent_options
def join(
    server: str | None,
    token: str | None,
    pins: tuple[str, ...],
    discovery_token_unsafe_skip_ca_verification: bool,
    discovery_file: str | None,
    discovery_timeout: float,
    bootstrap_kubeconfig: Path,
    daemon: bool,
    **kwargs: object,
) -> None:
    """Join this node to a cluster: discover it, then bootstrap its certificates.

    \b
    Example (the values come from `kubeboot token create --print-join-command`):
      kubeboot join 10.0.0.1:6443 --token abcdef.0123456789abcdef \\
        --discovery-token-ca-cert-hash sha256:1234...cdef --cert-dir ./pki
    """
    from kubeboot.agent.discovery import DiscoveryError, discover_with_file, discover_with_token
    from kubeboot.agent.kubeconfigs import write_kubeconfig

    try:
        if discovery_file:
            conf = asyncio.run(discover_with_file(discovery_file, token))
        else:
            if not server or not token:
                raise DiscoveryError(
                    "give the API server endpoint and --token (or --discovery-file)"
                )
            conf = asyncio.run(
                discover_with_token(
                    server,
                    token,
                    pins,
                    unsafe_skip_ca_verification=discovery_token_unsafe_skip_ca_verification,
                    discovery_seconds=discovery_timeout,
                    progress=lambda line: click.echo(line, err=True),
                )
            )
    except DiscoveryError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    write_kubeconfig(bootstrap_kubeconfig, conf)
    click.echo(f"cluster discovered; wrote {bootstrap_kubeconfig}")
    run_agent(
        bootstrap_kubeconfig=bootstrap_kubeconfig,
        daemon=daemon,
        wake_command=_agent_command(bootstrap_kubeconfig, kwargs),
        client_role="join",
        **kwargs,  # type: ignore[arg-type]
    )


def _agent_command(bootstrap_kubeconfig: Path, values: dict[str, object]) -> list[str] | None:
    """What the sleeper execs to continue: ``kubeboot agent`` with this join's agent flags
    (not ``join`` again: discovery is done, and the token may have expired by then). None
    (stay resident) when the command line is not this process's own (e.g. a test runner)."""
    from kubeboot.agent.hibernation import interpreter_prefix

    name = click.get_current_context().info_name
    args = sys.argv[1:]
    if name not in args:
        return None
    return [
        *interpreter_prefix(sys.orig_argv, sys.argv),
        *args[: args.index(name)],
        "agent",
        *agent_flags({"bootstrap_kubeconfig": bootstrap_kubeconfig, **values}),
    ]
