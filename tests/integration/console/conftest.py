"""A real cluster for the console: ``kubeboot server``, a node that joined for real and asks
for a serving certificate, and ``kubeboot console`` as its own process against it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubeboot.client.http import HttpApiClient
from kubeboot.controllers.certificates import CSR_RESOURCE
from tests.conftest import RunningServer, server_process_running
from tests.integration.agent.nodes import NodePaths, join_info, run_kubeboot
from tests.integration.cli.test_approver import register_node, serving_csr

NODE = "cons-1"
SERVING_CSR = "cons-serving"


@dataclass(frozen=True)
class Console:
    running: RunningServer
    url: str  # with the access token
    log: Path

    @property
    def base(self) -> str:
        return self.url.split("/?", 1)[0]

    @property
    def token(self) -> str:
        return self.url.rsplit("token=", 1)[1]

    def csr(self, name: str) -> dict[str, Any]:
        out = self.running.kubectl("get", "csr", name, "-o", "json").stdout
        csr: dict[str, Any] = json.loads(out)
        return csr


async def _as_node(node: NodePaths) -> None:
    async with HttpApiClient.from_kubeconfig(str(node.kubeconfig)) as client:
        await register_node(client, NODE, ["10.1.2.3"])
        await client.create(CSR_RESOURCE, serving_csr(SERVING_CSR, NODE, NODE, "10.1.2.3"))


@contextlib.contextmanager
def console_process(kubeconfig: Path, log: Path) -> Iterator[str]:
    """``kubeboot console --port 0`` against ``kubeconfig``; yields the URL it printed."""
    cmd = [sys.executable, "-m", "kubeboot", "console", "--port", "0"]
    cmd += ["--kubeconfig", str(kubeconfig)]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (m := re.search(r"^open (http://\S+)$", log.read_text(), re.M)):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield m.group(1)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("console")
    with server_process_running(tmp / "data") as running:
        node = NodePaths(tmp / "node", NODE)
        joined = run_kubeboot(*join_info(running).join_args, "--no-daemon", *node.flags())
        assert joined.returncode == 0, joined.stdout + joined.stderr
        asyncio.run(_as_node(node))
        log = tmp / "console.log"
        with console_process(running.kubeconfig, log) as url:
            yield Console(running, url, log)
