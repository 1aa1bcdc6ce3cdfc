"""Recording where nodes' authenticated connections come from (the serving approver's evidence).

Every serving process (each replica, each ``--workers`` process) owns one
:class:`NodeSourceRecorder`. The request path calls :meth:`~NodeSourceRecorder.observe`
after authentication: a dict lookup, no I/O. A (node, address, credential) sighting that is
new, or whose stored ``lastSeen`` is older than :data:`REFRESH`, is queued; a flush loop
merges the queue into ``kube-system/kubeboot-node-sources``
(:mod:`kubeboot.resources.nodesources`) every :data:`FLUSH_INTERVAL` with one
compare-and-swap update, retried on Conflict (other processes write the same object). So a
join storm costs one write per second per process, not one per node, and a steady fleet
costs a write per node per :data:`REFRESH`.

The address is the request's peer as the server sees it: with
``--proxy-protocol-trusted-cidrs``, the client a trusted balancer named in its PROXY
header, otherwise the TCP peer. Only users ``system:node:<n>`` in ``system:nodes`` are
recorded; impersonation does not count (the observed user is the authenticated one).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging

from kubeboot.auth.interface import Credentials, UserInfo
from kubeboot.client.interface import ApiClient, JsonObject
from kubeboot.clock import Clock
from kubeboot.resources.nodesources import (
    CONFIGMAP_NAME,
    MAX_ADDRESSES_PER_NODE,
    NAMESPACE,
    SourceSighting,
    Via,
    canonical_address,
    encode_sightings,
    merge_sightings,
    node_sources_from_configmap,
)
from kubeboot.resources.registry import find_resource
from kubeboot.resources.status import AlreadyExists, Conflict, NotFound, StatusError

__all__ = ["FLUSH_INTERVAL", "REFRESH", "NodeSourceRecorder"]

log = logging.getLogger("kubeboot.server.nodesources")

FLUSH_INTERVAL = 1.0
REFRESH = dt.timedelta(hours=1)
_CAS_ATTEMPTS = 8
# Bounds the per-process memory of what was written (a node that roams adds a few entries).
_MAX_REMEMBERED = 200_000
_NODE_PREFIX = "system:node:"
_CONFIGMAPS = find_resource("", "v1", "configmaps")

_Key = tuple[str, str, Via]
# Parsing an address costs ~20 µs; a fleet has few distinct source addresses.
_canonical = functools.lru_cache(maxsize=65536)(canonical_address)


class NodeSourceRecorder:
    def __init__(self, client: ApiClient, clock: Clock) -> None:
        self._client = client
        self._clock = clock
        # What this process last wrote (or read back) per sighting: its lastSeen.
        self._written: dict[_Key, dt.datetime] = {}
        self._pending: dict[_Key, SourceSighting] = {}
        self._mine: dict[str, dict[_Key, SourceSighting]] = {}
        self._wake = asyncio.Event()

    def observe(self, user: UserInfo, creds: Credentials) -> None:
        """One authenticated request; cheap enough for every request."""
        if not user.name.startswith(_NODE_PREFIX) or "system:nodes" not in user.groups:
            return
        address = _canonical(creds.remote_addr)
        if address is None:
            return
        via: Via = "token" if creds.bearer is not None else "client-certificate"
        node = user.name.removeprefix(_NODE_PREFIX)
        key = (node, address, via)
        now = self._clock.now()
        written = self._written.get(key)
        if written is not None and now - written < REFRESH:
            return
        if key in self._pending:
            return
        seen = self._mine.setdefault(node, {})
        first = seen[key].first_seen if key in seen else now
        sighting = SourceSighting(address, via, first, now)
        seen[key] = sighting
        if len(seen) > MAX_ADDRESSES_PER_NODE:  # a roaming node: keep its newest, as stored
            oldest = min(seen, key=lambda k: seen[k].last_seen)
            del seen[oldest]
        self._pending[key] = sighting
        self._wake.set()

    def sightings(self, node: str) -> tuple[SourceSighting, ...]:
        """This process's own sightings of ``node`` (the in-server approver merges them)."""
        return merge_sightings((), (self._mine.get(node) or {}).values())

    async def run(self) -> None:
        """Flush the queue until cancelled; a failed flush keeps the queue for the next."""
        while True:
            await self._wake.wait()
            await asyncio.sleep(FLUSH_INTERVAL)
            self._wake.clear()
            try:
                await self.flush()
            except StatusError as exc:
                log.warning("could not record node sources (kept for the next try): %s", exc)
                self._wake.set()

    async def flush(self) -> None:
        """Merge the queued sightings into the ConfigMap (create it if missing)."""
        if not self._pending:
            return
        batch = dict(self._pending)
        for _ in range(_CAS_ATTEMPTS):
            try:
                await self._write(batch)
            except (Conflict, AlreadyExists):
                continue
            break
        else:
            raise Conflict(f"{NAMESPACE}/{CONFIGMAP_NAME} kept changing; will retry")
        if len(self._written) > _MAX_REMEMBERED:
            self._written.clear()
            self._mine.clear()
        for key, sighting in batch.items():
            self._written[key] = sighting.last_seen
            if self._pending.get(key) is sighting:
                del self._pending[key]

    async def _write(self, batch: dict[_Key, SourceSighting]) -> None:
        assert _CONFIGMAPS is not None
        try:
            current: JsonObject | None = await self._client.get(
                _CONFIGMAPS, CONFIGMAP_NAME, NAMESPACE
            )
        except NotFound:
            current = None
        recorded = node_sources_from_configmap(current)
        data = dict((current or {}).get("data") or {})
        by_node: dict[str, list[SourceSighting]] = {}
        for (node, _, _), sighting in batch.items():
            by_node.setdefault(node, []).append(sighting)
        for node, new in by_node.items():
            data[node] = encode_sightings(merge_sightings(recorded.get(node, ()), new))
        if current is None:
            body = {"metadata": {"name": CONFIGMAP_NAME, "namespace": NAMESPACE}, "data": data}
            await self._client.create(_CONFIGMAPS, body, NAMESPACE)
        else:
            await self._client.update(_CONFIGMAPS, {**current, "data": data}, NAMESPACE)
