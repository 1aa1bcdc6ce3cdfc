"""Node-bound, single-use bootstrap tokens against a real server, with real `kubeboot join`."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from pathlib import Path

import pytest

from kubeboot.auth.mirror import resource_info
from kubeboot.client.http import HttpApiClient
from kubeboot.client.kubeconfig import client_config_from_dict
from kubeboot.resources import bootstrap_token as bt
from kubeboot.resources.status import Forbidden
from tests.conftest import RunningServer
from tests.integration.agent.nodes import KUBEBOOT, NodePaths
from tests.integration.ledger.nodecerts import kubeboot, node_csr

pytestmark = pytest.mark.timeout(180)
CSRS = resource_info("certificates.k8s.io", "v1", "certificatesigningrequests")


def _token_client(running: RunningServer, token: str) -> HttpApiClient:
    return HttpApiClient(
        client_config_from_dict(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {
                            "server": running.url,
                            "certificate-authority": str(running.ca_file),
                        },
                    }
                ],
                "users": [{"name": "u", "user": {"token": token}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )


async def _data(running: RunningServer, token_id: str) -> dict[str, str]:
    out = await asyncio.to_thread(
        running.kubectl, "get", "secret", "-n", "kube-system", bt.secret_name(token_id),
        "-o", "jsonpath={.data}",
    )  # fmt: skip
    return {k: base64.b64decode(v).decode() for k, v in json.loads(out.stdout).items()}


async def _join(
    command: list[str], node: NodePaths, *extra: str
) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [*KUBEBOOT, *command[1:], "--no-daemon", *node.flags(), *extra],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


async def test_single_use_node_bound_token(server: RunningServer, tmp_path: Path) -> None:
    out = await asyncio.to_thread(
        kubeboot, "token", "create", "--print-join-command", "--node-name", "tok-1",
        kubeconfig=server.kubeconfig,
    )  # fmt: skip
    command = out.stdout.split()
    assert command[0] == "kubeboot" and command[-2:] == ["--node-name", "tok-1"]
    token = command[command.index("--token") + 1]
    token_id = token.split(".")[0]
    data = await _data(server, token_id)
    assert data["kubeboot.node-name"] == "tok-1"
    assert (data["kubeboot.max-uses"], data["kubeboot.uses"]) == ("1", "0")

    # Bound to tok-1: another node's CSR is refused, and spends nothing.
    body, _ = node_csr("not-mine", "tok-2")
    async with _token_client(server, token) as as_token:
        with pytest.raises(Forbidden) as refused:
            await as_token.create(CSRS, body)
    assert "bound to node 'tok-1'" in refused.value.message
    assert "not for 'system:node:tok-2'" in refused.value.message
    assert (await _data(server, token_id))["kubeboot.uses"] == "0"

    first = await _join(command, NodePaths(tmp_path / "one", "tok-1"))
    assert first.returncode == 0, first.stderr
    assert (await _data(server, token_id))["kubeboot.uses"] == "1"

    # The agent retries a refused CSR create as a kubelet does, saying why, until its
    # --bootstrap-timeout.
    second = await _join(command, NodePaths(tmp_path / "two", "tok-1"), "--bootstrap-timeout=5s")
    assert second.returncode != 0
    assert f"bootstrap token {token_id} is spent" in second.stderr, second.stderr
    assert "Create a new token with `kubeboot token create`" in second.stderr
