"""``kubeboot agent``: the kubelet's certificate side, with the kubelet's flag names."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from kubeboot.agent.constants import DEFAULT_CERT_DIR

if TYPE_CHECKING:
    from kubeboot.client.http import ClientRole

__all__ = ["agent", "agent_flags", "agent_options", "run_agent"]


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
            help="Serve /metrics and /healthz on host:port (off by default); the sleeper "
            "answers them between rotations.",
        ),
        click.option(
            "--stay-resident",
            is_flag=True,
            help="Keep the full agent in memory between rotations instead of re-executing "
            "into a ~10 MB sleeper (same PID) until the next rotation deadline.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


T = TypeVar("T")


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
    stay_resident: bool,
    daemon: bool = True,
    wake_command: list[str] | None = None,
    client_role: ClientRole = "agent",
) -> None:
    """Run the agent; between rotations, unless ``stay_resident`` (or without a
    ``wake_command`` to come back with), exec the sleeper, which execs ``wake_command``."""
    from kubeboot.agent import metrics
    from kubeboot.agent.daemon import Agent, AgentError, AgentOptions, default_node_name
    from kubeboot.agent.hibernation import (
        DEADLINES_ENV,
        decode_deadlines,
        exec_sleeper,
        sleeper_available,
    )
    from kubeboot.clock import SystemClock, format_time

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
        hibernate=daemon and not stay_resident and wake_command is not None and sleeper_available(),
        client_role=client_role,
    )
    deadlines = decode_deadlines(os.environ.pop(DEADLINES_ENV, ""))
    metrics.restore_renew_errors(os.environ.pop(metrics.RENEW_ERRORS_ENV, ""))

    def say(line: str) -> None:
        print(line, flush=True)

    try:
        if not daemon:
            asyncio.run(
                _until_sigterm(Agent(options, SystemClock(), say=say).ensure_client_certificate())
            )
            return
        # One socket for the process's life, across the sleeper's execs (metrics.py).
        listener = metrics.MetricsListener(metrics_bind_address) if metrics_bind_address else None
        while True:
            agent = Agent(
                options, SystemClock(), say=say, deadlines=deadlines, metrics_listener=listener
            )
            hibernation = asyncio.run(_until_sigterm(agent.run()))
            if hibernation is None or wake_command is None:
                return
            say(
                f"nothing to do until {format_time(hibernation.until)} ({hibernation.what}); "
                f"sleeping until then as a minimal process, same pid {os.getpid()} "
                "(--stay-resident keeps the full agent)"
            )
            try:
                exec_sleeper(hibernation, wake_command)
            except OSError as e:  # e.g. the interpreter was removed by an upgrade
                say(f"cannot exec the sleeper ({e}); staying resident")
                options.hibernate = False
                deadlines = hibernation.deadlines
    except (AgentError, OSError) as e:
        # OSError: a file the agent must write (kubeconfig, cert-dir) cannot be; the message
        # names the path, and what was already written is complete (atomic writes).
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except _Terminated:
        say("SIGTERM: stopping (everything written is complete: writes are atomic)")
        sys.exit(0)


class _Terminated(Exception):
    """SIGTERM arrived: the supervisor is stopping the agent (a clean stop, exit 0)."""


async def _until_sigterm(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``; on SIGTERM cancel it (its ``finally`` blocks run) and raise _Terminated.

    Why: systemd stops services with SIGTERM; exiting 0 after an orderly cancel, as the sleeper
    does, keeps a stop from reading as a failure.
    """
    task = asyncio.ensure_future(work)
    terminated = False

    def on_sigterm() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    try:
        return await task
    except asyncio.CancelledError:
        if terminated:
            raise _Terminated from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


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
    from kubeboot.agent.hibernation import interpreter_prefix

    # Back from the sleeper: this very command line, in the same directory and environment.
    wake = [*interpreter_prefix(sys.orig_argv, sys.argv), *sys.argv[1:]]
    run_agent(bootstrap_kubeconfig=bootstrap_kubeconfig, wake_command=wake, **kwargs)  # type: ignore[arg-type]


def agent_flags(values: dict[str, object]) -> list[str]:
    """``kubeboot agent`` flags that give its parameters ``values`` (the ones ``agent``
    has; others are ignored): how ``kubeboot join`` continues as the agent after an exec."""
    out: list[str] = []
    for param in agent.params:
        if not isinstance(param, click.Option) or param.name not in values:
            continue
        value = values[param.name]
        if value is None:
            continue
        if param.is_flag:
            if param.secondary_opts:
                out.append(param.opts[0] if value else param.secondary_opts[0])
            elif value:
                out.append(param.opts[0])
            continue
        items = value if param.multiple and isinstance(value, list | tuple) else [value]
        for item in items:
            out += [param.opts[0], str(item)]
    return out
