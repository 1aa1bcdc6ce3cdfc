"""Query parameters of reads, parsed as kube-apiserver's parameter codec parses them.

Upstream converts query strings with Go's ``strconv`` (``ParseInt(s, 10, 64)`` for ``limit``
and ``timeoutSeconds``, ``ParseUint`` for a ``resourceVersion``): ASCII digits with an
optional sign, within 64 bits, nothing else. Python's ``str.isdigit``/``int`` also take
``²`` and ``٣`` and numbers of any size, which reached the store as nonsense or overflowed
it (a 500). Booleans are true unless ``0`` or ``false`` (any case), as upstream's
``Convert_Slice_string_To_bool``. Then ``ListOptions`` are validated with upstream's rules
and 422 texts (``apimachinery/pkg/apis/meta/internalversion/validation``).

Deviation: an unparseable ``resourceVersion`` is a 400 everywhere (upstream's etcd path
answers 400, its watch cache path a 500); documented in ``docs/api.md``.
"""

from __future__ import annotations

from collections.abc import Mapping

from kubeboot.api.registry.listwatch import ListOptions, WatchOptions, parse_resource_version
from kubeboot.resources.decoding import go_quote
from kubeboot.resources.status import BadRequest, FieldError, Invalid

__all__ = ["list_options", "parse_go_bool", "parse_go_int64", "watch_options"]

INT64_MAX = 2**63 - 1


def _digits(s: str) -> bool:
    return s != "" and s.isascii() and s.isdigit()


def parse_go_int64(value: str) -> int:
    """``strconv.ParseInt(value, 10, 64)``, with its error text as a 400."""
    body = value[1:] if value[:1] in ("+", "-") else value
    if not _digits(body):
        raise BadRequest(f"strconv.ParseInt: parsing {go_quote(value)}: invalid syntax")
    number = int(value)
    if not -INT64_MAX - 1 <= number <= INT64_MAX:
        raise BadRequest(f"strconv.ParseInt: parsing {go_quote(value)}: value out of range")
    return number


def parse_go_bool(value: str | None) -> bool | None:
    """Upstream's query booleans: absent is None; ``0``/``false`` are false; anything else true."""
    if value is None:
        return None
    return not (value == "0" or value.lower() == "false")


def _int_param(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    return None if raw is None else parse_go_int64(raw)


def _invalid(causes: list[FieldError]) -> Invalid:
    return Invalid.of("ListOptions", "meta.k8s.io", "", causes)


def list_options(query: Mapping[str, str]) -> ListOptions:
    """A list's (or deletecollection's) options, validated as upstream's ``ValidateListOptions``."""
    rv = query.get("resourceVersion")
    match = query.get("resourceVersionMatch") or None
    cont = query.get("continue") or None
    limit = _int_param(query, "limit") or 0
    parse_resource_version(rv)
    causes: list[FieldError] = []
    if match is not None:
        if not rv:
            causes.append(
                FieldError.forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                )
            )
        if cont:
            causes.append(
                FieldError.forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                )
            )
        if match not in ("Exact", "NotOlderThan"):
            causes.append(
                FieldError.not_supported(
                    "resourceVersionMatch", match, ["Exact", "NotOlderThan", ""]
                )
            )
        if match == "Exact" and rv == "0":
            causes.append(
                FieldError.forbidden(
                    "resourceVersionMatch",
                    'resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
                )
            )
    if query.get("sendInitialEvents") is not None:
        causes.append(
            FieldError.forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list")
        )
    if causes:
        raise _invalid(causes)
    return ListOptions(
        label_selector=query.get("labelSelector"),
        field_selector=query.get("fieldSelector"),
        limit=max(limit, 0),
        continue_token=cont,
        resource_version=rv,
        resource_version_match=match,
    )


def watch_options(query: Mapping[str, str], name: str = "") -> tuple[WatchOptions, int | None]:
    """A watch's options and ``timeoutSeconds``, validated as upstream's watch rules.

    A watch on a named URL (``.../nodes/n1?watch=1``) is a watch of that one name.
    """
    field_selector = query.get("fieldSelector")
    if name:
        pin = f"metadata.name={name}"
        field_selector = f"{field_selector},{pin}" if field_selector else pin
    rv = query.get("resourceVersion")
    parse_resource_version(rv)
    match = query.get("resourceVersionMatch") or None
    send_initial = parse_go_bool(query.get("sendInitialEvents"))
    causes: list[FieldError] = []
    if send_initial is not None and match != "NotOlderThan":
        causes.append(
            FieldError.forbidden(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            )
        )
    if match is not None:
        if send_initial is None:
            causes.append(
                FieldError.forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is "
                    "provided",
                )
            )
        if match != "NotOlderThan":
            causes.append(FieldError.not_supported("resourceVersionMatch", match, ["NotOlderThan"]))
        if query.get("continue"):
            causes.append(
                FieldError.forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                )
            )
    if causes:
        raise _invalid(causes)
    opts = WatchOptions(
        label_selector=query.get("labelSelector"),
        field_selector=field_selector,
        resource_version=rv,
        resource_version_match=match,
        send_initial_events=send_initial,
        allow_bookmarks=bool(parse_go_bool(query.get("allowWatchBookmarks"))),
    )
    return opts, _int_param(query, "timeoutSeconds")
