"""Response content negotiation, as kube-apiserver's ``handlers/negotiation`` (pure).

The one place that reads an ``Accept`` header. It answers two questions: which serializer
writes the response (JSON, YAML or protobuf; for watches JSON or protobuf, since YAML has no
stream framing), and whether the object is converted first (``as=Table``,
``as=PartialObjectMetadata``, ``as=PartialObjectMetadataList`` in ``meta.k8s.io`` v1 or
v1beta1). Rules, clause by clause as upstream:

* the header is parsed as ``goautoneg`` does: clauses sorted by ``q`` (higher first), then
  concrete types before wildcards, with Go's insertion sort (so equal clauses keep their
  order); ``q=0`` is not special;
* each clause, in that order, is matched against the served media types in their order
  (``application/json``, ``application/yaml``, ``application/vnd.kubernetes.protobuf``);
  ``*/*`` and ``application/*`` match the first; the first clause whose parameters the
  endpoint allows wins;
* ``as``/``g``/``v`` name a conversion: Tables only in JSON or YAML and only where the
  resource has a Table convertor; partial metadata in any served type; any other target is
  not allowed, so the next clause is tried;
* an empty header is JSON; nothing acceptable is 406 ``only the following media types are
  accepted: ...``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kubeboot.resources.status import NotAcceptable

__all__ = [
    "JSON",
    "PROTOBUF",
    "SERVED",
    "STREAM_SERVED",
    "YAML",
    "AcceptClause",
    "Convert",
    "Negotiated",
    "negotiate",
    "negotiate_plain",
    "negotiate_stream",
    "not_acceptable",
    "parse_accept",
    "wants_aggregated_discovery",
]

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
SERVED: tuple[str, ...] = (JSON, YAML, PROTOBUF)
# Media types with a stream framer (watch): YAML has none.
STREAM_SERVED: tuple[str, ...] = (JSON, PROTOBUF)
_META_VERSIONS = ("v1", "v1beta1")
_PARTIAL_KINDS = ("PartialObjectMetadata", "PartialObjectMetadataList")
AGGREGATED_DISCOVERY = ("apidiscovery.k8s.io", "v2", "APIGroupDiscoveryList")


@dataclass(frozen=True, slots=True)
class AcceptClause:
    type: str
    subtype: str
    q: float = 1.0
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Convert:
    """A conversion target named by ``as``/``g``/``v`` (``Table`` in ``meta.k8s.io/v1``)."""

    group: str = ""
    version: str = ""
    kind: str = ""

    @property
    def is_meta(self) -> bool:
        return self.group == "meta.k8s.io" and self.version in _META_VERSIONS

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


@dataclass(frozen=True, slots=True)
class Negotiated:
    media_type: str
    convert: Convert | None = None
    pretty: bool = False


def _split(s: str, sep: str) -> tuple[str, str]:
    head, found, tail = s.partition(sep)
    return head, tail if found else ""


def parse_accept(header: str) -> list[AcceptClause]:
    """goautoneg.ParseAccept: malformed clauses are skipped, never an error."""
    clauses: list[AcceptClause] = []
    remaining = header
    while remaining:
        part, remaining = _split(remaining, ",")
        part = part.strip(" ")
        media, params_part = _split(part, ";")
        main, sub_rest = _split(media, "/")
        main = main.strip(" ")
        if not sub_rest:
            if main != "*":
                continue
            sub = "*"
        else:
            sub, extra = _split(sub_rest, "/")
            if extra:
                continue
            sub = sub.strip(" ")
        q = 1.0
        params: dict[str, str] = {}
        while params_part:
            param, params_part = _split(params_part, ";")
            key, value_rest = _split(param, "=")
            if not value_rest:
                continue
            value, extra = _split(value_rest, "=")
            if extra:
                continue
            key = key.strip(" ")
            if key == "q":
                q = _parse_q(value)
            else:
                params[key] = value.strip(" ")
        clauses.append(AcceptClause(main, sub, q, params))
    return _go_insertion_sort(clauses)


def _parse_q(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0  # strconv.ParseFloat's zero on error


def _less(a: AcceptClause, b: AcceptClause) -> bool:
    # goautoneg's Less (not a strict weak order; reproduced as is).
    if a.q > b.q:
        return True
    if a.type != "*" and b.type == "*":
        return True
    return a.subtype != "*" and b.subtype == "*"


def _go_insertion_sort(items: list[AcceptClause]) -> list[AcceptClause]:
    """sort.Sort on a short slice is Go's insertion sort; so is this (headers are short)."""
    out = list(items)
    for i in range(1, len(out)):
        j = i
        while j > 0 and _less(out[j], out[j - 1]):
            out[j], out[j - 1] = out[j - 1], out[j]
            j -= 1
    return out


Allows = Callable[[str, Convert], bool]


def _options(clause: AcceptClause, media_type: str, allows: Allows) -> Negotiated | None:
    convert: Convert | None = None
    pretty = False
    for key, value in clause.params.items():
        if key in ("as", "g", "v"):
            convert = convert or Convert()
            convert = Convert(
                value if key == "g" else convert.group,
                value if key == "v" else convert.version,
                value if key == "as" else convert.kind,
            )
        elif key == "stream":
            if value and (media_type not in STREAM_SERVED or value != "watch"):
                return None
        elif key == "sv":
            if value:  # no server version is ever allowed (upstream: only the meta version)
                return None
        elif key == "pretty":
            pretty = value == "1"
    if convert is not None and not allows(media_type, convert):
        return None
    return Negotiated(media_type, convert, pretty)


def _resource_transforms(table: bool) -> Allows:
    """RequestScope.AllowsMediaTypeTransform: Tables in JSON/YAML where the resource prints
    columns; partial metadata in any type; nothing else."""

    def allows(media_type: str, convert: Convert) -> bool:
        if not convert.is_meta:
            return False
        if convert.kind == "Table":
            return table and media_type in (JSON, YAML)
        return convert.kind in _PARTIAL_KINDS

    return allows


def _no_transforms(media_type: str, convert: Convert) -> bool:
    return False


def _aggregated_discovery(media_type: str, convert: Convert) -> bool:
    return (convert.group, convert.version, convert.kind) == AGGREGATED_DISCOVERY


def _offers(protobuf: bool) -> tuple[str, ...]:
    return SERVED if protobuf else (JSON, YAML)


def _select(header: str, offers: tuple[str, ...], allows: Allows) -> Negotiated | None:
    if not header:
        return Negotiated(offers[0])
    for clause in parse_accept(header):
        for media_type in offers:
            main, sub = media_type.split("/", 1)
            if (clause.type == main and clause.subtype in (sub, "*")) or (
                clause.type == "*" and clause.subtype == "*"
            ):
                chosen = _options(clause, media_type, allows)
                if chosen is not None:
                    return chosen
    return None


def negotiate(accept: str, *, table: bool = False, protobuf: bool = True) -> Negotiated:
    """The response type for a single object or list; 406 when nothing offered is acceptable.

    ``table``: the endpoint can convert to a Table (resources with printed columns; reviews
    and other create-only kinds cannot). ``protobuf``: the kind has a protobuf schema here.
    """
    offers = _offers(protobuf)
    chosen = _select(accept, offers, _resource_transforms(table))
    if chosen is None:
        raise not_acceptable(offers)
    return chosen


def negotiate_plain(accept: str) -> Negotiated:
    """No conversions (errors, legacy discovery: upstream's DefaultEndpointRestrictions)."""
    chosen = _select(accept, SERVED, _no_transforms)
    if chosen is None:
        raise not_acceptable(SERVED)
    return chosen


def wants_aggregated_discovery(accept: str) -> Negotiated | None:
    """The clause asking for ``APIGroupDiscoveryList`` (apidiscovery.k8s.io/v2), if any wins."""
    chosen = _select(accept, SERVED, _aggregated_discovery)
    return chosen if chosen is not None and chosen.convert is not None else None


def negotiate_stream(accept: str, *, table: bool = False, protobuf: bool = True) -> Negotiated:
    """The watch stream's type. Negotiated over every serializer, as upstream, then the
    chosen one must have a stream framer (406 lists those as ``<type>;stream=watch``)."""
    offers = _offers(protobuf)
    chosen = _select(accept, offers, _resource_transforms(table))
    if chosen is None or chosen.media_type not in STREAM_SERVED:
        raise NotAcceptable(
            "only the following media types are accepted: "
            + ", ".join(f"{m};stream=watch" for m in offers if m in STREAM_SERVED)
        )
    return chosen


def not_acceptable(offers: tuple[str, ...] = SERVED) -> NotAcceptable:
    return NotAcceptable("only the following media types are accepted: " + ", ".join(offers))
