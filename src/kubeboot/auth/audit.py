"""The audit log (``--audit-log-path``): upstream's ``audit.k8s.io/v1`` Events at Metadata level.

One JSON object per line, in the shape kube-apiserver writes with a policy of
``level: Metadata`` for everything and ``omitStages: [RequestReceived]``::

    {"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"…",
     "stage":"ResponseComplete","requestURI":"/api/v1/namespaces/kube-system/secrets",
     "verb":"list","user":{"username":"…","groups":[…]},"sourceIPs":["10.0.0.7"],
     "userAgent":"kubectl/v1.37.1 …","objectRef":{"resource":"secrets",
     "namespace":"kube-system","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},
     "requestReceivedTimestamp":"2026-01-01T00:00:00.000001Z",
     "stageTimestamp":"2026-01-01T00:00:00.002345Z"}

Stages follow upstream's filters (``endpoints/filters/audit.go``, ``authn_audit.go``):

* an ordinary request: one ``ResponseComplete`` event;
* a watch (long-running): ``ResponseStarted`` when the response headers go out, then
  ``ResponseComplete`` when the watch ends, both with the same ``auditID``;
* a failed authentication (401): one ``ResponseStarted`` event with an empty ``user`` and
  ``responseStatus.message`` "Authentication failed, attempted: bearer" (or ``x509``, or
  "no credentials provided"): the credential itself is never recorded anywhere;
* a request refused by a rate budget (429) is audited like any other response.

Invariants: the event loop never touches the disk (:meth:`AuditLog.emit` only enqueues; a
writer thread serialises, writes and rotates); the queue is bounded and a full queue drops
events (counted and logged) rather than blocking requests; files are created 0600. Rotation
follows lumberjack, which kube-apiserver uses: when a write would take the file past
``--audit-log-maxsize`` MB (0 means 100 MB) it is renamed to
``<name>-<UTC time as 2006-01-02T15-04-05.000><ext>`` and a new file started; at most
``--audit-log-maxbackup`` renamed files are kept (0 keeps all).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import queue
import re
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from kubeboot.auth.interface import Credentials, UserInfo
from kubeboot.clock import Clock, format_micro_time

__all__ = [
    "AUDIT_API_VERSION",
    "AuditForwarder",
    "AuditLog",
    "AuditRecord",
    "AuditSink",
    "RotatingFile",
    "audit_event",
    "authentication_failure_message",
]

log = logging.getLogger(__name__)

AUDIT_API_VERSION = "audit.k8s.io/v1"
LEVEL_METADATA = "Metadata"
STAGE_RESPONSE_STARTED = "ResponseStarted"
STAGE_RESPONSE_COMPLETE = "ResponseComplete"
DEFAULT_MAX_SIZE_MB = 100  # lumberjack's default when --audit-log-maxsize is 0
_MEGABYTE = 1024 * 1024
_CLIENT_AUDIT_ID = re.compile(r"\A[A-Za-z0-9._:-]{1,64}\Z")

JsonObj = dict[str, Any]


def authentication_failure_message(creds: Credentials) -> str:
    """Upstream's ``getAuthMethods``: which kinds of credential were tried, never their value."""
    methods = []
    if creds.bearer is not None:
        methods.append("bearer")
    if creds.client_cert_der is not None:
        methods.append("x509")
    if methods:
        return "Authentication failed, attempted: " + ", ".join(methods)
    return "Authentication failed, no credentials provided"


def _user_json(user: UserInfo) -> JsonObj:
    out: JsonObj = {"username": user.name}
    if user.uid:
        out["uid"] = user.uid
    if user.groups:
        out["groups"] = list(user.groups)
    if user.extra:
        out["extra"] = {k: list(v) for k, v in user.extra.items()}
    return out


@dataclass(slots=True)
class AuditRecord:
    """What one request has told the audit log so far; filled in as the request proceeds."""

    audit_id: str
    request_uri: str
    verb: str
    source_ip: str
    user_agent: str
    received: dt.datetime
    user: UserInfo | None = None
    impersonated: UserInfo | None = None
    object_ref: JsonObj | None = None
    long_running: bool = False
    authentication_failed: bool = False
    code: int = 0
    status: JsonObj = field(default_factory=dict)  # status/reason/message of a failure

    @staticmethod
    def new_audit_id(client_value: str | None) -> str:
        """The client's ``Audit-ID`` when it is a plain token (as upstream), else a UUID."""
        if client_value and _CLIENT_AUDIT_ID.match(client_value):
            return client_value
        return str(uuid.uuid4())


def audit_event(record: AuditRecord, stage: str, stage_time: dt.datetime) -> JsonObj:
    """The ``audit.k8s.io/v1`` Event for ``record`` at ``stage`` (pure)."""
    event: JsonObj = {
        "kind": "Event",
        "apiVersion": AUDIT_API_VERSION,
        "level": LEVEL_METADATA,
        "auditID": record.audit_id,
        "stage": stage,
        "requestURI": record.request_uri,
        "verb": record.verb,
        "user": _user_json(record.user) if record.user is not None else {},
    }
    if record.impersonated is not None:
        event["impersonatedUser"] = _user_json(record.impersonated)
    event["sourceIPs"] = [record.source_ip] if record.source_ip else []
    if record.user_agent:
        event["userAgent"] = record.user_agent
    if record.object_ref:
        event["objectRef"] = dict(record.object_ref)
    status: JsonObj = {"metadata": {}, **record.status}
    if record.code:
        status["code"] = record.code
    event["responseStatus"] = status
    event["requestReceivedTimestamp"] = format_micro_time(record.received)
    event["stageTimestamp"] = format_micro_time(stage_time)
    return event


class RotatingFile:
    """An append-only file rotated by size with lumberjack's names (used by one thread only)."""

    def __init__(self, path: Path, max_bytes: int, max_backups: int, clock: Clock) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_backups = max_backups
        self._clock = clock
        self._last_rotation: dt.datetime | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self._open()
        self._size = self._file.tell()

    def _open(self) -> IO[bytes]:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return os.fdopen(fd, "ab")

    def write(self, data: bytes) -> None:
        if self._size and self._size + len(data) > self.max_bytes:
            self.rotate()
        self._file.write(data)
        self._size += len(data)

    def flush(self) -> None:
        self._file.flush()

    def backup_name(self, when: dt.datetime) -> Path:
        when = when.astimezone(dt.UTC)
        stamp = when.strftime("%Y-%m-%dT%H-%M-%S.") + f"{when.microsecond // 1000:03d}"
        return self.path.with_name(f"{self.path.stem}-{stamp}{self.path.suffix}")

    def backups(self) -> list[Path]:
        """Rotated files, oldest first (the time in the name sorts as text)."""
        pattern = re.compile(
            re.escape(self.path.stem)
            + r"-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}"
            + re.escape(self.path.suffix)
            + r"\Z"
        )
        return sorted(p for p in self.path.parent.iterdir() if pattern.match(p.name))

    def rotate(self) -> None:
        self._file.close()
        # Names must sort in rotation order (pruning keeps the newest by name), even when two
        # rotations fall within one millisecond or the wall clock steps back.
        when = self._clock.now()
        if self._last_rotation is not None:
            when = max(when, self._last_rotation + dt.timedelta(milliseconds=1))
        target = self.backup_name(when)
        while target.exists():
            when += dt.timedelta(milliseconds=1)
            target = self.backup_name(when)
        self._last_rotation = when
        os.replace(self.path, target)
        self._file = self._open()
        self._size = 0
        if self.max_backups > 0:
            for old in self.backups()[: -self.max_backups]:
                old.unlink(missing_ok=True)

    def close(self) -> None:
        self._file.close()


_STOP = object()


class AuditSink(Protocol):
    """Where the API layer sends audit events: the log itself, or a forwarder to it."""

    def record(self, record: AuditRecord, stage: str) -> None: ...

    def close(self) -> None: ...


class AuditForwarder:
    """A worker process's audit sink: each event goes to the primary's :class:`AuditLog`.

    Why: one file has one writer, so rotation and backups stay the primary's alone, and
    events from every worker land in one log in arrival order.
    """

    def __init__(self, send_line: Callable[[bytes], None], clock: Clock) -> None:
        self._send_line = send_line
        self.clock = clock

    def record(self, record: AuditRecord, stage: str) -> None:
        event = audit_event(record, stage, self.clock.now())
        self._send_line(json.dumps(event, separators=(",", ":")).encode() + b"\n")

    def close(self) -> None:
        """Nothing to flush here: lines are with the primary once sent."""


class AuditLog:
    """Events in, lines out: a bounded queue drained by one writer thread."""

    def __init__(
        self,
        path: Path | str,
        clock: Clock,
        *,
        max_size_mb: int = 0,
        max_backups: int = 0,
        queue_size: int = 10000,
    ) -> None:
        if max_size_mb < 0 or max_backups < 0:
            raise ValueError("--audit-log-maxsize and --audit-log-maxbackup must be >= 0")
        self.clock = clock
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._sink: RotatingFile | None = None
        self._stdout: IO[str] | None = None
        if str(path) == "-":  # kube-apiserver: "-" means standard out
            self._stdout = sys.stdout
        else:
            self._sink = RotatingFile(
                Path(path), (max_size_mb or DEFAULT_MAX_SIZE_MB) * _MEGABYTE, max_backups, clock
            )
        self.dropped = 0
        self._thread = threading.Thread(target=self._write_loop, name="audit-log", daemon=True)
        self._thread.start()

    def emit(self, event: JsonObj) -> None:
        """Queue one event; never blocks (a full queue drops the event and counts it).

        The line is serialised here (C ``json``, microseconds): the writer thread then only
        does I/O, which releases the GIL, so it never competes with the event loop for it.
        """
        self.emit_line(json.dumps(event, separators=(",", ":")).encode() + b"\n")

    def emit_line(self, line: bytes) -> None:
        """Queue one serialised event (a worker process's, forwarded to the primary)."""
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("audit queue full: %d event(s) dropped so far", self.dropped)

    def record(self, record: AuditRecord, stage: str) -> None:
        self.emit(audit_event(record, stage, self.clock.now()))

    def wait_written(self) -> None:
        """Block until everything queued so far is on disk (tests, shutdown)."""
        self._queue.join()

    def close(self) -> None:
        """Write what is queued, then stop the thread and close the file."""
        if not self._thread.is_alive():
            return
        self._queue.put(_STOP)
        self._thread.join()

    def _write_loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < 512:  # take what else is waiting: one write, one flush
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = _STOP in batch
            lines = [item for item in batch if isinstance(item, bytes)]
            try:
                self._write(lines)
            finally:
                for _ in batch:
                    self._queue.task_done()
            if stop:
                if self._sink is not None:
                    self._sink.close()
                return

    def _write(self, lines: list[bytes]) -> None:
        if not lines:
            return
        try:
            if self._sink is not None:
                for line in lines:  # rotation is decided line by line
                    self._sink.write(line)
                self._sink.flush()
            elif self._stdout is not None:
                self._stdout.write(b"".join(lines).decode())
                self._stdout.flush()
        except OSError as exc:
            self.dropped += len(lines)
            log.error("cannot write the audit log: %s", exc)
