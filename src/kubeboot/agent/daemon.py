"""The agent process: client bootstrap in the foreground, then rotation loops.

Order at start (node-facts §1.2, improved): if ``--kubeconfig`` holds a valid pair that
chains to its CA, use it; else, if the client store already holds a valid pair (a crash
after install, before the kubeconfig was written), just write the kubeconfig; else
bootstrap with ``--bootstrap-kubeconfig``, in the foreground (kubernetes#112170), printing
the CSR name while it waits. Then register the Node and, with rotation on, renew each
certificate at a jittered 70-90 % of its life, with backoff, without restarting. If the
client certificate runs out anyway (the node was off, or renewal kept failing) and a
bootstrap kubeconfig is present, bootstrap again instead of upstream's exit-and-hope
(§2.7).

Two start-up rules from the command line (``kubeboot.cli.agent``): a valid kubeconfig whose
pair is not in the cert-dir (Krustlet's embedded ``client-certificate-data``, files
elsewhere) is imported into the cert-dir and the kubeconfig rewritten to point at
``kubelet-client-current.pem``, so rotation can replace it; and a kubeconfig found through
``$KUBECONFIG`` (``kubeconfig_guarded``) that holds another identity is never overwritten.
In Krustlet mode the serving pair is also kept at ``--cert-file``/``--private-key-file``
(imported from there at start when valid, written there after each issuance).

:meth:`Agent.ensure_client_certificate` with ``one_shot`` is ``kubeboot join
--no-daemon``: one deadline, ``--bootstrap-timeout``, for the whole client bootstrap; when it
passes, an :class:`AgentError` that names the CSR and the command that approves it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import logging
import random
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from kubeboot.agent import metrics
from kubeboot.agent.certstore import CertStore
from kubeboot.agent.constants import (
    CLIENT_PREFIX,
    EVENT_NAMESPACE,
    EVENT_RESOURCE,
    NODE_RESOURCE,
    SERVER_PREFIX,
    node_common_name,
)
from kubeboot.agent.csrflow import (
    CsrDenied,
    PendingRequest,
    krustlet_serving_naming,
    kubelet_naming,
)
from kubeboot.agent.hibernation import MIN_SLEEP_SECONDS, Hibernation
from kubeboot.agent.kubeconfigs import ca_pem_of, kubelet_kubeconfig, write_kubeconfig
from kubeboot.agent.manager import CertificateManager, seconds_until
from kubeboot.agent.rotation import RetryState, retry_delay, rotation_deadline
from kubeboot.agent.templates import (
    client_template,
    serving_template,
    template_mismatch,
)
from kubeboot.agent.validity import PairVerdict, check_pair
from kubeboot.client.http import ApiUnreachable, ClientRole, HttpApiClient, user_agent
from kubeboot.client.kubeconfig import ClientConfig, KubeconfigError, load_client_config
from kubeboot.clock import Clock, format_time
from kubeboot.durations import format_go_duration
from kubeboot.pki.files import ensure_private_dir, write_atomic
from kubeboot.resources.status import AlreadyExists, NotFound, StatusError

if TYPE_CHECKING:
    from kubeboot.agent.exposition import AgentMetrics

__all__ = ["Agent", "AgentError", "AgentOptions", "kubeconfig_verdict"]

log = logging.getLogger("kubeboot.agent")

NODE = NODE_RESOURCE
EVENT = EVENT_RESOURCE


class AgentError(Exception):
    """A condition the agent cannot fix itself; the message says what the operator can do."""


@dataclass
class AgentOptions:
    kubeconfig: Path
    bootstrap_kubeconfig: Path | None
    cert_dir: Path
    node_name: str
    node_ips: list[str] = field(default_factory=list)
    rotate_certificates: bool = True
    rotate_server_certificates: bool = False
    bootstrap_wait_seconds: float = 3600.0
    rotation_wait_seconds: float = 900.0
    # Between rotations, hand over to the small sleeper (run() returns a Hibernation).
    hibernate: bool = False
    # The User-Agent's role: "join" when `kubeboot join` runs the bootstrap, else "agent".
    client_role: ClientRole = "agent"
    # The Node's Hostname address and DNS SAN when it is not the node name (Krustlet).
    hostname: str | None = None
    krustlet: bool = False
    serving_cert_file: Path | None = None
    serving_key_file: Path | None = None
    # The kubeconfig came from $KUBECONFIG: never overwrite another identity's.
    kubeconfig_guarded: bool = False


def kubeconfig_verdict(
    path: Path, now: dt.datetime, *, common_name: str | None = None
) -> PairVerdict:
    """Is ``--kubeconfig`` still usable (node-facts §1.3, with the stricter pair check)?"""
    if not path.exists():
        return PairVerdict(f"{path} does not exist")
    try:
        config = load_client_config(path)
        pair = client_pair(config.user)
        if pair is None:
            return PairVerdict(f"{path} has no client certificate")
        return check_pair(*pair, ca_pem_of(config.cluster), now, common_name=common_name)
    except (KubeconfigError, OSError, ValueError) as e:
        return PairVerdict(f"{path}: {e}")


def client_pair(user: Mapping[str, Any]) -> tuple[bytes, bytes] | None:
    """(certificate PEM, key PEM) of a kubeconfig user, from files or embedded data."""

    def pem(name: str) -> bytes | None:
        data = user.get(f"{name}-data")
        if data:
            raw = str(data)
            return raw.encode() if "-----BEGIN" in raw else base64.b64decode(raw)
        path = user.get(name)
        return Path(str(path)).read_bytes() if path else None

    cert, key = pem("client-certificate"), pem("client-key")
    return (cert, key) if cert and key else None


def foreign_identity(path: Path, node_name: str) -> str | None:
    """Why the kubeconfig at ``path`` is someone else's (None: absent, or this node's)."""
    if not path.exists():
        return None
    try:
        config = load_client_config(path)
        pair = client_pair(config.user)
    except (KubeconfigError, OSError, ValueError) as e:
        return f"it cannot be read as a kubeconfig ({e})"
    if pair is None:
        kinds = [k for k in ("token", "tokenFile", "exec", "username") if config.user.get(k)]
        return f"its user authenticates with {', '.join(kinds) or 'no client certificate'}"
    certs = x509.load_pem_x509_certificates(pair[0]) if b"-----BEGIN" in pair[0] else []
    names = [
        str(a.value)
        for a in (certs[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME) if certs else [])
    ]
    if names != [node_common_name(node_name)]:
        return f"its client certificate is for {', '.join(names) or 'no common name'}"
    return None


def _without_paths(error: Exception) -> str:
    """An error as an Event may carry it: a file error's reason without the node's path."""
    if isinstance(error, OSError) and error.strerror:
        return f"cannot write a certificate file: {error.strerror}"
    return str(error)


class _Reporter:
    """Console lines, Events on the Node, and metrics for certificate progress."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    async def waiting(self, store: CertStore, request: PendingRequest, state: str) -> None:
        what = "serving" if store.prefix == SERVER_PREFIX else "client"
        reused = "" if request.created else " (resumed)"
        line = (
            f"waiting for {what} certificate signing request {request.name}{reused}: {state}"
            f"; approve it with: kubectl certificate approve {request.name}"
        )
        self.agent.say(line)
        await self.agent.event("Normal", "CertificateWaiting", line)

    async def issued(
        self, store: CertStore, request: PendingRequest, cert: x509.Certificate
    ) -> None:
        # The Event leaves the node: it names the certificate, not where this node keeps it.
        what = (
            f"{store.prefix} certificate issued by {request.name}, valid until "
            f"{format_time(cert.not_valid_after_utc)}"
        )
        self.agent.say(f"{what}; {store.current_path}")
        await self.agent.event("Normal", "CertificateIssued", what)

    async def failed(self, store: CertStore, error: Exception) -> None:
        metrics.renew_error(store.prefix)
        self.agent.say(f"{store.prefix}: {error}")
        reason = "CertificateDenied" if isinstance(error, CsrDenied) else "CertificateRequestFailed"
        await self.agent.event("Warning", reason, _without_paths(error))


class Agent:
    def __init__(
        self,
        options: AgentOptions,
        clock: Clock,
        *,
        say: Callable[[str], None] | None = None,
        rng: random.Random | None = None,
        deadlines: dict[str, dt.datetime] | None = None,
        metrics_listener: metrics.MetricsListener | None = None,
    ) -> None:
        """``metrics_listener``: the ``--metrics-bind-address`` socket, opened once per
        process by the caller (an agent that stays resident after a failed exec is a second
        Agent on the same socket)."""
        self.options = options
        self.metrics_listener = metrics_listener
        self.metrics: AgentMetrics | None = None
        if metrics_listener is not None:
            # Here, not at the top: prometheus_client only in agents that serve metrics.
            from kubeboot.agent import exposition

            self.metrics = exposition.AgentMetrics(self._expiries, clock.now)
        self.clock = clock
        self.say = say or log.info
        self.rng = rng or random.SystemRandom()
        reporter = _Reporter(self)
        self.client_manager = CertificateManager(
            CertStore(options.cert_dir, CLIENT_PREFIX), clock, reporter
        )
        self.server_manager = CertificateManager(
            CertStore(options.cert_dir, SERVER_PREFIX),
            clock,
            reporter,
            krustlet_serving_naming(options.hostname or options.node_name)
            if options.krustlet
            else kubelet_naming,
        )
        self.api: HttpApiClient | None = None
        self.node_addresses: list[dict[str, str]] = []
        # Rotation deadlines by certificate fingerprint; given ones come from before a
        # hibernation, so the draw survives the exec.
        self._deadlines: dict[str, dt.datetime] = dict(deadlines or {})
        self._active: set[str] = set()  # the rotation loops running
        self._parked: dict[str, tuple[str, dt.datetime]] = {}  # loop -> (fingerprint, deadline)
        self._registered = False
        self._hibernation: Hibernation | None = None
        self._hibernate_now = asyncio.Event()

    # -- client certificate ---------------------------------------------------------------

    async def ensure_client_certificate(self, *, one_shot: bool = False) -> None:
        """Return once ``--kubeconfig`` works; bootstrap (and wait) if it does not.

        ``one_shot``: the whole bootstrap shares one ``bootstrap_wait_seconds`` deadline,
        and passing it is an error instead of another try.
        """
        opts = self.options
        verdict = kubeconfig_verdict(
            opts.kubeconfig, self.clock.now(), common_name=node_common_name(opts.node_name)
        )
        if verdict.valid:
            self._adopt_kubeconfig_pair()
            return
        if opts.kubeconfig_guarded:
            foreign = foreign_identity(opts.kubeconfig, opts.node_name)
            if foreign is not None:
                raise AgentError(
                    f"{opts.kubeconfig} (from $KUBECONFIG or the default) is not this node's "
                    f"kubeconfig: {foreign}; the agent would overwrite it, so it stops. Pass "
                    "--kubeconfig with the path of the node's own kubeconfig"
                )
        if opts.bootstrap_kubeconfig is None or not opts.bootstrap_kubeconfig.exists():
            raise AgentError(
                f"{verdict.reason}, and no bootstrap kubeconfig to get a new certificate "
                f"with ({opts.bootstrap_kubeconfig or 'none given'}); run `kubeboot join` "
                "again with a new token (`kubeboot token create` on the control plane)"
            )
        try:
            boot = load_client_config(opts.bootstrap_kubeconfig)
        except KubeconfigError as e:
            raise AgentError(f"cannot use the bootstrap kubeconfig: {e}") from e
        ca_pem = ca_pem_of(boot.cluster)
        current_pem = self.client_manager.store.current_path
        stored = self.client_manager.current(ca_pem, common_name=node_common_name(opts.node_name))
        if stored.valid:
            # A crash after install, before the kubeconfig write: the pair is good, no CSR.
            self.say(f"{verdict.reason}; reusing the stored client certificate")
        else:
            self.say(f"{verdict.reason}; bootstrapping a client certificate")
            await self._bootstrap_client(boot, one_shot)
        write_kubeconfig(opts.kubeconfig, kubelet_kubeconfig(boot.cluster, current_pem))
        self.say(f"wrote {opts.kubeconfig}")

    async def _bootstrap_client(self, boot: ClientConfig, one_shot: bool) -> None:
        opts = self.options
        loop = asyncio.get_running_loop()
        deadline = loop.time() + opts.bootstrap_wait_seconds
        state = RetryState()
        async with HttpApiClient(boot, user_agent=user_agent(opts.client_role)) as client:
            while True:
                left = deadline - loop.time() if one_shot else opts.bootstrap_wait_seconds
                outcome = await self.client_manager.obtain(
                    client, client_template(opts.node_name), wait_seconds=max(left, 0.0)
                )
                if outcome.cert is not None:
                    return
                if one_shot and deadline - loop.time() <= 0:
                    waited = format_go_duration(int(opts.bootstrap_wait_seconds * 1e9))
                    raise AgentError(
                        f"no client certificate within --bootstrap-timeout {waited}: "
                        f"{outcome.error}"
                    )
                state = state.failed(denied=outcome.denied)
                delay = retry_delay(state, denied=outcome.denied, draw=self.rng.random())
                if one_shot:
                    delay = min(delay, max(deadline - loop.time(), 0.0))
                self.say(f"retrying the client certificate request in {delay:.0f}s")
                await self._idle(delay)

    def _adopt_kubeconfig_pair(self) -> None:
        """A valid kubeconfig whose pair is not the cert-dir's current one (embedded data,
        files elsewhere): import the pair and point the kubeconfig at the cert-dir, so that
        rotation, which replaces ``kubelet-client-current.pem``, reaches the client."""
        opts = self.options
        current = self.client_manager.store.current_path
        config = load_client_config(opts.kubeconfig)
        user = config.user
        if user.get("client-certificate") == str(current) and user.get("client-key") == str(
            current
        ):
            return
        pair = client_pair(user)
        if pair is None:
            return
        stored = self.client_manager.store.read_current()
        if stored is None or stored.cert_pem.strip() != pair[0].strip():
            self.client_manager.store.install(pair[0], pair[1], self.clock.now())
        write_kubeconfig(opts.kubeconfig, kubelet_kubeconfig(config.cluster, current))
        self.say(
            f"imported the client certificate of {opts.kubeconfig} into {current}; the "
            "kubeconfig now points there, so rotation can replace it"
        )

    def _import_serving_files(self) -> None:
        """Krustlet: a valid pair at --cert-file/--private-key-file is the serving pair."""
        cert_file, key_file = self.options.serving_cert_file, self.options.serving_key_file
        if cert_file is None or key_file is None or not cert_file.exists() or not key_file.exists():
            return
        cert_pem, key_pem = cert_file.read_bytes(), key_file.read_bytes()
        verdict = check_pair(cert_pem, key_pem, None, self.clock.now())
        if not verdict.valid:
            self.say(f"{cert_file}: {verdict.reason}; requesting a new serving certificate")
            return
        stored = self.server_manager.store.read_current()
        if stored is None or stored.cert_pem.strip() != cert_pem.strip():
            self.server_manager.store.install(cert_pem, key_pem, self.clock.now())
            self.say(f"using the serving certificate in {cert_file} (no CSR while it is valid)")

    def _export_serving_files(self) -> None:
        """Krustlet: the current serving pair, also at --cert-file/--private-key-file."""
        cert_file, key_file = self.options.serving_cert_file, self.options.serving_key_file
        pair = self.server_manager.store.read_current()
        if cert_file is None or key_file is None or pair is None:
            return
        for path, data, mode in (
            (cert_file, pair.cert_pem, 0o644),
            (key_file, pair.key_pem, 0o600),
        ):
            ensure_private_dir(path.parent)
            write_atomic(path, data, mode=mode)
        self.say(f"wrote the serving certificate to {cert_file} and its key to {key_file}")

    def _connect(self) -> HttpApiClient:
        """A client with the current node certificate (a new one after each rotation)."""
        # linger=False: the agent talks to the API a few times per rotation; holding a
        # connection (and aiohttp's 2 s cleanup timer) for months in between would be the
        # only thing waking an idle agent.
        return HttpApiClient(
            load_client_config(self.options.kubeconfig),
            user_agent=user_agent(self.options.client_role),
            linger=False,
        )

    async def _reconnect(self) -> None:
        """Present the new client certificate. The client object is kept (the serving loop
        may be waiting on a CSR with it); only its credentials and connections change."""
        if self.api is None:
            self.api = self._connect()
        else:
            await self.api.reconfigure(load_client_config(self.options.kubeconfig))

    # -- node and events -------------------------------------------------------------------

    def _addresses(self) -> list[dict[str, str]]:
        addresses = [{"type": "InternalIP", "address": ip} for ip in self.options.node_ips]
        hostname = self.options.hostname or self.options.node_name
        addresses.append({"type": "Hostname", "address": hostname})
        return addresses

    async def register_node(self) -> bool:
        """Update (or create) the Node with our addresses, so approvers can check SANs.

        Returns whether it worked; a failure is reported, never raised: the certificates
        do not depend on it (a node often starts before its API server is reachable).
        """
        assert self.api is not None
        self.node_addresses = self._addresses()
        name = self.options.node_name
        status = {"status": {"addresses": self.node_addresses}}
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            **status,
        }
        try:
            # The Node usually exists (every wake from the sleeper comes here): patch its
            # status, as the kubelet does, and create it only when that finds none.
            try:
                await self.api.patch(NODE, name, status, subresource="status")
            except NotFound:
                with contextlib.suppress(AlreadyExists):
                    await self.api.create(NODE, node)
                await self.api.patch(NODE, name, status, subresource="status")
        except (StatusError, ApiUnreachable) as e:
            self.say(f"could not register Node {name}: {e}")
            return False
        return True

    async def _register_until_done(self) -> None:
        """Register the Node, retrying with the transient-failure schedule until it works."""
        state = RetryState()
        while not await self.register_node():
            state = state.failed(denied=False)
            delay = retry_delay(state, denied=False, draw=self.rng.random())
            self.say(f"retrying the Node registration in {delay:.0f}s")
            await self._idle(delay)
        shown = ", ".join(a["address"] for a in self.node_addresses)
        self.say(f"registered Node {self.options.node_name} ({shown})")
        self._registered = True
        self._consider_hibernating()

    async def event(self, kind: str, reason: str, message: str) -> None:
        if self.api is None:
            return
        now = format_time(self.clock.now())
        name = f"{self.options.node_name}.{secrets.token_hex(8)}"
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": EVENT_NAMESPACE},
            "involvedObject": {"kind": "Node", "name": self.options.node_name, "apiVersion": "v1"},
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": "kubeboot-agent", "host": self.options.node_name},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self.api.create(EVENT, body, EVENT_NAMESPACE)
        except Exception as e:  # an Event is best effort; the console line was printed
            log.debug("event not recorded: %s", e)

    # -- rotation loops --------------------------------------------------------------------

    async def run(self) -> Hibernation | None:
        """Run until an unrecoverable error, or, with ``hibernate``, until every loop waits
        for a rotation deadline: then return what the sleeper needs (the caller execs it)."""
        await self.ensure_client_certificate()
        self.api = self._connect()
        self.node_addresses = self._addresses()  # the serving loop's SANs, before any await
        loops = [self._register_until_done()]
        if self.options.rotate_certificates:
            self._active.add(CLIENT_PREFIX)
            loops.append(self._client_loop())
        if self.options.rotate_server_certificates:
            self._import_serving_files()
            self._active.add(SERVER_PREFIX)
            loops.append(self._server_loop())
        if self.metrics_listener is not None and self.metrics is not None:
            loops.append(metrics.serve(self.metrics_listener, self.metrics))
        work = asyncio.gather(*loops)
        hibernate = asyncio.ensure_future(self._hibernate_now.wait())
        either: set[asyncio.Future[Any]] = {work, hibernate}
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if work.done():
                work.result()
                return None
            return self._hibernation
        finally:
            for task in either:
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if self.api is not None:
                await self.api.close()

    def _rotation_deadline(self, leaf: x509.Certificate) -> tuple[str, dt.datetime]:
        """This certificate's deadline: the one drawn before (also before an exec), or a
        new draw. A remembered deadline outside the certificate's life is not trusted."""
        fingerprint = leaf.fingerprint(hashes.SHA256()).hex()
        deadline = self._deadlines.get(fingerprint)
        if deadline is None or not (
            leaf.not_valid_before_utc <= deadline <= leaf.not_valid_after_utc
        ):
            deadline = rotation_deadline(
                leaf.not_valid_before_utc, leaf.not_valid_after_utc, self.rng.random()
            )
            self._deadlines[fingerprint] = deadline
        return fingerprint, deadline

    async def _wait_for_deadline(self, loop: str, leaf: x509.Certificate) -> None:
        fingerprint, deadline = self._rotation_deadline(leaf)
        self._parked[loop] = (fingerprint, deadline)
        try:
            self._consider_hibernating()
            await self._idle(seconds_until(self.clock, deadline))
        finally:
            del self._parked[loop]

    def _consider_hibernating(self) -> None:
        """Hand over to the sleeper if nothing but deadlines is left: the Node registered,
        every rotation loop waiting for its deadline (never during a CSR wait or a
        back-off), and the earliest deadline far enough away. A /metrics server does not keep
        the agent resident: the sleeper answers on its socket (:mod:`.metrics`)."""
        opts = self.options
        if not opts.hibernate or not self._registered:
            return
        if not self._parked or set(self._parked) != self._active:
            return
        loop, (_, until) = min(self._parked.items(), key=lambda item: item[1][1])
        seconds = (until - self.clock.now()).total_seconds()
        if seconds < MIN_SLEEP_SECONDS:
            return
        what = "serving" if loop == SERVER_PREFIX else "client"
        sleeper_env: dict[str, str] = {}
        if self.metrics_listener is not None and self.metrics is not None:
            sleeper_env = {**self.metrics_listener.sleeper_env(), **self.metrics.handover()}
        self._hibernation = Hibernation(
            until=until,
            wall_deadline=time.time() + seconds,
            what=f"{what} certificate rotation",
            deadlines=dict(self._parked.values()),
            sleeper_env=sleeper_env,
        )
        self._hibernate_now.set()

    def _expiries(self) -> dict[str, dt.datetime | None]:
        """Each certificate's NotAfter, from the files (None without one), for /metrics."""
        expiries: dict[str, dt.datetime | None] = {}
        for manager in (self.client_manager, self.server_manager):
            pair = manager.store.read_current()
            certs = x509.load_pem_x509_certificates(pair.cert_pem) if pair else []
            expiries[manager.store.prefix] = certs[0].not_valid_after_utc if certs else None
        return expiries

    async def _client_loop(self) -> None:
        state = RetryState()
        while True:
            verdict = self.client_manager.current(
                None, common_name=node_common_name(self.options.node_name)
            )
            if verdict.leaf is not None and verdict.valid:
                await self._wait_for_deadline(CLIENT_PREFIX, verdict.leaf)
            elif verdict.leaf is not None and self.options.bootstrap_kubeconfig is not None:
                # Expired (or unusable) with no successful renewal: start over with the
                # bootstrap credential, which upstream only does after exit and restart.
                self.say(f"client certificate unusable ({verdict.reason}); bootstrapping again")
                await self.ensure_client_certificate()
                await self._reconnect()
                fresh = self.client_manager.current(
                    None, common_name=node_common_name(self.options.node_name)
                )
                if fresh.valid:
                    state = RetryState()
                else:
                    # Issued a moment ago and already unusable: this node's clock disagrees
                    # with the signer's. Going round again at once would make a CSR per turn.
                    self.say(
                        f"the new client certificate is not usable either ({fresh.reason}); "
                        "is this node's clock right?"
                    )
                    state = state.failed(denied=False)
                    await self._back_off(state, False, "client")
                continue
            assert self.api is not None
            outcome = await self.client_manager.obtain(
                self.api,
                client_template(self.options.node_name),
                wait_seconds=self.options.rotation_wait_seconds,
            )
            if outcome.cert is not None:
                await self._reconnect()
                await self.event("Normal", "CertificateRotated", "client certificate rotated")
                state = RetryState()
                continue
            state = state.failed(denied=outcome.denied)
            await self._back_off(state, outcome.denied, "client")

    async def _back_off(self, state: RetryState, denied: bool, what: str) -> None:
        delay = retry_delay(state, denied=denied, draw=self.rng.random())
        self.say(f"retrying the {what} certificate request in {delay:.0f}s")
        await self._idle(delay)

    async def _idle(self, seconds: float) -> None:
        """Sleep; nothing else wakes the process (the API client holds no idle session)."""
        await asyncio.sleep(seconds)

    async def _server_loop(self) -> None:
        state = RetryState()
        while True:
            template = serving_template(self.options.node_name, self.node_addresses)
            if template is None:
                self.say("no serving certificate request until the node has an IP (--node-ip)")
                self._active.discard(SERVER_PREFIX)
                self._consider_hibernating()
                return
            verdict = self.server_manager.current(None)
            if verdict.leaf is not None and verdict.valid:
                mismatch = template_mismatch(verdict.leaf, template)
                if mismatch is None:
                    await self._wait_for_deadline(SERVER_PREFIX, verdict.leaf)
                else:
                    self.say(f"serving certificate no longer matches the node: {mismatch}")
            assert self.api is not None
            outcome = await self.server_manager.obtain(
                self.api, template, wait_seconds=self.options.rotation_wait_seconds
            )
            if outcome.cert is not None:
                self._export_serving_files()
                state = RetryState()
                continue
            state = state.failed(denied=outcome.denied)
            await self._back_off(state, outcome.denied, "serving")


def default_node_name() -> str:
    return socket.gethostname().lower()
