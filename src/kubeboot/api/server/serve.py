"""Server lifecycle with one owner: PKI, storage, security, HTTPS site; torn down in reverse.

``Server.start()`` returns once the server serves (port 0 picks a free port; ``port`` tells
which), so tests and the CLI share one code path. Startup is idempotent on an existing data
directory: files are reused and default objects are created only when missing. With
``workers`` > 0 the HTTPS site runs in that many worker processes instead of this one
(:mod:`kubeboot.api.server.workers`); everything else here is the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from cryptography import x509

from kubeboot.api.endpoints.app import ApiContext
from kubeboot.api.registry.inprocess import CONTROLLER_MANAGER_USER, InProcessClient
from kubeboot.api.registry.kubernetes_service import (
    kubernetes_service,
    parse_service_cidrs,
    service_ip,
)
from kubeboot.api.registry.listwatch import ListOptions
from kubeboot.api.registry.rest import NAMESPACES, RestService
from kubeboot.api.server.config import ServerConfig
from kubeboot.api.server.datadir_lock import DataDirLock
from kubeboot.api.server.inventory import record_server_certificates, run_inventory
from kubeboot.api.server.proxylistener import trusted_networks
from kubeboot.api.server.reconcile import (
    reconcile_admin_conf,
    reconcile_cluster_info,
    reconcile_serving_certificate,
)
from kubeboot.api.server.security import build_rest, build_security
from kubeboot.api.server.servingcert import CertificateMaintenance
from kubeboot.api.server.site import HttpsSite, bind_listener, start_https
from kubeboot.api.server.workers import WorkerPool, WorkerSpec
from kubeboot.auth.defaults import (
    default_cluster_role_bindings,
    default_cluster_roles,
    default_role_bindings,
    default_roles,
    reconcile,
)
from kubeboot.auth.interface import UserInfo
from kubeboot.auth.mirror import resource_info
from kubeboot.auth.stack import AuthStack
from kubeboot.auth.x509 import make_server_ssl_context
from kubeboot.clock import Clock, SystemClock
from kubeboot.clusterinit import InitResult, encryption_algorithm, init_cluster
from kubeboot.controllers.config import ControllerConfig
from kubeboot.controllers.manager import run_controllers
from kubeboot.controllers.supervisor import Supervised, supervise
from kubeboot.kubeadmconfig import ClusterSettings
from kubeboot.logs import current_settings
from kubeboot.metrics.aggregate import MetricsAggregator
from kubeboot.pki.authority import CertificateAuthority
from kubeboot.pki.cluster import ClusterPki, ensure_cluster_pki
from kubeboot.pki.files import PRIVATE_DIR_MODE, ensure_private_dir, restrict_mode
from kubeboot.pki.renewal import CertificateFiles
from kubeboot.pki.serviceaccount_keys import ensure_service_account_key
from kubeboot.resources.status import AlreadyExists
from kubeboot.storage.compactor import PeriodicCompactor
from kubeboot.storage.factory import StorageOptions, open_store
from kubeboot.storage.interface import Store
from kubeboot.storage.remote_server import StoreServer

__all__ = ["DEFAULT_NAMESPACES", "SYSTEM_USER", "Server"]

log = logging.getLogger("kubeboot.server")

_WILDCARDS = ("0.0.0.0", "::", "")  # noqa: S104


def _https(host: str, port: int) -> str:
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def _primary_address() -> str | None:
    """This host's address as its name resolves, unless that is a loopback address."""
    try:
        address = socket.gethostbyname(socket.gethostname())
    except OSError:
        return None
    return None if address.startswith("127.") else address


DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_RBAC = "rbac.authorization.k8s.io"
CLUSTER_ROLES = resource_info(_RBAC, "v1", "clusterroles")
CLUSTER_ROLE_BINDINGS = resource_info(_RBAC, "v1", "clusterrolebindings")
ROLES = resource_info(_RBAC, "v1", "roles")
ROLE_BINDINGS = resource_info(_RBAC, "v1", "rolebindings")
SERVICES = resource_info("", "v1", "services")
# The identity the server uses for its own bootstrap writes.
# The field manager of what `kubeboot init` writes (a client's is its User-Agent's name).
INIT_MANAGER = "kubeboot"
SYSTEM_USER = UserInfo("system:apiserver", groups=("system:masters", "system:authenticated"))


def with_service_account_keys(config: ServerConfig) -> ServerConfig:
    """``config`` with the ServiceAccount key files chosen: the flags' files, else the pair
    kept in ``<data-dir>/pki`` (generated on first start, like the rest of the PKI)."""
    if config.service_account_signing_key_file is not None:
        return config
    key, pub = ensure_service_account_key(config.data_dir / "pki")
    return dataclasses.replace(
        config,
        service_account_signing_key_file=key,
        service_account_key_files=config.service_account_key_files or (pub,),
    )


def _private_data_dir(path: Path) -> None:
    """The data dir holds the CA key, admin.conf and every Secret: 0700, also when it exists."""
    ensure_private_dir(path)
    before = restrict_mode(path, PRIVATE_DIR_MODE)
    if before is not None:
        log.warning("data dir %s was mode %04o; set to %04o", path, before, PRIVATE_DIR_MODE)


class Server:
    def __init__(self, config: ServerConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.store: Store | None = None
        self.rest: RestService | None = None
        self.pki: ClusterPki | None = None
        self.init_result: InitResult | None = None
        self._site: HttpsSite | None = None
        self.certificate_files: CertificateFiles | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._sock: socket.socket | None = None
        self._store_server: StoreServer | None = None
        self.workers: WorkerPool | None = None
        self.security: AuthStack | None = None
        self.port = 0
        self.metrics = MetricsAggregator()
        self._lock = DataDirLock(config.data_dir)
        self._started = False  # start() completed: a stop then is a clean stop
        # The embedded kube-controller-manager's health (/readyz's check of that name).
        self.controllers = Supervised("kube-controller-manager")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a background loop owned by the server; cancelled on stop, in reverse order."""
        self._tasks.append(asyncio.create_task(coro))

    @property
    def url(self) -> str:
        """Where clients on this machine reach the server (admin.conf points here)."""
        return _https(self._local_host(), self.port)

    @property
    def advertised_url(self) -> str:
        """Where nodes reach the server (published in cluster-info and the join command)."""
        return _https(self._advertised_host(), self.port)

    def _local_host(self) -> str:
        bind = self.config.bind_address
        return "127.0.0.1" if bind in _WILDCARDS else bind

    def _advertised_host(self) -> str:
        if self.config.advertise_address:
            return self.config.advertise_address
        if self.config.bind_address not in _WILDCARDS:
            return self.config.bind_address
        return _primary_address() or "127.0.0.1"

    async def start(self) -> None:
        cfg = self.config
        _private_data_dir(cfg.data_dir)
        self._lock.acquire()  # before anything in the data dir is read or written
        sock = self._sock = bind_listener(
            self.config.bind_address or "0.0.0.0",  # noqa: S104
            self.config.secure_port,
        )
        self.port = sock.getsockname()[1]
        sans = [socket.gethostname(), self._advertised_host(), *cfg.tls_sans]
        if cfg.bind_address not in _WILDCARDS:
            sans.append(cfg.bind_address)
        self.pki = ensure_cluster_pki(
            cfg.data_dir,
            server_url=self.url,
            clock=self.clock,
            sans=sans,
            ca_cert_file=cfg.cluster_signing_cert_file,
            ca_key_file=cfg.cluster_signing_key_file,
            serving_cert_file=cfg.tls_cert_file,
            serving_key_file=cfg.tls_private_key_file,
        )
        self._reconcile_files(sans)
        cfg = self.config = with_service_account_keys(cfg)
        client_ca = cfg.client_ca_file or self.pki.ca_cert_file
        self.store = await open_store(
            StorageOptions(
                backend="etcd3" if cfg.storage_backend == "etcd3" else "sqlite",
                sqlite_path=cfg.data_dir / "state.db",
                etcd_servers=cfg.etcd_servers,
                etcd_cafile=cfg.etcd_cafile,
                etcd_certfile=cfg.etcd_certfile,
                etcd_keyfile=cfg.etcd_keyfile,
                etcd_prefix=cfg.etcd_prefix,
                watch_cache=cfg.watch_cache,
            )
        )
        self._spawn(PeriodicCompactor(self.store).run())
        security = self.security = build_security(cfg, client_ca, self.clock, self.store)
        for loop in security.background():
            self._spawn(loop)
        self.rest = build_rest(self.store, security, self.clock, cfg)
        await self._ensure_default_namespaces()
        await self._ensure_default_rbac()
        await self._publish_kubernetes_service()
        await security.wait_synced()
        ca_pem = self.pki.ca_cert_file.read_bytes()
        # What `kubeboot init` writes as a client against kube-apiserver is recorded under its
        # User-Agent's field manager; the in-process run writes the same.
        self.init_result = await init_cluster(
            InProcessClient(self.rest, SYSTEM_USER, manager=INIT_MANAGER),
            server=self.advertised_url,
            ca_pem=ca_pem,
            clock=self.clock,
            settings=self._cluster_settings(ca_pem),
        )
        await reconcile_cluster_info(
            InProcessClient(self.rest, SYSTEM_USER, manager=INIT_MANAGER),
            self.advertised_url,
            ca_pem,
        )
        self._spawn(self._run_controllers())
        assert self.certificate_files is not None
        self._spawn(
            CertificateMaintenance(
                self.certificate_files,
                self.clock,
                check_interval=cfg.certificate_check_interval,
                on_checked=record_server_certificates,
            ).run()
        )
        self._spawn(run_inventory(self.store, self.clock, cfg.inventory_interval))
        if cfg.workers:
            await self._start_workers(sock, client_ca)
        else:
            ctx = ApiContext(
                self.rest,
                security.gate,
                self.clock,
                server_address=self.advertised_url.removeprefix("https://"),
                audit=security.audit,
                audit_policy=security.audit_policy,
                metrics=self._render_metrics,
                controllers=self.controllers.check,
            )
            self._spawn(ctx.inflight.run())
            self._site = await start_https(
                ctx,
                sock,
                cert_file=self.pki.serving_cert_file,
                key_file=self.pki.serving_key_file,
                client_ca_file=Path(client_ca),
                reload_interval=cfg.serving_reload_interval,
                proxy_trusted=trusted_networks(cfg.proxy_protocol_trusted_cidrs),
            )
        self._started = True
        log.info("kubeboot API server listening on %s", self.url)

    async def _render_metrics(self) -> bytes:
        return self.metrics.render()

    async def _worker_metrics(self, index: int, snapshot: object) -> bytes:
        """A worker's scrape: its fresh figures merged with everyone else's."""
        return self.metrics.render(index, snapshot)

    def _reconcile_files(self, sans: list[str]) -> None:
        """What kubeboot generated follows the flags (:mod:`.reconcile`); record the files."""
        assert self.pki is not None
        cfg, pki = self.config, self.pki
        files = self.certificate_files = CertificateFiles(
            ca_cert=pki.ca_cert_file,
            ca_key=pki.ca_key_file,
            serving_cert=pki.serving_cert_file,
            serving_key=pki.serving_key_file,
            admin_conf=pki.admin_kubeconfig_file,
            ca_external=cfg.cluster_signing_cert_file is not None,
            serving_external=cfg.tls_cert_file is not None,
        )
        reconcile_serving_certificate(
            pki.serving_cert_file,
            pki.serving_key_file,
            generated=not files.serving_external,
            wanted=sans,
            ca=CertificateAuthority.load(pki.ca_cert_file, pki.ca_key_file),
            clock=self.clock,
        )
        reconcile_admin_conf(pki.admin_kubeconfig_file, self.url)
        files.record(cfg.data_dir)

    async def _start_workers(self, sock: socket.socket, client_ca: Path) -> None:
        """Serve the store to the workers, then start them on the bound socket."""
        assert self.store is not None
        assert self.pki is not None
        assert self.security is not None
        audit_log = self.security.audit_log

        def on_notice(kind: str, args: tuple[object, ...]) -> None:
            if kind == "ready" and isinstance(args[0], int) and self.workers is not None:
                self.workers.notice_ready(args[0])
            elif kind == "audit" and isinstance(args[0], bytes) and audit_log is not None:
                audit_log.emit_line(args[0])
            elif kind == "metrics" and isinstance(args[0], int):
                self.metrics.pushed(args[0], args[1])

        # The workers load the serving pair; a bad one should stop the server here, once,
        # with the same error as without workers, not as N worker crashes.
        make_server_ssl_context(self.pki.serving_cert_file, self.pki.serving_key_file, client_ca)
        socket_path = self.config.data_dir / "run" / "store.sock"
        self._store_server = StoreServer(
            self.store, socket_path, on_notice, extra_calls={"merged_metrics": self._worker_metrics}
        )
        await self._store_server.start()
        specs = [
            WorkerSpec(
                config=self.config,
                index=i,
                count=self.config.workers,
                listen_fd=sock.fileno(),
                store_socket=self._store_server.path,
                serving_cert_file=self.pki.serving_cert_file,
                serving_key_file=self.pki.serving_key_file,
                client_ca_file=client_ca,
                server_address=self.advertised_url.removeprefix("https://"),
                log_format=current_settings()[0],
                verbosity=current_settings()[1],
                primary_pid=os.getpid(),
            )
            for i in range(self.config.workers)
        ]
        self.workers = WorkerPool(specs)
        await self.workers.start()

    async def _run_controllers(self) -> None:
        """kube-controller-manager's part, one identity per controller as upstream's
        ``--use-service-account-credentials``, under leader election on a Lease."""
        assert self.rest is not None
        assert self.pki is not None
        rest, cfg = self.rest, self.config
        signing_cert = cfg.cluster_signing_cert_file or self.pki.ca_cert_file
        signing_key = cfg.cluster_signing_key_file or self.pki.ca_key_file

        def client_for(service_account: str) -> InProcessClient:
            return InProcessClient(
                rest,
                UserInfo(
                    f"system:serviceaccount:kube-system:{service_account}",
                    groups=(
                        "system:serviceaccounts",
                        "system:serviceaccounts:kube-system",
                        "system:authenticated",
                    ),
                ),
            )

        # One config (and so one leader-election identity) across restarts: a restarted
        # manager renews its own Lease instead of waiting for it to expire.
        config = ControllerConfig(
            controllers=cfg.controllers,
            # Per-signer files exclude the generic pair, as in kube-controller-manager.
            cluster_signing_cert_file=None if cfg.signer_files else signing_cert,
            cluster_signing_key_file=None if cfg.signer_files else signing_key,
            signer_files=cfg.signer_files,
            cluster_signing_duration=cfg.cluster_signing_duration,
            root_ca_file=self.pki.ca_cert_file,
            leader_elect=cfg.leader_elect,
            approve_all_kubelet_csrs_for_group=cfg.approve_all_kubelet_csrs_for_group,
            service_account_private_key_file=cfg.service_account_signing_key_file,
            legacy_token_secrets=cfg.legacy_controller_token_secrets,
        )

        async def run() -> None:
            await run_controllers(
                InProcessClient(rest, CONTROLLER_MANAGER_USER),
                config,
                self.clock,
                client_for=client_for,
            )

        # Healthy again once a restarted run has outlived one renew deadline (10 s).
        await supervise(self.controllers, run, stable_after=10.0)

    async def _ensure_default_namespaces(self) -> None:
        assert self.rest is not None
        for name in DEFAULT_NAMESPACES:
            with contextlib.suppress(AlreadyExists):
                await self.rest.create(SYSTEM_USER, NAMESPACES, None, {"metadata": {"name": name}})

    async def _publish_kubernetes_service(self) -> None:
        """default/kubernetes, kept in line with --service-cluster-ip-range and the port."""
        assert self.rest is not None
        primary = parse_service_cidrs(self.config.service_cluster_ip_range)[0]
        desired = kubernetes_service(primary, self.port)
        _, changed = await self.rest.publish(SYSTEM_USER, SERVICES, "default", desired)
        if changed:
            log.info(
                "published Service default/kubernetes: %s:443 -> port %d",
                desired["spec"]["clusterIP"],
                self.port,
            )

    def _cluster_settings(self, ca_pem: bytes) -> ClusterSettings:
        """What kubeadm's ClusterConfiguration says about this cluster, from the flags."""
        assert self.pki is not None
        cfg = self.config
        primary = parse_service_cidrs(cfg.service_cluster_ip_range)[0]
        etcd: dict[str, object]
        if cfg.storage_backend == "etcd3":
            external: dict[str, object] = {"endpoints": list(cfg.etcd_servers)}
            for key, path in (
                ("caFile", cfg.etcd_cafile),
                ("certFile", cfg.etcd_certfile),
                ("keyFile", cfg.etcd_keyfile),
            ):
                if path is not None:
                    external[key] = str(path.resolve())
            etcd = {"external": external}
        else:  # the embedded SQLite state lives in the data dir
            etcd = {"local": {"dataDir": str(cfg.data_dir.resolve())}}
        return ClusterSettings(
            control_plane_endpoint=self.advertised_url.removeprefix("https://"),
            service_subnet=cfg.service_cluster_ip_range,
            cluster_dns=service_ip(primary, 10),
            cluster_name=cfg.cluster_name,
            encryption_algorithm=encryption_algorithm(x509.load_pem_x509_certificate(ca_pem)),
            cert_sans=cfg.tls_sans,
            cluster_signing_duration=cfg.cluster_signing_duration,
            etcd=etcd,
        )

    async def _ensure_default_rbac(self) -> None:
        """kube-apiserver's RBAC bootstrap: create or extend defaults, never clobber edits."""
        assert self.rest is not None
        for res, desired in (
            (CLUSTER_ROLES, default_cluster_roles()),
            (CLUSTER_ROLE_BINDINGS, default_cluster_role_bindings()),
            (ROLES, default_roles()),
            (ROLE_BINDINGS, default_role_bindings()),
        ):
            listed = await self.rest.list(SYSTEM_USER, res, None, ListOptions())
            # List items carry no kind (as upstream); the reconciler keys objects by it.
            existing = [{**item, "kind": res.kind} for item in listed["items"]]
            for change in reconcile(existing, desired):
                meta = change.obj["metadata"]
                ns, name = meta.get("namespace"), meta["name"]
                if change.action == "recreate":
                    await self.rest.delete(SYSTEM_USER, res, ns, name)
                if change.action == "update":
                    await self.rest.update(SYSTEM_USER, res, ns, name, change.obj)
                else:
                    await self.rest.create(SYSTEM_USER, res, ns, change.obj)

    async def stop(self) -> None:
        # Only a server that reached "listening" stops *cleanly*; one that failed to start
        # has already said why, and a second line would contradict it.
        started, self._started = self._started, False
        for task in reversed(self._tasks):
            task.cancel()
        for task in reversed(self._tasks):
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # a loop that died earlier: say so, and still stop cleanly
                log.exception("background task %s had failed", task.get_coro())
        self._tasks.clear()
        if self.workers is not None:
            await self.workers.stop()
            self.workers = None
        if self._store_server is not None:
            await self._store_server.close()
            self._store_server = None
        if self._site is not None:
            await self._site.cleanup()
            self._site = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.security is not None:
            await self.security.close()  # after the runner: every request has been audited
            self.security = None
        if self.store is not None:
            await self.store.close()
            self.store = None
        self._lock.release()
        if started:
            log.info(
                "kubeboot API server stopped cleanly (data dir %s released)", self.config.data_dir
            )

    @property
    def admin_kubeconfig(self) -> Path:
        assert self.pki is not None
        return self.pki.admin_kubeconfig_file
