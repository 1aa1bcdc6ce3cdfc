"""``kubeboot server``: the API server (kube-apiserver's part of TLS bootstrapping)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from kubeboot.api.registry.kubernetes_service import (
    DEFAULT_SERVICE_CIDR,
    ServiceCidrError,
    parse_service_cidrs,
)
from kubeboot.api.server.config import DEFAULT_DATA_DIR, ServerConfig
from kubeboot.api.server.eventloop import loop_factory
from kubeboot.cli.commandline import UpstreamCommand, UpstreamOption
from kubeboot.cli.flagtypes import FeatureGates, GoDuration, etcd_client_options, split_csv
from kubeboot.controllers.config import ControllersFlagError, enabled_controllers
from kubeboot.controllers.servingpolicy import PolicyError, ServingPolicy, load_policy
from kubeboot.storage.interface import StoreUnavailable

__all__ = ["server", "server_config"]

log = logging.getLogger("kubeboot.server")


# Gates kube-apiserver / kube-controller-manager 1.37 still know that the seed documents set.
SERVER_FEATURE_GATES = {
    "RotateKubeletServerCertificate": "accepted; no effect on the control plane (upstream's "
    "controller manager stopped auto-approving serving CSRs in 1.9)",
}

# kube-controller-manager's per-signer flags: --cluster-signing-<flag>-{cert,key}-file.
_PER_SIGNER = {
    "kubelet-serving": "kubernetes.io/kubelet-serving",
    "kubelet-client": "kubernetes.io/kube-apiserver-client-kubelet",
    "kube-apiserver-client": "kubernetes.io/kube-apiserver-client",
    "legacy-unknown": "kubernetes.io/legacy-unknown",
}


def _per_signer_file_options(command: Callable[..., None]) -> Callable[..., None]:
    for flag, signer in reversed(_PER_SIGNER.items()):
        for part in ("key", "cert"):
            command = click.option(
                f"--cluster-signing-{flag}-{part}-file",
                type=click.Path(path_type=Path, exists=True, dir_okay=False),
                default=None,
                help=f"{part.capitalize()} for signer {signer} (instead of the generic pair).",
            )(command)
    return command


def _signer_files(
    flags: dict[str, Path | None], generic_cert: Path | None
) -> dict[str, tuple[Path, Path]]:
    files: dict[str, tuple[Path, Path]] = {}
    for flag, signer in _PER_SIGNER.items():
        key = flag.replace("-", "_")
        cert = flags.get(f"cluster_signing_{key}_cert_file")
        private = flags.get(f"cluster_signing_{key}_key_file")
        if (cert is None) != (private is None):
            raise click.BadParameter(
                f"--cluster-signing-{flag}-cert-file and --cluster-signing-{flag}-key-file "
                "must be given together"
            )
        if cert is not None and private is not None:
            files[signer] = (cert, private)
    if files and generic_cert is not None:
        raise click.BadParameter(
            "--cluster-signing-cert-file/--cluster-signing-key-file cannot be combined with the "
            "per-signer --cluster-signing-*-file flags (as in kube-controller-manager)"
        )
    return files


@click.command(cls=UpstreamCommand, context_settings={"show_default": True})
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_DATA_DIR,
    help="Where the CA, serving certificate, admin.conf and state.db live "
    "(`make run` uses ./kubeboot-data).",
)
@click.option("--bind-address", default="0.0.0.0", help="Address to listen on.")  # noqa: S104
@click.option("--secure-port", type=int, default=6443, help="HTTPS port (0 picks a free one).")
@click.option(
    "--advertise-address",
    default=None,
    help="Address clients use to reach this server (cluster-info, serving cert).",
)
@click.option(
    "--tls-san",
    "tls_sans",
    multiple=True,
    help="Extra DNS name or IP for the serving certificate (repeatable).",
)
@click.option(
    "--tls-cert-file",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="Serving certificate (with --tls-private-key-file) instead of the one kubeboot "
    "issues itself in <data-dir>/pki.",
)
@click.option(
    "--tls-private-key-file",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="Private key of --tls-cert-file.",
)
@click.option(
    "--client-ca-file",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="CA bundle for client certificates (default: the cluster CA).",
)
@click.option(
    "--cluster-signing-cert-file",
    type=click.Path(path_type=Path),
    default=None,
    help="CA certificate that signs every signer's certificates (default: the cluster CA).",
)
@click.option(
    "--cluster-signing-key-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Private key of --cluster-signing-cert-file.",
)
@click.option(
    "--storage-backend",
    type=click.Choice(["sqlite", "etcd3"]),
    default="sqlite",
    help="sqlite: embedded state.db in --data-dir; etcd3: the etcd cluster in --etcd-servers.",
)
@click.option(
    "--etcd-servers",
    default="",
    help="Comma-separated etcd client URLs, e.g. https://10.0.0.1:2379,https://10.0.0.2:2379.",
)
@etcd_client_options
@click.option(
    "--watch-cache",
    is_flag=True,
    default=True,
    help="etcd3: serve watches and consistent reads from one in-memory cache fed by one etcd "
    "watch, as kube-apiserver's watch cache (=false: every read and watch goes to etcd).",
)
@click.option(
    "--authorization-mode",
    default="Node,RBAC",
    help="Comma-separated: Node, RBAC, AlwaysAllow (development only).",
)
@click.option(
    "--anonymous-auth",
    is_flag=True,
    default=True,
    help="Let unauthenticated requests through as system:anonymous (RBAC decides what they "
    "may do: kubeadm lets them read kube-public/cluster-info for discovery).",
)
@click.option(
    "--anonymous-allowed-cidrs",
    default="",
    help="Comma-separated CIDRs anonymous requests may come from; others get 401 "
    "(default: any address), e.g. 10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,127.0.0.0/8.",
)
@click.option(
    "--anonymous-rate",
    type=float,
    default=20.0,
    help="Anonymous requests per second allowed per source address (then 429).",
)
@click.option("--anonymous-burst", type=int, default=40, help="Burst for --anonymous-rate.")
@click.option(
    "--failed-auth-rate",
    type=float,
    default=5.0,
    help="Failed authentications per second allowed per source address (then 429).",
)
@click.option("--failed-auth-burst", type=int, default=20, help="Burst for --failed-auth-rate.")
@click.option(
    "--proxy-protocol-trusted-cidrs",
    "proxy_protocol_trusted_cidrs",
    multiple=True,
    help="Load balancers (CIDRs, comma-separated or repeated) that send a PROXY protocol "
    "v1/v2 header naming the client; connections from them must carry one, others must not. "
    "E.g. 10.0.0.10/32,10.0.0.11/32. See docs/operations.md.",
)
@click.option(
    "--audit-log-path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write audit.k8s.io/v1 Events (Metadata level), one JSON line each; '-' is stdout.",
)
@click.option(
    "--audit-log-maxsize",
    type=click.IntRange(min=0),
    default=0,
    help="Rotate the audit log at this many MB (0: 100 MB, as kube-apiserver).",
)
@click.option(
    "--audit-log-maxbackup",
    type=click.IntRange(min=0),
    default=0,
    help="Rotated audit files to keep (0: keep all, as kube-apiserver).",
)
@click.option(
    "--audit-policy-file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="audit.k8s.io/v1 Policy: which requests are logged (levels None and Metadata). "
    "Without it every request is logged at Metadata level.",
)
@click.option(
    "--enable-bootstrap-token-auth",
    is_flag=True,
    default=True,
    help="Accept bootstrap tokens (kube-system/bootstrap-token-<id> Secrets) as bearer tokens.",
)
@click.option(
    "--token-auth-file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help='Static tokens, CSV: token,user,uid,"group1,group2".',
)
@click.option(
    "--service-account-signing-key-file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="Private key (RSA or ECDSA PEM) that signs ServiceAccount tokens (default: "
    "<data-dir>/pki/sa.key, generated on first start).",
)
@click.option(
    "--service-account-key-file",
    "service_account_key_files",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    multiple=True,
    help="PEM keys or certificates that verify ServiceAccount tokens (repeatable; default: "
    "the signing key's public half). Keep an old key here while rotating.",
)
@click.option(
    "--service-account-issuer",
    "service_account_issuers",
    multiple=True,
    help="The iss claim of ServiceAccount tokens (repeatable: the first one signs, all are "
    "accepted; default https://kubernetes.default.svc.cluster.local, as kubeadm). An https "
    "URL also publishes /.well-known/openid-configuration.",
)
@click.option(
    "--api-audiences",
    default="",
    help="Comma-separated audiences of this API: tokens must name one (default: the issuers).",
)
@click.option(
    "--service-account-max-token-expiration",
    type=GoDuration(),
    default=None,
    help="Cap on a TokenRequest's duration (1h to 2^32s; longer requests are shortened, with "
    "a warning). Default: no cap.",
)
@click.option(
    "--service-account-lookup",
    is_flag=True,
    default=True,
    help="Check that a legacy token's Secret and ServiceAccount still exist.",
)
@click.option(
    "--legacy-controller-token-secrets",
    is_flag=True,
    default=False,
    help="Create a legacy token Secret <sa>-token-xxxxx for each controller ServiceAccount "
    "in kube-system, as clusters before 1.24 did (never-expiring tokens; see docs/auth.md).",
)
@click.option(
    "--controllers",
    default="*,bootstrapsigner,tokencleaner",
    help="kube-controller-manager syntax: '*' all on-by-default, 'name' on, '-name' off.",
)
@click.option(
    "--cluster-signing-duration",
    cls=UpstreamOption,
    deprecated_aliases=["--experimental-cluster-signing-duration"],
    type=GoDuration(),
    default="8760h",
    help="Longest validity of signed certificates (Go duration). The removed "
    "--experimental-cluster-signing-duration is read as this flag, with a warning.",
)
@click.option(
    "--service-cluster-ip-range",
    default=DEFAULT_SERVICE_CIDR,
    help="CIDR of Service addresses: its first address is the default/kubernetes Service's "
    "ClusterIP, its tenth the clusterDNS in kube-system/kubelet-config (kubeadm's default).",
)
@click.option(
    "--cluster-name",
    default="kubernetes",
    help="The cluster's name, published as clusterName in kube-system/kubeadm-config.",
)
@click.option(
    "--insecure-experimental-approve-all-kubelet-csrs-for-group",
    "approve_all_kubelet_csrs_for_group",
    default="",
    metavar="GROUP",
    help="INSECURE (the alpha auto-approval of Kubernetes 1.4-1.6): approve every kubelet "
    "client CSR requested by a member of GROUP, without a SubjectAccessReview. Prefer a "
    "ClusterRoleBinding to system:certificates.k8s.io:certificatesigningrequests:nodeclient.",
)
@click.option(
    "--serving-approver-policy",
    default="",
    metavar="FILE|YAML",
    help="Rules of the servingapprover controller (enable it with --controllers=...,"
    "servingapprover): a YAML file, or inline YAML such as '{ipEvidence: true, "
    "allowedIPRanges: [10.0.0.0/8]}'. Keys: docs/beyond-upstream.md.",
)
@click.option(
    "--feature-gates",
    type=FeatureGates(SERVER_FEATURE_GATES),
    default="",
    help="Feature gates as kube-controller-manager takes them (Name=true,Other=false); "
    "kubeboot knows: " + ", ".join(sorted(SERVER_FEATURE_GATES)) + ".",
)
@click.option(
    "--leader-elect",
    is_flag=True,
    default=True,
    help="Run controllers only on the Lease holder.",
)
@click.option(
    "--issuance-ledger",
    is_flag=True,
    default=True,
    help="Record every issued certificate as an IssuedCertificate (ledger.kubeboot.io/v1); "
    "--issuance-ledger=false turns it off. See docs/beyond-upstream.md.",
)
@click.option(
    "--certificate-revocation",
    is_flag=True,
    default=True,
    help="Refuse client certificates revoked with `kubeboot certs revoke` (401) and CSRs "
    "for nodes denied re-joining; --certificate-revocation=false turns it off.",
)
@click.option(
    "--revoke-certificates-on-node-delete",
    is_flag=True,
    default=False,
    help="Revoke a Node's unexpired certificates (from the ledger) when the Node object is "
    "deleted. Off by default: upstream, a kubelet whose Node was deleted registers it again "
    "with the certificate it has.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=0,
    help="Serve HTTPS from this many worker processes, so TLS and requests use every core; "
    "this process keeps storage and controllers (0: it serves too). See docs/performance.md.",
)
@_per_signer_file_options
def server(**params: Any) -> None:
    """Run the kubeboot API server on embedded SQLite (or etcd).

    \b
    Example:
      kubeboot server --data-dir ./kubeboot-data --secure-port 6443
    \b
    One of several replicas on etcd (see docs/replicas.md):
      kubeboot server --storage-backend etcd3 \\
        --etcd-servers https://10.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379 \\
        --etcd-cafile etcd-ca.crt --etcd-certfile etcd-client.crt --etcd-keyfile etcd-client.key \\
        --cluster-signing-cert-file ca.crt --cluster-signing-key-file ca.key
    """
    config = server_config(params)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(_run(config))


def server_config(params: dict[str, Any]) -> ServerConfig:
    """The :class:`ServerConfig` a command line means (click's values); refuses bad flags
    with :class:`click.BadParameter` before anything starts."""
    if params["storage_backend"] == "etcd3" and not split_csv(params["etcd_servers"]):
        raise click.BadParameter(
            "--storage-backend etcd3 needs --etcd-servers (e.g. https://127.0.0.1:2379)",
            param_hint="--etcd-servers",
        )
    signer_flags = {
        k: v for k, v in params.items() if k.startswith("cluster_signing_") and k.endswith("_file")
    }
    config = ServerConfig(
        data_dir=params["data_dir"],
        bind_address=params["bind_address"],
        secure_port=params["secure_port"],
        advertise_address=params["advertise_address"],
        tls_sans=tuple(params["tls_sans"]),
        tls_cert_file=params["tls_cert_file"],
        tls_private_key_file=params["tls_private_key_file"],
        client_ca_file=params["client_ca_file"],
        cluster_signing_cert_file=params["cluster_signing_cert_file"],
        cluster_signing_key_file=params["cluster_signing_key_file"],
        storage_backend=params["storage_backend"],
        etcd_servers=split_csv(params["etcd_servers"]),
        etcd_cafile=params["etcd_cafile"],
        etcd_certfile=params["etcd_certfile"],
        etcd_keyfile=params["etcd_keyfile"],
        etcd_prefix=params["etcd_prefix"],
        watch_cache=params["watch_cache"],
        authorization_mode=split_csv(params["authorization_mode"]),
        anonymous_auth=params["anonymous_auth"],
        anonymous_allowed_cidrs=split_csv(params["anonymous_allowed_cidrs"]),
        anonymous_rate=params["anonymous_rate"],
        anonymous_burst=params["anonymous_burst"],
        failed_auth_rate=params["failed_auth_rate"],
        failed_auth_burst=params["failed_auth_burst"],
        proxy_protocol_trusted_cidrs=tuple(
            cidr for value in params["proxy_protocol_trusted_cidrs"] for cidr in split_csv(value)
        ),
        audit_log_path=params["audit_log_path"],
        audit_log_maxsize=params["audit_log_maxsize"],
        audit_log_maxbackup=params["audit_log_maxbackup"],
        audit_policy_file=params["audit_policy_file"],
        enable_bootstrap_token_auth=params["enable_bootstrap_token_auth"],
        token_auth_file=params["token_auth_file"],
        controllers=split_csv(params["controllers"]),
        cluster_signing_duration=params["cluster_signing_duration"],
        service_cluster_ip_range=params["service_cluster_ip_range"],
        cluster_name=params["cluster_name"],
        leader_elect=params["leader_elect"],
        workers=params["workers"],
        issuance_ledger=params["issuance_ledger"],
        certificate_revocation=params["certificate_revocation"],
        revoke_on_node_delete=params["revoke_certificates_on_node_delete"],
        signer_files=_signer_files(signer_flags, params["cluster_signing_cert_file"]),
        approve_all_kubelet_csrs_for_group=params["approve_all_kubelet_csrs_for_group"],
        serving_approver_policy=_serving_policy(params["serving_approver_policy"]),
        service_account_signing_key_file=params["service_account_signing_key_file"],
        service_account_key_files=tuple(params["service_account_key_files"]),
        service_account_issuers=tuple(params["service_account_issuers"]),
        api_audiences=split_csv(params["api_audiences"]),
        service_account_max_token_expiration=params["service_account_max_token_expiration"],
        service_account_lookup=params["service_account_lookup"],
        legacy_controller_token_secrets=params["legacy_controller_token_secrets"],
    )
    try:
        enabled_controllers(config.controllers)
    except ControllersFlagError as exc:
        raise click.BadParameter(str(exc), param_hint="--controllers") from exc
    _check_auth_flags(config)
    try:
        parse_service_cidrs(config.service_cluster_ip_range)
    except ServiceCidrError as exc:
        raise click.BadParameter(str(exc), param_hint="--service-cluster-ip-range") from exc
    if config.approve_all_kubelet_csrs_for_group:
        log.warning(
            "INSECURE: --insecure-experimental-approve-all-kubelet-csrs-for-group=%s: every "
            "kubelet client CSR from a member of this group is approved without a "
            "SubjectAccessReview, so anyone holding a credential of the group gets a node "
            "identity of their choosing (the alpha flag was removed upstream in 1.7). Bind the "
            "group to system:certificates.k8s.io:certificatesigningrequests:nodeclient instead.",
            config.approve_all_kubelet_csrs_for_group,
        )
    for gate, enabled in params["feature_gates"].items():
        log.info(f"feature gate {gate}={str(enabled).lower()}: {SERVER_FEATURE_GATES[gate]}")
    return config


def _serving_policy(value: str) -> ServingPolicy:
    if not value:
        return ServingPolicy()
    try:
        return load_policy(value)
    except (OSError, PolicyError) as exc:
        raise click.BadParameter(str(exc), param_hint="--serving-approver-policy") from exc


def _check_auth_flags(config: ServerConfig) -> None:
    """Refuse bad rate-limit, CIDR, audit-policy and ServiceAccount token values before
    anything starts."""
    from kubeboot.auth.auditpolicy import AuditPolicyError, load_audit_policy
    from kubeboot.auth.ratelimit import BucketPolicy
    from kubeboot.auth.serviceaccount_tokens import issuer_problem, max_expiration_problem
    from kubeboot.auth.sources import SourceNetworks

    for flag, problem in (
        ("--service-account-issuer", issuer_problem(config.service_account_issuers)),
        (
            "--service-account-max-token-expiration",
            max_expiration_problem(config.service_account_max_token_expiration),
        ),
    ):
        if problem is not None:
            raise click.BadParameter(problem, param_hint=flag)

    if config.audit_policy_file is not None:
        try:
            load_audit_policy(config.audit_policy_file)
        except AuditPolicyError as exc:
            raise click.BadParameter(str(exc), param_hint="--audit-policy-file") from exc

    for flag, cidrs in (
        ("--anonymous-allowed-cidrs", config.anonymous_allowed_cidrs),
        ("--proxy-protocol-trusted-cidrs", config.proxy_protocol_trusted_cidrs),
    ):
        try:
            SourceNetworks(cidrs)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=flag) from exc
    for name, rate, burst in (
        ("anonymous", config.anonymous_rate, config.anonymous_burst),
        ("failed-auth", config.failed_auth_rate, config.failed_auth_burst),
    ):
        try:
            BucketPolicy(rate, burst)
        except ValueError:
            raise click.BadParameter(
                f"needs --{name}-rate > 0 and --{name}-burst >= 1, not {rate} and {burst}",
                param_hint=f"--{name}-rate",
            ) from None


async def _run(config: ServerConfig) -> None:
    from kubeboot.api.server.datadir_lock import DataDirInUse
    from kubeboot.api.server.serve import Server
    from kubeboot.api.server.site import ListenError
    from kubeboot.api.server.workers import WorkerStartError
    from kubeboot.pki.serviceaccount_keys import ServiceAccountKeyError

    srv = Server(config)
    try:
        await srv.start()
    except StoreUnavailable as exc:
        await srv.stop()
        raise click.ClickException(
            f"storage is unavailable: {exc}. Check that etcd is running and reachable "
            "at --etcd-servers (and the --etcd-* TLS files)."
        ) from exc
    except (WorkerStartError, ListenError, DataDirInUse, ServiceAccountKeyError) as exc:
        await srv.stop()
        raise click.ClickException(str(exc)) from exc
    loop_kind = type(asyncio.get_running_loop()).__module__.split(".")[0]
    log.info("event loop: %s", loop_kind)
    assert srv.init_result is not None
    click.echo(f"kubeboot API server listening on {srv.url}")
    click.echo(f"admin kubeconfig: {srv.admin_kubeconfig}")
    click.echo(f"  kubectl --kubeconfig {srv.admin_kubeconfig} get csr")
    click.echo("")
    click.echo("Join a node (the token is valid for 24h; `kubeboot token create` makes more):")
    click.echo(f"  {srv.init_result.join_command}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await srv.stop()
