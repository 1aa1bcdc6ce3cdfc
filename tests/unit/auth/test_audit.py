"""Audit events (shape, stages' fields, no credentials) and the rotating writer."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import pytest

from kubeboot.auth.audit import (
    AuditLog,
    AuditRecord,
    RotatingFile,
    audit_event,
    authentication_failure_message,
)
from kubeboot.auth.interface import Credentials, UserInfo
from kubeboot.clock import FakeClock, format_micro_time

T0 = dt.datetime(2026, 1, 1, 12, 0, 0, 5, tzinfo=dt.UTC)


def _record(**changes: object) -> AuditRecord:
    record = AuditRecord(
        audit_id="a-1",
        request_uri="/api/v1/namespaces/kube-system/secrets?limit=500",
        verb="list",
        source_ip="10.0.0.7",
        user_agent="kubectl/v1.37.1",
        received=T0,
    )
    for key, value in changes.items():
        setattr(record, key, value)
    return record


@pytest.mark.parametrize(
    ("bearer", "cert", "message"),
    [
        (None, None, "Authentication failed, no credentials provided"),
        ("abcdef.0123456789abcdef", None, "Authentication failed, attempted: bearer"),
        (None, b"der", "Authentication failed, attempted: x509"),
        ("tok-zz9", b"der", "Authentication failed, attempted: bearer, x509"),
    ],
)
def test_authentication_failure_names_the_method_never_the_value(
    bearer: str | None, cert: bytes | None, message: str
) -> None:
    got = authentication_failure_message(Credentials(bearer, cert, "10.0.0.1"))
    assert got == message
    assert bearer is None or bearer not in got


def test_micro_time_has_six_digits_in_utc() -> None:
    assert format_micro_time(T0) == "2026-01-01T12:00:00.000005Z"
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert format_micro_time(T0.astimezone(plus_two)) == "2026-01-01T12:00:00.000005Z"


def test_failed_authentication_event_has_an_empty_user() -> None:
    event = audit_event(
        _record(code=401, status={"message": "Authentication failed, attempted: bearer"}),
        "ResponseStarted",
        T0,
    )
    assert event["user"] == {}
    assert "impersonatedUser" not in event and "objectRef" not in event
    assert event["responseStatus"] == {
        "metadata": {},
        "message": "Authentication failed, attempted: bearer",
        "code": 401,
    }


def test_full_event_shape() -> None:
    record = _record(
        user=UserInfo(
            "kubernetes-admin",
            groups=("system:masters", "system:authenticated"),
            extra={"k": ("v",)},
        ),
        impersonated=UserInfo("jane", "u-1", ("devs", "system:authenticated")),
        object_ref={"resource": "secrets", "namespace": "kube-system", "apiVersion": "v1"},
        code=200,
    )
    event = audit_event(record, "ResponseComplete", T0 + dt.timedelta(milliseconds=3))
    assert event == {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "a-1",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/kube-system/secrets?limit=500",
        "verb": "list",
        "user": {
            "username": "kubernetes-admin",
            "groups": ["system:masters", "system:authenticated"],
            "extra": {"k": ["v"]},
        },
        "impersonatedUser": {
            "username": "jane",
            "uid": "u-1",
            "groups": ["devs", "system:authenticated"],
        },
        "sourceIPs": ["10.0.0.7"],
        "userAgent": "kubectl/v1.37.1",
        "objectRef": {"resource": "secrets", "namespace": "kube-system", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": "2026-01-01T12:00:00.000005Z",
        "stageTimestamp": "2026-01-01T12:00:00.003005Z",
    }


@pytest.mark.parametrize(
    ("client", "kept"),
    [("abc-123", True), ("", False), ("a b", False), ("x" * 65, False), ("é", False)],
)
def test_client_audit_ids_are_kept_only_when_plain(client: str, kept: bool) -> None:
    got = AuditRecord.new_audit_id(client)
    assert (got == client) is kept
    assert len(got) <= 64


def test_rotation_by_size_keeps_maxbackup_files(tmp_path: Path) -> None:
    clock = FakeClock(dt.datetime(2026, 3, 4, 5, 6, 7, 890_000, tzinfo=dt.UTC))
    path = tmp_path / "logs" / "audit.log"
    sink = RotatingFile(path, max_bytes=100, max_backups=2, clock=clock)
    line = b"x" * 39 + b"\n"  # 40 bytes: two fit, the third rotates
    for _ in range(2):
        sink.write(line)
    assert sink.backups() == []
    sink.write(line)
    assert [p.name for p in sink.backups()] == ["audit-2026-03-04T05-06-07.890.log"]
    sink.flush()
    assert path.read_bytes() == line
    for _ in range(6):  # six more rotations at one instant: names stay unique and in order
        sink.write(line)
        sink.write(line)
    sink.close()
    backups = sink.backups()
    assert len(backups) == 2  # the oldest were pruned
    assert [p.name for p in backups] == [
        "audit-2026-03-04T05-06-07.895.log",
        "audit-2026-03-04T05-06-07.896.log",
    ]
    assert all(p.stat().st_size == 80 for p in backups)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_line_larger_than_the_limit_is_written_whole(tmp_path: Path) -> None:
    sink = RotatingFile(tmp_path / "a.log", max_bytes=10, max_backups=0, clock=FakeClock())
    sink.write(b"y" * 50 + b"\n")
    sink.close()
    assert (tmp_path / "a.log").stat().st_size == 51


def test_audit_log_writes_json_lines_off_the_caller_thread(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    audit = AuditLog(path, FakeClock(T0), max_size_mb=1, max_backups=1)
    for i in range(3):
        audit.record(_record(audit_id=f"id-{i}", code=200), "ResponseComplete")
    audit.wait_written()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [e["auditID"] for e in lines] == ["id-0", "id-1", "id-2"]
    audit.close()
    audit.close()  # idempotent
    assert audit.dropped == 0


def test_bad_sizes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="maxsize"):
        AuditLog(tmp_path / "a.log", FakeClock(), max_size_mb=-1)
