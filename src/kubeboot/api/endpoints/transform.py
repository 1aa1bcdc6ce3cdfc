"""Conversions a client asks for in ``Accept`` (``as=Table``, ``as=PartialObjectMetadata``,
``as=PartialObjectMetadataList``), as upstream's ``transformResponseObject``.

Status objects pass through untouched. A partial-metadata answer carries ``metadata`` only —
a Secret's ``data`` never leaves in it. Asking for the list form of a single object (or the
single form of a list) is 406, with upstream's message naming the Go type.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from kubeboot.api.endpoints.negotiation import Negotiated
from kubeboot.api.endpoints.tables import partial_object_metadata, to_table
from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.status import BadRequest, NotAcceptable

__all__ = ["include_object_option", "transform"]

JsonObj = dict[str, Any]
_INCLUDE_OBJECT = ("Metadata", "None", "Object", "")


def include_object_option(query: Any, negotiated: Negotiated) -> str:
    """The Table's ``includeObject`` (400 for an unknown value, as upstream); "" otherwise."""
    if negotiated.convert is None or negotiated.convert.kind != "Table":
        return ""
    value = str(query.get("includeObject", ""))
    if value not in _INCLUDE_OBJECT:
        raise BadRequest(
            "Unable to convert to Table as requested: includeObject: Invalid value: "
            f"\"{value}\": must be 'Metadata', 'Object', 'None', or empty"
        )
    return value


def _go_type(res: ResourceInfo, kind: str) -> str:
    """The internal Go type upstream names in its 406 (``*core.Secret``)."""
    package = res.group.split(".")[0] if res.group else "core"
    return f"*{package}.{kind}"


def transform(
    obj: JsonObj,
    negotiated: Negotiated,
    res: ResourceInfo,
    now: dt.datetime,
    *,
    include_object: str = "",
    with_columns: bool = True,
) -> JsonObj:
    target = negotiated.convert
    if target is None or obj.get("kind") == "Status":
        return obj
    is_list = obj.get("kind") == res.list_kind and isinstance(obj.get("items"), list)
    if target.kind == "Table":
        items = obj["items"] if is_list else [obj]
        if is_list:
            list_meta = obj.get("metadata") or {}
        else:
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            list_meta = {"resourceVersion": rv} if rv else {}
        return to_table(
            res,
            items,
            now,
            list_meta=list_meta,
            include_object=include_object,
            with_columns=with_columns,
            api_version=target.api_version,
        )
    if target.kind == "PartialObjectMetadata":
        if is_list:
            raise NotAcceptable(
                "you requested PartialObjectMetadata, but the requested object is a list "
                f"({_go_type(res, res.list_kind)})"
            )
        return partial_object_metadata(obj, target.api_version)
    # PartialObjectMetadataList
    if not is_list:
        raise NotAcceptable(
            "you requested PartialObjectMetadataList, but the requested object is not a list "
            f"({_go_type(res, str(obj.get('kind') or res.kind))})"
        )
    return {
        "kind": "PartialObjectMetadataList",
        "apiVersion": target.api_version,
        "metadata": obj.get("metadata") or {},
        "items": [
            partial_object_metadata(item, target.api_version) for item in obj.get("items") or []
        ],
    }
