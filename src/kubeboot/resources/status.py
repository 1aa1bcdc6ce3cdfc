"""The one error tree: ``StatusError`` and its subclasses render a ``metav1.Status``.

Every failure that reaches a client is one of these. Storage, auth and validation errors
are translated into them once, at the API boundary; the in-process and HTTP API clients
raise them back so controllers and the agent branch on ``reason`` exactly as client-go does.

::

    StatusError (code, reason)
    ├── BadRequest          400 BadRequest
    ├── Unauthorized        401 Unauthorized
    ├── Forbidden           403 Forbidden
    ├── NotFound            404 NotFound
    ├── MethodNotAllowed    405 MethodNotAllowed
    ├── NotAcceptable       406 NotAcceptable
    ├── AlreadyExists       409 AlreadyExists
    ├── Conflict            409 Conflict
    ├── Expired             410 Expired      (watch or continue from a compacted revision)
    ├── RequestEntityTooLarge 413 RequestEntityTooLarge
    ├── UnsupportedMediaType  415 UnsupportedMediaType
    ├── Invalid             422 Invalid      (with field causes)
    ├── TooManyRequests     429 TooManyRequests
    ├── InternalError       500 InternalError
    ├── ServiceUnavailable  503 ServiceUnavailable
    └── Timeout             504 Timeout
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "AlreadyExists",
    "BadRequest",
    "Conflict",
    "Expired",
    "FieldError",
    "Forbidden",
    "InternalError",
    "Invalid",
    "MethodNotAllowed",
    "NotAcceptable",
    "NotFound",
    "RequestEntityTooLarge",
    "ServiceUnavailable",
    "StatusError",
    "Timeout",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "qualified_resource",
    "status_error_from_dict",
    "success_status",
]


def qualified_resource(resource: str, group: str) -> str:
    """``secrets`` for the core group, ``certificatesigningrequests.certificates.k8s.io`` else."""
    return f"{resource}.{group}" if group else resource


@dataclass(frozen=True, slots=True)
class FieldError:
    """One ``field.Error``: ``type`` is the Go ErrorType's reason (``FieldValueInvalid``…)."""

    type: str
    field: str
    message: str

    @classmethod
    def required(cls, field: str, detail: str = "") -> FieldError:
        return cls(
            "FieldValueRequired", field, "Required value" + (f": {detail}" if detail else "")
        )

    @classmethod
    def invalid(cls, field: str, value: Any, detail: str) -> FieldError:
        return cls("FieldValueInvalid", field, f"Invalid value: {_go_value(value)}: {detail}")

    @classmethod
    def not_supported(cls, field: str, value: Any, valid: list[str]) -> FieldError:
        choices = ", ".join(f'"{v}"' for v in valid)
        return cls(
            "FieldValueNotSupported",
            field,
            f"Unsupported value: {_go_value(value)}: supported values: {choices}",
        )

    @classmethod
    def duplicate(cls, field: str, value: Any) -> FieldError:
        return cls("FieldValueDuplicate", field, f"Duplicate value: {_go_value(value)}")

    @classmethod
    def forbidden(cls, field: str, detail: str) -> FieldError:
        return cls("FieldValueForbidden", field, f"Forbidden: {detail}")

    @classmethod
    def too_long(cls, field: str, limit: int) -> FieldError:
        return cls("FieldValueTooLong", field, f"Too long: may not be more than {limit} bytes")

    def render(self) -> str:
        return f"{self.field}: {self.message}"


def _go_value(value: Any) -> str:
    """How apimachinery's field.Error prints a value: quoted strings (%q), plain numbers and
    booleans, ``null``, and JSON for anything else (lists, maps)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class StatusError(Exception):
    """An API error that renders as a ``metav1.Status`` with ``code`` and ``reason``."""

    code: ClassVar[int] = 500
    reason: ClassVar[str] = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        name: str | None = None,
        group: str | None = None,
        kind: str | None = None,
        causes: list[FieldError] | None = None,
        retry_after: int | None = None,
        empty_details: bool = False,
        list_meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.group = group
        self.kind = kind
        self.causes = causes or []
        self.retry_after = retry_after
        # Upstream writes ``"details": {}`` for errors made with an empty resource (router
        # errors, non-resource 403s) and leaves the key out for errors made without one.
        self.empty_details = empty_details
        # The Status's own ListMeta (a 410 on a compacted continue carries a new token).
        self.list_meta = list_meta or {}

    def to_status(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            # Upstream's StatusCause fields are omitempty: no "field" on a cause without one.
            details["causes"] = [
                {"reason": c.type, "message": c.message, "field": c.field}
                if c.field
                else {"reason": c.type, "message": c.message}
                for c in self.causes
            ]
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": dict(self.list_meta),
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if details or self.empty_details:
            status["details"] = details
        status["code"] = self.code  # metav1.Status field order: details before code
        return status


class BadRequest(StatusError):
    code, reason = 400, "BadRequest"


class Unauthorized(StatusError):
    code, reason = 401, "Unauthorized"


class Forbidden(StatusError):
    code, reason = 403, "Forbidden"


class NotFound(StatusError):
    code, reason = 404, "NotFound"

    @classmethod
    def of(cls, resource: str, group: str, name: str) -> NotFound:
        return cls(
            f'{qualified_resource(resource, group)} "{name}" not found',
            name=name,
            group=group,
            kind=resource,
        )


class MethodNotAllowed(StatusError):
    code, reason = 405, "MethodNotAllowed"


class NotAcceptable(StatusError):
    code, reason = 406, "NotAcceptable"


class AlreadyExists(StatusError):
    code, reason = 409, "AlreadyExists"

    @classmethod
    def of(cls, resource: str, group: str, name: str) -> AlreadyExists:
        return cls(
            f'{qualified_resource(resource, group)} "{name}" already exists',
            name=name,
            group=group,
            kind=resource,
        )


OPTIMISTIC_LOCK_DETAIL = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


class Conflict(StatusError):
    code, reason = 409, "Conflict"

    @classmethod
    def of(
        cls, resource: str, group: str, name: str, detail: str = OPTIMISTIC_LOCK_DETAIL
    ) -> Conflict:
        return cls(
            f'Operation cannot be fulfilled on {qualified_resource(resource, group)} "{name}": '
            f"{detail}",
            name=name,
            group=group,
            kind=resource,
        )


class Expired(StatusError):
    code, reason = 410, "Expired"


class RequestEntityTooLarge(StatusError):
    code, reason = 413, "RequestEntityTooLarge"


class UnsupportedMediaType(StatusError):
    code, reason = 415, "UnsupportedMediaType"


class Invalid(StatusError):
    code, reason = 422, "Invalid"

    @classmethod
    def of(cls, kind: str, group: str, name: str, causes: list[FieldError]) -> Invalid:
        qualified = f"{kind}.{group}" if group else kind
        rendered = [c.render() for c in causes]
        joined = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
        return cls(
            f'{qualified} "{name}" is invalid: {joined}',
            name=name,
            group=group,
            kind=kind,
            causes=causes,
        )


class TooManyRequests(StatusError):
    code, reason = 429, "TooManyRequests"


class InternalError(StatusError):
    code, reason = 500, "InternalError"


class ServiceUnavailable(StatusError):
    code, reason = 503, "ServiceUnavailable"


class Timeout(StatusError):
    code, reason = 504, "Timeout"


_BY_REASON: dict[str, type[StatusError]] = {
    c.reason: c
    for c in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        NotAcceptable,
        AlreadyExists,
        Conflict,
        Expired,
        RequestEntityTooLarge,
        UnsupportedMediaType,
        Invalid,
        TooManyRequests,
        InternalError,
        ServiceUnavailable,
        Timeout,
    )
}
_BY_CODE: dict[int, type[StatusError]] = {c.code: c for c in reversed(list(_BY_REASON.values()))}


def status_error_from_dict(status: dict[str, Any], http_code: int) -> StatusError:
    """Rebuild the error a server sent (used by the HTTP API client)."""
    reason = str(status.get("reason") or "")
    cls = _BY_REASON.get(reason) or _BY_CODE.get(http_code, InternalError)
    if reason == "Gone":
        cls = Expired
    details = status.get("details") or {}
    causes = [
        FieldError(str(c.get("reason", "")), str(c.get("field", "")), str(c.get("message", "")))
        for c in details.get("causes") or []
    ]
    return cls(
        str(status.get("message") or f"the server responded with HTTP {http_code}"),
        name=details.get("name"),
        group=details.get("group"),
        kind=details.get("kind"),
        causes=causes,
        retry_after=details.get("retryAfterSeconds"),
    )


def success_status(name: str, group: str, kind: str, uid: str) -> dict[str, Any]:
    """The ``Status`` a delete returns when it does not return the object."""
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    if uid:
        details["uid"] = uid
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }
