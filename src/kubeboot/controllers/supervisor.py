"""Supervision of long-running loops: the controller manager must never die silently.

kube-controller-manager is a process of its own, restarted by its supervisor (kubelet,
systemd) when it crashes, and its ``/healthz`` says when it is unwell. Embedded in the API
server, kubeboot's controllers get the same guarantees from :func:`supervise`: a loop that
raises (or returns, which a loop meant to run forever must not) is logged with its
traceback, restarted after an exponential backoff (``base_delay`` doubling up to
``max_delay``; reset once a run has lasted ``stable_after``), and :class:`Supervised`
reports the failure until a restarted run has lasted ``stable_after`` — what ``/readyz``'s
``kube-controller-manager`` check shows. Cancellation is a clean stop and is never retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["Supervised", "restart_delay", "supervise"]

log = logging.getLogger("kubeboot.controllers")


@dataclass
class Supervised:
    """The health of one supervised loop, read by health checks."""

    name: str
    problem: str | None = None  # why it is unhealthy now; None when healthy
    restarts: int = 0

    def check(self) -> str | None:
        return self.problem


def restart_delay(failures: int, base_delay: float, max_delay: float) -> float:
    """The wait before restart number ``failures + 1``: doubling from ``base_delay``."""
    return float(min(max_delay, base_delay * 2 ** min(failures, 32)))


async def supervise(
    unit: Supervised,
    run: Callable[[], Awaitable[None]],
    *,
    base_delay: float = 1.0,
    max_delay: float = 60.0,
    stable_after: float = 30.0,
) -> None:
    """Run ``run()`` until cancelled, restarting it after failures (module docstring)."""
    failures = 0
    while True:
        task = asyncio.ensure_future(run())
        try:
            done, _ = await asyncio.wait({task}, timeout=stable_after)
            if not done:  # up long enough: whatever failed before is over
                unit.problem, failures = None, 0
                await asyncio.wait({task})
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        if task.cancelled():
            raise asyncio.CancelledError  # cancelled from inside: a stop, not a failure
        failure = task.exception()
        delay = restart_delay(failures, base_delay, max_delay)
        failures += 1
        unit.restarts += 1
        if failure is None:
            unit.problem = f"{unit.name} stopped unexpectedly"
            log.error("%s stopped unexpectedly; restarting in %.1fs", unit.name, delay)
        else:
            unit.problem = f"{unit.name} failed: {type(failure).__name__}: {failure}"
            log.error(
                "%s failed; restarting in %.1fs",
                unit.name,
                delay,
                exc_info=(type(failure), failure, failure.__traceback__),
            )
        await asyncio.sleep(delay)
