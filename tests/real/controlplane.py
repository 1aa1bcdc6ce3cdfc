"""Two control planes with one surface: upstream's (etcd + kube-apiserver + KCM) and kubeboot's.

The real-component tier runs the same test body, request sequence or e2e spec against both, so
both are :class:`ControlPlane` objects: a URL, the cluster CA and its key, an admin kubeconfig,
real kubectl, bootstrap tokens, and the log file of every process.

The real plane is set up as ``kubeadm init`` would on one machine (``real-k8s.md``): etcd over
plain http on loopback, kube-apiserver with Node,RBAC, NodeRestriction, bootstrap-token auth,
a front-proxy CA, ServiceAccount keys and ``--endpoint-reconciler-type=none`` (1.37 refuses a
loopback advertise address with the default reconciler), kube-controller-manager with
``--controllers=*,bootstrapsigner,tokencleaner`` and the cluster signing pair; then ``kubeboot
init`` against it publishes cluster-info, kubeadm's bootstrap RBAC and a first token. Every
process writes to its own log in the plane's workdir; every request is audited (Metadata).

The kubeboot plane is ``kubeboot server`` as a subprocess with the same signing duration.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import socket
import ssl
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kubeboot.pki.authority import CertificateAuthority, load_certificate_pem
from kubeboot.pki.pins import spki_pin
from tests.conftest import start_server_process
from tests.real.binaries import real_binary
from tests.real.kubeadm_pki import SERVICE_CIDR, make_kubeadm_pki, write_client_kubeconfig

__all__ = [
    "DEFAULT_SIGNING_DURATION",
    "ControlPlane",
    "kubeboot_control_plane",
    "real_control_plane",
    "started_planes",
    "wait_until",
]

DEFAULT_SIGNING_DURATION = "8760h"
DEFAULT_TOKEN_GROUP = "system:bootstrappers:kubeadm:default-node-token"
# Generous: a loaded 2-core machine starts kube-apiserver in 10-60 s.
START_TIMEOUT = 180.0
_AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Metadata
"""

# Every plane started in this process, in order (the failure-report hook reads it).
started_planes: list[ControlPlane] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"({path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def wait_until(
    check: Callable[[], bool],
    what: str,
    *,
    timeout: float = START_TIMEOUT,
    logs: dict[str, Path] | None = None,
    alive: Callable[[], str | None] | None = None,
) -> None:
    """Poll ``check`` until it is true; on timeout (or a dead process) fail with the log tails."""
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        if check():
            return
        died = alive() if alive else None
        if died or time.monotonic() > deadline:
            reason = died or f"timed out after {timeout:.0f}s"
            tails = "".join(
                f"\n--- {name}: {path}\n{tail(path)}" for name, path in (logs or {}).items()
            )
            raise AssertionError(f"waiting for {what}: {reason}{tails}")
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


@dataclass
class ControlPlane:
    flavor: str  # "kube-apiserver" or "kubeboot"
    url: str
    workdir: Path
    ca_file: Path
    ca_key_file: Path
    admin_kubeconfig: Path
    signing_duration: str
    logs: dict[str, Path] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    """Each process of the plane by name (the benchmarks read their CPU)."""

    @property
    def host(self) -> str:
        return self.url.removeprefix("https://").rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def endpoint(self) -> str:
        """``host:port``, as ``kubeadm join``/``kubeboot join`` take it."""
        return self.url.removeprefix("https://")

    @property
    def ca_cert_hash(self) -> str:
        return spki_pin(load_certificate_pem(self.ca_file.read_bytes()))

    @property
    def ca(self) -> CertificateAuthority:
        return CertificateAuthority.load(self.ca_file, self.ca_key_file)

    def kubectl(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        kubeconfig: Path | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Real kubectl v1.37.2 with the admin kubeconfig (or ``kubeconfig``)."""
        home = self.workdir / "home"
        home.mkdir(exist_ok=True)
        cmd = [
            str(real_binary("kubectl")),
            "--kubeconfig",
            str(kubeconfig or self.admin_kubeconfig),
            *args,
        ]
        result = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            input=input,
            env={**os.environ, "HOME": str(home)},
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"[{self.flavor}] kubectl {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def create_token(
        self,
        *,
        ttl: dt.timedelta | None = dt.timedelta(hours=1),
        expiration: dt.datetime | None = None,
        groups: Sequence[str] = (DEFAULT_TOKEN_GROUP,),
        usages: Sequence[str] = ("authentication", "signing"),
        description: str = "",
        token: str | None = None,
    ) -> str:
        """A new bootstrap token Secret (as ``kubeadm token create`` writes it); ``<id>.<secret>``.

        ``expiration`` overrides ``ttl`` (a past time makes an expired token; the tokencleaner
        deletes it soon after). ``ttl=None`` and no expiration: a token that never expires.
        ``token`` gives the token itself (the same one on two planes), else a random one.
        """
        alphabet = string.ascii_lowercase + string.digits
        if token is None:
            token = "".join(secrets.choice(alphabet) for _ in range(6)) + "."
            token += "".join(secrets.choice(alphabet) for _ in range(16))
        token_id, token_secret = token.split(".")
        data = {"token-id": token_id, "token-secret": token_secret}
        when = expiration or (dt.datetime.now(dt.UTC) + ttl if ttl is not None else None)
        if when is not None:
            data["expiration"] = when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        data |= {f"usage-bootstrap-{usage}": "true" for usage in usages}
        if groups:
            data["auth-extra-groups"] = ",".join(groups)
        if description:
            data["description"] = description
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
            "type": "bootstrap.kubernetes.io/token",
            "stringData": data,
        }
        self.kubectl("create", "-f", "-", input=json.dumps(secret))
        return token

    def join_args(self, token: str) -> list[str]:
        """The arguments of ``kubeboot join`` / ``kubeadm join`` for ``token`` with the CA pin."""
        return [
            self.endpoint,
            "--token",
            token,
            "--discovery-token-ca-cert-hash",
            self.ca_cert_hash,
        ]

    def client_kubeconfig(
        self, path: Path, common_name: str, organizations: Sequence[str] = ()
    ) -> Path:
        """A kubeconfig with a client certificate for any identity, signed by the cluster CA."""
        return write_client_kubeconfig(
            path, self.url, self.ca, common_name=common_name, organizations=list(organizations)
        )

    def token_kubeconfig(self, path: Path, token: str | None) -> Path:
        """A kubeconfig that authenticates with ``token`` only (``None``: anonymous)."""
        user: dict[str, str] = {"token": token} if token else {}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "cluster",
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": "user", "user": user}],
            "contexts": [{"name": "ctx", "context": {"cluster": "cluster", "user": "user"}}],
            "current-context": "ctx",
        }
        path.write_text(json.dumps(config))
        path.chmod(0o600)
        return path

    def wait_for_jws(self, token: str, timeout: float = 60) -> None:
        """Until the bootstrapsigner has signed cluster-info for ``token`` (discovery needs it)."""
        token_id = token.split(".", 1)[0]

        def signed() -> bool:
            out = self.kubectl(
                "get", "configmap", "-n", "kube-public", "cluster-info", "-o", "json", check=False
            )
            if out.returncode != 0:
                return False
            return f"jws-kubeconfig-{token_id}" in json.loads(out.stdout).get("data", {})

        wait_until(signed, f"cluster-info signed for {token_id}", timeout=timeout, logs=self.logs)


class _Processes:
    """Processes of one plane, each with a log file; stopped in reverse start order."""

    def __init__(self, logs: dict[str, Path], pids: dict[str, int]) -> None:
        self.logs = logs
        self.pids = pids
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: Sequence[str | Path]) -> subprocess.Popen[bytes]:
        log = self.logs[name]
        with log.open("ab") as out:
            out.write(f"$ {' '.join(map(str, args))}\n".encode())
            out.flush()
            proc = subprocess.Popen(
                [str(a) for a in args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.running.append((name, proc))
        self.pids[name] = proc.pid
        return proc

    def dead(self) -> str | None:
        for name, proc in self.running:
            if proc.poll() is not None:
                return f"{name} exited with {proc.returncode}"
        return None

    def stop(self) -> None:
        for _, proc in reversed(self.running):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in reversed(self.running):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _unverified_tls() -> ssl.SSLContext:
    """For kube-controller-manager's self-signed /healthz only."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@contextlib.contextmanager
def real_control_plane(
    workdir: Path,
    *,
    signing_duration: str = DEFAULT_SIGNING_DURATION,
    bind_address: str = "127.0.0.1",
    apiserver_flags: Sequence[str] = (),
    kcm_flags: Sequence[str] = (),
    init: bool = True,
    audit: bool = True,
    etcd_fsync: bool = False,
) -> Iterator[ControlPlane]:
    """etcd 3.7.3 + kube-apiserver + kube-controller-manager v1.37.2, ready, then stopped.

    ``init=False`` leaves out ``kubeboot init`` (no cluster-info, no bootstrap RBAC, no token).
    The benchmarks set ``audit=False`` and ``etcd_fsync=True``, as kubeboot runs by default.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    names = ("etcd", "kube-apiserver", "kube-controller-manager", "init", "audit")
    logs = {name: workdir / f"{name}.log" for name in names}
    pki = make_kubeadm_pki(workdir / "pki")
    etcd_port, etcd_peer, api_port, kcm_port = (free_port() for _ in range(4))
    url = f"https://{bind_address}:{api_port}"
    ca = pki.ca
    admin = write_client_kubeconfig(
        workdir / "admin.conf",
        url,
        ca,
        common_name="kubernetes-admin",
        organizations=["system:masters"],
    )
    kcm_conf = write_client_kubeconfig(
        workdir / "controller-manager.conf",
        url,
        ca,
        common_name="system:kube-controller-manager",
        organizations=[],
    )
    (workdir / "audit-policy.yaml").write_text(_AUDIT_POLICY)
    plane = ControlPlane(
        "kube-apiserver",
        url,
        workdir,
        pki.path("ca.crt"),
        pki.path("ca.key"),
        admin,
        signing_duration,
        logs,
    )
    procs = _Processes(logs, plane.pids)
    try:
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{etcd_peer}"
        procs.start(
            "etcd",
            [
                real_binary("etcd"),
                "--name=real",
                f"--data-dir={workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=real={peer_url}",
                "--log-level=warn",
                # Throwaway data on a shared disk: fsync latency would only slow the tests.
                *(() if etcd_fsync else ("--unsafe-no-fsync",)),
            ],
        )
        wait_until(
            lambda: _http_ok(f"{etcd_url}/health"),
            "etcd /health",
            logs=logs,
            alive=procs.dead,
        )
        p = pki.path
        procs.start(
            "kube-apiserver",
            [
                real_binary("kube-apiserver"),
                f"--advertise-address={bind_address}",
                f"--bind-address={bind_address}",
                f"--secure-port={api_port}",
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                "--enable-bootstrap-token-auth=true",
                f"--client-ca-file={p('ca.crt')}",
                f"--tls-cert-file={p('apiserver.crt')}",
                f"--tls-private-key-file={p('apiserver.key')}",
                f"--etcd-servers={etcd_url}",
                f"--kubelet-client-certificate={p('apiserver-kubelet-client.crt')}",
                f"--kubelet-client-key={p('apiserver-kubelet-client.key')}",
                "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
                f"--proxy-client-cert-file={p('front-proxy-client.crt')}",
                f"--proxy-client-key-file={p('front-proxy-client.key')}",
                "--requestheader-allowed-names=front-proxy-client",
                f"--requestheader-client-ca-file={p('front-proxy-ca.crt')}",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-username-headers=X-Remote-User",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={p('sa.pub')}",
                f"--service-account-signing-key-file={p('sa.key')}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--cert-dir={workdir / 'apiserver-certs'}",
                *(
                    (
                        f"--audit-policy-file={workdir / 'audit-policy.yaml'}",
                        f"--audit-log-path={logs['audit']}",
                        "--audit-log-format=json",
                    )
                    if audit
                    else ()
                ),
                *apiserver_flags,
            ],
        )
        anonymous = ssl.create_default_context(cafile=str(pki.path("ca.crt")))
        wait_until(
            lambda: _http_ok(f"{url}/readyz", anonymous),
            "kube-apiserver /readyz",
            logs=logs,
            alive=procs.dead,
        )
        procs.start(
            "kube-controller-manager",
            [
                real_binary("kube-controller-manager"),
                f"--kubeconfig={kcm_conf}",
                f"--authentication-kubeconfig={kcm_conf}",
                f"--authorization-kubeconfig={kcm_conf}",
                "--bind-address=127.0.0.1",
                f"--secure-port={kcm_port}",
                f"--cert-dir={workdir / 'kcm-certs'}",
                "--controllers=*,bootstrapsigner,tokencleaner",
                f"--cluster-signing-cert-file={p('ca.crt')}",
                f"--cluster-signing-key-file={p('ca.key')}",
                f"--cluster-signing-duration={signing_duration}",
                f"--root-ca-file={p('ca.crt')}",
                f"--service-account-private-key-file={p('sa.key')}",
                f"--requestheader-client-ca-file={p('front-proxy-ca.crt')}",
                f"--client-ca-file={p('ca.crt')}",
                "--use-service-account-credentials=true",
                f"--flex-volume-plugin-dir={workdir / 'flexvolume'}",
                # One instance: no need to wait for a Lease.
                "--leader-elect=false",
                *kcm_flags,
            ],
        )
        wait_until(
            lambda: _http_ok(f"https://127.0.0.1:{kcm_port}/healthz", _unverified_tls()),
            "kube-controller-manager /healthz",
            logs=logs,
            alive=procs.dead,
        )
        # The serviceaccount controller running is the sign that controllers have started.
        wait_until(
            lambda: plane.kubectl("get", "serviceaccount", "default", check=False).returncode == 0,
            "the default ServiceAccount (controllers running)",
            logs=logs,
            alive=procs.dead,
        )
        if init:
            _kubeboot_init(admin, logs["init"])
        started_planes.append(plane)
        yield plane
    finally:
        procs.stop()


def _kubeboot_init(admin: Path, log: Path) -> None:
    """What ``kubeadm init`` adds for bootstrapping, via ``kubeboot init`` (create-if-missing)."""
    with log.open("ab") as out:
        result = subprocess.run(
            [sys.executable, "-m", "kubeboot", "init", "--kubeconfig", str(admin)],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=120,
            check=False,
        )
    if result.returncode != 0:
        raise AssertionError(f"kubeboot init against kube-apiserver failed:\n{tail(log)}")


@contextlib.contextmanager
def kubeboot_control_plane(
    workdir: Path,
    *,
    signing_duration: str = DEFAULT_SIGNING_DURATION,
    flags: Sequence[str] = (),
) -> Iterator[ControlPlane]:
    """``kubeboot server`` as a subprocess with the settings the real plane has."""
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    audit = workdir / "audit.log"
    running = start_server_process(
        data,
        "--cluster-signing-duration",
        signing_duration,
        "--audit-log-path",
        str(audit),
        *flags,
    )
    assert running.process is not None
    plane = ControlPlane(
        "kubeboot",
        running.url,
        workdir,
        running.ca_file,
        data / "pki" / "ca.key",
        running.kubeconfig,
        signing_duration,
        {"kubeboot": data.with_suffix(".log"), "audit": audit},
    )
    started_planes.append(plane)
    try:
        yield plane
    finally:
        running.process.terminate()
        try:
            running.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait()
