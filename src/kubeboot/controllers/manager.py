"""``run_controllers``: the controller manager, one entry point for the server and the CLI.

It resolves ``--controllers``, builds the shared informers each enabled controller needs
(one CSR informer for approver, signer and cleaner; bootstrap-token Secrets in kube-system;
the cluster-info ConfigMap in kube-public), and runs them all in one task group, under
leader election on a Lease when ``leader_elect`` is set. ``csrsigning`` runs only with a
signing cert/key pair configured, as upstream skips it otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from kubeboot.auth.satokens import TokenIssuer, legacy_claims
from kubeboot.client.interface import ApiClient
from kubeboot.clock import Clock
from kubeboot.controllers.bootstrapsigner import (
    CLUSTER_INFO_FIELD_SELECTOR,
    run_bootstrapsigner,
)
from kubeboot.controllers.certificates import CSR_RESOURCE
from kubeboot.controllers.clusterroleaggregation import run_clusterrole_aggregation
from kubeboot.controllers.config import ControllerConfig, enabled_controllers
from kubeboot.controllers.csrapproving import run_csrapproving
from kubeboot.controllers.csrcleaner import run_csrcleaner
from kubeboot.controllers.csrsigning import run_csrsigning
from kubeboot.controllers.leader import run_with_leader_election
from kubeboot.controllers.namespace import run_namespace_controller
from kubeboot.controllers.nodelifecycle import NODELIFECYCLE, TTL, run_node_controllers
from kubeboot.controllers.rootcapublisher import ROOT_CA_FIELD_SELECTOR, run_rootcapublisher
from kubeboot.controllers.runtime import Informer
from kubeboot.controllers.serviceaccounts import run_serviceaccounts_controller
from kubeboot.controllers.tokencleaner import run_tokencleaner
from kubeboot.controllers.tokens import (
    TOKEN_SECRETS_FIELD_SELECTOR,
    ensure_legacy_token_secrets,
    run_tokens_controller,
)
from kubeboot.pki.authority import CertificateAuthority
from kubeboot.pki.csr import (
    KUBE_APISERVER_CLIENT_SIGNER,
    KUBELET_CLIENT_SIGNER,
    KUBELET_SERVING_SIGNER,
    LEGACY_UNKNOWN_SIGNER,
)
from kubeboot.pki.serviceaccount_keys import load_signing_key
from kubeboot.resources import bootstrap_token as bt
from kubeboot.resources.registry import ResourceInfo, find_resource
from kubeboot.resources.serviceaccount import LEGACY_ISSUER
from kubeboot.resources.status import AlreadyExists, StatusError

__all__ = ["ReloadingAuthority", "SigningConfigError", "run_controllers", "signing_files"]

log = logging.getLogger("kubeboot.controllers")

_SIGNERS = (
    KUBELET_CLIENT_SIGNER,
    KUBELET_SERVING_SIGNER,
    KUBE_APISERVER_CLIENT_SIGNER,
    LEGACY_UNKNOWN_SIGNER,
)


def _resource(group: str, plural: str) -> ResourceInfo:
    res = find_resource(group, "v1", plural)
    assert res is not None
    return res


class SigningConfigError(ValueError):
    """Inconsistent ``--cluster-signing-*`` flags; messages are upstream's."""


def signing_files(config: ControllerConfig) -> dict[str, tuple[Path, Path]]:
    """signerName -> (cert, key) for every signer this process runs (none: skip csrsigning).

    The generic pair serves all four signers; per-signer pairs run only the signers they
    name; both at once is an error, as in kube-controller-manager.
    """
    cert, key = config.cluster_signing_cert_file, config.cluster_signing_key_file
    if (cert is None) != (key is None):
        raise SigningConfigError(
            "--cluster-signing-cert-file and --cluster-signing-key-file must be set together"
        )
    unknown = sorted(set(config.signer_files) - set(_SIGNERS))
    if unknown:
        raise SigningConfigError(f"unknown signer names: {', '.join(unknown)}")
    if cert is not None and key is not None:
        if config.signer_files:
            raise SigningConfigError(
                "cannot specify default and per controller certs at the same time"
            )
        return dict.fromkeys(_SIGNERS, (cert, key))
    return dict(config.signer_files)


class ReloadingAuthority:
    """The CA from a cert/key file pair, re-read when either file changes on disk.

    A pair that fails to load after a change keeps the previous CA in use (and logs), so a
    half-written rotation by an operator never stops signing.
    """

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self._files = (cert_file, key_file)
        self._stamp = self._mtimes()
        self._ca = CertificateAuthority.load(cert_file, key_file)

    def _mtimes(self) -> tuple[int, int]:
        return (os.stat(self._files[0]).st_mtime_ns, os.stat(self._files[1]).st_mtime_ns)

    def __call__(self) -> CertificateAuthority:
        try:
            stamp = self._mtimes()
            if stamp != self._stamp:
                self._ca = CertificateAuthority.load(*self._files)
                self._stamp = stamp
        except (OSError, ValueError) as exc:
            log.warning("csrsigning: keeping the previous CA; reload failed: %s", exc)
        return self._ca


# The service account each controller acts as under --use-service-account-credentials; the
# default RBAC (auth.defaults) binds exactly these names.
CERTIFICATE_CONTROLLER_SA = "certificate-controller"
BOOTSTRAP_SIGNER_SA = "bootstrap-signer"
TOKEN_CLEANER_SA = "token-cleaner"
SERVICE_ACCOUNT_CONTROLLER_SA = "service-account-controller"
ROOT_CA_PUBLISHER_SA = "root-ca-cert-publisher"
NAMESPACE_CONTROLLER_SA = "namespace-controller"
NODE_CONTROLLER_SA = "node-controller"
TTL_CONTROLLER_SA = "ttl-controller"
CLUSTERROLE_AGGREGATION_SA = "clusterrole-aggregation-controller"
CONTROLLER_SA_NAMESPACE = "kube-system"
# Which identities each controller needs (csrsigning's only when it signs).
_SERVICE_ACCOUNTS = {
    "csrapproving": (CERTIFICATE_CONTROLLER_SA,),
    "csrcleaner": (CERTIFICATE_CONTROLLER_SA,),
    "csrsigning": (CERTIFICATE_CONTROLLER_SA,),
    "bootstrapsigner": (BOOTSTRAP_SIGNER_SA,),
    "tokencleaner": (TOKEN_CLEANER_SA, BOOTSTRAP_SIGNER_SA),
    "serviceaccount": (SERVICE_ACCOUNT_CONTROLLER_SA,),
    "root-ca-cert-publisher": (ROOT_CA_PUBLISHER_SA,),
    "namespace": (NAMESPACE_CONTROLLER_SA,),
    "nodelifecycle": (NODE_CONTROLLER_SA,),
    "ttl": (TTL_CONTROLLER_SA,),
    "clusterrole-aggregation": (CLUSTERROLE_AGGREGATION_SA,),
}

ClientFor = Callable[[str], ApiClient]


def controller_service_accounts(enabled: frozenset[str]) -> list[str]:
    """The kube-system ServiceAccounts the enabled controllers act as, sorted."""
    return sorted({sa for name in enabled for sa in _SERVICE_ACCOUNTS.get(name, ())})


async def ensure_service_accounts(client: ApiClient, names: list[str]) -> None:
    """Create the controllers' ServiceAccounts that are missing, as kube-controller-manager's
    client builder does before a controller's first request (so RBAC subjects of kind
    ServiceAccount name objects that exist, and tokens can be requested for them)."""
    sa_res = _resource("", "serviceaccounts")
    for name in names:
        try:
            await client.create(sa_res, {"metadata": {"name": name}}, CONTROLLER_SA_NAMESPACE)
        except AlreadyExists:
            continue
        except StatusError as exc:  # the controllers still run; the next leader retries
            log.warning(
                "could not create ServiceAccount %s/%s: %s", CONTROLLER_SA_NAMESPACE, name, exc
            )


async def _run_enabled(
    manager: ApiClient, client_for: ClientFor, config: ControllerConfig, clock: Clock
) -> None:
    enabled = enabled_controllers(config.controllers)
    files = signing_files(config) if "csrsigning" in enabled else {}
    signing = bool(files)
    if "csrsigning" in enabled and not signing:
        log.info("csrsigning: no --cluster-signing-cert-file/--cluster-signing-key-file; skipped")
    jobs: list[Coroutine[Any, Any, None]] = []
    if enabled & {"csrapproving", "csrcleaner"} or signing:
        client = client_for(CERTIFICATE_CONTROLLER_SA)
        csrs = Informer(client, CSR_RESOURCE)
        jobs.append(csrs.run())
        if "csrapproving" in enabled:
            jobs.append(
                run_csrapproving(
                    client, csrs, insecure_group=config.approve_all_kubelet_csrs_for_group
                )
            )
        if signing:
            loaders = {pair: ReloadingAuthority(*pair) for pair in set(files.values())}
            authorities = {signer: loaders[pair] for signer, pair in files.items()}
            jobs.append(
                run_csrsigning(client, csrs, authorities, config.cluster_signing_duration, clock)
            )
        if "csrcleaner" in enabled:
            jobs.append(run_csrcleaner(client, csrs, clock))
    secret_res, configmap_res = _resource("", "secrets"), _resource("", "configmaps")
    if enabled & {"bootstrapsigner", "tokencleaner"}:
        signer_client = client_for(BOOTSTRAP_SIGNER_SA)
        # Both service accounts may read kube-system Secrets, so one informer serves both.
        secrets = Informer(
            signer_client, secret_res, bt.TOKEN_NAMESPACE, field_selector=f"type={bt.SECRET_TYPE}"
        )
        jobs.append(secrets.run())
        if "tokencleaner" in enabled:
            jobs.append(run_tokencleaner(client_for(TOKEN_CLEANER_SA), secrets, secret_res, clock))
        if "bootstrapsigner" in enabled:
            configmaps = Informer(
                signer_client,
                configmap_res,
                bt.CLUSTER_INFO_NAMESPACE,
                field_selector=CLUSTER_INFO_FIELD_SELECTOR,
            )
            jobs.append(configmaps.run())
            jobs.append(
                run_bootstrapsigner(signer_client, configmaps, secrets, configmap_res, clock)
            )
    jobs += _namespace_jobs(manager, client_for, enabled, config, clock)
    jobs += _node_jobs(manager, client_for, enabled)
    jobs += _token_jobs(manager, enabled, config)
    if "clusterrole-aggregation" in enabled:
        cluster_roles_res = _resource("rbac.authorization.k8s.io", "clusterroles")
        cluster_roles = Informer(manager, cluster_roles_res)
        jobs.append(cluster_roles.run())
        jobs.append(
            run_clusterrole_aggregation(
                client_for(CLUSTERROLE_AGGREGATION_SA), cluster_roles, cluster_roles_res
            )
        )
    log.info("starting controllers: %s", ", ".join(sorted(enabled)) or "(none)")
    async with asyncio.TaskGroup() as group:
        for job in jobs:
            group.create_task(job)


def _token_jobs(
    manager: ApiClient, enabled: frozenset[str], config: ControllerConfig
) -> list[Coroutine[Any, Any, None]]:
    """serviceaccount-token, with the manager's own identity as upstream's root client (it
    starts before any controller ServiceAccount has a credential)."""
    if "serviceaccount-token" not in enabled:
        return []
    if config.service_account_private_key_file is None or config.root_ca_file is None:
        log.info("serviceaccount-token: no --service-account-private-key-file; skipped")
        return []
    legacy = TokenIssuer(LEGACY_ISSUER, load_signing_key(config.service_account_private_key_file))

    def sign(namespace: str, name: str, uid: str, secret_name: str) -> str:
        return legacy.issue(legacy_claims(namespace, name, uid, secret_name))

    secret_res, sa_res = _resource("", "secrets"), _resource("", "serviceaccounts")
    secrets = Informer(manager, secret_res, field_selector=TOKEN_SECRETS_FIELD_SELECTOR)
    accounts = Informer(manager, sa_res)
    ca_pem = config.root_ca_file.read_bytes()
    return [
        secrets.run(),
        accounts.run(),
        run_tokens_controller(manager, secrets, accounts, secret_res, sa_res, ca_pem, sign),
    ]


def _node_jobs(
    manager: ApiClient, client_for: ClientFor, enabled: frozenset[str]
) -> list[Coroutine[Any, Any, None]]:
    """nodelifecycle and ttl: one Node cache read as the manager, writes as each
    controller's ServiceAccount."""
    identities = {NODELIFECYCLE: NODE_CONTROLLER_SA, TTL: TTL_CONTROLLER_SA}
    clients = {name: client_for(sa) for name, sa in identities.items() if name in enabled}
    if not clients:
        return []
    node_res = _resource("", "nodes")
    nodes = Informer(manager, node_res)
    return [nodes.run(), run_node_controllers(clients, nodes, node_res)]


def _namespace_jobs(
    manager: ApiClient,
    client_for: ClientFor,
    enabled: frozenset[str],
    config: ControllerConfig,
    clock: Clock,
) -> list[Coroutine[Any, Any, None]]:
    """namespace, serviceaccount and root-ca-cert-publisher: one shared namespace cache read
    as the manager (upstream's shared informers), writes as each controller's ServiceAccount."""
    wanted = enabled & {"namespace", "serviceaccount", "root-ca-cert-publisher"}
    ca_pem = None
    if "root-ca-cert-publisher" in wanted:
        if config.root_ca_file is None:
            log.info("root-ca-cert-publisher: no --root-ca-file; skipped")
            wanted -= {"root-ca-cert-publisher"}
        else:
            ca_pem = config.root_ca_file.read_text()
    if not wanted:
        return []
    ns_res = _resource("", "namespaces")
    namespaces = Informer(manager, ns_res)
    jobs: list[Coroutine[Any, Any, None]] = [namespaces.run()]
    if "namespace" in wanted:
        jobs.append(
            run_namespace_controller(client_for(NAMESPACE_CONTROLLER_SA), namespaces, ns_res, clock)
        )
    if "serviceaccount" in wanted:
        sa_res = _resource("", "serviceaccounts")
        service_accounts = Informer(manager, sa_res)
        jobs.append(service_accounts.run())
        jobs.append(
            run_serviceaccounts_controller(
                client_for(SERVICE_ACCOUNT_CONTROLLER_SA), namespaces, service_accounts, sa_res
            )
        )
    if ca_pem is not None:
        configmap_res = _resource("", "configmaps")
        configmaps = Informer(manager, configmap_res, field_selector=ROOT_CA_FIELD_SELECTOR)
        jobs.append(configmaps.run())
        jobs.append(
            run_rootcapublisher(
                client_for(ROOT_CA_PUBLISHER_SA), namespaces, configmaps, configmap_res, ca_pem
            )
        )
    return jobs


async def run_controllers(
    client: ApiClient,
    config: ControllerConfig,
    clock: Clock,
    *,
    client_for: ClientFor | None = None,
) -> None:
    """Run the enabled controllers until cancelled (leading a Lease when configured).

    ``client`` is the manager's own identity (leader election, the shared caches of the
    ServiceAccount controllers, and every controller when ``client_for`` is None).
    ``client_for(service_account)`` gives each controller its own identity, as
    kube-controller-manager's ``--use-service-account-credentials``: those ServiceAccounts
    are created in kube-system first, and the default RBAC grants each exactly what its
    controller needs.
    """
    # Fail fast on bad flags, before campaigning for the lease.
    enabled = enabled_controllers(config.controllers)
    signing_files(config)
    resolve: ClientFor = client_for or (lambda _sa: client)

    async def run() -> None:
        names = controller_service_accounts(enabled)
        if client_for is not None:
            await ensure_service_accounts(client, names)
        if config.legacy_token_secrets:
            await ensure_legacy_token_secrets(
                client, _resource("", "secrets"), CONTROLLER_SA_NAMESPACE, names
            )
        await _run_enabled(client, resolve, config, clock)

    if not config.leader_elect:
        await run()
        return
    await run_with_leader_election(client, config, clock, run)
