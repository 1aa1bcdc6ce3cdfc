"""kubeboot's Go duration parser and formatter against Go's own ``time`` package.

``tests/interop/goduration`` is a tiny Go program (standard library only) that answers what
``time.ParseDuration`` and ``Duration.String`` give; Hypothesis feeds both sides the same
texts — well-formed, nearly well-formed and arbitrary — and every value and every error
message must be identical. Skipped when ``go`` is not on PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubeboot.durations import format_go_duration, parse_go_duration_ns

PROGRAM_DIR = Path(__file__).parent / "goduration"


class GoTime:
    """One long-running helper process; one JSON request and answer per line."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return answer


@pytest.fixture(scope="module")
def go_time(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GoTime]:
    go = shutil.which("go")
    if go is None:
        pytest.skip("the Go toolchain (`go`) is not on PATH")
    binary = tmp_path_factory.mktemp("goduration") / "goduration"
    subprocess.run(
        [go, "build", "-p", "1", "-o", str(binary), "."],
        cwd=PROGRAM_DIR,
        check=True,
        capture_output=True,
        timeout=300,
        env={**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"},
    )
    with subprocess.Popen(
        [str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        yield GoTime(proc)
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)


def _ours(text: str) -> dict[str, Any]:
    try:
        return {"ns": parse_go_duration_ns(text)}
    except ValueError as e:
        return {"err": str(e)}


_UNIT = st.sampled_from(["ns", "us", "µs", "μs", "ms", "s", "m", "h", "", "d", "H", "sec"])
_NUMBER = st.one_of(
    st.integers(0, 10**20).map(str),
    st.tuples(st.text("0123456789", max_size=22), st.text("0123456789", max_size=22)).map(
        lambda t: f"{t[0]}.{t[1]}"
    ),
)
_WELLISH = st.tuples(
    st.sampled_from(["", "", "+", "-", "--"]), st.lists(st.tuples(_NUMBER, _UNIT), max_size=5)
).map(lambda t: t[0] + "".join(n + u for n, u in t[1]))

_SETTINGS = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(_WELLISH)
def test_parse_matches_go(go_time: GoTime, text: str) -> None:
    assert _ours(text) == go_time.ask({"parse": text})


@_SETTINGS
@given(st.text(alphabet=st.sampled_from('0123456789.+-nsuµμmh d\x01"\\é'), max_size=16))
def test_parse_matches_go_on_noise(go_time: GoTime, text: str) -> None:
    assert _ours(text) == go_time.ask({"parse": text})


@_SETTINGS
@given(st.integers(-(1 << 63), (1 << 63) - 1))
def test_format_matches_go(go_time: GoTime, ns: int) -> None:
    assert format_go_duration(ns) == go_time.ask({"format": ns})["text"]
