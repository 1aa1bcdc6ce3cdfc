"""The join storm's load generator: N simulated nodes joining one server, in its own process.

Run by :mod:`bench.join_storm` as ``python -m bench.storm_load`` with a JSON config on stdin;
it prints one JSON result on stdout. A separate process so its CPU is not the server's, and so
the server is driven over real sockets exactly as nodes drive it.

Each node does what a kubelet bootstrapping with kubeadm does, on loopback only:

1. connection A, no client certificate: anonymous GET of ``kube-public/cluster-info``;
   POST of its client CSR with the bootstrap token (CN ``system:node:<name>``,
   O ``system:nodes``, usages digital signature + client auth, signer
   ``kubernetes.io/kube-apiserver-client-kubelet``); a watch with
   ``fieldSelector=metadata.name=<csr>`` until ``status.certificate`` appears;
2. connection B, a new TLS connection with the issued certificate: POST a
   ``SelfSubjectReview`` and check the server sees ``system:node:<name>``.

Every node binds its own source address in 127.0.0.0/8, as real nodes have their own
addresses: the server's per-source anonymous rate limit then sees one request per source.
Keys, CSRs and request bodies are made before the clock starts, so the measured time is the
server's. Latency is per node, from its first request to the answer of its last.
"""

from __future__ import annotations

import _ssl
import asyncio
import base64
import contextlib
import ctypes
import datetime as dt
import json
import os
import resource
import ssl
import sys
import tempfile
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.procstat import sample, sample_process
from kubeboot.pki.csr import build_csr

__all__ = ["LoadConfig", "main"]

_CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
_CLUSTER_INFO = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
_REVIEW_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
_REVIEW_BODY = b'{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}'
_JSON = b"Content-Type: application/json\r\nAccept: application/json\r\n"


@dataclass(frozen=True, slots=True)
class LoadConfig:
    server: str
    """``https://127.0.0.1:<port>``"""
    ca_file: str
    token: str
    nodes: int
    concurrency: int
    """Most nodes in flight at once (full speed), or the safety cap (fixed rate)."""
    rate: float
    """Offered joins/s (nodes started per second); 0 = full speed."""
    server_pid: int
    node_timeout: float
    run_id: str
    """Prefix of node names, so runs against one server never collide."""
    also_pids: list[int] = field(default_factory=list)
    """More processes whose CPU over the storm is reported (etcd members, replicas, the real
    plane's components), each as a tree and alone, in ``cpu_s_by_pid``."""


@dataclass(slots=True)
class _Node:
    name: str
    source: str
    tls: ssl.SSLContext
    """Connection B's context: the node's key with a placeholder certificate until it has one."""
    csr_body: bytes


class JoinError(Exception):
    """A node's join went wrong: an unexpected status or a wrong identity."""


def _source_address(index: int) -> str:
    """A distinct loopback address per node (127.1.1.1, 127.1.1.2, ...)."""
    return f"127.{1 + index // 62500}.{(index // 250) % 250 + 1}.{index % 250 + 1}"


_libssl = ctypes.CDLL(_ssl.__file__)  # the libssl CPython's ssl module uses
_libssl.SSL_CTX_use_certificate_ASN1.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p]
_libssl.SSL_CTX_use_certificate_ASN1.restype = ctypes.c_int


def _ssl_ctx_pointer(ctx: ssl.SSLContext) -> int | None:
    """The ``SSL_CTX *`` inside a CPython ``ssl.SSLContext`` (its first field)."""
    value: int | None = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    return value


def _node_context(key: ec.EllipticCurvePrivateKey, tmp: Path) -> ssl.SSLContext:
    """A client context holding ``key`` with a throw-away self-signed certificate.

    Why: loading a key into OpenSSL 3.0 is slow (``load_cert_chain`` with a new context is
    ~0.8 ms) and the generator's CPU is the server's on this machine. Done here, before the
    clock starts; the issued certificate replaces the placeholder in ~0.2 ms
    (:func:`_use_certificate`). Connection A verified the server, so B does not again.
    """
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "placeholder")])
    now = dt.datetime.now(dt.UTC)
    placeholder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = tmp / "node.pem"
    pem.write_bytes(
        placeholder.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(pem)
    pem.unlink()
    return ctx


def _use_certificate(ctx: ssl.SSLContext, cert_pem: bytes) -> None:
    """Swap the issued certificate in; OpenSSL keeps the key, whose public half it matches."""
    der = ssl.PEM_cert_to_DER_cert(cert_pem.decode())
    if _libssl.SSL_CTX_use_certificate_ASN1(_ssl_ctx_pointer(ctx), len(der), der) != 1:
        raise JoinError("OpenSSL refused the issued certificate")


def _prepare(cfg: LoadConfig, tmp: Path) -> list[_Node]:
    nodes = []
    for i in range(cfg.nodes):
        name = f"{cfg.run_id}-{i:05d}"
        key = ec.generate_private_key(ec.SECP256R1())
        csr_pem = build_csr(key, common_name=f"system:node:{name}", organizations=["system:nodes"])
        body = {
            "apiVersion": "certificates.k8s.io/v1",
            "kind": "CertificateSigningRequest",
            "metadata": {"name": f"node-csr-{name}"},
            "spec": {
                "request": base64.b64encode(csr_pem).decode(),
                "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                "usages": ["digital signature", "client auth"],
            },
        }
        nodes.append(
            _Node(name, _source_address(i), _node_context(key, tmp), json.dumps(body).encode())
        )
    return nodes


class _Http:
    """HTTP/1.1 over one TLS connection: exactly what a joining node sends, nothing more.

    Why not aiohttp's client: two ``ClientSession`` s per node and their connectors cost the
    generator more CPU than the requests themselves, and on this machine every millisecond
    the generator spends is taken from the server. Responses are either ``Content-Length``
    (every answer here) or chunked (the watch).
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, cfg: LoadConfig, ctx: ssl.SSLContext, source: str) -> _Http:
        host, _, port = cfg.server.removeprefix("https://").rpartition(":")
        reader, writer = await asyncio.open_connection(
            host, int(port), ssl=ctx, local_addr=(source, 0)
        )
        return cls(reader, writer)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    def _send(self, method: str, path: str, headers: bytes, body: bytes) -> None:
        head = f"{method} {path} HTTP/1.1\r\nHost: kubeboot\r\nContent-Length: {len(body)}\r\n"
        self._writer.write(head.encode() + headers + b"\r\n" + body)

    async def _head(self) -> tuple[int, dict[bytes, bytes]]:
        lines = (await self._reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()
        return int(lines[0].split()[1]), fields

    async def request(
        self, method: str, path: str, headers: bytes, expect: int, body: bytes = b""
    ) -> bytes:
        self._send(method, path, headers, body)
        status, fields = await self._head()
        data = await self._reader.readexactly(int(fields.get(b"content-length", b"0")))
        if status != expect:
            raise JoinError(f"{method} {path}: HTTP {status}: {data[:200]!r}")
        return data

    async def watch_lines(self, path: str, headers: bytes) -> AsyncIterator[bytes]:
        """The lines of a chunked watch response (one JSON event each)."""
        self._send("GET", path, headers, b"")
        status, fields = await self._head()
        if status != 200 or fields.get(b"transfer-encoding") != b"chunked":
            raise JoinError(f"watch: HTTP {status}")
        pending = b""
        while size := int((await self._reader.readuntil(b"\r\n")).strip(), 16):
            pending += (await self._reader.readexactly(size + 2))[:-2]
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line


async def _wait_for_certificate(http: _Http, csr_name: str, headers: bytes) -> bytes:
    selector = urllib.parse.quote(f"metadata.name={csr_name}")
    async for line in http.watch_lines(f"{_CSR_PATH}?watch=true&fieldSelector={selector}", headers):
        if b'"certificate"' not in line:
            continue  # ADDED / approved: no certificate yet, not worth decoding
        cert = (json.loads(line)["object"].get("status") or {}).get("certificate")
        if cert:
            return base64.b64decode(cert)
    raise JoinError("watch ended without a certificate")


async def _join(node: _Node, cfg: LoadConfig, bootstrap_ctx: ssl.SSLContext) -> None:
    auth = _JSON + f"Authorization: Bearer {cfg.token}\r\n".encode()
    http = await _Http.open(cfg, bootstrap_ctx, node.source)
    try:
        await http.request("GET", _CLUSTER_INFO, _JSON, 200)
        await http.request("POST", _CSR_PATH, auth, 201, node.csr_body)
        cert_pem = await _wait_for_certificate(http, f"node-csr-{node.name}", auth)
    finally:
        await http.close()
    _use_certificate(node.tls, cert_pem)
    http = await _Http.open(cfg, node.tls, node.source)
    try:
        review = json.loads(await http.request("POST", _REVIEW_PATH, _JSON, 201, _REVIEW_BODY))
    finally:
        await http.close()
    user = review["status"]["userInfo"]["username"]
    if user != f"system:node:{node.name}":
        raise JoinError(f"the server saw {user!r}, not system:node:{node.name}")


async def _run(cfg: LoadConfig, nodes: list[_Node]) -> dict[str, Any]:
    bootstrap_ctx = ssl.create_default_context(cafile=cfg.ca_file)
    latencies: list[float] = []
    errors: list[str] = []
    gate = asyncio.Semaphore(cfg.concurrency)
    in_flight = peak_in_flight = 0

    async def one(node: _Node) -> None:
        # At a fixed rate a node's clock starts when it is due, so waiting for the in-flight
        # cap counts; at full speed it starts when the node gets its slot.
        nonlocal in_flight, peak_in_flight
        started = time.perf_counter()
        async with gate:
            if not cfg.rate:
                started = time.perf_counter()
            in_flight += 1
            peak_in_flight = max(peak_in_flight, in_flight)
            try:
                # asyncio.timeout rather than wait_for: no extra Task per node.
                async with asyncio.timeout(cfg.node_timeout):
                    await _join(node, cfg, bootstrap_ctx)
            except (TimeoutError, JoinError, OSError, KeyError, ValueError, EOFError) as e:
                errors.append(f"{node.name}: {type(e).__name__}: {e}")
                return
            finally:
                in_flight -= 1
            latencies.append(time.perf_counter() - started)

    watched = [cfg.server_pid, *cfg.also_pids]
    before = sample(cfg.server_pid)
    each_before = _each_cpu(watched)
    own_before = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    tasks = []
    for i, node in enumerate(nodes):
        if cfg.rate:
            delay = t0 + i / cfg.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(node)))
        if not cfg.rate and len(tasks) % cfg.concurrency == 0:
            await asyncio.sleep(0)  # let the started nodes get going before queueing more
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    after = sample(cfg.server_pid)
    each_after = _each_cpu(watched)
    own_after = resource.getrusage(resource.RUSAGE_SELF)
    own_cpu = (own_after.ru_utime + own_after.ru_stime) - (
        own_before.ru_utime + own_before.ru_stime
    )
    return {
        "elapsed_s": elapsed,
        "latencies_s": latencies,
        "errors": len(errors),
        "error_samples": errors[:10],
        "server_cpu_s": after.cpu_seconds - before.cpu_seconds,
        "generator_cpu_s": own_cpu,
        "peak_in_flight": peak_in_flight,
        "cpu_s_by_pid": {
            str(pid): [t1 - t0 for t0, t1 in zip(each_before[pid], each_after[pid], strict=True)]
            for pid in watched
        },
    }


def _each_cpu(pids: list[int]) -> dict[int, tuple[float, float]]:
    """CPU-seconds of each process with its descendants, and of the process alone."""
    return {pid: (sample(pid).cpu_seconds, sample_process(pid).cpu_seconds) for pid in pids}


def main() -> None:
    cfg = LoadConfig(**json.loads(sys.stdin.read()))
    shm = Path("/dev/shm")  # noqa: S108 - tmpfs: a key file never reaches a disk
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp:
        os.chmod(tmp, 0o700)
        nodes = _prepare(cfg, Path(tmp))
    # uvloop: its event loop and TLS transport cost less CPU per connection than asyncio's,
    # and on this machine the generator's CPU is taken from the server (about 4.1 -> 3.7 ms
    # per join, A/B at N=500-1,000). Most of what is left is OpenSSL's: the client side of
    # two handshakes, and putting the issued certificate into the node's context.
    json.dump(uvloop.run(_run(cfg, nodes)), sys.stdout)


if __name__ == "__main__":
    main()
