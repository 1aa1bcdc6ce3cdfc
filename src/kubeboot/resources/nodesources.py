"""Node source addresses: where each node's authenticated connections came from.

The evidence behind the serving approver's ``ip-evidence`` rule
(:mod:`kubeboot.controllers.servingpolicy`). A kubelet writes its Node's addresses itself, so
they prove nothing about an IP SAN; the address its authenticated connections arrive from
(the TCP peer, or the client a trusted balancer names in a PROXY protocol header) is seen by
the server and cannot be chosen by the node without also receiving the server's replies at
that address.

Stored as one ConfigMap, ``kube-system/kubeboot-node-sources``: one data key per node name,
its value a JSON list of sightings, newest first, at most :data:`MAX_ADDRESSES_PER_NODE`.
A ConfigMap (not a kubeboot kind) so that every replica can write it through the API with
compare-and-swap, it replicates with the store, and any client (``kubeboot approver
explain`` against the cluster, kubectl) can read it; nodes cannot write it (the Node
authorizer gives them no ConfigMap in kube-system). Pure: parsing, merging, encoding.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "CONFIGMAP_NAME",
    "MAX_ADDRESSES_PER_NODE",
    "NAMESPACE",
    "SourceSighting",
    "Via",
    "canonical_address",
    "decode_sightings",
    "encode_sightings",
    "merge_sightings",
    "node_sources_from_configmap",
]

NAMESPACE = "kube-system"
CONFIGMAP_NAME = "kubeboot-node-sources"
# Bounds the ConfigMap (≈ 120 bytes per sighting: 4 per node keeps ~2000 nodes under 1 MiB)
# and what a node that roams can accumulate; the oldest sighting is dropped first.
MAX_ADDRESSES_PER_NODE = 4

Via = Literal["client-certificate", "token"]


@dataclass(frozen=True, slots=True)
class SourceSighting:
    """One address a node's authenticated requests came from, and when."""

    address: str
    via: Via
    first_seen: dt.datetime
    last_seen: dt.datetime

    def to_json(self) -> dict[str, str]:
        return {
            "address": self.address,
            "via": self.via,
            "firstSeen": _timestamp(self.first_seen),
            "lastSeen": _timestamp(self.last_seen),
        }


def _timestamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: object) -> dt.datetime:
    if not isinstance(text, str):
        raise ValueError(f"timestamp {text!r} is not a string")
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def canonical_address(text: str) -> str | None:
    """The address as ``ipaddress`` prints it (IPv4-mapped IPv6 as IPv4), None if not an IP."""
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _sighting(raw: Mapping[str, Any]) -> SourceSighting:
    address = canonical_address(str(raw.get("address", "")))
    if address is None:
        raise ValueError(f"address {raw.get('address')!r} is not an IP address")
    via = raw.get("via")
    if via not in ("client-certificate", "token"):
        raise ValueError(f"via {via!r} is not client-certificate or token")
    first, last = _parse_time(raw.get("firstSeen")), _parse_time(raw.get("lastSeen"))
    return SourceSighting(address, via, first, last)


def decode_sightings(value: str) -> tuple[SourceSighting, ...]:
    """One node's value; raises ValueError on anything malformed (never half-trusted)."""
    raw = json.loads(value)
    if not isinstance(raw, list):
        raise ValueError("not a JSON list")
    return tuple(_sighting(item) for item in raw if isinstance(item, dict))


def encode_sightings(sightings: Iterable[SourceSighting]) -> str:
    return json.dumps([s.to_json() for s in sightings], separators=(",", ":"))


def merge_sightings(
    existing: Iterable[SourceSighting], new: Iterable[SourceSighting]
) -> tuple[SourceSighting, ...]:
    """Union by (address, via): earliest first sighting, latest last sighting; newest first,
    bounded to :data:`MAX_ADDRESSES_PER_NODE`."""
    merged: dict[tuple[str, str], SourceSighting] = {}
    for s in (*existing, *new):
        key = (s.address, s.via)
        old = merged.get(key)
        if old is not None:
            s = SourceSighting(
                s.address,
                s.via,
                min(old.first_seen, s.first_seen),
                max(old.last_seen, s.last_seen),
            )
        merged[key] = s
    ordered = sorted(merged.values(), key=lambda s: s.last_seen, reverse=True)
    return tuple(ordered[:MAX_ADDRESSES_PER_NODE])


def node_sources_from_configmap(
    configmap: Mapping[str, Any] | None,
) -> dict[str, tuple[SourceSighting, ...]]:
    """node name -> sightings; a malformed entry counts as none (the server overwrites it at
    the node's next sighting) rather than failing every review."""
    data = (configmap or {}).get("data") or {}
    out: dict[str, tuple[SourceSighting, ...]] = {}
    for node, value in data.items():
        try:
            out[str(node)] = decode_sightings(str(value))
        except (ValueError, TypeError):
            continue
    return out
