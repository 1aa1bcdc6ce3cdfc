"""Storage errors → API errors, in one place (design rule 5)."""

from __future__ import annotations

from kubeboot.resources.registry import ResourceInfo
from kubeboot.resources.status import (
    AlreadyExists,
    Conflict,
    Expired,
    NotFound,
    ServiceUnavailable,
    StatusError,
)
from kubeboot.storage.interface import (
    CompactedError,
    KeyExistsError,
    KeyNotFoundError,
    RevisionMismatch,
    StoreError,
    StoreUnavailable,
)

__all__ = ["status_error_for"]


def status_error_for(exc: StoreError, res: ResourceInfo, name: str) -> StatusError:
    """The ``StatusError`` a client sees for ``exc`` on ``res``/``name``; re-raises the rest."""
    if isinstance(exc, KeyNotFoundError):
        return NotFound.of(res.plural, res.group, name)
    if isinstance(exc, KeyExistsError):
        return AlreadyExists.of(res.plural, res.group, name)
    if isinstance(exc, RevisionMismatch):
        return Conflict.of(res.plural, res.group, name)
    if isinstance(exc, CompactedError):
        return Expired(f"too old resource version: {exc.requested} ({exc.compacted})")
    if isinstance(exc, StoreUnavailable):
        return ServiceUnavailable(f"storage is unavailable: {exc}; retry shortly", retry_after=1)
    raise exc
