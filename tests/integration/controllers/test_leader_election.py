"""Two candidates racing for one Lease on the real server; time is a FakeClock."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

import pytest

from kubeboot.api.registry.inprocess import InProcessClient
from kubeboot.auth.interface import UserInfo
from kubeboot.clock import FakeClock, format_micro_time
from kubeboot.controllers.config import ControllerConfig
from kubeboot.controllers.leader import LEASE_RESOURCE, LeaderElector, lease_released
from tests.conftest import RunningServer


async def test_one_leader_then_take_over_after_silence(server: RunningServer) -> None:
    assert server.server is not None
    assert server.server.rest is not None
    client = InProcessClient(server.server.rest, UserInfo("lease-test", groups=("system:masters",)))
    clock = FakeClock()
    # A lease of its own: the server's controller manager holds kube-controller-manager.
    base = ControllerConfig(identity="a", lease_name="election-test")
    a = LeaderElector(client, base, clock)
    b = LeaderElector(client, dataclasses.replace(base, identity="b"), clock)

    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()  # b first observes a's record
    clock.advance(10)
    assert await a.try_acquire_or_renew()  # a renews: b's observation is refreshed
    clock.advance(10)
    assert not await b.try_acquire_or_renew()
    clock.advance(15)  # a silent for a whole term, as b observes it
    assert await b.try_acquire_or_renew()
    assert not await a.try_acquire_or_renew()

    lease = await client.get(LEASE_RESOURCE, "election-test", "kube-system")
    assert lease["spec"]["holderIdentity"] == "b"
    assert lease["spec"]["leaseTransitions"] == 1


async def test_release_hands_over_at_once_and_waiting_is_logged(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    assert server.server is not None
    assert server.server.rest is not None
    client = InProcessClient(server.server.rest, UserInfo("lease-test", groups=("system:masters",)))
    clock = FakeClock()
    base = ControllerConfig(identity="a", lease_name="release-test")
    a = LeaderElector(client, base, clock)
    b = LeaderElector(client, dataclasses.replace(base, identity="b"), clock)
    assert await a.try_acquire_or_renew()
    caplog.set_level(logging.INFO, logger="kubeboot.controllers.leader")
    assert not await b.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()  # said once per holder, not per attempt
    waiting = [r.getMessage() for r in caplog.records if "waiting for the lease" in r.getMessage()]
    until = format_micro_time(clock.now() + dt.timedelta(seconds=15))
    assert waiting == [
        f"b: waiting for the lease kube-system/release-test held by a until {until} "
        "(unless it is released sooner)"
    ]

    assert await a.release()
    lease = await client.get(LEASE_RESOURCE, "release-test", "kube-system")
    assert lease["spec"]["holderIdentity"] == ""
    assert lease["spec"]["leaseDurationSeconds"] == 1
    assert (
        lease["spec"]["acquireTime"] == lease["spec"]["renewTime"] == format_micro_time(clock.now())
    )
    # No clock advance: b takes a released lease at its next attempt.
    assert await b.try_acquire_or_renew()
    assert await a.release()  # not a's any more: nothing to do, and nothing written
    lease = await client.get(LEASE_RESOURCE, "release-test", "kube-system")
    assert lease["spec"]["holderIdentity"] == "b"
    assert lease["spec"]["leaseTransitions"] == 1  # client-go counts a released one too


def test_lease_released_keeps_transitions_and_clears_the_holder() -> None:
    now = dt.datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
    lease: dict[str, Any] = {
        "metadata": {"name": "x", "namespace": "kube-system", "resourceVersion": "7"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15, "leaseTransitions": 3},
    }
    released = lease_released(lease, now)
    assert released["spec"] == {
        "holderIdentity": "",
        "leaseDurationSeconds": 1,
        "leaseTransitions": 3,
        "acquireTime": "2026-05-01T12:00:00.123456Z",
        "renewTime": "2026-05-01T12:00:00.123456Z",
    }
    assert released["metadata"]["resourceVersion"] == "7"  # a CAS on what was read
    assert lease["spec"]["holderIdentity"] == "a"  # the input is not changed
