"""Run a markdown page's ```sh blocks as one shell session, the way a reader would.

Rules (also in ``docs/cli.md``, "How the docs are tested"):

* the ```sh blocks of a page run in order in **one** ``bash`` (``set -euo pipefail``), so
  variables and background jobs carry over, exactly as when pasted into one terminal;
* the working directory is a fresh temporary directory, ``HOME`` is ``<tmp>/home``,
  ``KUBECONFIG`` starts unset, and ``PATH`` starts with the virtualenv's ``bin`` (``kubeboot``,
  ``kubectl``);
* **substitution:** every ``6443`` in a block becomes a free port picked by the test, so the
  pages show the default port and the tests never collide;
* an HTML comment right before a block adjusts it:
  ``<!-- doc-test: exit=1 -->`` the block must exit 1 (any N);
  ``<!-- doc-test: expect=REGEX -->`` its output (stdout+stderr) must match ``REGEX``;
  ``<!-- doc-test: skip REASON -->`` not run (only for what cannot run here: installing,
  waiting many minutes); the tests list the skipped blocks explicitly;
* processes a page leaves behind are killed with its process group at the end.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

DOCS = Path(__file__).resolve().parents[3] / "docs"
_FENCE = re.compile(
    r"(?P<directives>(?:<!--\s*doc-test:[^>]*-->\s*\n)*)```sh\n(?P<body>.*?)^```\s*$",
    re.S | re.M,
)
_DIRECTIVE = re.compile(r"<!--\s*doc-test:\s*(?P<text>.*?)\s*-->")


@dataclass
class Block:
    index: int
    body: str
    exit_code: int = 0
    expect: list[str] = field(default_factory=list)
    skip: str | None = None


def blocks_of(page: Path) -> list[Block]:
    out = []
    for i, m in enumerate(_FENCE.finditer(page.read_text())):
        block = Block(i, m.group("body"))
        for d in _DIRECTIVE.finditer(m.group("directives")):
            text = d.group("text")
            if text.startswith("exit="):
                block.exit_code = int(text.removeprefix("exit="))
            elif text.startswith("expect="):
                block.expect.append(text.removeprefix("expect="))
            elif text.startswith("skip"):
                block.skip = text.removeprefix("skip").strip() or "skipped"
            else:
                raise ValueError(f"{page}: unknown doc-test directive {text!r}")
        out.append(block)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PageRun:
    returncode: int
    outputs: dict[int, str]
    transcript: str

    def report(self) -> str:
        return self.transcript


def run_page(page: Path, work: Path, *, timeout: float = 120) -> tuple[list[Block], PageRun]:
    blocks = blocks_of(page)
    port = str(free_port())
    outdir = work / ".doc-test"
    outdir.mkdir(parents=True)
    (work / "home").mkdir()
    lines = ["set -euo pipefail"]
    for b in blocks:
        if b.skip is not None:
            continue
        body = b.body.replace("6443", port)
        out = shlex.quote(str(outdir / f"{b.index}.out"))
        lines.append(f"echo {b.index} > {shlex.quote(str(outdir / 'current'))}")
        if b.exit_code == 0:
            lines.append(f"{{\n{body}\n}} > {out} 2>&1")
        else:
            lines.append("set +e")
            lines.append(f"{{\n{body}\n}} > {out} 2>&1")
            lines.append("rc=$?; set -e")
            lines.append(
                f'[ "$rc" = {b.exit_code} ] || {{ echo "block {b.index}: exit $rc, expected '
                f'{b.exit_code}" >&2; exit 97; }}'
            )
    script = "\n".join(lines) + "\n"
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["HOME"] = str(work / "home")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    with subprocess.Popen(
        ["bash", "-c", script],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            tail, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            tail = f"timed out after {timeout}s"
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    outputs = {}
    for b in blocks:
        path = outdir / f"{b.index}.out"
        if path.exists():
            outputs[b.index] = path.read_text()
    current = (outdir / "current").read_text().strip() if (outdir / "current").exists() else "?"
    transcript = [f"{page.name}: exit {proc.returncode}, last block started: {current}", tail]
    for b in blocks:
        if b.index in outputs:
            transcript.append(f"--- block {b.index}:\n{b.body}--- output:\n{outputs[b.index]}")
    for log in sorted(work.rglob("*.log")):
        transcript.append(f"--- {log.name}:\n{log.read_text()[-3000:]}")
    return blocks, PageRun(proc.returncode, outputs, "\n".join(transcript))


def check_page(page: Path, work: Path, *, timeout: float = 120) -> list[Block]:
    """Run ``page``; raise AssertionError with the transcript on any failure. Skipped blocks."""
    blocks, run = run_page(page, work, timeout=timeout)
    assert run.returncode == 0, run.report()
    for b in blocks:
        if b.skip is not None:
            continue
        assert b.index in run.outputs, f"block {b.index} did not run\n{run.report()}"
        for pattern in b.expect:
            assert re.search(pattern, run.outputs[b.index]), (
                f"block {b.index}: output does not match {pattern!r}\n{run.report()}"
            )
    return [b for b in blocks if b.skip is not None]
