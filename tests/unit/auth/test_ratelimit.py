"""Token buckets per source address: limits, refill, isolation, bounded memory."""

from __future__ import annotations

import pytest

from kubeboot.auth.ratelimit import BucketPolicy, RateLimiter
from kubeboot.clock import FakeClock


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 5), (1.0, 0)])
def test_bad_policies(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate > 0"):
        BucketPolicy(rate, burst)


def test_over_the_burst_waits_and_refills() -> None:
    clock = FakeClock()
    limiter = RateLimiter(BucketPolicy(rate=0.5, burst=3), clock)
    assert [limiter.take("10.0.0.1") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("10.0.0.1") == 2  # one token takes 2 s at 0.5/s
    assert limiter.retry_after("10.0.0.1") == 2  # asking is free
    clock.advance(1.0)
    assert limiter.take("10.0.0.1") == 1
    clock.advance(1.0)
    assert limiter.take("10.0.0.1") == 0
    clock.advance(3600)
    assert [limiter.take("10.0.0.1") for _ in range(4)] == [0, 0, 0, 2]  # capped at burst


def test_sources_are_independent() -> None:
    limiter = RateLimiter(BucketPolicy(rate=1.0, burst=1), FakeClock())
    assert limiter.take("a") == 0
    assert limiter.take("a") == 1
    assert limiter.take("b") == 0


def test_memory_is_bounded_by_evicting_the_idlest() -> None:
    clock = FakeClock()
    limiter = RateLimiter(BucketPolicy(rate=1.0, burst=1), clock, max_sources=2)
    limiter.take("a")
    limiter.take("b")
    limiter.take("a")  # a is now the most recent
    limiter.take("c")  # evicts b
    assert len(limiter) == 2
    assert limiter.take("b") == 0  # b starts over with a full bucket
    assert limiter.retry_after("c") == 1


@pytest.mark.parametrize(
    ("workers", "rate", "burst"),
    [(1, 20.0, 40), (2, 10.0, 20), (3, 20.0 / 3, 14), (64, 20 / 64, 1)],
)
def test_a_worker_gets_its_share_of_the_budget(workers: int, rate: float, burst: int) -> None:
    share = BucketPolicy(20.0, 40).share(workers)
    assert share.rate == pytest.approx(rate)
    assert share.burst == burst  # rounded up, never below one request
