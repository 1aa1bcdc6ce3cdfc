"""The supervisor: a failed or returning loop is logged, restarted with backoff, and reported
until a restarted run has been up for the stable window; cancellation is a clean stop."""

from __future__ import annotations

import asyncio
import logging

import pytest

from kubeboot.controllers.supervisor import Supervised, restart_delay, supervise

FAST = {"base_delay": 0.01, "max_delay": 0.04, "stable_after": 0.3}


async def test_a_failing_loop_is_restarted_and_reported_until_stable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unit = Supervised("kube-controller-manager")
    runs = 0
    third = asyncio.Event()

    async def run() -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            third.set()
        if runs <= 2:
            raise ValueError("invalid literal for int() with base 10: 'abc'")
        await asyncio.Event().wait()  # then it runs for good

    with caplog.at_level(logging.ERROR, logger="kubeboot.controllers"):
        task = asyncio.create_task(supervise(unit, run, **FAST))
        await third.wait()
        assert unit.restarts == 2
        assert unit.check() == (
            "kube-controller-manager failed: ValueError: invalid literal for int() with "
            "base 10: 'abc'"
        )
        await asyncio.sleep(0.4)  # the third run outlives the stable window
        assert unit.check() is None
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    failures = [r for r in caplog.records if "failed; restarting in" in r.getMessage()]
    assert len(failures) == 2
    assert failures[0].exc_info is not None and failures[0].exc_info[0] is ValueError
    assert runs == 3  # cancellation stopped it, no restart


async def test_a_loop_that_returns_is_a_failure_too() -> None:
    unit = Supervised("loop")
    restarted = asyncio.Event()

    async def run() -> None:
        if unit.restarts:
            restarted.set()

    task = asyncio.create_task(supervise(unit, run, **FAST))
    await restarted.wait()
    assert unit.check() == "loop stopped unexpectedly"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = [restart_delay(failures, 1.0, 60.0) for failures in range(8)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60]
    assert restart_delay(10_000, 1.0, 60.0) == 60
