"""``kubeboot approver`` against a real server, with real node identities.

A node joins (``kubeboot join --no-daemon``: the server auto-approves and signs its client
certificate), then, *as that node*, publishes its Node addresses and asks for serving
certificates: one whose SANs are its addresses (approved, then issued by the server's
signer) and one naming an address it does not have (denied, with the reason).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubeboot.cli.main import cli
from kubeboot.client.http import HttpApiClient
from kubeboot.controllers.certificates import CSR_RESOURCE
from kubeboot.pki.csr import build_csr
from kubeboot.pki.keys import generate_private_key
from kubeboot.resources.registry import find_resource
from tests.conftest import RunningServer, server_process_running
from tests.integration.agent.nodes import NodePaths, join_info, run_kubeboot


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with server_process_running(tmp_path_factory.mktemp("approver") / "data") as running:
        yield running


def serving_csr(name: str, node: str, dns: str, ip: str) -> dict[str, object]:
    pem = build_csr(
        generate_private_key(),
        common_name=f"system:node:{node}",
        organizations=["system:nodes"],
        dns_names=[dns],
        ips=[ip],
    )
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": base64.b64encode(pem).decode(),
            "signerName": "kubernetes.io/kubelet-serving",
            "usages": ["digital signature", "server auth"],
        },
    }


async def register_node(client: HttpApiClient, node: str, ips: list[str]) -> None:
    """As the node (its own client): create its Node and publish ``ips`` as InternalIPs and
    its name as Hostname, as a kubelet does (a node may write any addresses)."""
    nodes = find_resource("", "v1", "nodes")
    assert nodes is not None
    await client.create(nodes, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}})
    addresses = [{"type": "InternalIP", "address": ip} for ip in ips]
    addresses.append({"type": "Hostname", "address": node})
    await client.patch(nodes, node, {"status": {"addresses": addresses}}, subresource="status")


async def as_node(kubeconfig: Path, node: str) -> None:
    async with HttpApiClient.from_kubeconfig(str(kubeconfig)) as client:
        await register_node(client, node, ["10.1.2.3"])
        await client.create(CSR_RESOURCE, serving_csr("appr-good", node, node, "10.1.2.3"))
        await client.create(CSR_RESOURCE, serving_csr("appr-bad", node, node, "10.9.9.9"))


def test_approver_approves_own_addresses_and_denies_others(
    cluster: RunningServer, tmp_path: Path
) -> None:
    info = join_info(cluster)
    node = NodePaths(tmp_path, "appr-1")
    joined = run_kubeboot(*info.join_args, "--no-daemon", *node.flags())
    assert joined.returncode == 0, joined.stdout + joined.stderr
    asyncio.run(as_node(node.kubeconfig, "appr-1"))

    result = CliRunner().invoke(
        cli, ["approver", "--once", "--kubeconfig", str(cluster.kubeconfig)]
    )
    assert result.exit_code == 0, result.output
    assert "approved csr appr-good: SANs are the Node's addresses" in result.stdout
    assert "denied csr appr-bad: IP SAN 10.9.9.9 is not an address of Node 'appr-1'" in (
        result.stdout
    )

    good = json.loads(cluster.kubectl("get", "csr", "appr-good", "-o", "json").stdout)
    (cond,) = good["status"]["conditions"][:1]
    assert (cond["type"], cond["reason"]) == ("Approved", "kubelet-serving cert validated")
    bad = json.loads(cluster.kubectl("get", "csr", "appr-bad", "-o", "json").stdout)
    (cond,) = bad["status"]["conditions"]
    assert cond["type"] == "Denied"
    assert "Reason: IP SAN 10.9.9.9 is not an address" in cond["message"]

    again = CliRunner().invoke(cli, ["approver", "--once", "--kubeconfig", str(cluster.kubeconfig)])
    assert again.stdout == "no pending kubelet-serving CSRs\n"
