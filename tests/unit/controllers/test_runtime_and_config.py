"""Work queue semantics, ``--controllers`` parsing and the Lease decision."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from kubeboot.clock import format_micro_time
from kubeboot.controllers.config import ControllersFlagError, enabled_controllers
from kubeboot.controllers.leader import (
    LeaseAction,
    LeaseObservation,
    lease_action,
    lease_with_holder,
)
from kubeboot.controllers.runtime import (
    MAX_BACKOFF,
    Requeue,
    WorkQueue,
    backoff_delay,
    object_key,
    run_workers,
)

# --- --controllers ---------------------------------------------------------------------------

# On under a bare "*", as in kube-controller-manager.
DEFAULT_ON = {
    "clusterrole-aggregation",
    "csrapproving",
    "csrcleaner",
    "csrsigning",
    "namespace",
    "nodelifecycle",
    "root-ca-cert-publisher",
    "serviceaccount",
    "serviceaccount-token",
    "ttl",
}
ALL = DEFAULT_ON | {"bootstrapsigner", "tokencleaner"}


def test_unknown_controller_is_rejected_with_upstream_message() -> None:
    with pytest.raises(
        ControllersFlagError, match=r'^"nope" is not in the list of known controllers$'
    ):
        enabled_controllers(["*", "-nope"])


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        (["*"], DEFAULT_ON),
        (["*", "bootstrapsigner", "tokencleaner"], ALL),
        (["*", "-csrcleaner"], DEFAULT_ON - {"csrcleaner"}),
        (["csrapproving"], {"csrapproving"}),
        ([], set()),
        (["-csrsigning", "csrsigning", "*"], DEFAULT_ON - {"csrsigning"}),  # first wins
        (["*", "token-cleaner-controller"], DEFAULT_ON | {"tokencleaner"}),
        ([" * ", ""], DEFAULT_ON),
        (
            ["serviceaccount-controller", "root-ca-certificate-publisher-controller"],
            {"serviceaccount", "root-ca-cert-publisher"},
        ),
        (
            [
                "*",
                "-serviceaccount",
                "-serviceaccount-token",
                "-root-ca-cert-publisher",
                "-namespace",
                "-ttl",
            ],
            {
                "clusterrole-aggregation",
                "csrapproving",
                "csrcleaner",
                "csrsigning",
                "nodelifecycle",
            },
        ),
    ],
)
def test_enabled_controllers(flag: list[str], expected: set[str]) -> None:
    assert enabled_controllers(flag) == expected


# --- leader election decision ------------------------------------------------------------------

D = dt.timedelta(seconds=15)


@pytest.mark.parametrize(
    ("spec", "observation", "now", "action"),
    [
        ({"holderIdentity": "b"}, LeaseObservation("b", "t1", 100.0), 110.0, LeaseAction.WAIT),
        ({"holderIdentity": "b"}, None, 1000.0, LeaseAction.WAIT),  # never observed: wait a term
        ({"holderIdentity": "b"}, LeaseObservation("b", "t1", 100.0), 114.9, LeaseAction.WAIT),
        # expiry is inclusive, as Go's observedTime.Add(d).After(now)
        ({"holderIdentity": "b"}, LeaseObservation("b", "t1", 100.0), 115.0, LeaseAction.TAKE_OVER),
        ({"holderIdentity": "a"}, None, 0.0, LeaseAction.RENEW),
        ({"holderIdentity": ""}, None, 0.0, LeaseAction.ACQUIRE),
        (None, None, 0.0, LeaseAction.ACQUIRE),
    ],
)
def test_lease_action(
    spec: dict[str, str] | None,
    observation: LeaseObservation | None,
    now: float,
    action: LeaseAction,
) -> None:
    assert lease_action(spec, "a", observation, now, D) == action


def test_lease_written_on_take_over_counts_a_transition() -> None:
    t = dt.datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
    old: dict[str, Any] = {
        "metadata": {"name": "l", "resourceVersion": "7"},
        "spec": {"holderIdentity": "b", "leaseTransitions": 2, "acquireTime": "x"},
    }
    new = lease_with_holder(old, name="l", namespace="ns", identity="a", now=t, lease_duration=D)
    assert new["metadata"]["resourceVersion"] == "7"
    assert new["spec"] == {
        "holderIdentity": "a",
        "leaseTransitions": 3,
        "acquireTime": "2026-05-01T12:00:00.123456Z",
        "renewTime": "2026-05-01T12:00:00.123456Z",
        "leaseDurationSeconds": 15,
    }
    assert old["spec"]["holderIdentity"] == "b"  # the input is not mutated
    renewed = lease_with_holder(
        new, name="l", namespace="ns", identity="a", now=t + D, lease_duration=D
    )
    assert renewed["spec"]["leaseTransitions"] == 3
    assert renewed["spec"]["acquireTime"] == new["spec"]["acquireTime"]
    assert renewed["spec"]["renewTime"] == format_micro_time(t + D)
    fresh = lease_with_holder(None, name="l", namespace="ns", identity="a", now=t, lease_duration=D)
    assert "leaseTransitions" not in fresh["spec"]
    assert fresh["metadata"] == {"name": "l", "namespace": "ns"}


# --- work queue --------------------------------------------------------------------------------


def test_backoff_grows_and_is_capped() -> None:
    assert backoff_delay(0) == 0.005
    assert backoff_delay(3) == 0.04
    assert backoff_delay(100) == MAX_BACKOFF


def test_object_key() -> None:
    assert object_key({"metadata": {"name": "n", "namespace": "ns"}}) == "ns/n"
    assert object_key({"metadata": {"name": "n"}}) == "n"


async def test_duplicate_adds_collapse_and_in_flight_keys_are_redone() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add("a")
    queue.add("b")
    assert len(queue) == 2
    key = await queue.get()
    assert key == "a"
    queue.add("a")  # while processing: marked dirty, not queued twice
    assert len(queue) == 1
    queue.done("a")
    assert len(queue) == 2
    assert [await queue.get(), await queue.get()] == ["b", "a"]


async def test_add_after_keeps_the_earliest_wakeup() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("k", 10)
    queue.add_after("k", 0.01)
    queue.add_after("k", 5)
    async with asyncio.timeout(2):
        assert await queue.get() == "k"
    queue.close()


async def test_workers_retry_failures_and_honour_requeue() -> None:
    queue: WorkQueue[str] = WorkQueue()
    calls: list[str] = []
    done = asyncio.Event()

    async def handle(key: str) -> None:
        calls.append(key)
        if key == "flaky" and calls.count("flaky") < 3:
            raise RuntimeError("transient")
        if key == "later" and calls.count("later") == 1:
            raise Requeue(0.01)
        if calls.count("flaky") == 3 and calls.count("later") == 2:
            done.set()

    queue.add("flaky")
    queue.add("later")
    task = asyncio.create_task(run_workers("test", queue, handle, 2))
    try:
        async with asyncio.timeout(5):
            await done.wait()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert calls.count("flaky") == 3
    assert calls.count("later") == 2
