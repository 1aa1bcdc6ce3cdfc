"""CPU per etcd request from Python, by client: which one ``storage/etcd.py`` should use.

Run from the repository root against any etcd: ``python -m bench.etcd_client
http://127.0.0.1:2379 [N]``. Each round makes N creates (a Txn, 2.5 KB values, as a CSR) each
followed by a Range of the key, 50 in flight, with:

* ``grpc.aio stub``: the generated KV stub called directly with require-leader metadata (what
  ``storage/etcd.py`` uses);
* ``etcd3aio + interceptor``: etcd3aio's ``KVService`` (``asyncio.timeout`` and its retry loop
  around each call) on a channel with a metadata interceptor (the client before);
* ``JSON gateway``: etcd's gRPC-JSON gateway (``/v3/kv/txn``, ``/v3/kv/range``) over aiohttp.

It prints the process CPU per create + range and the rate; results in docs/performance.md.
"""

from __future__ import annotations

import asyncio
import base64
import json
import resource
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import grpc  # type: ignore[import-untyped]
import grpc.aio  # type: ignore[import-untyped]
import uvloop
from etcd3aio._protobuf import KVStub, RangeRequest, TxnRequest
from etcd3aio.kv import KVService

_MD = (("hasleader", "true"),)
_VALUE = b"x" * 2500
_IN_FLIGHT = 50


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _measure(n: int, one: Callable[[int], Awaitable[None]]) -> tuple[float, float]:
    """(ms CPU per call of ``one``, calls/s) over ``n`` calls, ``_IN_FLIGHT`` at a time."""
    sem = asyncio.Semaphore(_IN_FLIGHT)

    async def limited(i: int) -> None:
        async with sem:
            await one(i)

    await one(-1)  # connect first
    c0, t0 = _cpu(), time.perf_counter()
    await asyncio.gather(*(limited(i) for i in range(n)))
    return (_cpu() - c0) / n * 1e3, n / (time.perf_counter() - t0)


def _ops(key: bytes) -> tuple[list[Any], list[Any], list[Any]]:
    return (
        [KVService.txn_compare_create_revision(key, 0)],
        [KVService.txn_op_put(key, _VALUE)],
        [KVService.txn_op_get(key)],
    )


async def grpc_stub(url: str, n: int, prefix: str) -> tuple[float, float]:
    channel = grpc.aio.insecure_channel(url.removeprefix("http://"))
    stub = KVStub(channel)

    async def one(i: int) -> None:
        key = f"{prefix}/{i}".encode()
        compare, success, failure = _ops(key)
        request = TxnRequest(compare=compare, success=success, failure=failure)
        await stub.Txn(request, timeout=2.5, metadata=_MD)
        await stub.Range(RangeRequest(key=key), timeout=2.5, metadata=_MD)

    try:
        return await _measure(n, one)
    finally:
        await channel.close()


class _Metadata(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Awaitable[Any]], details: Any, request: Any
    ) -> Any:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), *_MD)
        new = grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )
        return await continuation(new, request)


async def etcd3aio_service(url: str, n: int, prefix: str) -> tuple[float, float]:
    channel = grpc.aio.insecure_channel(url.removeprefix("http://"), interceptors=[_Metadata()])
    kv = KVService(channel, max_attempts=1)

    async def one(i: int) -> None:
        key = f"{prefix}/{i}".encode()
        await kv.txn(*_ops(key), timeout=2.5, max_attempts=1)
        await kv.get(key, timeout=2.5, max_attempts=1)

    try:
        return await _measure(n, one)
    finally:
        await channel.close()


async def json_gateway(url: str, n: int, prefix: str) -> tuple[float, float]:
    def b64(b: bytes) -> str:
        return base64.b64encode(b).decode()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=_IN_FLIGHT)) as s:

        async def one(i: int) -> None:
            key = b64(f"{prefix}/{i}".encode())
            body = {
                "compare": [
                    {"key": key, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}
                ],
                "success": [{"request_put": {"key": key, "value": b64(_VALUE)}}],
                "failure": [{"request_range": {"key": key}}],
            }
            async with s.post(f"{url}/v3/kv/txn", data=json.dumps(body)) as r:
                json.loads(await r.read())
            async with s.post(f"{url}/v3/kv/range", data=json.dumps({"key": key})) as r:
                json.loads(await r.read())

        return await _measure(n, one)


async def _main(url: str, n: int) -> None:
    clients = (
        ("grpc.aio stub", grpc_stub),
        ("etcd3aio + interceptor", etcd3aio_service),
        ("JSON gateway + aiohttp", json_gateway),
    )
    for _ in range(3):  # rounds, so each client sees the machine's phases
        for name, run in clients:
            ms, rate = await run(url, n, f"/etcd-client-bench-{uuid.uuid4().hex[:8]}")
            print(f"{name:24} {ms:.3f} ms CPU per create + range, {rate:.0f}/s", flush=True)


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:2379"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    uvloop.run(_main(url, n))


if __name__ == "__main__":
    main()
