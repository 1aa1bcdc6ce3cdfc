"""Which HTTP methods a resource path serves, as kube-apiserver's go-restful routes (pure).

Upstream installs one route per (path shape, verb) of each resource, and its router rejects a
request before any handler runs: a path under a served group version that no route matches is
404 ``the server could not find the requested resource``; a method the path does not serve is
405; a PATCH whose Content-Type is not a patch type is 415; an ``Accept`` header none of
whose types (parameters stripped, ``*/*`` the only wildcard) the route produces is 406
``406: Not Acceptable`` listing them. Those Status bodies carry an
empty ``details`` object, as upstream's router errors do.

Path shapes (``methods_for``): a collection (``GET`` list/watch, ``POST`` create, ``DELETE``
deletecollection — by the resource's verbs); across all namespaces (``GET`` only); an item
(``GET``, ``PUT``, ``PATCH``, ``DELETE``); a subresource (its own verbs, ``finalize`` only
``PUT``, ``serviceaccounts/token`` only ``POST``).
"""

from __future__ import annotations

from kubeboot.api.endpoints.negotiation import SERVED, STREAM_SERVED
from kubeboot.api.endpoints.requestinfo import RequestInfo
from kubeboot.api.registry.patch import PATCH_CONTENT_TYPES
from kubeboot.resources.registry import subresource_verbs
from kubeboot.resources.status import (
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    UnsupportedMediaType,
)

__all__ = ["check_route", "methods_for", "route_accepts"]

_COLLECTION = (("GET", "list"), ("POST", "create"), ("DELETE", "deletecollection"))
_ITEM = (("GET", "get"), ("PUT", "update"), ("PATCH", "patch"), ("DELETE", "delete"))
_SUBRESOURCE = (("GET", "get"), ("PUT", "update"), ("PATCH", "patch"), ("POST", "create"))


def methods_for(info: RequestInfo) -> tuple[str, ...] | None:
    """The methods routed at this path, or None when no route matches it."""
    res = info.info
    if res is None:
        return None
    if info.namespace is not None and not res.namespaced:
        return None
    if not info.name:
        if res.namespaced and info.namespace is None:  # the list across all namespaces
            return ("GET",) if "list" in res.verbs else None
        return tuple(m for m, verb in _COLLECTION if verb in res.verbs) or None
    if res.namespaced and info.namespace is None:
        return None
    if info.subresource:
        if info.subresource not in res.subresources:
            return None
        verbs = subresource_verbs(info.subresource)
        return tuple(m for m, verb in _SUBRESOURCE if verb in verbs)
    return tuple(m for m, verb in _ITEM if verb in res.verbs) or None


def route_accepts(accept: str, produces: tuple[str, ...]) -> bool:
    """go-restful's matchesAccept: any type (parameters stripped) produced, or ``*/*``."""
    if not accept:
        return True
    for clause in accept.split(","):
        mime = clause.split(";", 1)[0].strip(" ")
        if mime == "*/*" or mime in produces:
            return True
    return False


def _consumes(content_type: str, consumes: tuple[str, ...]) -> bool:
    """go-restful's matchesContentType; no Content-Type is application/octet-stream."""
    for clause in (content_type or "application/octet-stream").split(","):
        if clause.split(";", 1)[0].strip(" ") in consumes:
            return True
    return False


def check_route(info: RequestInfo, method: str, accept: str, content_type: str = "") -> None:
    """Raise the router's 404 / 405 / 415 / 406 for a request no route takes (POST and PUT
    routes consume anything, the body decoder says what it cannot read; PATCH routes only
    the patch types)."""
    methods = methods_for(info)
    if methods is None:
        raise NotFound("the server could not find the requested resource", empty_details=True)
    routed = "GET" if method == "HEAD" else method
    if routed not in methods:
        res = info.info
        table = _SUBRESOURCE if info.subresource else _ITEM if info.name else _COLLECTION
        verb = dict(table).get(routed)
        if res is not None and res.refusal_note and verb and not info.subresource:
            # a kind served with fewer verbs than upstream on purpose says why
            raise MethodNotAllowed(res.verb_refused(verb))
        raise MethodNotAllowed(
            "the server does not allow this method on the requested resource",
            empty_details=True,
        )
    if routed == "PATCH" and not _consumes(content_type, tuple(PATCH_CONTENT_TYPES)):
        raise UnsupportedMediaType("415: Unsupported Media Type", empty_details=True)
    produces = SERVED
    if routed == "GET" and not info.name:  # list routes also produce the watch streams
        produces = SERVED + tuple(f"{m};stream=watch" for m in STREAM_SERVED)
    if not route_accepts(accept, produces):
        raise NotAcceptable(
            "406: Not Acceptable\n\nAvailable representations: " + ", ".join(produces),
            empty_details=True,
        )
