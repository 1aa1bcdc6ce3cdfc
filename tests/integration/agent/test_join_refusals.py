"""``kubeboot join`` refusals: each says what to do and writes nothing to disk.

Run through the real command (click's runner, in-process) so the flag wiring, the message
and the "nothing written" rule are checked together.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubeboot.cli.join import join

TOKEN = "abcdef.0123456789abcdef"
PIN = "sha256:" + "00" * 32


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--token", "ABCDEF.0123456789abcdef", "--discovery-token-ca-cert-hash", PIN],
            "[a-z0-9]{6}.[a-z0-9]{16}",
        ),
        (["--token", TOKEN], "--discovery-token-unsafe-skip-ca-verification"),
        (["--token", TOKEN, "--discovery-token-ca-cert-hash", "md5:00"], "unknown hash format"),
        (["--token", TOKEN, "--discovery-token-ca-cert-hash", "sha256:abcd"], "32 byte"),
        (
            [
                "--token",
                TOKEN,
                "--discovery-token-ca-cert-hash",
                PIN,
                "--discovery-timeout",
                "200ms",
            ],
            "cannot reach",
        ),
    ],
)
def test_refusal_says_why_and_writes_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    endpoint = f"127.0.0.1:{_free_port()}"
    files = [
        "--bootstrap-kubeconfig",
        str(tmp_path / "etc" / "bootstrap.conf"),
        "--kubeconfig",
        str(tmp_path / "etc" / "kubelet.conf"),
        "--cert-dir",
        str(tmp_path / "pki"),
        "--node-name",
        "n1",
    ]
    result = CliRunner().invoke(join, [endpoint, *args, *files])
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert list(tmp_path.iterdir()) == []
