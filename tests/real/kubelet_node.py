"""A real kubelet v1.37.2 on this machine, for the tier: containerd, the host's constraints, a
supervisor, and what the kubelet asked of the API server.

Host constraints (facts/real-k8s.md), each handled here without changing the host:

* containerd from Debian's package (1.6), started per node with its root, state and ``opt``
  directory under the node's temp dir and its sockets in a short-named one under /tmp (a unix
  socket path has at most 107 bytes), the ``native`` snapshotter (no overlay on overlay), and
  no CNI configured (the Node stays NotReady, "cni plugin not initialized");
* cgroup v1 and containerd 1.6: ``failCgroupV1: false``, ``cgroupDriver: cgroupfs``,
  ``cgroupsPerQOS: false``, ``enforceNodeAllocatable: [none]`` (no kubepods cgroups);
* the kubelet's kernel tunables: ``protectKernelDefaults: true`` with the expected values
  pinned by read-only bind mounts in its private mount namespace (``nodehost.py``), which
  also puts a tmpfs over ``/var/lib/kubelet`` (and ``/etc/kubernetes`` for kubeadm);
* a node IP that is not loopback: the host's own global IPv4 address (nothing is sent to
  it; a host without one cannot run the test, which says so); ``--root-dir`` (short-named, for
  its sockets), ``podLogsDir``, the cert dir and every port are the node's own, so two
  kubelets can run side by side;
* the kubelet runs under ``nodehost.py``'s supervisor, which restarts it as systemd would.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.serialization import Encoding

from kubeboot.clock import SystemClock
from kubeboot.pki.keys import dump_private_key_pem
from tests.real.binaries import real_binary, unavailable
from tests.real.controlplane import ControlPlane, wait_until

__all__ = [
    "KERNEL_DEFAULTS",
    "KubeletNode",
    "NodeHost",
    "Requests",
    "ServingApprover",
    "containerd",
    "host_kubelet_config",
    "kubelet_requests",
    "lost_creates",
    "node_host",
    "node_ip",
    "node_port",
    "refused_only_on",
    "run_kubelet",
]

NODEHOST = Path(__file__).with_name("nodehost.py")
# What the kubelet checks (and, without protectKernelDefaults, writes) on the host.
KERNEL_DEFAULTS = {"kernel/panic": "10", "kernel/panic_on_oops": "1", "vm/overcommit_memory": "1"}
# How long systemd's kubelet.service waits before a restart is 10 s; shorter keeps tests fast.
RESTART_DELAY = 3.0
_KLOG_FATAL = re.compile(r"^F\d{4} ", re.M)
# Audit stages that carry the response code (a watch's comes with ResponseStarted).
_ANSWERED = ("ResponseStarted", "ResponseComplete")


def _need(command: str, how: str) -> str:
    path = shutil.which(command)
    if path is None:
        unavailable(f"`{command}` is not installed: {how}")
    assert path is not None
    return path


def node_ip() -> str:
    """The host's first global IPv4 address: a kubelet refuses a loopback node IP."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    for line in out.splitlines():
        match = re.search(r"\binet (\d+\.\d+\.\d+\.\d+)/", line)
        if match:
            return match.group(1)
    unavailable("this host has no global IPv4 address to give a kubelet as its node IP")
    raise AssertionError("unreachable")


def node_port() -> int:
    """A free TCP port below the ephemeral range: a port from ``free_port`` can be taken by an
    outgoing connection before the kubelet binds it (its listeners come up seconds later)."""
    low = 32768
    with contextlib.suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(200):
        port = secrets.SystemRandom().randrange(20000, min(low, 32768))
        with socket.socket() as probe:
            try:
                probe.bind(("0.0.0.0", port))  # noqa: S104 - the kubelet's own bind address
            except OSError:
                continue
            return port
    raise AssertionError("no free port below the ephemeral range")


def _require_root() -> None:
    if os.geteuid() != 0:
        unavailable("a real kubelet needs root (mount namespace, cgroups)")


@contextlib.contextmanager
def short_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory with a short path under /tmp, removed after: unix sockets' paths are
    limited to 107 bytes, which pytest's directories easily exceed."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def containerd(workdir: Path) -> Iterator[Path]:
    """containerd 1.6 (Debian's) with its state under ``workdir`` and its sockets in a short
    directory; yields the socket."""
    binary = _need("containerd", "apt-get install containerd runc (.ci/run does)")
    _need("runc", "apt-get install runc")
    workdir.mkdir(parents=True, exist_ok=True)
    with short_dir("kb-ctr-") as sockets:
        yield from _containerd(binary, workdir, sockets)


def _containerd(binary: str, workdir: Path, sockets: Path) -> Iterator[Path]:
    sock = sockets / "containerd.sock"
    cri = '[plugins."io.containerd.grpc.v1.cri"]'
    config = f"""version = 2
root = "{workdir / "root"}"
state = "{workdir / "state"}"
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sockets / "containerd.sock.ttrpc"}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{workdir / "opt"}"
{cri}
  sandbox_image = "registry.k8s.io/pause:3.10"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{workdir / "cni-bin"}"
    conf_dir = "{workdir / "cni-conf"}"
"""
    (workdir / "config.toml").write_text(config)
    log = workdir / "containerd.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [binary, "--config", str(workdir / "config.toml")],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        wait_until(
            lambda: sock.exists() and "containerd successfully booted" in log.read_text(),
            "containerd",
            timeout=60,
            logs={"containerd": log},
            alive=lambda: None if proc.poll() is None else f"exited {proc.returncode}",
        )
        yield sock
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def host_kubelet_config(
    workdir: Path, *, port: int, healthz_port: int, runtime_socket: Path
) -> dict[str, Any]:
    """The KubeletConfiguration settings this host needs, whoever writes the rest."""
    return {
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": ["none"],
        "failCgroupV1": False,
        "failSwapOn": False,
        "protectKernelDefaults": True,
        "port": port,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "readOnlyPort": 0,
        "podLogsDir": str(workdir / "pod-logs"),
        "containerRuntimeEndpoint": f"unix://{runtime_socket}",
    }


@dataclass
class NodeHost:
    """``nodehost.py`` running in its own mount namespace (see that module)."""

    process: subprocess.Popen[bytes]
    status_file: Path
    logs: dict[str, Path]

    def status(self) -> dict[str, Any]:
        try:
            loaded: dict[str, Any] = json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return {}
        return loaded

    def alive(self) -> str | None:
        code = self.process.poll()
        return None if code is None else f"the node host exited with {code}"

    def run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """A command inside the node's mount namespace (to read its private files)."""
        return subprocess.run(
            ["nsenter", "-t", str(self.process.pid), "-m", "--", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def node_host(
    workdir: Path,
    *,
    private_dirs: Sequence[str] = ("/var/lib/kubelet",),
    kubelet: dict[str, Any] | None = None,
    first: dict[str, Any] | None = None,
) -> Iterator[NodeHost]:
    """Start ``nodehost.py`` in a private mount namespace; stop it (and all it runs) after."""
    _require_root()
    unshare = _need("unshare", "util-linux")
    _need("nsenter", "util-linux")
    workdir.mkdir(parents=True, exist_ok=True)
    status = workdir / "nodehost.json"
    spec = {
        "scratch": str(workdir / "ns-scratch"),
        "private_dirs": list(private_dirs),
        "sysctls": KERNEL_DEFAULTS,
        "status_file": str(status),
        "kubelet": kubelet,
        "first": first,
    }
    (workdir / "nodehost-spec.json").write_text(json.dumps(spec, indent=1))
    log = workdir / "nodehost.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                unshare,
                "--mount",
                "--propagation",
                "private",
                "--",
                sys.executable,
                str(NODEHOST),
                str(workdir / "nodehost-spec.json"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    logs = {"nodehost": log}
    for part in (kubelet, first):
        if part:
            logs[Path(part["log"]).stem] = Path(part["log"])
    host = NodeHost(proc, status, logs)
    try:
        wait_until(
            lambda: bool(host.status().get("ready")),
            "the node's mount namespace",
            timeout=60,
            logs=logs,
            alive=host.alive,
        )
        yield host
    finally:
        host.stop()


@dataclass
class KubeletNode:
    """One kubelet bootstrapping against ``plane``: where it keeps things, and its host."""

    name: str
    plane: ControlPlane
    workdir: Path
    ip: str
    port: int
    host: NodeHost

    @property
    def cert_dir(self) -> Path:
        return self.workdir / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubelet.conf"

    @property
    def log(self) -> Path:
        return self.workdir / "kubelet.log"

    def pems(self, kind: str) -> list[Path]:
        """``kubelet-client-<timestamp>.pem`` (or ``server``) files, oldest first."""
        return sorted(self.cert_dir.glob(f"kubelet-{kind}-2*.pem"))

    def fatal_lines(self) -> list[str]:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [line for line in text.splitlines() if _KLOG_FATAL.match(line)]

    def kubectl_json(self, *args: str) -> dict[str, Any]:
        out = self.plane.kubectl(*args, "-o", "json").stdout
        loaded: dict[str, Any] = json.loads(out)
        return loaded

    def wait(self, check: Any, what: str, timeout: float = 240) -> None:
        def probe() -> bool:
            return bool(check())

        logs = {**self.host.logs, **self.plane.logs}
        wait_until(
            probe,
            f"{what} ({self.plane.flavor})",
            timeout=timeout,
            logs=logs,
            alive=self.host.alive,
        )

    def node_exists(self) -> bool:
        got = self.plane.kubectl("get", "node", self.name, "-o", "name", check=False)
        return got.returncode == 0

    def api_get(self, path: str, *, token: str | None = None) -> tuple[int, str]:
        """GET on the kubelet's own API as ``kubernetes-admin`` (client certificate), or with
        a bearer ``token`` only (the kubelet asks the API server's TokenReview about it)."""
        ctx = ssl.create_default_context(cafile=str(self.plane.ca_file))
        ctx.check_hostname = False
        headers = {}
        if token is None:
            cert, key = self.plane.ca.issue_client_cert(
                common_name="kubernetes-admin",
                organizations=["system:masters"],
                clock=SystemClock(),
            )
            crt, pem = self.workdir / "api-client.crt", self.workdir / "api-client.key"
            crt.write_bytes(cert.public_bytes(Encoding.PEM))
            pem.write_bytes(dump_private_key_pem(key))
            pem.chmod(0o600)
            ctx.load_cert_chain(str(crt), str(pem))
        else:
            headers["Authorization"] = f"Bearer {token}"
        url = f"https://{self.ip}:{self.port}{path}"
        try:
            request = urllib.request.Request(url, headers=headers)
            with urllib.request.urlopen(request, context=ctx, timeout=30) as resp:  # noqa: S310
                return int(resp.status), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def serving_peer_certificate(self) -> bytes:
        """The DER certificate the kubelet presents on its port (verified against the CA)."""
        ctx = ssl.create_default_context(cafile=str(self.plane.ca_file))
        ctx.check_hostname = False
        with (
            socket.create_connection((self.ip, self.port), timeout=10) as raw,
            ctx.wrap_socket(raw) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        return der


@contextlib.contextmanager
def run_kubelet(
    workdir: Path,
    plane: ControlPlane,
    *,
    name: str,
    bootstrap_kubeconfig: Path,
    server_tls_bootstrap: bool = True,
    verbosity: int = 2,
) -> Iterator[KubeletNode]:
    """A real kubelet against ``plane`` bootstrapping from ``bootstrap_kubeconfig``, supervised,
    with its own containerd; everything stopped on exit."""
    kubelet_bin = real_binary("kubelet")
    ip = node_ip()
    port, healthz = node_port(), node_port()
    with (
        containerd(workdir / "containerd") as runtime,
        short_dir("kb-kubelet-") as root_dir,  # its plugin and pod-resources sockets
    ):
        config: dict[str, Any] = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(plane.ca_file)},
            },
            "authorization": {"mode": "Webhook"},
            "rotateCertificates": True,
            "serverTLSBootstrap": server_tls_bootstrap,
            **host_kubelet_config(workdir, port=port, healthz_port=healthz, runtime_socket=runtime),
        }
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        node = workdir / "kubelet.conf"
        argv = [
            str(kubelet_bin),
            f"--config={workdir / 'config.yaml'}",
            f"--bootstrap-kubeconfig={bootstrap_kubeconfig}",
            f"--kubeconfig={node}",
            f"--cert-dir={workdir / 'pki'}",
            f"--root-dir={root_dir}",
            f"--hostname-override={name}",
            f"--node-ip={ip}",
            f"--v={verbosity}",
        ]
        spec = {"argv": argv, "log": str(workdir / "kubelet.log"), "restart_delay": RESTART_DELAY}
        with node_host(workdir / "host", kubelet=spec) as host:
            yield KubeletNode(name, plane, workdir, ip, port, host)


class ServingApprover:
    """Approves a node's pending kubelet-serving CSRs with real kubectl, as an administrator
    would (the controllers never approve serving certificates, upstream or here)."""

    def __init__(self, plane: ControlPlane, node: str) -> None:
        self.plane = plane
        self.node = node
        self.approved: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _pending(self) -> list[str]:
        out = self.plane.kubectl("get", "csr", "-o", "json", check=False)
        if out.returncode != 0:
            return []
        names = []
        for csr in json.loads(out.stdout)["items"]:
            spec, status = csr["spec"], csr.get("status") or {}
            if (
                spec.get("signerName") == "kubernetes.io/kubelet-serving"
                and spec.get("username") == f"system:node:{self.node}"
                and not status.get("conditions")
            ):
                names.append(csr["metadata"]["name"])
        return names

    def _loop(self) -> None:
        while not self._stop.wait(2):
            for name in self._pending():
                if self.plane.kubectl("certificate", "approve", name, check=False).returncode == 0:
                    self.approved.append(name)

    def __enter__(self) -> ServingApprover:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@dataclass
class Requests:
    """What one client asked of one API server: (verb, resource) → response codes seen."""

    codes: dict[tuple[str, str], set[int]] = field(default_factory=lambda: defaultdict(set))

    def refused(self) -> dict[tuple[str, str], set[int]]:
        return {
            key: {c for c in codes if c >= 400}
            for key, codes in self.codes.items()
            if any(c >= 400 for c in codes)
        }

    def table(self) -> list[str]:
        return [
            f"{verb:>16} {resource:<40} {sorted(codes)}"
            for (verb, resource), codes in sorted(self.codes.items())
        ]


# A request the kubelet sent and then abandoned: it closes every connection when its client
# certificate changes (client-go's cert rotation), so whatever was in flight gets this error.
_LOST_POST = re.compile(
    r'Post \\?"https://[^/"]+(/[^?"\\]*)[^"]*\\?": [^"]*use of closed network connection'
)


def _collection_resource(path: str) -> str:
    """``resource[.group]`` of a collection path (``/api/v1/namespaces/x/events`` → events)."""
    parts = [p for p in path.split("/") if p]
    group, rest = ("", parts[2:]) if parts[:1] == ["api"] else (parts[1], parts[3:])
    if len(rest) > 2 and rest[0] == "namespaces":
        rest = rest[2:]
    resource = rest[0] if rest else ""
    return f"{resource}.{group}" if group else resource


def lost_creates(kubelet_log: Path) -> Counter[tuple[str, str]]:
    """Creates the kubelet abandoned because it closed their connection (see ``_LOST_POST``).

    Such a create may well be done on the server; the kubelet's retry then hears 409, from
    kube-apiserver as from kubeboot, depending only on when the certificate changed.
    """
    lost: Counter[tuple[str, str]] = Counter()
    if kubelet_log.exists():
        for match in _LOST_POST.finditer(kubelet_log.read_text(errors="replace")):
            lost[("create", _collection_resource(match.group(1)))] += 1
    return lost


def kubelet_requests(
    audit_log: Path,
    user_agent_prefix: str = "kubelet/",
    user_prefix: str = "",
    lost: Counter[tuple[str, str]] | None = None,
) -> Requests:
    """One client's requests in an audit log (upstream's or kubeboot's: the same format), by
    user agent and, optionally, user name. For each create in ``lost`` (:func:`lost_creates`)
    one 409 of the same kind, its retry's, is not counted. Requests without credentials are
    left out: a bootstrapping kubelet starts its informers before its first client
    certificate is issued, and whichever of their requests fall in that window are
    ``system:anonymous``'s (refused alike by both servers; how many is timing)."""
    found = Requests()
    if not audit_log.exists():
        return found
    retried = Counter(lost or {})
    for line in audit_log.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not str(event.get("userAgent", "")).startswith(user_agent_prefix):
            continue
        username = str((event.get("user") or {}).get("username", ""))
        if not username.startswith(user_prefix) or username == "system:anonymous":
            continue
        status = event.get("responseStatus") or {}
        if "code" not in status or event.get("stage") not in _ANSWERED:
            continue
        ref = event.get("objectRef") or {}
        resource = ref.get("resource") or event.get("requestURI", "").split("?")[0]
        if ref.get("apiGroup"):
            resource = f"{resource}.{ref['apiGroup']}"
        if ref.get("subresource"):
            resource = f"{resource}/{ref['subresource']}"
        key = (str(event.get("verb")), resource)
        if int(status["code"]) == 409 and retried[key]:
            retried[key] -= 1
            continue
        found.codes[key].add(int(status["code"]))
    return found


def refused_only_on(ours: Requests, reference: Requests) -> dict[tuple[str, str], set[int]]:
    """Requests refused by ``ours`` (4xx/5xx) that ``reference`` answered without a refusal."""
    out = {}
    for key, codes in ours.refused().items():
        theirs = reference.codes.get(key, set())
        if not any(c >= 400 for c in theirs):
            out[key] = codes
    return out
