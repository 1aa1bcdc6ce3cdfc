"""Helpers for the agent's integration tests: a node's paths, the agent as a real process,
tokens and certificates made with the cluster's own credentials, and CSR queries.

The agent runs as ``python -m kubeboot`` (so ``kill -9`` hits the real program); its output
goes to a file, never a pipe, so a chatty agent cannot block on a full pipe while a test
waits for a line.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from kubeboot.pki.keys import dump_private_key_pem, generate_private_key, load_private_key_pem
from tests.conftest import RunningServer

KUBEBOOT = [sys.executable, "-m", "kubeboot"]


@dataclass(frozen=True)
class JoinInfo:
    endpoint: str
    token: str
    pin: str

    @property
    def join_args(self) -> list[str]:
        """``join <endpoint> --token … --discovery-token-ca-cert-hash …``, as printed."""
        return [
            "join", self.endpoint, "--token", self.token,
            "--discovery-token-ca-cert-hash", self.pin,
        ]  # fmt: skip


def join_info(running: RunningServer) -> JoinInfo:
    """The join command the server printed on first start (its log is ``<data-dir>.log``)."""
    log = running.data_dir.with_suffix(".log").read_text()
    m = re.search(
        r"kubeboot join (\S+) --token (\S+) --discovery-token-ca-cert-hash (sha256:[0-9a-f]{64})",
        log,
    )
    assert m, log
    return JoinInfo(m.group(1), m.group(2), m.group(3))


@dataclass(frozen=True)
class NodePaths:
    root: Path
    name: str

    @property
    def bootstrap_kubeconfig(self) -> Path:
        return self.root / "etc" / "bootstrap-kubelet.conf"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "etc" / "kubelet.conf"

    @property
    def cert_dir(self) -> Path:
        return self.root / "pki"

    def flags(self) -> list[str]:
        return [
            "--bootstrap-kubeconfig",
            str(self.bootstrap_kubeconfig),
            "--kubeconfig",
            str(self.kubeconfig),
            "--cert-dir",
            str(self.cert_dir),
            "--node-name",
            self.name,
        ]

    def files(self) -> list[str]:
        """Every path under the node's root, relative, sorted (to assert "nothing written")."""
        if not self.root.exists():
            return []
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*"))


def run_kubeboot(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KUBEBOOT, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


class AgentProcess:
    """``kubeboot <args>`` in the background; output in ``log``; killed on exit.

    ``program`` replaces ``python -m kubeboot`` (e.g. the offset-clock launcher), ``env``
    the environment."""

    def __init__(
        self,
        log: Path,
        *args: str,
        program: list[str] = KUBEBOOT,
        env: dict[str, str] | None = None,
    ) -> None:
        self.log = log
        with log.open("a") as out:
            self.proc = subprocess.Popen(
                [*program, *args], stdout=out, stderr=subprocess.STDOUT, text=True, env=env
            )

    def __enter__(self) -> AgentProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()

    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """The first match of ``pattern`` in the output; fails if the agent exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.output(), re.M)
            if m:
                return m
            if self.proc.poll() is not None:
                m = re.search(pattern, self.output(), re.M)
                if m:
                    return m
                raise AssertionError(
                    f"agent exited ({self.proc.returncode}) before {pattern!r}:\n{self.output()}"
                )
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} within {timeout}s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL: no cleanup handler runs, exactly like a power cut of the process."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def kubectl_json(running: RunningServer, *args: str) -> Any:
    return json.loads(running.kubectl(*args, "-o", "json").stdout)


def request_subject(csr: dict[str, Any]) -> str:
    pem = base64.b64decode(csr["spec"]["request"])
    return x509.load_pem_x509_csr(pem).subject.rfc4514_string()


def node_csrs(running: RunningServer, node: str) -> list[dict[str, Any]]:
    """The CSRs whose request is for ``system:node:<node>`` (both signers)."""
    items: list[dict[str, Any]] = kubectl_json(running, "get", "csr")["items"]
    return [c for c in items if f"CN=system:node:{node}" in request_subject(c)]


def conditions(csr: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["type"], c.get("reason", "")) for c in csr.get("status", {}).get("conditions", [])]


def create_token(
    running: RunningServer,
    token_id: str,
    secret: str,
    *,
    signing: bool = True,
    expires: dt.datetime | None = None,
) -> str:
    """A bootstrap token Secret made with the admin kubeconfig, as `kubeadm token create`."""
    data = {
        "token-id": token_id,
        "token-secret": secret,
        "usage-bootstrap-authentication": "true",
        "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
    }
    if signing:
        data["usage-bootstrap-signing"] = "true"
    if expires is not None:
        data["expiration"] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    secret_obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "bootstrap.kubernetes.io/token",
        "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
        "stringData": data,
    }
    running.kubectl("create", "-f", "-", input=json.dumps(secret_obj))
    return f"{token_id}.{secret}"


def issue_with_cluster_ca(
    running: RunningServer,
    common_name: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> tuple[bytes, bytes]:
    """A node client pair signed with the cluster CA's key, with a chosen validity window.

    Used to stand for a certificate the signer issued long ago (a node that was off).
    """
    ca_dir = running.data_dir / "pki"
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
    ca_key = load_private_key_pem((ca_dir / "ca.key").read_bytes())
    key = generate_private_key()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), dump_private_key_pem(key)


def openssl_verify(ca_file: Path, cert_file: Path, purpose: str) -> str:
    """``openssl verify`` of the leaf in ``cert_file`` (a pair file: the leaf comes first)."""
    result = subprocess.run(
        ["openssl", "verify", "-purpose", purpose, "-CAfile", str(ca_file), str(cert_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def leaf(pem_file: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(pem_file.read_bytes())[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TcpForwarder:
    """127.0.0.1:``port`` -> ``target``, byte for byte (TLS passes through untouched).

    Stands for "the API server is reachable again" without restarting it on a fixed port.
    The port is bound from the start but listens only after :meth:`listen`: until then a
    connect is refused as if nobody were there, and no other process can take the port (a
    port found free, closed and bound again seconds later can be some connection's by then).
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.threads: list[threading.Thread] = []
        self.sockets: list[socket.socket] = []

    def listen(self) -> None:
        self.listener.listen()
        self._spawn(self._accept)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [conn, upstream]
            self._spawn(self._pump, conn, upstream)
            self._spawn(self._pump, upstream, conn)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()
        for sock in self.sockets:
            sock.close()
        for thread in self.threads:
            thread.join(timeout=5)
