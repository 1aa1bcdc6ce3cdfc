"""When to rotate and how long to wait after a failure; pure functions of data.

Deadline (node-facts §2.2): ``NotBefore + U * lifetime`` with ``U`` uniform in
``[0.7, 0.9)``, drawn again each time the deadline is computed. The random draw is a
parameter so tests choose it.

Retry delays (node-facts §2.3, improved per §8): upstream retries at 2, 4, 8, 16 s and then
every 32 s for ever, and each retry creates a new CSR, so a denying approver sees a new
CSR every 32 s. Here transient failures follow upstream's schedule, but after a *Denied*
CSR the agent waits 5 minutes, doubling up to 1 hour: a denial is a decision a person or
policy has to change, and retrying quickly only piles up CSRs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = [
    "DENIED_MAX_SECONDS",
    "DENIED_START_SECONDS",
    "RetryState",
    "retry_delay",
    "rotation_deadline",
]

ROTATE_AT_MIN = 0.7
ROTATE_AT_SPREAD = 0.2
_INITIAL_SECONDS = 2.0
_STEPS = 5
_STEADY_SECONDS = 32.0
_JITTER = 0.1
DENIED_START_SECONDS = 300.0
DENIED_MAX_SECONDS = 3600.0


def rotation_deadline(not_before: dt.datetime, not_after: dt.datetime, draw: float) -> dt.datetime:
    """The moment to start renewing; ``draw`` is uniform in ``[0, 1)``."""
    if not 0.0 <= draw < 1.0:
        raise ValueError(f"draw must be in [0, 1), not {draw}")
    lifetime = not_after - not_before
    return not_before + lifetime * (ROTATE_AT_MIN + ROTATE_AT_SPREAD * draw)


@dataclass(frozen=True, slots=True)
class RetryState:
    """Failures since the last success: how many, and how many of them were denials."""

    failures: int = 0
    denials: int = 0

    def failed(self, *, denied: bool) -> RetryState:
        return RetryState(self.failures + 1, self.denials + (1 if denied else 0))


def retry_delay(state: RetryState, *, denied: bool, draw: float) -> float:
    """Seconds to wait before the next attempt after a failure; ``draw`` in ``[0, 1)``."""
    if denied:
        return min(DENIED_START_SECONDS * 2.0 ** max(state.denials - 1, 0), DENIED_MAX_SECONDS)
    if state.failures <= _STEPS - 1:
        base = _INITIAL_SECONDS * 2.0 ** max(state.failures - 1, 0)
        return base * (1.0 + _JITTER * draw)
    return _STEADY_SECONDS
