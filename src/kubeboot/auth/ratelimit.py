"""Per-source-IP token buckets for the requests an untrusted machine can make cheaply.

Two budgets, each a bucket per client address (issue 3, the DDoS concern of upstream's
bootstrap-token discovery design):

* **anonymous requests** — discovery reads ``cluster-info`` anonymously, so anyone can;
* **failed authentications** — a wrong-token flood is the way to guess tokens.

Defaults (:data:`DEFAULT_ANONYMOUS`, :data:`DEFAULT_FAILED_AUTH`): 20 requests/s with a burst
of 40 for anonymous requests, 5/s with a burst of 20 for failed authentications. A joining
node makes a handful of anonymous requests and no failed ones, so neither default ever
touches it; an address over a budget gets 429 with ``Retry-After`` and costs the server one
dict lookup, and other addresses are unaffected. Successful authenticated requests are never
limited here.

Memory is bounded: at most ``max_sources`` buckets; when full, the bucket idle the longest is
dropped (a full bucket is the same as no bucket, so forgetting an idle one is harmless).
Time comes from the injected clock's ``monotonic`` (the server's clock, so tests warp it).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

from kubeboot.clock import Clock

__all__ = [
    "DEFAULT_ANONYMOUS",
    "DEFAULT_FAILED_AUTH",
    "BucketPolicy",
    "RateLimiter",
    "RateLimits",
]


@dataclass(frozen=True, slots=True)
class BucketPolicy:
    rate: float  # tokens added per second
    burst: int  # bucket capacity

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError(f"a rate limit needs rate > 0 and burst >= 1, not {self}")

    def share(self, processes: int) -> BucketPolicy:
        """One of ``processes`` equal parts of this budget.

        Why: with ``--workers N`` each worker keeps its own buckets, and one source's new
        connections spread over the workers (they share one accept queue), so N buckets of
        1/N each add up to about the configured budget per source.
        """
        if processes <= 1:
            return self
        return BucketPolicy(self.rate / processes, max(1, math.ceil(self.burst / processes)))


DEFAULT_ANONYMOUS = BucketPolicy(rate=20.0, burst=40)
DEFAULT_FAILED_AUTH = BucketPolicy(rate=5.0, burst=20)


class RateLimiter:
    """Token buckets keyed by source address, with least-recently-used eviction."""

    def __init__(self, policy: BucketPolicy, clock: Clock, max_sources: int = 65536) -> None:
        self.policy = policy
        self._clock = clock
        self._max = max_sources
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, stamp

    def __len__(self) -> int:
        return len(self._buckets)

    def _refill(self, source: str) -> float:
        now = self._clock.monotonic()
        tokens, stamp = self._buckets.pop(source, (float(self.policy.burst), now))
        tokens = min(float(self.policy.burst), tokens + (now - stamp) * self.policy.rate)
        self._buckets[source] = (tokens, now)  # re-inserted: now the most recently used
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        return tokens

    def retry_after(self, source: str) -> int:
        """0 if ``source`` may go on, else whole seconds until it may (``Retry-After``)."""
        tokens = self._refill(source)
        if tokens >= 1.0:
            return 0
        return max(1, math.ceil((1.0 - tokens) / self.policy.rate))

    def take(self, source: str) -> int:
        """Spend one token; like :meth:`retry_after`, but a 0 answer costs a token."""
        wait = self.retry_after(source)
        if wait == 0:
            tokens, stamp = self._buckets[source]
            self._buckets[source] = (tokens - 1.0, stamp)
        return wait


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The server's two budgets, on the server's clock."""

    anonymous: RateLimiter
    failed_auth: RateLimiter

    @classmethod
    def build(
        cls,
        clock: Clock,
        anonymous: BucketPolicy = DEFAULT_ANONYMOUS,
        failed_auth: BucketPolicy = DEFAULT_FAILED_AUTH,
    ) -> RateLimits:
        return cls(RateLimiter(anonymous, clock), RateLimiter(failed_auth, clock))
