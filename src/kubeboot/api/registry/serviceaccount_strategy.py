"""ServiceAccount write rules (upstream ``pkg/registry/core/serviceaccount/strategy.go``).

Upstream validates only the metadata of a ServiceAccount (the name is a DNS subdomain, which
the shared metadata validation checks) and, on create and update, reduces every entry of
``secrets`` to its ``name`` (``cleanSecretReferences``). A body whose ``secrets``,
``imagePullSecrets`` or ``automountServiceAccountToken`` has the wrong JSON type cannot be
decoded upstream and gets 400 with the decoder's words; so here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from kubeboot.api.registry.strategies import Strategy
from kubeboot.auth.interface import UserInfo
from kubeboot.resources.status import BadRequest

__all__ = ["ServiceAccountStrategy"]

JsonObj = dict[str, Any]
_CANNOT_DECODE = 'ServiceAccount in version "v1" cannot be handled as a ServiceAccount: '


def _json_type(value: Any) -> str:
    """The word Go's ``encoding/json`` uses for a JSON value it cannot unmarshal."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _reference_list(obj: JsonObj, field: str, go_type: str) -> list[JsonObj] | None:
    value = obj.get(field)
    if value is None:
        return None
    if not isinstance(value, list):
        raise BadRequest(
            f"{_CANNOT_DECODE}json: cannot unmarshal {_json_type(value)} into Go struct field "
            f"ServiceAccount.{field} of type []{go_type}"
        )
    for item in value:
        if not isinstance(item, dict):
            raise BadRequest(
                f"{_CANNOT_DECODE}json: cannot unmarshal {_json_type(item)} into Go struct "
                f"field ServiceAccount.{field} of type {go_type}"
            )
        name = item.get("name")
        if name is not None and not isinstance(name, str):
            raise BadRequest(
                f"{_CANNOT_DECODE}json: cannot unmarshal {_json_type(name)} into Go struct "
                f"field {go_type.removeprefix('v1.')}.{field}.name of type string"
            )
    return value


class ServiceAccountStrategy(Strategy):
    status_subresources = ()

    def _prepare(self, obj: JsonObj) -> None:
        secrets = _reference_list(obj, "secrets", "v1.ObjectReference")
        _reference_list(obj, "imagePullSecrets", "v1.LocalObjectReference")
        automount = obj.get("automountServiceAccountToken")
        if automount is not None and not isinstance(automount, bool):
            raise BadRequest(
                f"{_CANNOT_DECODE}json: cannot unmarshal {_json_type(automount)} into Go struct "
                "field ServiceAccount.automountServiceAccountToken of type bool"
            )
        if secrets is not None:
            # cleanSecretReferences: a reference keeps its name and nothing else.
            obj["secrets"] = [{"name": s["name"]} if s.get("name") else {} for s in secrets]

    def prepare_create(self, obj: JsonObj, user: UserInfo, now: dt.datetime) -> None:
        self._prepare(obj)

    def prepare_update(
        self, new: JsonObj, old: JsonObj, subresource: str, user: UserInfo, now: dt.datetime
    ) -> None:
        self._prepare(new)
