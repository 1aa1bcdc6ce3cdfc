"""Server lifecycle with one owner: PKI, storage, security, HTTPS site; torn down in reverse.

``Server.start()`` returns once the socket is bound (port 0 picks a free port; ``port`` tells
which), so tests and the CLI share one code path. Startup is idempotent on an existing data
directory: files are reused and default objects are created only when missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from kubeboot.api.app import ApiContext, build_app
from kubeboot.api.config import ServerConfig
from kubeboot.api.inprocess import CONTROLLER_MANAGER_USER, InProcessClient
from kubeboot.api.listwatch import ListOptions
from kubeboot.api.rest import NAMESPACES, RestService
from kubeboot.api.security import build_security
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
from kubeboot.clusterinit import InitResult, init_cluster
from kubeboot.controllers.config import ControllerConfig
from kubeboot.controllers.manager import run_controllers
from kubeboot.pki.cluster import ClusterPki, ensure_cluster_pki
from kubeboot.resources.status import AlreadyExists
from kubeboot.storage.compactor import PeriodicCompactor
from kubeboot.storage.factory import StorageOptions, open_store
from kubeboot.storage.interface import Store

__all__ = ["DEFAULT_NAMESPACES", "SYSTEM_USER", "Server"]

log = logging.getLogger("kubeboot.server")

_WILDCARDS = ("0.0.0.0", "::", "")  # noqa: S104
# A storm of nodes connects faster than a loaded loop accepts; when the accept queue
# overflows, Linux (with SYN cookies) answers a client's first data with a reset. aiohttp's
# sites listen with 128 unless told; 4096 is the kernel's default somaxconn cap, as Go uses.
_LISTEN_BACKLOG = 4096


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
# The identity the server uses for its own bootstrap writes.
SYSTEM_USER = UserInfo("system:apiserver", groups=("system:masters", "system:authenticated"))


class Server:
    def __init__(self, config: ServerConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.store: Store | None = None
        self.rest: RestService | None = None
        self.pki: ClusterPki | None = None
        self.init_result: InitResult | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._sock: socket.socket | None = None
        self.security: AuthStack | None = None
        self.port = 0

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
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        sock = self._sock = self._bind()
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
            )
        )
        self._spawn(PeriodicCompactor(self.store).run())
        security = self.security = build_security(cfg, client_ca, self.clock, self.store)
        for loop in security.background():
            self._spawn(loop)
        self.rest = RestService(
            self.store, security.authorizer, self.clock, admission=list(security.admission)
        )
        await self._ensure_default_namespaces()
        await self._ensure_default_rbac()
        await security.wait_synced()
        self.init_result = await init_cluster(
            InProcessClient(self.rest, SYSTEM_USER),
            server=self.advertised_url,
            ca_pem=self.pki.ca_cert_file.read_bytes(),
            clock=self.clock,
        )
        self._spawn(self._run_controllers())
        ctx = ApiContext(
            self.rest,
            security.gate,
            self.clock,
            server_address=self.advertised_url.removeprefix("https://"),
            audit=security.audit,
        )
        app = build_app(ctx)
        # handler_cancellation: a client that goes away cancels its handler. Without it a
        # watch whose client left keeps its task, TLS transport and buffers until its
        # timeout (15-30 min): a joined node's watch is left exactly so, and 10,000 joins
        # held 940 MB. Writes are unaffected: a cancelled request's write still commits.
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=1.0,
            handler_cancellation=True,
        )
        await self._runner.setup()
        ssl_ctx = make_server_ssl_context(
            self.pki.serving_cert_file, self.pki.serving_key_file, client_ca
        )
        site = web.SockSite(self._runner, sock, ssl_context=ssl_ctx, backlog=_LISTEN_BACKLOG)
        await site.start()
        log.info("kubeboot API server listening on %s", self.url)

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

        await run_controllers(
            InProcessClient(rest, CONTROLLER_MANAGER_USER),
            ControllerConfig(
                controllers=cfg.controllers,
                # Per-signer files exclude the generic pair, as in kube-controller-manager.
                cluster_signing_cert_file=None if cfg.signer_files else signing_cert,
                cluster_signing_key_file=None if cfg.signer_files else signing_key,
                signer_files=cfg.signer_files,
                cluster_signing_duration=cfg.cluster_signing_duration,
                leader_elect=cfg.leader_elect,
            ),
            self.clock,
            client_for=client_for,
        )

    def _bind(self) -> socket.socket:
        host = self.config.bind_address or "0.0.0.0"  # noqa: S104
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, self.config.secure_port))
        sock.listen(_LISTEN_BACKLOG)
        sock.setblocking(False)
        return sock

    async def _ensure_default_namespaces(self) -> None:
        assert self.rest is not None
        for name in DEFAULT_NAMESPACES:
            with contextlib.suppress(AlreadyExists):
                await self.rest.create(SYSTEM_USER, NAMESPACES, None, {"metadata": {"name": name}})

    async def _ensure_default_rbac(self) -> None:
        """kube-apiserver's RBAC bootstrap: create or extend defaults, never clobber edits."""
        assert self.rest is not None
        for res, desired in (
            (CLUSTER_ROLES, default_cluster_roles()),
            (CLUSTER_ROLE_BINDINGS, default_cluster_role_bindings()),
            (ROLES, default_roles()),
            (ROLE_BINDINGS, default_role_bindings()),
        ):
            existing = await self.rest.list(SYSTEM_USER, res, None, ListOptions())
            for change in reconcile(existing["items"], desired):
                meta = change.obj["metadata"]
                ns, name = meta.get("namespace"), meta["name"]
                if change.action == "recreate":
                    await self.rest.delete(SYSTEM_USER, res, ns, name)
                if change.action == "update":
                    await self.rest.update(SYSTEM_USER, res, ns, name, change.obj)
                else:
                    await self.rest.create(SYSTEM_USER, res, ns, change.obj)

    async def stop(self) -> None:
        for task in reversed(self._tasks):
            task.cancel()
        for task in reversed(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.security is not None:
            await self.security.close()  # after the runner: every request has been audited
            self.security = None
        if self.store is not None:
            await self.store.close()
            self.store = None

    @property
    def admin_kubeconfig(self) -> Path:
        assert self.pki is not None
        return self.pki.admin_kubeconfig_file
