"""One worker process of ``kubeboot server --workers N`` (started by :mod:`.workers`).

Reads its :class:`~kubeboot.api.server.workers.WorkerSpec` from standard input (pickled by the
primary, its parent: a trusted pipe), connects to the primary's store, builds the same API
front end a single-process server has — authenticators, RBAC and bootstrap-token caches,
admission, REST — waits until those caches have synced, serves HTTPS on the socket it was
handed, and tells the primary it is ready. It stops on SIGTERM/SIGINT, or at once if the link
to the primary drops.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import pickle
import signal
import socket
import sys

from kubeboot.api.endpoints.app import ApiContext
from kubeboot.api.server.eventloop import loop_factory
from kubeboot.api.server.proxylistener import trusted_networks
from kubeboot.api.server.security import build_rest, build_security
from kubeboot.api.server.site import start_https
from kubeboot.api.server.workers import WorkerSpec
from kubeboot.clock import SystemClock
from kubeboot.logs import setup_logging
from kubeboot.metrics.aggregate import PUSH_INTERVAL, snapshot
from kubeboot.storage.remote import RemoteStore

__all__ = ["main", "run_worker"]

log = logging.getLogger("kubeboot.server.worker")

_PR_SET_PDEATHSIG = 1


async def run_worker(spec: WorkerSpec) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def link_lost() -> None:
        if not stop.is_set():
            log.error("worker %d: lost the link to the primary server process", spec.index)
        stop.set()

    clock = SystemClock()
    store = await RemoteStore.connect(spec.store_socket, on_lost=link_lost)
    security = build_security(
        spec.config,
        spec.client_ca_file,
        clock,
        store,
        worker_of=spec.count,
        audit_forward=(
            (lambda line: store.notify("audit", line))
            if spec.config.audit_log_path is not None
            else None
        ),
    )
    tasks = [asyncio.create_task(coro) for coro in security.background()]
    runner = None
    try:
        synced = asyncio.ensure_future(security.wait_synced())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait((synced, stopped), return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not synced.done():
            synced.cancel()
            return
        rest = build_rest(store, security, clock, spec.config)
        ctx = ApiContext(
            rest,
            security.gate,
            clock,
            server_address=spec.server_address,
            audit=security.audit,
            audit_policy=security.audit_policy,
            metrics=lambda: _merged_metrics(store, spec.index),
        )
        tasks.append(asyncio.create_task(ctx.inflight.run()))
        tasks.append(asyncio.create_task(_push_metrics(store, spec.index)))
        sock = socket.socket(fileno=spec.listen_fd)
        sock.setblocking(False)
        runner = await start_https(
            ctx,
            sock,
            cert_file=spec.serving_cert_file,
            key_file=spec.serving_key_file,
            client_ca_file=spec.client_ca_file,
            reload_interval=spec.config.serving_reload_interval,
            proxy_trusted=trusted_networks(spec.config.proxy_protocol_trusted_cidrs),
        )
        store.notify("ready", spec.index)
        await stop.wait()
    finally:
        if runner is not None:
            await runner.cleanup()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await security.close()
        await store.close()


async def _merged_metrics(store: RemoteStore, index: int) -> bytes:
    text: bytes = await store.call("merged_metrics", index, snapshot())
    return text


async def _push_metrics(store: RemoteStore, index: int) -> None:
    """This worker's figures to the primary, for scrapes that other workers answer."""
    while True:
        await asyncio.sleep(PUSH_INTERVAL)
        store.notify("metrics", index, snapshot())


def _die_with_primary(primary_pid: int) -> None:
    """Be killed by the kernel the moment the primary dies (Linux), however it dies.

    Why not only the link's EOF: a worker busy in a long handshake burst, or stopped, would
    keep the listening socket open a little longer, and a primary restarted at once on the
    same port would fail to bind.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != primary_pid:  # it died before prctl took effect
        sys.exit("the primary server process is gone")


def main() -> None:
    spec: WorkerSpec = pickle.loads(sys.stdin.buffer.read())  # noqa: S301 - from our parent
    _die_with_primary(spec.primary_pid)
    setup_logging(spec.log_format, spec.verbosity)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(run_worker(spec))


if __name__ == "__main__":
    main()
