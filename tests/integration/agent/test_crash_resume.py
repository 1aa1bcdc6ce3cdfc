"""``kill -9`` of the agent at each step of client bootstrap, and a clean resume.

The server runs without the auto-approver (``--controllers=-csrapproving,...``), so a client
CSR stays pending until the test approves or denies it with real ``kubectl``: that is what
makes "while waiting" a state the test can reach and kill in. The bootstrap kubeconfig is
written with ``kubectl config set-cluster/set-credentials/set-context`` (the issue's seed
flow). After every resume the node has exactly one CSR: nothing piles up.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubeboot.agent.csrflow import request_name
from kubeboot.agent.templates import client_template
from kubeboot.pki.keys import load_private_key_pem
from tests.conftest import RunningServer, server_process_running
from tests.integration.agent.nodes import (
    AgentProcess,
    NodePaths,
    TcpForwarder,
    conditions,
    join_info,
    node_csrs,
)

WAITING = r"waiting for client certificate signing request (node-csr-[A-Za-z0-9_-]+)"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with server_process_running(
        tmp_path_factory.mktemp("manual") / "data",
        "--controllers=-csrapproving,*,bootstrapsigner,tokencleaner",
    ) as running:
        yield running


def write_bootstrap_kubeconfig(running: RunningServer, node: NodePaths, server: str) -> None:
    """The seed flow: a bootstrap kubeconfig made with kubectl config commands only."""
    path = node.bootstrap_kubeconfig
    path.parent.mkdir(parents=True, exist_ok=True)
    token = join_info(running).token
    for args in (
        [
            "set-cluster",
            "kubernetes",
            f"--server={server}",
            f"--certificate-authority={running.ca_file}",
            "--embed-certs=true",
        ],
        ["set-credentials", "tls-bootstrap-token-user", f"--token={token}"],
        ["set-context", "bootstrap", "--cluster=kubernetes", "--user=tls-bootstrap-token-user"],
        ["use-context", "bootstrap"],
    ):
        running.kubectl("config", *args, kubeconfig=path)


def agent(node: NodePaths, log: Path, *extra: str) -> AgentProcess:
    return AgentProcess(log, "agent", *node.flags(), *extra)


def whoami(running: RunningServer, node: NodePaths) -> str:
    out = running.kubectl("auth", "whoami", "-o", "json", kubeconfig=node.kubeconfig).stdout
    return str(json.loads(out)["status"]["userInfo"]["username"])


def test_kill_before_the_csr_and_while_waiting_resumes_the_same_request(
    cluster: RunningServer, tmp_path: Path
) -> None:
    node = NodePaths(tmp_path / "node", "crash-1")
    log = tmp_path / "agent.log"
    pending = node.cert_dir / "kubelet-client.key.tmp"

    # Step 1: the pending key is on disk, the CSR not yet sent (the server cannot be
    # reached: a closed port), and the agent dies.
    write_bootstrap_kubeconfig(cluster, node, "https://127.0.0.1:1")
    with agent(node, log) as first:
        first.wait_for(r"retrying the client certificate request in \d+s")
        assert pending.exists()
    key_pem = pending.read_bytes()
    assert node_csrs(cluster, "crash-1") == []

    # Step 2: resume against the real server: the same key, so the same CSR name (the
    # name is a digest of the key and request); die again while it is pending.
    write_bootstrap_kubeconfig(cluster, node, cluster.url)
    expected = request_name(load_private_key_pem(key_pem), client_template("crash-1"))
    with agent(node, log) as second:
        name = second.wait_for(WAITING).group(1)
    assert name == expected
    assert pending.read_bytes() == key_pem
    csrs = node_csrs(cluster, "crash-1")
    assert [c["metadata"]["name"] for c in csrs] == [name]
    assert conditions(csrs[0]) == []
    assert not node.kubeconfig.exists()

    # Step 3: resume once more: the agent adopts its pending CSR, an admin approves it.
    with agent(node, log) as third:
        third.wait_for(WAITING + r" \(resumed\)")
        cluster.kubectl("certificate", "approve", name)
        third.wait_for(r"\] wrote " + str(node.kubeconfig))
    assert [c["metadata"]["name"] for c in node_csrs(cluster, "crash-1")] == [name]
    assert not pending.exists()
    assert whoami(cluster, node) == "system:node:crash-1"


def test_crash_after_issue_before_the_kubeconfig_reuses_the_stored_pair(
    cluster: RunningServer, tmp_path: Path
) -> None:
    """The process dies between installing the pair and writing ``--kubeconfig``.

    A kill -9 cannot be timed into that gap from outside, so the test makes the kubeconfig
    write fail (its directory is a regular file): the agent exits right after the install,
    leaving exactly the disk state a kill there leaves, since every write is atomic.
    """
    node = NodePaths(tmp_path / "node", "crash-2")
    log = tmp_path / "agent.log"
    write_bootstrap_kubeconfig(cluster, node, cluster.url)
    node.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    blocker = tmp_path / "node" / "blocked"
    blocker.write_text("not a directory")
    flags = node.flags()
    flags[flags.index("--kubeconfig") + 1] = str(blocker / "kubelet.conf")
    with AgentProcess(log, "agent", *flags) as first:
        name = first.wait_for(WAITING).group(1)
        cluster.kubectl("certificate", "approve", name)
        first.wait_for(r"^error: .*blocked")
        assert first.proc.wait(timeout=10) == 1
    current = node.cert_dir / "kubelet-client-current.pem"
    assert current.is_symlink()
    installed = current.resolve()

    with agent(node, log) as second:
        second.wait_for(r"reusing the stored client certificate")
        second.wait_for(r"\] wrote " + str(node.kubeconfig))
    assert current.resolve() == installed
    assert [c["metadata"]["name"] for c in node_csrs(cluster, "crash-2")] == [name]
    assert whoami(cluster, node) == "system:node:crash-2"


def test_denied_client_request_is_reported_with_its_reason_and_not_retried_soon(
    cluster: RunningServer, tmp_path: Path
) -> None:
    node = NodePaths(tmp_path / "node", "denied-1")
    log = tmp_path / "agent.log"
    write_bootstrap_kubeconfig(cluster, node, cluster.url)
    with agent(node, log) as proc:
        name = proc.wait_for(WAITING).group(1)
        cluster.kubectl("certificate", "deny", name)
        proc.wait_for(
            rf"certificate signing request {name} was denied: KubectlDeny: "
            r"This CSR was denied by kubectl certificate deny\."
        )
        proc.wait_for(r"retrying the client certificate request in 300s")
        # The denied key is dropped (its CSR can never be reused) and no new CSR comes.
        time.sleep(2.0)
        assert proc.proc.poll() is None
        assert not (node.cert_dir / "kubelet-client.key.tmp").exists()
        assert [c["metadata"]["name"] for c in node_csrs(cluster, "denied-1")] == [name]
        assert proc.output().count("retrying the client certificate request") == 1


def test_agent_started_while_the_server_is_down_waits_and_registers_its_node(
    cluster: RunningServer, tmp_path: Path
) -> None:
    """A node that boots before its API server: the agent stays up and retries."""
    node = NodePaths(tmp_path / "node", "late-1")
    log = tmp_path / "agent.log"
    write_bootstrap_kubeconfig(cluster, node, cluster.url)
    with agent(node, log) as first:
        cluster.kubectl("certificate", "approve", first.wait_for(WAITING).group(1))
        first.wait_for(r"\] wrote " + str(node.kubeconfig))
    cluster.kubectl("delete", "node", "late-1", "--ignore-not-found")
    # The same kubeconfig, but the server is behind a port nobody listens on yet.
    host, _, server_port = cluster.url.removeprefix("https://").rpartition(":")
    forwarder = TcpForwarder((host, int(server_port)))
    conf = node.kubeconfig.read_text().replace(cluster.url, f"https://127.0.0.1:{forwarder.port}")
    node.kubeconfig.write_text(conf)
    try:
        with agent(node, log) as second:
            second.wait_for(r"could not register Node late-1: connection refused to https:")
            second.wait_for(r"retrying the Node registration in \d+s")
            assert second.proc.poll() is None
            forwarder.listen()
            deadline = time.monotonic() + 20
            while cluster.kubectl("get", "node", "late-1", check=False).returncode != 0:
                assert time.monotonic() < deadline, second.output()
                time.sleep(0.2)
    finally:
        forwarder.close()
    assert len(node_csrs(cluster, "late-1")) == 1
