"""``kubeboot agent``: the kubelet's certificate side, with the kubelet's and Krustlet's flags.

Flags are read as the kubelet reads them (pflag booleans, Go durations, ``--node-ip
10.0.0.1,fd00::1``), from the command line over the ``--config`` KubeletConfiguration over
the defaults (:mod:`kubeboot.cli.kubeletconfig`). :func:`resolve_agent` turns them into
:class:`~kubeboot.agent.daemon.AgentOptions` without doing anything, so a test can check
what a pasted command line means.

**Where the kubeconfig is**: ``--kubeconfig``, else ``$KUBECONFIG`` as any client reads it
(several files: the first that exists, else the last, kubectl's rule for writing), else
``/etc/kubernetes/kubelet.conf`` (kubeadm's; ``~/.kube/config`` in Krustlet mode). A
kubeconfig found through ``$KUBECONFIG`` or ``~/.kube/config`` that holds someone else's
credentials (an admin's) is never overwritten: the agent stops and says so.

**Krustlet mode**: using any of Krustlet's own flags (``--bootstrap-file``, ``--cert-file``,
``--private-key-file``, ``--hostname``, ``--addr``, ``--data-dir``) gives Krustlet's
behaviour: the serving certificate is requested by default, its first CSR is named
``<hostname>-tls`` (so ``kubectl certificate approve <hostname>-tls`` works verbatim), the
serving pair is also written to ``--cert-file``/``--private-key-file`` (defaults
``$KRUSTLET_DATA_DIR/config/krustlet.crt|.key``, data dir ``~/.krustlet``), an existing
valid pair there is used instead of a new CSR, the cert-dir defaults to
``$KRUSTLET_DATA_DIR/pki`` and, without ``--node-ip``, the node IP is the first
non-loopback address of the hostname (Krustlet's and the kubelet's default).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource

from kubeboot.agent.constants import DEFAULT_CERT_DIR
from kubeboot.cli.commandline import UpstreamCommand, UpstreamOption
from kubeboot.cli.configfile import ConfigFileError
from kubeboot.cli.flagtypes import (
    FeatureGates,
    GoDuration,
    IPAddress,
    NodeIPs,
    check_node_ips,
    go_duration_text,
)
from kubeboot.cli.kubeletconfig import KubeletFile, load_kubelet_config
from kubeboot.cli.options import CommandError

if TYPE_CHECKING:
    from kubeboot.client.http import ClientRole

__all__ = [
    "AgentPlan",
    "agent",
    "agent_flags",
    "agent_options",
    "resolve_agent",
    "run_agent",
]

log = logging.getLogger("kubeboot.agent")

DEFAULT_KUBECONFIG = Path("/etc/kubernetes/kubelet.conf")
KRUSTLET_BOOTSTRAP_FILE = Path("/etc/kubernetes/bootstrap-kubelet.conf")
# Krustlet's own flag names (params): using one selects Krustlet's behaviour.
KRUSTLET_PARAMS = (
    "bootstrap_file",
    "cert_file",
    "private_key_file",
    "hostname",
    "addr",
    "data_dir",
)
KUBELET_FEATURE_GATES = {
    "RotateKubeletServerCertificate": "false turns the serving-certificate bootstrap off, as "
    "in the kubelet (beta, default true)",
    "RotateKubeletClientCertificate": "accepted for old command lines; client rotation is "
    "--rotate-certificates (the gate went GA in 1.19 and was removed upstream)",
}


def agent_options(f: click.decorators.FC) -> click.decorators.FC:
    """The flags ``agent`` and ``join`` share, named and defaulted as the kubelet's."""
    options = [
        click.option(
            "--kubeconfig",
            type=click.Path(path_type=Path),
            default=None,
            help="Kubeconfig the agent writes and uses (points at kubelet-client-current.pem). "
            "Default: $KUBECONFIG if set, else /etc/kubernetes/kubelet.conf.",
        ),
        click.option(
            "--cert-dir",
            type=click.Path(path_type=Path),
            default=None,
            help=f"Directory for kubelet-client-*.pem and kubelet-server-*.pem "
            f"(default {DEFAULT_CERT_DIR}; $KRUSTLET_DATA_DIR/pki in Krustlet mode).",
        ),
        click.option(
            "--node-name",
            "--hostname-override",
            "node_name",
            default=None,
            help="Node name (default: the lower-cased hostname).",
        ),
        click.option(
            "--node-ip",
            "node_ips",
            type=NodeIPs(),
            multiple=True,
            help="The node's IP, or a dual-stack pair 10.0.0.1,fd00::1 (the kubelet's form); "
            "InternalIP addresses of the Node and IP SANs of the serving certificate.",
        ),
        click.option(
            "--rotate-certificates",
            is_flag=True,
            default=True,
            show_default=True,
            help="Renew the client certificate at 70-90 % of its lifetime (config: "
            "rotateCertificates).",
        ),
        click.option(
            "--rotate-server-certificates",
            is_flag=True,
            default=False,
            help="Request (and renew) the serving certificate from the API server (config: "
            "serverTLSBootstrap; on by default in Krustlet mode).",
        ),
        click.option(
            "--feature-gates",
            type=FeatureGates(KUBELET_FEATURE_GATES),
            default="",
            help="The kubelet's feature gates, Name=true,Other=false; kubeboot knows "
            + ", ".join(sorted(KUBELET_FEATURE_GATES))
            + ".",
        ),
        click.option(
            "--tls-cert-file",
            type=click.Path(path_type=Path),
            default=None,
            help="A serving certificate given to the node (config: tlsCertFile); checked at "
            "start, used instead of a serving CSR (ignored with --rotate-server-certificates, "
            "as the kubelet does).",
        ),
        click.option(
            "--tls-private-key-file",
            type=click.Path(path_type=Path),
            default=None,
            help="Private key of --tls-cert-file (config: tlsPrivateKeyFile).",
        ),
        click.option(
            "--bootstrap-timeout",
            type=GoDuration(),
            default="1h",
            show_default=True,
            help="How long to wait for the bootstrap CSR to be signed (Go duration); "
            "with join --no-daemon, then exit 1 with the CSR name.",
        ),
        click.option(
            "--rotation-wait",
            type=GoDuration(),
            default="15m",
            show_default=True,
            help="How long to wait for one renewal CSR before backing off (Go duration).",
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


def _agent_only_options(f: click.decorators.FC) -> click.decorators.FC:
    """``kubeboot agent``'s own flags: the bootstrap kubeconfig, --config, Krustlet's names."""
    options = [
        click.option(
            "--bootstrap-kubeconfig",
            cls=UpstreamOption,
            deprecated_aliases=["--experimental-bootstrap-kubeconfig"],
            type=click.Path(path_type=Path),
            default=None,
            help="Kubeconfig with a bootstrap credential, used when --kubeconfig is missing or "
            "invalid (--experimental-bootstrap-kubeconfig, its 1.4-1.6 name, is read as this).",
        ),
        click.option(
            "--config",
            "config_file",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="The kubelet's config file (kubelet.config.k8s.io/v1beta1 "
            "KubeletConfiguration); flags given override it (docs/agent.md).",
        ),
        click.option(
            "--bootstrap-file",
            type=click.Path(path_type=Path),
            default=None,
            help="Krustlet's name for --bootstrap-kubeconfig (default "
            f"{KRUSTLET_BOOTSTRAP_FILE} in Krustlet mode); selects Krustlet mode.",
        ),
        click.option(
            "--cert-file",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="Krustlet: where the serving certificate is written (and read, skipping the "
            "CSR while valid); default $KRUSTLET_DATA_DIR/config/krustlet.crt.",
        ),
        click.option(
            "--private-key-file",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="Krustlet: where the serving key is written (0600); default "
            "$KRUSTLET_DATA_DIR/config/krustlet.key.",
        ),
        click.option(
            "--hostname",
            default=None,
            help="Krustlet: the node's hostname (default: the machine's); the serving CSR is "
            "named <hostname>-tls and carries DNS:<hostname>.",
        ),
        click.option(
            "--data-dir",
            type=click.Path(path_type=Path, file_okay=False),
            default=None,
            help="Krustlet: its data directory (default $KRUSTLET_DATA_DIR, else ~/.krustlet).",
        ),
        click.option(
            "-a",
            "--addr",
            default=None,
            help="Krustlet: the address its API listens on; accepted, no effect (the agent "
            "serves no kubelet API).",
        ),
        click.option(
            "--address",
            default=None,
            help="The kubelet's serving address (config: address); accepted, no effect.",
        ),
        click.option(
            "-p",
            "--port",
            type=click.IntRange(0, 65535),
            default=None,
            help="The kubelet's (10250) or Krustlet's (3000) serving port; accepted, no effect.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


# -- resolution (no I/O but reading the config file and the hostname) --------------------------


@dataclass
class AgentPlan:
    """What a command line asks the agent to do, and the lines to log about it first."""

    kubeconfig: Path
    kubeconfig_guarded: bool
    bootstrap_kubeconfig: Path | None
    cert_dir: Path
    node_name: str
    hostname: str | None
    node_ips: list[str]
    rotate_certificates: bool
    rotate_server_certificates: bool
    bootstrap_wait_seconds: float
    rotation_wait_seconds: float
    metrics_address: str | None
    stay_resident: bool
    krustlet: bool = False
    serving_cert_file: Path | None = None
    serving_key_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_private_key_file: Path | None = None
    logging: tuple[str | None, int | None] = (None, None)
    notes: list[str] = field(default_factory=list)


def kubeconfig_from_env(environ: Mapping[str, str]) -> Path | None:
    """The file ``$KUBECONFIG`` names for writing: kubectl's ``GetDefaultFilename`` rule."""
    files = [f for f in environ.get("KUBECONFIG", "").split(os.pathsep) if f]
    if not files:
        return None
    if len(files) > 1:
        for name in files:
            if Path(name).exists():
                return Path(name)
    return Path(files[-1])


def _resolve_ip(hostname: str) -> str | None:
    """Krustlet's default node IP: the hostname's first non-loopback, unicast address."""
    import ipaddress

    try:
        infos = socket.getaddrinfo(hostname, None, type=socket.SOCK_STREAM)
    except OSError:
        return None
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not (ip.is_loopback or ip.is_multicast or ip.is_unspecified):
            return str(ip)
    return None


def resolve_agent(
    params: Mapping[str, Any],
    given: Callable[[str], bool],
    environ: Mapping[str, str] = os.environ,
    *,
    default_hostname: Callable[[], str] = socket.gethostname,
    resolve_ip: Callable[[str], str | None] = _resolve_ip,
) -> AgentPlan:
    """The agent's plan for ``params`` (click's values); ``given(name)`` says whether a
    param was on the command line. Raises :class:`click.UsageError` for contradictions."""
    notes: list[str] = []
    file: KubeletFile | None = None
    if params.get("config_file") is not None:
        try:
            file = load_kubelet_config(Path(params["config_file"]))
        except ConfigFileError as e:
            raise click.UsageError(f"--config: {e}") from e
        notes += file.notes

    def pick(name: str, from_file: Any, default: Any) -> Any:
        """The command line over the config file over the default, as the kubelet."""
        if given(name):
            return params.get(name)
        return default if from_file is None else from_file

    krustlet = any(given(n) for n in KRUSTLET_PARAMS)
    if given("bootstrap_file") and given("bootstrap_kubeconfig"):
        raise click.UsageError(
            "--bootstrap-file is Krustlet's name for --bootstrap-kubeconfig: give one of them"
        )
    bootstrap = params.get("bootstrap_kubeconfig") or params.get("bootstrap_file")
    if bootstrap is None and krustlet:
        bootstrap = KRUSTLET_BOOTSTRAP_FILE
    home = Path(environ.get("HOME") or Path.home())
    data_dir = Path(
        params.get("data_dir") or environ.get("KRUSTLET_DATA_DIR") or home / ".krustlet"
    )

    kubeconfig = params.get("kubeconfig")
    guarded = False
    if kubeconfig is None:
        from_env = kubeconfig_from_env(environ)
        guarded = True
        if from_env is not None:
            kubeconfig = from_env
        elif krustlet:
            kubeconfig = home / ".kube" / "config"
        else:
            kubeconfig, guarded = DEFAULT_KUBECONFIG, False
        notes.append(f"kubeconfig: {kubeconfig}")

    cert_dir = params.get("cert_dir") or (data_dir / "pki" if krustlet else Path(DEFAULT_CERT_DIR))
    hostname = params.get("hostname")
    node_name = params.get("node_name") or (hostname or default_hostname()).lower()

    ips: list[IPAddress] = [ip for group in params.get("node_ips") or () for ip in group]
    check_node_ips(ips, lambda why: _usage(f'invalid argument for "--node-ip" flag: {why}'))
    node_ips = [str(ip) for ip in ips if not ip.is_unspecified]

    gates = {**(file.feature_gates if file else {}), **(params.get("feature_gates") or {})}
    for name in gates:
        if name not in KUBELET_FEATURE_GATES:
            raise click.UsageError(f"--config: featureGates: unrecognized feature gate: {name}")
    if "RotateKubeletClientCertificate" in gates:
        notes.append(
            "feature gate RotateKubeletClientCertificate: "
            + KUBELET_FEATURE_GATES["RotateKubeletClientCertificate"]
        )

    rotate = bool(pick("rotate_certificates", file.rotate_certificates if file else None, True))
    serving = bool(
        pick(
            "rotate_server_certificates",
            file.rotate_server_certificates if file else None,
            krustlet,  # Krustlet always bootstraps its serving certificate
        )
    )
    if serving and gates.get("RotateKubeletServerCertificate") is False:
        notes.append("serving certificate bootstrap is off: RotateKubeletServerCertificate=false")
        serving = False

    tls_cert = pick("tls_cert_file", file.tls_cert_file if file else None, None)
    tls_key = pick("tls_private_key_file", file.tls_private_key_file if file else None, None)
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert-file and --tls-private-key-file go together")
    if tls_cert is not None and serving:
        notes.append(
            f"--tls-cert-file {tls_cert} is not used: the serving certificate comes from a CSR "
            "(--rotate-server-certificates), as the kubelet does"
        )
        tls_cert = tls_key = None

    cert_file = key_file = None
    if krustlet:
        cert_file = params.get("cert_file") or data_dir / "config" / "krustlet.crt"
        key_file = params.get("private_key_file") or data_dir / "config" / "krustlet.key"
        if serving and not node_ips:
            found = resolve_ip(hostname or default_hostname())
            if found is not None:
                node_ips = [found]
                notes.append(f"node IP {found}: the first non-loopback address of the hostname")

    for name in ("addr", "address", "port"):
        if given(name):
            notes.append(
                f"--{name} {params[name]}: no effect (kubeboot agent serves no kubelet API)"
            )

    fmt = file.logging_format if file and not given("logging_format") else None
    verbosity = file.verbosity if file and not given("v") else None
    return AgentPlan(
        kubeconfig=Path(kubeconfig),
        kubeconfig_guarded=guarded,
        bootstrap_kubeconfig=Path(bootstrap) if bootstrap is not None else None,
        cert_dir=Path(cert_dir),
        node_name=node_name,
        hostname=hostname,
        node_ips=node_ips,
        rotate_certificates=rotate,
        rotate_server_certificates=serving,
        bootstrap_wait_seconds=_seconds(params.get("bootstrap_timeout"), 3600.0),
        rotation_wait_seconds=_seconds(params.get("rotation_wait"), 900.0),
        metrics_address=params.get("metrics_bind_address"),
        stay_resident=bool(params.get("stay_resident")),
        krustlet=krustlet,
        serving_cert_file=Path(cert_file) if cert_file else None,
        serving_key_file=Path(key_file) if key_file else None,
        tls_cert_file=Path(tls_cert) if tls_cert else None,
        tls_private_key_file=Path(tls_key) if tls_key else None,
        logging=(fmt, verbosity),
        notes=notes,
    )


def _seconds(value: Any, default: float) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else default


def _usage(message: str) -> None:
    raise click.UsageError(message)


def given_on(ctx: click.Context) -> Callable[[str], bool]:
    """``given(name)`` for :func:`resolve_agent`: was the param on the command line?"""
    return lambda name: ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE


# -- running ----------------------------------------------------------------------------------

T = TypeVar("T")


def run_agent(
    plan: AgentPlan,
    *,
    daemon: bool = True,
    wake_command: list[str] | None = None,
    on_client_ready: Callable[[], None] | None = None,
    client_role: ClientRole = "agent",
) -> None:
    """Run the agent: the client certificate first (``on_client_ready`` then), then, with
    ``daemon``, the rotation loops; between rotations, unless ``stay_resident`` (or without
    a ``wake_command`` to come back with), exec the sleeper, which execs ``wake_command``.
    Without ``daemon`` the bootstrap has one ``--bootstrap-timeout`` deadline."""
    from kubeboot.agent import metrics
    from kubeboot.agent.daemon import Agent, AgentError, AgentOptions
    from kubeboot.agent.hibernation import (
        DEADLINES_ENV,
        decode_deadlines,
        exec_sleeper,
        sleeper_available,
    )
    from kubeboot.clock import SystemClock, format_time
    from kubeboot.logs import current_settings, setup_logging

    fmt, verbosity = plan.logging
    if fmt is not None or verbosity is not None:
        now_fmt, now_v = current_settings()
        setup_logging(fmt or now_fmt, now_v if verbosity is None else verbosity)
    for note in plan.notes:
        log.info(note)
    if plan.tls_cert_file is not None and plan.tls_private_key_file is not None:
        _check_given_pair(plan.tls_cert_file, plan.tls_private_key_file)
    options = AgentOptions(
        kubeconfig=plan.kubeconfig,
        bootstrap_kubeconfig=plan.bootstrap_kubeconfig,
        cert_dir=plan.cert_dir,
        node_name=plan.node_name,
        node_ips=list(plan.node_ips),
        rotate_certificates=plan.rotate_certificates,
        rotate_server_certificates=plan.rotate_server_certificates,
        bootstrap_wait_seconds=plan.bootstrap_wait_seconds,
        rotation_wait_seconds=plan.rotation_wait_seconds,
        hibernate=daemon
        and not plan.stay_resident
        and wake_command is not None
        and sleeper_available(),
        hostname=plan.hostname,
        krustlet=plan.krustlet,
        serving_cert_file=plan.serving_cert_file,
        serving_key_file=plan.serving_key_file,
        kubeconfig_guarded=plan.kubeconfig_guarded,
        client_role=client_role,
    )
    deadlines = decode_deadlines(os.environ.pop(DEADLINES_ENV, ""))
    metrics.restore_renew_errors(os.environ.pop(metrics.RENEW_ERRORS_ENV, ""))
    try:
        first = Agent(options, SystemClock(), deadlines=deadlines)
        asyncio.run(_until_sigterm(first.ensure_client_certificate(one_shot=not daemon)))
        if on_client_ready is not None:
            on_client_ready()
        if not daemon:
            return
        # One socket for the process's life, across the sleeper's execs (metrics.py).
        listener = metrics.MetricsListener(plan.metrics_address) if plan.metrics_address else None
        while True:
            agent = Agent(options, SystemClock(), deadlines=deadlines, metrics_listener=listener)
            hibernation = asyncio.run(_until_sigterm(agent.run()))
            if hibernation is None or wake_command is None:
                return
            log.info(
                f"nothing to do until {format_time(hibernation.until)} ({hibernation.what}); "
                f"sleeping until then as a minimal process, same pid {os.getpid()} "
                "(--stay-resident keeps the full agent)"
            )
            try:
                exec_sleeper(hibernation, wake_command)
            except OSError as e:  # e.g. the interpreter was removed by an upgrade
                log.warning(f"cannot exec the sleeper ({e}); staying resident")
                options.hibernate = False
                deadlines = hibernation.deadlines
    except (AgentError, OSError) as e:
        # OSError: a file the agent must write (kubeconfig, cert-dir) cannot be; the message
        # names the path, and what was already written is complete (atomic writes).
        raise CommandError(str(e)) from e
    except _Terminated:
        log.info("SIGTERM: stopping (everything written is complete: writes are atomic)")
        sys.exit(0)


def _check_given_pair(cert_file: Path, key_file: Path) -> None:
    """The kubelet fails to start when its given serving pair cannot be loaded; so do we."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from kubeboot.pki.keys import load_private_key_pem

    try:
        cert = x509.load_pem_x509_certificates(cert_file.read_bytes())[0]
        key = load_private_key_pem(key_file.read_bytes())
    except (OSError, ValueError) as e:
        raise CommandError(f"cannot load --tls-cert-file/--tls-private-key-file: {e}") from e
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if cert.public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
        raise CommandError(f"{key_file} is not the private key of {cert_file}")
    log.info(f"serving certificate: {cert_file} (given; no serving CSR)")


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


@click.command(cls=UpstreamCommand)
@_agent_only_options
@agent_options
def agent(**params: Any) -> None:
    """Obtain, store and rotate the node's client and serving certificates.

    \b
    As a kubelet command line (bootstrap.conf written with kubectl config set-credentials):
      kubeboot agent --bootstrap-kubeconfig=bootstrap.conf --kubeconfig=kubelet.conf \\
        --cert-dir=./pki --node-name=worker-1 --node-ip=10.0.0.5,fd00::5 \\
        --rotate-certificates=true --rotate-server-certificates=true
    \b
    As Krustlet's (the serving CSR is <hostname>-tls):
      KUBECONFIG=~/.krustlet/config/kubeconfig kubeboot agent --port 3000 \\
        --bootstrap-file ~/.krustlet/config/bootstrap.conf
    """
    from kubeboot.agent.hibernation import interpreter_prefix

    ctx = click.get_current_context()
    plan = resolve_agent(params, given_on(ctx))
    # Back from the sleeper: this very command line, in the same directory and environment.
    wake = [*interpreter_prefix(sys.orig_argv, sys.argv), *sys.argv[1:]]
    run_agent(plan, wake_command=wake)


def agent_flags(plan: AgentPlan) -> list[str]:
    """``kubeboot agent`` flags that carry out ``plan``: how ``kubeboot join`` continues as
    the agent after an exec (discovery is done; the token may have expired by then)."""
    from kubeboot.logs import current_settings

    fmt, verbosity = current_settings()
    out = [
        f"--kubeconfig={plan.kubeconfig}",
        f"--cert-dir={plan.cert_dir}",
        f"--node-name={plan.node_name}",
        f"--rotate-certificates={str(plan.rotate_certificates).lower()}",
        f"--rotate-server-certificates={str(plan.rotate_server_certificates).lower()}",
        f"--bootstrap-timeout={go_duration_text(dt.timedelta(seconds=plan.bootstrap_wait_seconds))}",
        f"--rotation-wait={go_duration_text(dt.timedelta(seconds=plan.rotation_wait_seconds))}",
        f"--v={verbosity}",
        f"--logging-format={fmt}",
    ]
    if plan.bootstrap_kubeconfig is not None:
        out.append(f"--bootstrap-kubeconfig={plan.bootstrap_kubeconfig}")
    if plan.node_ips:
        out.append(f"--node-ip={','.join(plan.node_ips)}")
    if plan.metrics_address:
        out.append(f"--metrics-bind-address={plan.metrics_address}")
    if plan.stay_resident:
        out.append("--stay-resident")
    if plan.tls_cert_file is not None and plan.tls_private_key_file is not None:
        out += [
            f"--tls-cert-file={plan.tls_cert_file}",
            f"--tls-private-key-file={plan.tls_private_key_file}",
        ]
    return out
