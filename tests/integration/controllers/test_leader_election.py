"""Two candidates racing for one Lease on the real server; time is a FakeClock."""

from __future__ import annotations

import dataclasses

from kubeboot.api.registry.inprocess import InProcessClient
from kubeboot.auth.interface import UserInfo
from kubeboot.clock import FakeClock
from kubeboot.controllers.config import ControllerConfig
from kubeboot.controllers.leader import LEASE_RESOURCE, LeaderElector
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
