"""``--workers N``: N processes serve HTTPS, the primary keeps storage and controllers.

Why: one Python process runs one event loop on one core, and under a join storm that loop
— TLS handshakes, HTTP, authentication, REST — is the bottleneck (docs/performance.md). The
work that must stay single (SQLite's one writer, the watch hub, leader-elected controllers,
first-start initialisation, compaction) stays in the primary; each worker is a whole API
front end (its own authenticators, RBAC and bootstrap-token caches fed by watches, admission,
REST) whose ``Store`` is the primary's, reached over a Unix socket
(:mod:`kubeboot.storage.remote`). Reads, writes and watches keep the store's semantics
exactly, so any worker can answer any request.

Socket: the primary binds the one listening socket and every worker accepts from it (passed
with ``pass_fds``), the pre-fork model. A worker busy with handshakes returns to ``accept``
later than an idle one, so new connections go to whoever has time; a worker that dies leaves
its share in the common queue for the others; and a second server started by mistake on the
same port fails to bind, as it should. (``SO_REUSEPORT`` was not used: it would let any
process of the same user join the port and silently take a share of the connections.)

Lifecycle: workers start after the primary is initialised and the primary reports the
server listening once every worker has said it is ready. A worker that exits unexpectedly
is restarted after a back-off (1 s doubling to 30 s); the primary stops them all (SIGTERM,
then SIGKILL after 5 s) before it closes the store. A worker whose link to the primary
drops stops serving at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from kubeboot.api.server.config import ServerConfig

__all__ = ["WorkerPool", "WorkerSpec", "WorkerStartError"]

log = logging.getLogger("kubeboot.server.workers")

_START_TIMEOUT = 60.0
_STOP_GRACE = 5.0
_BACKOFF_MAX = 30.0


class WorkerStartError(RuntimeError):
    """A worker exited before it served (its own error is in the log above)."""


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What a worker needs to serve: sent pickled on its standard input by the primary."""

    config: ServerConfig
    index: int
    count: int
    listen_fd: int
    store_socket: Path
    serving_cert_file: Path
    serving_key_file: Path
    client_ca_file: Path
    server_address: str
    """host:port as advertised (discovery's serverAddressByClientCIDRs)."""
    primary_pid: int
    log_format: str = "text"
    verbosity: int = 0
    """The primary's ``--logging-format`` and ``-v`` (:mod:`kubeboot.logs`), so a worker logs
    what, and as, its primary would."""


class WorkerPool:
    """Starts, supervises and stops the worker processes of one primary."""

    def __init__(self, specs: list[WorkerSpec]) -> None:
        self._specs = specs
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._ready: dict[int, asyncio.Event] = {s.index: asyncio.Event() for s in specs}
        self._supervisors: list[asyncio.Task[None]] = []
        self._stopping = False

    def notice_ready(self, index: int) -> None:
        event = self._ready.get(index)
        if event is not None:
            event.set()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs.values()]

    async def start(self) -> None:
        """Start every worker; return once all are serving (raise if one cannot start)."""
        for spec in self._specs:
            self._spawn(spec)
        async with asyncio.timeout(_START_TIMEOUT):
            for spec in self._specs:
                if not await self._came_up(spec.index):
                    raise WorkerStartError(
                        f"server worker {spec.index} exited while starting; its error is above"
                    )
        for spec in self._specs:
            self._supervisors.append(asyncio.create_task(self._supervise(spec)))

    async def _came_up(self, index: int) -> bool:
        """Wait until worker ``index`` is ready (True) or has exited (False)."""
        ready = asyncio.ensure_future(self._ready[index].wait())
        exited = asyncio.ensure_future(_exit_of(self._procs[index]))
        try:
            await asyncio.wait((ready, exited), return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            exited.cancel()
        return self._ready[index].is_set()

    def _spawn(self, spec: WorkerSpec) -> None:
        """Start worker ``spec.index`` and hand it its spec.

        With ``subprocess.Popen`` — ``vfork`` + ``exec`` in CPython — not the event loop's
        subprocess support: uvloop (libuv) forks, which runs ``pthread_atfork`` handlers in
        the child, and with etcd's gRPC threads live in this process the child crashed
        (SIGSEGV) before ``exec`` in about one start in four.
        """
        self._ready[spec.index].clear()
        proc = subprocess.Popen(
            [sys.executable, "-m", "kubeboot.api.server.worker"],
            stdin=subprocess.PIPE,
            pass_fds=(spec.listen_fd,),
        )
        assert proc.stdin is not None
        # Far below a pipe's buffer, so this never blocks. If the worker died at once the
        # pipe is broken; its exit status then reaches _came_up and the supervisor.
        with contextlib.suppress(BrokenPipeError):
            try:
                proc.stdin.write(pickle.dumps(spec))
            finally:
                proc.stdin.close()
        self._procs[spec.index] = proc

    async def _supervise(self, spec: WorkerSpec) -> None:
        delay = 1.0
        while True:
            proc = self._procs[spec.index]
            code = await _exit_of(proc)
            if self._stopping:
                return
            log.error(
                "server worker %d (pid %d) exited with code %s; restarting it in %gs",
                spec.index,
                proc.pid,
                code,
                delay,
            )
            await asyncio.sleep(delay)
            self._spawn(spec)
            # Back off only while it keeps failing to come up; a good start resets it.
            delay = 1.0 if await self._came_up(spec.index) else min(delay * 2, _BACKOFF_MAX)

    async def stop(self) -> None:
        self._stopping = True
        for task in self._supervisors:
            task.cancel()
        for proc in self._procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for proc in self._procs.values():
            try:
                async with asyncio.timeout(_STOP_GRACE):
                    await _exit_of(proc)
            except TimeoutError:
                log.warning("server worker pid %d ignored SIGTERM; killing it", proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await _exit_of(proc)
        self._procs.clear()


async def _exit_of(proc: subprocess.Popen[bytes]) -> int:
    """The exit status of ``proc``, waited for in a thread (``waitpid`` blocks)."""
    return await asyncio.to_thread(proc.wait)
