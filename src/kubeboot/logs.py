"""Log lines for every kubeboot process: klog's text header or component-base's JSON.

Every command (server, its workers, agent, join, the admin CLI) calls :func:`setup_logging`
once with its ``--logging-format`` and ``-v``; code logs through the standard
:mod:`logging` module and passes structured key/values as ``extra``::

    log.info("CSR approved", extra={"csr": name, "signer": signer})
    log.log(logs.v(2), "watch restarted", extra={"resource": "csrs"})

**Text** (the default, klog's header, ``k8s.io/klog/v2``)::

    I1202 07:06:36.123456   12345 daemon.py:123] "CSR approved" csr="node-csr-abc" signer="…"

``Lmmdd hh:mm:ss.uuuuuu`` in local time, the pid right-aligned in 7 columns, ``file:line]``,
then the message. With key/values the message is quoted and each pair follows as klog's
``key=value`` (strings quoted as Go's ``strconv.Quote``, numbers and booleans bare,
multi-line strings as klog's ``key=<`` block); without them the message stands as is, like
``klog.Info``. The letter is ``I``, ``W``, ``E`` or ``F`` (critical).

**JSON** (``--logging-format=json``, component-base's zap logger): one object per line,
``{"ts":<epoch ms, float>,"caller":"dir/file.py:123","msg":"…","v":0,<key/values>}``;
errors carry no ``v`` and, with an exception, an ``"err"`` string (zapr's ``ErrorKey``).

**Verbosity** is klog's ``-v``: ``log.log(v(n), …)`` is written when ``-v`` ≥ n. ``v(0)`` is
``logging.INFO``, each step is two :mod:`logging` levels down, so ``logging.DEBUG`` is
``v(5)`` (kubeadm's "--v=5 or higher" for details). Warnings and errors always show.

Secrets never reach a log: the handler replaces the secret half of anything shaped like a
bootstrap token (``abcdef.0123456789abcdef`` → ``abcdef.<redacted>``) in every line.

Output goes to the ``sys.stderr`` of the moment (stdout stays for a command's result), so a
command's log is never mixed into what a script parses.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import re
import sys
import traceback
from pathlib import Path
from typing import Any

__all__ = ["LOG_FORMATS", "current_settings", "setup_logging", "v", "verbosity_of"]

LOG_FORMATS = ("text", "json")
MAX_VERBOSITY = 10
_STEP = 2
_TOKEN = re.compile(r"\b([a-z0-9]{6})\.[a-z0-9]{16}\b")
# Attributes every LogRecord has; anything else on a record came in through ``extra``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
_settings: tuple[str, int] = ("text", 0)


def v(level: int) -> int:
    """The :mod:`logging` level of klog's ``V(level)`` (0 → INFO, 5 → DEBUG, at least 1)."""
    return max(1, logging.INFO - _STEP * max(0, level))


def verbosity_of(levelno: int) -> int:
    """The klog verbosity of a record below WARNING (the ``v`` of the JSON format)."""
    return max(0, math.ceil((logging.INFO - levelno) / _STEP))


def redact(text: str) -> str:
    """Keep a bootstrap token's public id, drop its secret."""
    return _TOKEN.sub(r"\1.<redacted>", text)


def _pairs(record: logging.LogRecord) -> list[tuple[str, Any]]:
    return [(k, val) for k, val in record.__dict__.items() if k not in _STANDARD]


def _caller(record: logging.LogRecord) -> str:
    path = Path(record.pathname)
    return f"{path.parent.name}/{path.name}:{record.lineno}"


def _error_text(record: logging.LogRecord) -> str | None:
    if not record.exc_info or record.exc_info[1] is None:
        return None
    exc = record.exc_info[1]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _go_quote(text: str) -> str:
    """Go's ``strconv.Quote`` for the text a person reads (JSON escapes are the same set)."""
    return json.dumps(text, ensure_ascii=False)


def _klog_value(value: Any) -> str:
    if isinstance(value, str):
        if "\n" not in value:
            return "=" + _go_quote(value)
        lines = value.split("\n")
        body = "".join(f"\t{line}\n" for line in (lines[:-1] if value.endswith("\n") else lines))
        return "=<\n" + body + " >"
    if isinstance(value, bool):
        return "=" + ("true" if value else "false")
    if isinstance(value, int | float) or value is None:
        return "=" + json.dumps(value)
    try:
        return "=" + json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return "=" + _go_quote(str(value))


def _letter(levelno: int) -> str:
    if levelno >= logging.CRITICAL:
        return "F"
    if levelno >= logging.ERROR:
        return "E"
    return "W" if levelno >= logging.WARNING else "I"


class KlogFormatter(logging.Formatter):
    """klog's text format (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        when = dt.datetime.fromtimestamp(record.created)
        pid = record.process or os.getpid()
        header = (
            f"{_letter(record.levelno)}{when:%m%d %H:%M:%S}.{when.microsecond:06d} {pid:7d} "
            f"{Path(record.pathname).name}:{record.lineno}] "
        )
        message = record.getMessage()
        pairs = _pairs(record)
        error = _error_text(record)
        if error is not None:
            pairs.insert(0, ("err", error))
            # The trace helps with our own bugs (errors); below that only when asked (-v 5).
            if record.levelno >= logging.ERROR or logging.getLogger().isEnabledFor(v(5)):
                assert record.exc_info is not None
                pairs.append(("stacktrace", "".join(traceback.format_exception(*record.exc_info))))
        if not pairs:
            return header + message
        return header + _go_quote(message) + "".join(f" {k}{_klog_value(x)}" for k, x in pairs)


class JsonFormatter(logging.Formatter):
    """component-base's JSON format (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": record.created * 1000.0,
            "caller": _caller(record),
            "msg": record.getMessage(),
        }
        if record.levelno < logging.ERROR:
            entry["v"] = verbosity_of(record.levelno) if record.levelno < logging.WARNING else 0
        else:
            error = _error_text(record)
            if error is not None:
                entry["err"] = error
        for key, value in _pairs(record):
            entry.setdefault(key, value)
        return json.dumps(entry, default=str, ensure_ascii=False, separators=(",", ":"))


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (click's test runner and
    daemons swap it), and redacts bootstrap-token secrets from every line."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr
            stream.write(redact(self.format(record)) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def setup_logging(format: str = "text", verbosity: int = 0) -> None:
    """Send every logger's records to stderr in ``format``, up to klog verbosity ``verbosity``.

    Idempotent: a second call replaces the handler and level of the first (a test running
    several commands in one process, a server re-reading its flags).
    """
    global _settings
    if format not in LOG_FORMATS:
        raise ValueError(f'unsupported log format "{format}" (one of {", ".join(LOG_FORMATS)})')
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if format == "json" else KlogFormatter())
    root.addHandler(handler)
    root.setLevel(v(min(max(verbosity, 0), MAX_VERBOSITY)))
    _settings = (format, verbosity)


def current_settings() -> tuple[str, int]:
    """The ``(format, verbosity)`` of the last :func:`setup_logging` (for child processes)."""
    return _settings
