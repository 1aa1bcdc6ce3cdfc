"""``kubeboot server`` settings, with kube-apiserver's flag names where they exist."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from kubeboot.api.registry.kubernetes_service import DEFAULT_SERVICE_CIDR
from kubeboot.controllers.servingpolicy import ServingPolicy

__all__ = ["DEFAULT_DATA_DIR", "ServerConfig"]

# Installed use (the systemd unit, docs/operations.md); `make run` passes ./kubeboot-data.
DEFAULT_DATA_DIR = Path("/var/lib/kubeboot")


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path = DEFAULT_DATA_DIR
    bind_address: str = "0.0.0.0"  # noqa: S104 - an API server listens on the network
    secure_port: int = 6443
    advertise_address: str | None = None
    tls_sans: tuple[str, ...] = ()
    tls_cert_file: Path | None = None
    tls_private_key_file: Path | None = None
    client_ca_file: Path | None = None
    cluster_signing_cert_file: Path | None = None
    cluster_signing_key_file: Path | None = None
    storage_backend: str = "sqlite"
    etcd_servers: tuple[str, ...] = ()
    etcd_cafile: Path | None = None
    etcd_certfile: Path | None = None
    etcd_keyfile: Path | None = None
    etcd_prefix: str = "/registry"
    watch_cache: bool = True
    authorization_mode: tuple[str, ...] = ("Node", "RBAC")
    anonymous_auth: bool = True
    enable_bootstrap_token_auth: bool = True
    token_auth_file: Path | None = None
    anonymous_allowed_cidrs: tuple[str, ...] = ()  # empty: anonymous requests from anywhere
    anonymous_rate: float = 20.0  # per source address, requests/s (auth.ratelimit defaults)
    anonymous_burst: int = 40
    failed_auth_rate: float = 5.0
    failed_auth_burst: int = 20
    # Load balancers whose PROXY protocol headers name the client (empty: no PROXY protocol).
    proxy_protocol_trusted_cidrs: tuple[str, ...] = ()
    audit_log_path: Path | None = None
    audit_log_maxsize: int = 0  # MB; 0 = 100 MB, as kube-apiserver
    audit_log_maxbackup: int = 0  # 0 = keep every rotated file, as kube-apiserver
    audit_policy_file: Path | None = None  # None: every request at Metadata level
    # Beyond upstream (docs/beyond-upstream.md): the issuance ledger, revocation checked by
    # the x509 authenticator (with RejoinDenials refused at CSR admission), and revoking a
    # deleted Node's certificates.
    issuance_ledger: bool = True
    certificate_revocation: bool = True
    revoke_on_node_delete: bool = False
    # ServiceAccount tokens (kube-apiserver's flags). Without a signing key the server keeps
    # its own pair in <data-dir>/pki/sa.{key,pub}; start() fills both fields in.
    service_account_signing_key_file: Path | None = None
    service_account_key_files: tuple[Path, ...] = ()
    service_account_issuers: tuple[str, ...] = ()  # empty: kubeadm's default issuer
    api_audiences: tuple[str, ...] = ()  # empty: the issuers
    service_account_max_token_expiration: dt.timedelta | None = None
    service_account_lookup: bool = True
    # Legacy token Secrets (<sa>-token-xxxxx) for the controllers' ServiceAccounts at start,
    # as clusters before 1.24 had them (docs/auth.md says why this is off by default).
    legacy_controller_token_secrets: bool = False
    # kube-controller-manager's part (run in-process, under leader election)
    controllers: tuple[str, ...] = ("*", "bootstrapsigner", "tokencleaner")
    cluster_signing_duration: dt.timedelta = dt.timedelta(hours=8760)
    # signerName -> (cert, key) from --cluster-signing-<signer>-{cert,key}-file
    signer_files: dict[str, tuple[Path, Path]] = field(default_factory=dict)
    leader_elect: bool = True
    # What the cluster publishes about itself: the default/kubernetes Service's range and
    # kubeadm's ClusterConfiguration (kube-apiserver's and kube-controller-manager's flags).
    service_cluster_ip_range: str = DEFAULT_SERVICE_CIDR
    cluster_name: str = "kubernetes"
    # --insecure-experimental-approve-all-kubelet-csrs-for-group (csrapproving, no SAR)
    approve_all_kubelet_csrs_for_group: str = ""
    # --serving-approver-policy: the servingapprover controller's rules (when it is enabled)
    serving_approver_policy: ServingPolicy = field(default_factory=ServingPolicy)
    # 0: this process serves HTTPS; N: N worker processes do (kubeboot.api.server.workers)
    workers: int = 0
    # Not flags: how often the primary checks its certificates (renewal, expiry warnings)
    # and each serving process looks for a changed serving pair; tests shorten them.
    certificate_check_interval: float = 3600.0
    serving_reload_interval: float = 5.0
    inventory_interval: float = 60.0  # object, token and certificate counts for /metrics
    extra: dict[str, object] = field(default_factory=dict)
