"""``kubeboot join``: ``kubeadm join`` for a worker node — discovery, then the kubelet's TLS
bootstrap, done by the agent.

kubeadm's flags, with kubeadm's meaning (``cmd/kubeadm/app/cmd/join.go``): the positional
API server endpoint, ``--token`` (both tokens when not given apart), ``--discovery-token``,
``--tls-bootstrap-token``, ``--discovery-token-ca-cert-hash`` (repeatable, comma lists too),
``--discovery-token-unsafe-skip-ca-verification``, ``--discovery-file``, ``--node-name``,
``--ignore-preflight-errors``, ``--dry-run``, ``--config`` (a ``JoinConfiguration``,
:mod:`kubeboot.cli.joinconfig`; mixing it with discovery flags is kubeadm's error
``can not mix '--config' with arguments [...]``), ``--cri-socket`` (accepted, no runtime
here) and ``--control-plane`` (refused: workers only). The kubelet's flags of the agent are
taken as well, and ``nodeRegistration.kubeletExtraArgs`` feed them.

Output on stdout is kubeadm's where a script reads it: ``[preflight] Running pre-flight
checks``, the ``[kubelet-start]`` lines, and once the client certificate is issued the
"This node has joined the cluster:" block. ``--dry-run`` discovers for real (anonymous,
read-only GETs, so token and CA pin are checked), prints kubeadm's "Would …" lines and the
agent command it would run, and writes nothing and creates no CSR. ``--no-daemon`` stops
after the client certificate; with ``--bootstrap-timeout`` it exits 1 naming the CSR and
``kubectl certificate approve <name>`` when nothing approves it in time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from kubeboot.cli.agent import (
    AgentPlan,
    agent,
    agent_flags,
    agent_options,
    given_on,
    resolve_agent,
    run_agent,
)
from kubeboot.cli.commandline import UpstreamCommand, UpstreamOption
from kubeboot.cli.configfile import ConfigFileError
from kubeboot.cli.flagtypes import GoDuration, StringList
from kubeboot.cli.joinconfig import JoinFile, load_join_config
from kubeboot.cli.options import CommandError

__all__ = ["JoinSpec", "join", "join_spec"]

log = logging.getLogger("kubeboot.join")

JOINED = """
This node has joined the cluster:
* Certificate signing request was sent to apiserver and a response was received.
* The Kubelet was informed of the new secure connection details.

Run 'kubectl get nodes' on the control-plane to see this node join the cluster.
"""
# kubeadm's flags that --config replaces (validation.ValidateMixedArguments); names as printed.
_CONFIG_EXCLUSIVE = {
    "control_plane": "control-plane",
    "cri_socket": "cri-socket",
    "discovery_file": "discovery-file",
    "discovery_token": "discovery-token",
    "pins": "discovery-token-ca-cert-hash",
    "discovery_token_unsafe_skip_ca_verification": "discovery-token-unsafe-skip-ca-verification",
    "tls_bootstrap_token": "tls-bootstrap-token",
    "token": "token",
}


class JoinSpec:
    """What to discover and how to bootstrap: the flags, or a JoinConfiguration."""

    def __init__(self) -> None:
        self.endpoint: str | None = None
        self.discovery_token: str | None = None
        self.tls_bootstrap_token: str | None = None
        self.pins: list[str] = []
        self.unsafe_skip_ca_verification = False
        self.discovery_file: str | None = None
        self.ignore_preflight_errors: list[str] = []
        self.dry_run = False
        self.discovery_timeout = dt.timedelta(minutes=5)
        self.agent: AgentPlan | None = None
        self.notes: list[str] = []


def _flat(values: Any) -> list[str]:
    return [v for group in values or () for v in (group if isinstance(group, tuple) else [group])]


def join_spec(params: dict[str, Any], given: Callable[[str], bool]) -> JoinSpec:
    """``params`` (click's values) as kubeadm reads them; UsageError for what it refuses."""
    spec = JoinSpec()
    file: JoinFile | None = None
    if params.get("config") is not None:
        mixed = sorted(flag for name, flag in _CONFIG_EXCLUSIVE.items() if given(name))
        if mixed:
            raise click.UsageError(f"can not mix '--config' with arguments [{' '.join(mixed)}]")
        try:
            file = load_join_config(Path(params["config"]))
        except ConfigFileError as e:
            raise click.UsageError(f"--config: {e}") from e
        spec.notes += file.notes
        if params.get("server"):
            spec.notes.append(
                "the API server endpoint argument is not used with --config (as kubeadm): "
                "discovery.bootstrapToken.apiServerEndpoint is"
            )
    if params.get("control_plane"):
        raise click.UsageError(
            "--control-plane: kubeboot join joins worker nodes only; a control-plane instance "
            "is another `kubeboot server` replica (docs/replicas.md)"
        )
    if given("cri_socket"):
        spec.notes.append(
            f"--cri-socket {params['cri_socket']}: no effect (kubeboot runs no container runtime)"
        )
    if file is not None:
        spec.endpoint = file.endpoint
        spec.discovery_token = file.discovery_token
        spec.tls_bootstrap_token = file.tls_bootstrap_token
        spec.pins = list(file.ca_cert_hashes)
        spec.unsafe_skip_ca_verification = file.unsafe_skip_ca_verification
        spec.discovery_file = file.discovery_file
        spec.dry_run = file.dry_run
        spec.discovery_timeout = file.discovery_timeout or spec.discovery_timeout
    else:
        token = params.get("token") or None
        spec.endpoint = params.get("server")
        spec.discovery_token = params.get("discovery_token") or token
        spec.tls_bootstrap_token = params.get("tls_bootstrap_token") or token
        spec.pins = [p for p in _flat(params.get("pins")) if p]
        spec.unsafe_skip_ca_verification = bool(
            params.get("discovery_token_unsafe_skip_ca_verification")
        )
        spec.discovery_file = params.get("discovery_file") or None
    if given("dry_run"):
        spec.dry_run = bool(params.get("dry_run"))
    if given("discovery_timeout") or file is None:
        spec.discovery_timeout = params.get("discovery_timeout") or spec.discovery_timeout
    ignored = {e.lower() for e in [*(file.ignore_preflight_errors if file else []),
                                   *_flat(params.get("ignore_preflight_errors"))] if e}  # fmt: skip
    if "all" in ignored and len(ignored) > 1:
        raise click.UsageError(
            f'ignore-preflight-errors: Invalid value: "{",".join(sorted(ignored))}": '
            "don't specify individual checks if 'all' is used"
        )
    spec.ignore_preflight_errors = sorted(ignored)
    if spec.discovery_file and spec.endpoint and file is None:
        raise click.UsageError(
            "give either the API server endpoint (token discovery) or --discovery-file, not both"
        )
    spec.agent = _agent_plan(params, given, file, spec)
    return spec


def _agent_plan(
    params: dict[str, Any], given: Callable[[str], bool], file: JoinFile | None, spec: JoinSpec
) -> AgentPlan:
    """The agent's plan: join's own flags over ``kubeletExtraArgs`` over the defaults."""
    merged, from_extra = dict(params), set[str]()
    if file is not None and file.kubelet_extra_args:
        known = {
            opt.lstrip("-").replace("_", "-"): p
            for p in agent.params
            if isinstance(p, click.Option)
            for opt in p.opts
            if opt.startswith("--")
        }
        args = []
        for name, value in file.kubelet_extra_args:
            if name.replace("_", "-") in known:
                args.append(f"--{name}={value}")
            else:
                spec.notes.append(
                    f"kubeletExtraArgs: --{name} is not a flag of kubeboot agent; ignored"
                )
        extra_ctx = agent.make_context("kubeletExtraArgs", args)
        for name, value in extra_ctx.params.items():
            if not given(name) and given_on(extra_ctx)(name):
                merged[name] = value
                from_extra.add(name)
    if file is not None and file.node_name and not given("node_name"):
        merged["node_name"] = file.node_name
        from_extra.add("node_name")
    if file is not None and file.tls_bootstrap_timeout and not given("bootstrap_timeout"):
        merged["bootstrap_timeout"] = file.tls_bootstrap_timeout
        from_extra.add("bootstrap_timeout")
    merged["bootstrap_kubeconfig"] = params["bootstrap_kubeconfig"]
    return resolve_agent(merged, lambda name: given(name) or name in from_extra)


@click.command(cls=UpstreamCommand)
@click.argument(
    "server",
    required=False,
    help="The API server endpoint for token discovery, host:port (kubeadm's api-server-endpoint).",
)
@click.option(
    "--token",
    cls=UpstreamOption,
    secret=True,
    default=None,
    help="Use this token for both discovery-token and tls-bootstrap-token when those values "
    "are not provided (<id>.<secret>).",
)
@click.option(
    "--discovery-token",
    cls=UpstreamOption,
    secret=True,
    default=None,
    help="For token-based discovery, the token used to validate cluster information fetched "
    "from the API server.",
)
@click.option(
    "--tls-bootstrap-token",
    cls=UpstreamOption,
    secret=True,
    default=None,
    help="The token used to temporarily authenticate with the API server while joining the "
    "node (the bootstrap kubeconfig's credential).",
)
@click.option(
    "--discovery-token-ca-cert-hash",
    "pins",
    type=StringList(),
    multiple=True,
    help="For token-based discovery, validate that the root CA public key matches this hash "
    '(format: "sha256:<hex>"; repeatable, or comma-separated).',
)
@click.option(
    "--discovery-token-unsafe-skip-ca-verification",
    is_flag=True,
    help="For token-based discovery, allow joining without --discovery-token-ca-cert-hash pinning.",
)
@click.option(
    "--discovery-file",
    default=None,
    help="For file-based discovery, a file or https URL from which to load cluster information.",
)
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Path to a kubeadm JoinConfiguration (kubeadm.k8s.io/v1beta4) file.",
)
@click.option(
    "--ignore-preflight-errors",
    type=StringList(),
    multiple=True,
    help="Accepted as kubeadm's (e.g. 'IsPrivilegedUser,Swap' or 'all'): kubeboot join runs "
    "no preflight checks, so there is nothing to ignore.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Don't apply any changes; just output what would be done (discovery is still "
    "checked, with anonymous read-only requests).",
)
@click.option(
    "--cri-socket",
    default=None,
    help="Accepted as kubeadm's; no effect (kubeboot runs no container runtime).",
)
@click.option(
    "--control-plane",
    is_flag=True,
    help="Refused: kubeboot join joins worker nodes only.",
)
@click.option(
    "--discovery-timeout",
    type=GoDuration(),
    default="5m",
    show_default=True,
    help="How long discovery retries (Go duration; kubeadm's timeouts.discovery).",
)
@click.option(
    "--bootstrap-kubeconfig",
    type=click.Path(path_type=Path),
    default=Path("/etc/kubernetes/bootstrap-kubelet.conf"),
    show_default=True,
    help="Where to write the TLS-bootstrap kubeconfig (kept for re-bootstrap after expiry).",
)
@click.option(
    "--daemon",
    is_flag=True,
    default=True,
    show_default=True,
    help="Keep running as the agent after the client certificate is issued (--no-daemon: "
    "stop there, for scripts).",
)
@agent_options
def join(**params: Any) -> None:
    """Join this node to a cluster: discover it, then bootstrap its certificates.

    \b
    Example (the line `kubeboot token create --print-join-command` prints):
      kubeboot join 10.0.0.1:6443 --token abcdef.0123456789abcdef \\
        --discovery-token-ca-cert-hash sha256:1234...cdef --cert-dir ./pki
    """
    ctx = click.get_current_context()
    spec = join_spec(params, given_on(ctx))
    assert spec.agent is not None
    for note in spec.notes:
        log.info(note)
    click.echo("[preflight] Running pre-flight checks")
    bootstrap_path: Path = params["bootstrap_kubeconfig"]
    plan = spec.agent
    _preflight(plan, bootstrap_path)
    conf = _discover(spec)
    if spec.dry_run:
        command = " ".join(["kubeboot", "agent", *agent_flags(plan)])
        click.echo(
            f'[kubelet-start] Would write the TLS-bootstrap kubeconfig to "{bootstrap_path}"'
        )
        click.echo("[kubelet-start] Would start the kubelet (the kubeboot agent):")
        click.echo(f"  {command}")
        click.echo("[kubelet-wait] Would wait for the kubelet to be bootstrapped")
        click.echo(JOINED, nl=False)
        return
    from kubeboot.agent.kubeconfigs import write_kubeconfig

    write_kubeconfig(bootstrap_path, conf)
    log.info(f"wrote the TLS-bootstrap kubeconfig {bootstrap_path}")
    click.echo("[kubelet-start] Starting the kubelet (the kubeboot agent)")
    click.echo("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap")
    run_agent(
        plan,
        daemon=bool(params["daemon"]),
        wake_command=_agent_command(plan),
        on_client_ready=lambda: click.echo(JOINED, nl=False),
        client_role="join",
    )


def _preflight(plan: AgentPlan, bootstrap_path: Path) -> None:
    """Paths the join will write must be writable as files: say what to fix, write nothing."""
    from kubeboot.agent.certstore import path_problems

    problems = path_problems(
        plan.cert_dir,
        ("kubelet-client", "kubelet-server"),
        (bootstrap_path, plan.kubeconfig),
    )
    if problems:
        raise CommandError("[preflight] " + "; ".join(problems))


def _discover(spec: JoinSpec) -> dict[str, Any]:
    """Discovery (file or token) and the TLS-bootstrap kubeconfig; CommandError on refusal."""
    from kubeboot.agent.discovery import DiscoveryError, discover_with_file, discover_with_token
    from kubeboot.agent.kubeconfigs import bootstrap_kubeconfig, ca_pem_of

    seconds = spec.discovery_timeout.total_seconds()
    try:
        if spec.discovery_file:
            conf = asyncio.run(discover_with_file(spec.discovery_file, spec.tls_bootstrap_token))
        else:
            if not spec.endpoint or not spec.discovery_token:
                raise DiscoveryError(
                    "give the API server endpoint and --token (or --discovery-file)"
                )
            if not spec.tls_bootstrap_token:
                raise DiscoveryError(
                    "token discovery needs a TLS bootstrap token: --tls-bootstrap-token or "
                    "--token (discovery.tlsBootstrapToken in --config)"
                )
            conf = asyncio.run(
                discover_with_token(
                    spec.endpoint,
                    spec.discovery_token,
                    spec.pins,
                    unsafe_skip_ca_verification=spec.unsafe_skip_ca_verification,
                    discovery_seconds=seconds,
                    progress=log.info,
                )
            )
            if spec.tls_bootstrap_token != spec.discovery_token:
                cluster = conf["clusters"][0]["cluster"]
                ca_pem = ca_pem_of(cluster)
                assert ca_pem is not None
                conf = bootstrap_kubeconfig(cluster["server"], ca_pem, spec.tls_bootstrap_token)
    except DiscoveryError as e:
        raise CommandError(str(e)) from e
    log.info(f"[discovery] cluster-info verified: {conf['clusters'][0]['cluster']['server']}")
    return conf


def _agent_command(plan: AgentPlan) -> list[str] | None:
    """What the sleeper execs to continue: ``kubeboot agent`` with this join's plan (not
    ``join`` again: discovery is done, and the token may have expired by then). None
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
        *agent_flags(plan),
    ]
