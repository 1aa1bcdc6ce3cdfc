"""kubeboot.logs: klog's text header, component-base's JSON lines, -v, and token redaction."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator

import pytest

from kubeboot.logs import setup_logging, v, verbosity_of

KLOG = re.compile(r"^([IWEF])(\d{4}) (\d\d:\d\d:\d\d\.\d{6}) +(\d+) (\S+\.py):(\d+)\] (.*)$")
TOKEN = "abcdef.0123456789abcdef"


class Captured:
    """What the handler wrote to ``sys.stderr`` (pytest's capture stands in for it)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.text = ""

    def getvalue(self) -> str:
        self.text += self.capsys.readouterr().err
        return self.text


@pytest.fixture
def stderr(capsys: pytest.CaptureFixture[str]) -> Iterator[Captured]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield Captured(capsys)
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(buffer: Captured) -> list[str]:
    return buffer.getvalue().splitlines()


def test_text_lines_carry_klogs_header(stderr: Captured) -> None:
    setup_logging("text", 0)
    log = logging.getLogger("kubeboot.test")
    log.info("plain message")
    log.warning("careful")
    log.error("broken")
    got = [KLOG.match(line) for line in lines(stderr)]
    assert all(got), lines(stderr)
    assert [m.group(1) for m in got if m] == ["I", "W", "E"]
    first = got[0]
    assert first is not None
    assert first.group(4) == str(os.getpid())
    assert first.group(5) == "test_logs.py"
    assert first.group(7) == "plain message"
    # The pid is right-aligned in 7 columns, as klog's header.
    assert re.search(r"\.\d{6} {3,}\d+ test_logs", lines(stderr)[0])


def test_structured_values_follow_a_quoted_message(stderr: Captured) -> None:
    setup_logging("text", 0)
    logging.getLogger("x").info(
        "CSR approved", extra={"csr": "node-csr-1", "count": 3, "ok": True, "note": "a\nb"}
    )
    text = stderr.getvalue()
    assert '] "CSR approved" csr="node-csr-1" count=3 ok=true note=<\n\ta\n\tb\n >\n' in text


def test_json_lines_have_component_bases_shape(stderr: Captured) -> None:
    setup_logging("json", 2)
    log = logging.getLogger("kubeboot.test")
    log.info("hello", extra={"node": "n1"})
    log.log(v(2), "detail")
    try:
        raise ValueError("bad thing")
    except ValueError:
        log.exception("failed")
    entries = [json.loads(line) for line in lines(stderr)]
    assert list(entries[0]) == ["ts", "caller", "msg", "v", "node"]
    assert entries[0]["caller"].startswith("unit/test_logs.py:")
    assert (entries[0]["msg"], entries[0]["v"], entries[0]["node"]) == ("hello", 0, "n1")
    assert entries[1]["v"] == 2
    assert "v" not in entries[2]
    assert entries[2]["err"] == "ValueError: bad thing"
    assert isinstance(entries[0]["ts"], float) and entries[0]["ts"] > 1.6e12  # epoch ms


@pytest.mark.parametrize("verbosity", [0, 1, 2, 5, 10])
def test_minus_v_selects_what_is_written(stderr: Captured, verbosity: int) -> None:
    setup_logging("text", verbosity)
    log = logging.getLogger("kubeboot.test")
    for level in range(11):
        log.log(v(level), f"at {level}")
    written = [int(line.rsplit(" ", 1)[1]) for line in lines(stderr)]
    assert written == list(range(verbosity + 1))


def test_debug_is_v5_and_the_mapping_round_trips() -> None:
    assert v(0) == logging.INFO and v(5) == logging.DEBUG
    for level in range(11):
        assert verbosity_of(v(level)) == level


def test_tokens_never_reach_the_log(stderr: Captured) -> None:
    for fmt in ("text", "json"):
        setup_logging(fmt, 0)
        logging.getLogger("x").info(f"joining with {TOKEN}", extra={"token": TOKEN})
    assert "0123456789abcdef" not in stderr.getvalue()
    assert "abcdef.<redacted>" in stderr.getvalue()


def test_setup_is_idempotent(stderr: Captured) -> None:
    setup_logging("text", 0)
    setup_logging("json", 0)
    logging.getLogger("x").info("once")
    assert len(lines(stderr)) == 1
    with pytest.raises(ValueError, match="unsupported log format"):
        setup_logging("xml", 0)
