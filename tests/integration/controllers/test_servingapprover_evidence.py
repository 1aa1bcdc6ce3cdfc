"""The in-server serving approver (``--controllers=...,servingapprover``) and its evidence.

A real ``kubeboot server`` runs the approver with ``ipEvidence`` on and trusts 127.0.0.2 as a
PROXY protocol balancer. A node joins for real, then, as that node (its client certificate):

* talks to the server directly (source 127.0.0.1) and through a PROXY v2 header naming
  192.0.2.44, as a node behind a balancer would;
* publishes Node addresses 127.0.0.1, 192.0.2.44 and 10.1.2.3 (a node writes what it likes);
* asks for three serving certificates, one per address.

The two addresses its connections came from are approved and issued by the server; the
address it only claims is denied by the evidence rule. ``kubeboot approver explain`` prints
the rules with the recorded sightings and the issuance ledger's addresses.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kubeboot.api.server.proxyprotocol import encode_v2
from kubeboot.cli.main import cli
from kubeboot.client.http import HttpApiClient
from kubeboot.controllers.certificates import CSR_RESOURCE
from tests.conftest import RunningServer, server_process_running
from tests.integration.agent.nodes import NodePaths, join_info, run_kubeboot
from tests.integration.cli.test_approver import register_node, serving_csr

NODE = "evid-1"
BALANCER = "127.0.0.2"
BEHIND_BALANCER = "192.0.2.44"
POLICY = "{ipEvidence: true, evidenceGraceSeconds: 3}"


@pytest.fixture(scope="module", params=[0, 2], ids=["primary", "workers"])
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """With ``--workers 2`` the approver (in the primary) sees none of the connections
    itself: the evidence reaches it only through the shared record."""
    flags = [
        "--controllers=*,bootstrapsigner,tokencleaner,servingapprover",
        f"--serving-approver-policy={POLICY}",
        f"--proxy-protocol-trusted-cidrs={BALANCER}/32",
        f"--workers={request.param}",
    ]
    with server_process_running(tmp_path_factory.mktemp("evidence") / "data", *flags) as running:
        yield running


async def proxied_get(running: RunningServer, node: NodePaths, path: str) -> int:
    """GET ``path`` with the node's client certificate, from 127.0.0.2 through a v2 header
    naming 192.0.2.44 (what a balancer in front of the server sends)."""
    host, _, port = running.url.removeprefix("https://").rpartition(":")
    ctx = ssl.create_default_context(cafile=str(running.ca_file))
    current = node.cert_dir / "kubelet-client-current.pem"
    ctx.load_cert_chain(current, current)
    reader, writer = await asyncio.open_connection(host, int(port), local_addr=(BALANCER, 0))
    try:
        writer.write(encode_v2((BEHIND_BALANCER, 40000), (host, int(port))))
        await writer.drain()
        await writer.start_tls(ctx, server_hostname="127.0.0.1")
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        answer = await reader.read()
        return int(answer.split(b" ", 2)[1])
    finally:
        writer.close()


async def as_node(running: RunningServer, node: NodePaths) -> None:
    async with HttpApiClient.from_kubeconfig(str(node.kubeconfig)) as client:
        await register_node(client, NODE, ["127.0.0.1", BEHIND_BALANCER, "10.1.2.3"])
        assert await proxied_get(running, node, f"/api/v1/nodes/{NODE}") == 200
        await client.create(CSR_RESOURCE, serving_csr("evid-direct", NODE, NODE, "127.0.0.1"))
        await client.create(CSR_RESOURCE, serving_csr("evid-proxied", NODE, NODE, BEHIND_BALANCER))
        await client.create(CSR_RESOURCE, serving_csr("evid-claimed", NODE, NODE, "10.1.2.3"))


def wait_csr(running: RunningServer, name: str, done: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        csr: dict[str, Any] = json.loads(running.kubectl("get", "csr", name, "-o", "json").stdout)
        status = csr.get("status") or {}
        types = {c["type"] for c in status.get("conditions") or []}
        if (done == "issued" and status.get("certificate")) or done in types:
            return csr
        assert time.monotonic() < deadline, f"csr {name} not {done}: {csr}"
        time.sleep(0.3)


def test_ip_sans_are_approved_only_from_where_the_node_connects(
    cluster: RunningServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    workers = "workers" in request.node.callspec.id
    node = NodePaths(tmp_path, NODE)
    joined = run_kubeboot(*join_info(cluster).join_args, "--no-daemon", *node.flags())
    assert joined.returncode == 0, joined.stdout + joined.stderr
    asyncio.run(as_node(cluster, node))

    for name in ("evid-direct", "evid-proxied"):
        issued = wait_csr(cluster, name, "issued")
        approved = issued["status"]["conditions"][0]
        assert (approved["type"], approved["reason"]) == (
            "Approved",
            "kubelet-serving cert validated",
        )
    denied = wait_csr(cluster, "evid-claimed", "Denied")["status"]["conditions"][0]
    assert (
        "IP SAN 10.1.2.3 was never the source of an authenticated connection" in (denied["message"])
    )
    assert "certificate" not in wait_csr(cluster, "evid-claimed", "Denied")["status"]

    record = json.loads(
        cluster.kubectl(
            "get", "configmap", "-n", "kube-system", "kubeboot-node-sources", "-o", "json"
        ).stdout
    )
    sightings = json.loads(record["data"][NODE])
    seen = {(s["address"], s["via"]) for s in sightings}
    assert seen == {("127.0.0.1", "client-certificate"), (BEHIND_BALANCER, "client-certificate")}
    assert BALANCER not in record["data"][NODE]  # the balancer is never the node's source

    admin = ["--kubeconfig", str(cluster.kubeconfig)]
    result = CliRunner().invoke(
        cli,
        ["approver", "explain", "evid-claimed", "--policy", POLICY, *admin],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"CSR evid-claimed: signer kubernetes.io/kubelet-serving, requested by system:node:{NODE}"
    )
    assert any(line.split()[:2] == ["PASS", "node-addresses"] for line in lines)
    (evidence,) = [line for line in lines if "ip-evidence" in line]
    assert evidence.split()[0] == "FAIL"
    assert f"{BEHIND_BALANCER} (client-certificate, first " in evidence
    # The ledger's evidence: the CSRs of the node's certificates came from 127.0.0.1.
    assert "ledger: 127.0.0.1 (CSR of certificate " in evidence
    if not workers:
        # The join's CSR (bootstrap token). With --workers the ledger branch records no
        # sourceAddress for it (its origin is missed; reported to the ledger's owner).
        assert "kubernetes.io/kube-apiserver-client-kubelet" in evidence
    assert lines[-1].startswith("verdict: deny: IP SAN 10.1.2.3 was never the source")

    good = CliRunner().invoke(
        cli,
        ["approver", "explain", "evid-proxied", "--policy", POLICY, *admin],
    )
    assert good.stdout.splitlines()[-1] == (
        "verdict: approve: SANs are the Node's addresses; its IP SANs are where its "
        "authenticated connections come from"
    )
    # Without the evidence rule the claimed address passes: the Node says so.
    lax = CliRunner().invoke(cli, ["approver", "explain", "evid-claimed", *admin])
    assert lax.stdout.splitlines()[-1].startswith("verdict: approve")
