"""Shared fixtures: a real kubeboot server on 127.0.0.1 with a free port, over TLS.

``server`` runs the server in the test's event loop (fast, and lets tests reach the store);
``server_process`` runs ``kubeboot server`` as a real subprocess for tests that kill it.
Both write a fresh data directory, so the admin kubeconfig and CA are real files that
``kubectl`` and the official Python client read unchanged.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, settings

from kubeboot.api.server.config import ServerConfig
from kubeboot.api.server.serve import Server
from kubeboot.clock import SystemClock
from kubeboot.pki.authority import CertificateAuthority
from kubeboot.pki.keys import dump_private_key_pem

# `make fuzz`: the property tests of tests/*/test_fuzz_*.py with many more examples.
settings.register_profile(
    "fuzz",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"


@dataclass
class RunningServer:
    url: str
    data_dir: Path
    kubeconfig: Path
    ca_file: Path
    server: Server | None = None
    process: subprocess.Popen[str] | None = None

    def kubectl(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        kubeconfig: Path | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HOME": str(self.data_dir / "home")}
        cmd = [KUBECTL, "--kubeconfig", str(kubeconfig or self.kubeconfig), *args]
        result = subprocess.run(
            cmd, capture_output=True, text=True, input=input, env=env, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result


def server_config(data_dir: Path, **overrides: object) -> ServerConfig:
    params: dict[str, object] = {
        "data_dir": data_dir,
        "bind_address": "127.0.0.1",
        "secure_port": 0,
    }
    params.update(overrides)
    return ServerConfig(**params)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def in_process_server(data_dir: Path, **overrides: object) -> AsyncIterator[RunningServer]:
    """``Server`` in the test's event loop, configured by ``server_config``; stopped after."""
    srv = Server(server_config(data_dir, **overrides))
    await srv.start()
    assert srv.pki is not None
    try:
        yield RunningServer(
            srv.url, data_dir, srv.admin_kubeconfig, srv.pki.ca_cert_file, server=srv
        )
    finally:
        await srv.stop()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with in_process_server(tmp_path / "data") as running:
        yield running


def start_server_process(data_dir: Path, *extra: str) -> RunningServer:
    """Start ``kubeboot server`` and wait until it prints where it listens.

    Output goes to ``<data_dir>.log`` (a file, so a chatty server never blocks on a pipe).
    """
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.with_suffix(".log")
    cmd = [
        sys.executable,
        "-m",
        "kubeboot",
        "server",
        "--data-dir",
        str(data_dir),
        "--bind-address",
        "127.0.0.1",
        "--secure-port",
        "0",
        *extra,
    ]
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = re.search(
            r"^kubeboot API server listening on (https://\S+)$", log_path.read_text(), re.M
        )
        if m:
            return RunningServer(
                m.group(1),
                data_dir,
                data_dir / "admin.conf",
                data_dir / "pki" / "ca.crt",
                process=proc,
            )
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("server did not start:\n" + log_path.read_text())


@contextlib.contextmanager
def server_process_running(data_dir: Path, *extra: str) -> Iterator[RunningServer]:
    """``kubeboot server`` as a subprocess for the duration of the block, killed after."""
    running = start_server_process(data_dir, *extra)
    try:
        yield running
    finally:
        assert running.process is not None
        running.process.kill()
        running.process.wait()


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[RunningServer]:
    with server_process_running(tmp_path / "data") as running:
        yield running


def admin_ssl_context(running: RunningServer) -> ssl.SSLContext:
    """A client TLS context with the admin client certificate from ``admin.conf``."""
    config = yaml.safe_load(running.kubeconfig.read_text())
    user = config["users"][0]["user"]
    cluster = config["clusters"][0]["cluster"]
    ctx = ssl.create_default_context(
        cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
    )
    pem_dir = running.data_dir / "test-client"
    pem_dir.mkdir(exist_ok=True)
    cert, key = pem_dir / "admin.crt", pem_dir / "admin.key"
    cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
    key.write_bytes(base64.b64decode(user["client-key-data"]))
    key.chmod(0o600)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def anonymous_ssl_context(running: RunningServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(running.ca_file))


def cluster_ca(running: RunningServer) -> CertificateAuthority:
    pki = running.data_dir / "pki"
    return CertificateAuthority.load(pki / "ca.crt", pki / "ca.key")


def node_ssl_context(running: RunningServer, node: str) -> ssl.SSLContext:
    """A client TLS context as ``system:node:<node>`` (group system:nodes), from the CA."""
    cert, key = cluster_ca(running).issue_client_cert(
        common_name=f"system:node:{node}", organizations=["system:nodes"], clock=SystemClock()
    )
    crt = running.data_dir / f"{node}.crt"
    pem = running.data_dir / f"{node}.key"
    crt.write_bytes(cert.public_bytes(encoding=Encoding.PEM))
    pem.write_bytes(dump_private_key_pem(key))
    ctx = anonymous_ssl_context(running)
    ctx.load_cert_chain(str(crt), str(pem))
    return ctx


def token_kubeconfig(running: RunningServer, token: str) -> Path:
    """A kubeconfig that presents ``token`` (a bootstrap, static or join token) to ``running``."""
    path = running.data_dir / f"kubeconfig-{token[:6]}"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [
                    {
                        "name": "k",
                        "cluster": {
                            "server": running.url,
                            "certificate-authority": str(running.ca_file),
                        },
                    }
                ],
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                "users": [{"name": "u", "user": {"token": token}}],
            }
        )
    )
    return path


async def call_as(
    running: RunningServer,
    method: str,
    path: str,
    body: Any = None,
    *,
    ctx: ssl.SSLContext | None = None,
    token: str | None = None,
    content_type: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """One request with a fresh session (anonymous unless ``ctx`` or ``token``): the body as
    JSON, or, with ``content_type``, as given (bytes or text) or JSON-encoded under that type
    (a patch type, say); returns the status and the decoded JSON answer."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kwargs: dict[str, Any] = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
        kwargs["data"] = body if isinstance(body, (bytes, str)) else json.dumps(body)
    elif body is not None:
        kwargs["json"] = body
    connector = aiohttp.TCPConnector(ssl=ctx or anonymous_ssl_context(running))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.request(method, running.url + path, headers=headers, **kwargs) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


@pytest.fixture
async def admin_http(server: RunningServer) -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp session to the server authenticated as kubernetes-admin (system:masters)."""
    connector = aiohttp.TCPConnector(ssl=admin_ssl_context(server))
    async with aiohttp.ClientSession(base_url=server.url, connector=connector) as session:
        yield session
