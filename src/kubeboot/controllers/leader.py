"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go's ``leaderelection``.

Decision (pure, :func:`lease_action`): acquire a Lease that is missing or has no holder,
renew our own, take over one whose record has not changed for ``lease_duration`` *as
observed locally* (monotonic time since we last saw the record change, so clock skew between
replicas does not matter), otherwise wait. Every write is a compare-and-swap on the read
resourceVersion, so two candidates can never both win the same round.

:func:`run_with_leader_election` campaigns every ``retry_period``, runs the payload while it
leads, renews every ``retry_period``, and cancels the payload once it could not renew for
``renew_deadline``; then it campaigns again. When it is cancelled (the server stops cleanly)
while it holds the Lease, it releases it as client-go does with ``ReleaseOnCancel``
(:func:`lease_released`): holder cleared, ``leaseDurationSeconds`` 1, so the next server
acquires at its first attempt instead of waiting a whole ``lease_duration`` for it to expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from kubeboot.client.interface import ApiClient, JsonObject
from kubeboot.clock import Clock, format_micro_time
from kubeboot.controllers.config import ControllerConfig
from kubeboot.metrics.controllers import LEADER
from kubeboot.resources.registry import ResourceInfo, find_resource
from kubeboot.resources.status import AlreadyExists, Conflict, NotFound, StatusError

__all__ = [
    "LEASE_RESOURCE",
    "LeaderElector",
    "LeaseAction",
    "LeaseObservation",
    "lease_action",
    "lease_released",
    "lease_with_holder",
    "run_with_leader_election",
]

log = logging.getLogger("kubeboot.controllers.leader")

_LEASE = find_resource("coordination.k8s.io", "v1", "leases")
assert _LEASE is not None
LEASE_RESOURCE: ResourceInfo = _LEASE


class LeaseAction(Enum):
    ACQUIRE = "acquire"
    RENEW = "renew"
    TAKE_OVER = "take over"
    WAIT = "wait"


@dataclass(frozen=True, slots=True)
class LeaseObservation:
    """The holder/renewTime we last saw, and when (monotonic seconds) it last changed."""

    holder: str
    renew_time: str
    observed_at: float


def lease_action(
    spec: dict[str, Any] | None,
    identity: str,
    observation: LeaseObservation | None,
    now_monotonic: float,
    lease_duration: dt.timedelta,
) -> LeaseAction:
    if spec is None:
        return LeaseAction.ACQUIRE
    holder = spec.get("holderIdentity") or ""
    if holder == identity:
        return LeaseAction.RENEW
    if not holder:
        return LeaseAction.ACQUIRE
    if observation is None or (
        observation.observed_at + lease_duration.total_seconds() > now_monotonic
    ):
        return LeaseAction.WAIT
    return LeaseAction.TAKE_OVER


def lease_with_holder(
    lease: JsonObject | None,
    *,
    name: str,
    namespace: str,
    identity: str,
    now: dt.datetime,
    lease_duration: dt.timedelta,
) -> JsonObject:
    """The Lease to write for acquiring or renewing (transitions count changes of holder)."""
    obj: JsonObject = (
        copy.deepcopy(lease)
        if lease is not None
        else {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": namespace},
        }
    )
    spec = dict(obj.get("spec") or {})
    stamp = format_micro_time(now)
    if spec.get("holderIdentity") != identity:
        # As client-go: every acquisition of an existing Lease by a new holder counts, also
        # of one its holder released.
        if lease is not None:
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec["acquireTime"] = stamp
    spec["holderIdentity"] = identity
    spec["leaseDurationSeconds"] = int(lease_duration.total_seconds())
    spec["renewTime"] = stamp
    obj["spec"] = spec
    return obj


def lease_released(lease: JsonObject, now: dt.datetime) -> JsonObject:
    """The Lease a leader writes to give it up (client-go's ``release()``): no holder, a
    one-second duration, acquire and renew times now, the transitions count kept."""
    obj = copy.deepcopy(lease)
    spec = dict(obj.get("spec") or {})
    stamp = format_micro_time(now)
    spec.update(holderIdentity="", leaseDurationSeconds=1, acquireTime=stamp, renewTime=stamp)
    obj["spec"] = spec
    return obj


class LeaderElector:
    def __init__(self, client: ApiClient, config: ControllerConfig, clock: Clock) -> None:
        self._client = client
        self._config = config
        self._clock = clock
        self._observation: LeaseObservation | None = None
        self._waiting_for: str | None = None  # the holder last reported as waited for

    def _observe(self, spec: dict[str, Any]) -> None:
        holder = str(spec.get("holderIdentity") or "")
        renew = str(spec.get("renewTime") or "")
        seen = self._observation
        if seen is None or (seen.holder, seen.renew_time) != (holder, renew):
            self._observation = LeaseObservation(holder, renew, self._clock.monotonic())

    async def try_acquire_or_renew(self) -> bool:
        cfg = self._config
        try:
            lease: JsonObject | None = await self._client.get(
                LEASE_RESOURCE, cfg.lease_name, cfg.lease_namespace
            )
        except NotFound:
            lease = None
        spec = (lease or {}).get("spec") if lease is not None else None
        if spec is not None:
            self._observe(spec)
        action = lease_action(
            spec, cfg.identity, self._observation, self._clock.monotonic(), cfg.lease_duration
        )
        if action is LeaseAction.WAIT:
            self._report_waiting()
            return False
        self._waiting_for = None
        desired = lease_with_holder(
            lease,
            name=cfg.lease_name,
            namespace=cfg.lease_namespace,
            identity=cfg.identity,
            now=self._clock.now(),
            lease_duration=cfg.lease_duration,
        )
        try:
            if lease is None:
                written = await self._client.create(LEASE_RESOURCE, desired, cfg.lease_namespace)
            else:
                written = await self._client.update(LEASE_RESOURCE, desired, cfg.lease_namespace)
        except (AlreadyExists, Conflict):
            return False
        self._observe(written.get("spec") or {})
        if action is not LeaseAction.RENEW:
            log.info("%s: became leader (%s)", cfg.identity, action.value)
        return True

    def _report_waiting(self) -> None:
        """Say once per holder whom we wait for and until when it can be taken over."""
        seen = self._observation
        if seen is None or seen.holder == self._waiting_for:
            return
        self._waiting_for = seen.holder
        cfg = self._config
        left = seen.observed_at + cfg.lease_duration.total_seconds() - self._clock.monotonic()
        until = self._clock.now() + dt.timedelta(seconds=max(0.0, left))
        log.info(
            "%s: waiting for the lease %s/%s held by %s until %s (unless it is released sooner)",
            cfg.identity,
            cfg.lease_namespace,
            cfg.lease_name,
            seen.holder,
            format_micro_time(until),
        )

    async def release(self) -> bool:
        """Give the Lease up if we hold it; True when released (or not ours to release)."""
        cfg = self._config
        try:
            lease = await self._client.get(LEASE_RESOURCE, cfg.lease_name, cfg.lease_namespace)
            if (lease.get("spec") or {}).get("holderIdentity") != cfg.identity:
                return True
            await self._client.update(
                LEASE_RESOURCE, lease_released(lease, self._clock.now()), cfg.lease_namespace
            )
        except NotFound:
            return True
        except (StatusError, OSError) as exc:
            log.error("%s: failed to release the lease: %s", cfg.identity, exc)
            return False
        log.info("%s: released the lease %s/%s", cfg.identity, cfg.lease_namespace, cfg.lease_name)
        return True


async def run_with_leader_election(
    client: ApiClient,
    config: ControllerConfig,
    clock: Clock,
    payload: Callable[[], Awaitable[None]],
) -> None:
    elector = LeaderElector(client, config, clock)
    try:
        await _lead_while_elected(elector, config, clock, payload)
    except asyncio.CancelledError:
        # A clean stop: the payload is stopped already (the finally below); hand over.
        try:
            async with asyncio.timeout(config.renew_deadline.total_seconds()):
                await elector.release()
        except TimeoutError:
            log.error("%s: the lease was not released in time", config.identity)
        raise


async def _lead_while_elected(
    elector: LeaderElector,
    config: ControllerConfig,
    clock: Clock,
    payload: Callable[[], Awaitable[None]],
) -> None:
    retry = config.retry_period.total_seconds()
    while True:
        await _campaign(elector, retry)
        task = asyncio.ensure_future(payload())
        last_renew = clock.monotonic()
        LEADER.labels(config.lease_name).set(1)
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=retry)
                if task.done():
                    break
                if await _attempt(elector):
                    last_renew = clock.monotonic()
                elif clock.monotonic() - last_renew > config.renew_deadline.total_seconds():
                    log.warning("%s: lost the lease; stopping controllers", config.identity)
                    break
        finally:
            LEADER.labels(config.lease_name).set(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        failure = task.exception() if task.done() and not task.cancelled() else None
        if failure is not None:
            raise failure


async def _campaign(elector: LeaderElector, retry: float) -> None:
    """Return once this process holds the lease."""
    while True:
        if await _attempt(elector):
            return
        await asyncio.sleep(retry)


async def _attempt(elector: LeaderElector) -> bool:
    try:
        return await elector.try_acquire_or_renew()
    except (StatusError, OSError) as exc:
        log.warning("leader election: %s", exc)
        return False
