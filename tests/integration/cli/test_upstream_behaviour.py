"""What upstream spellings do at run time, against real ``kubeboot`` processes.

The parse-level effect of every spelling is in ``test_upstream_spellings.py``; here: a
server started with kube-apiserver's ``--anonymous-auth=false
--enable-bootstrap-token-auth=false`` refuses both, one with kube-controller-manager's
``--insecure-experimental-approve-all-kubelet-csrs-for-group`` approves a kubelet client CSR
that RBAC alone would not (with upstream's message, and a warning at start), ``kubeboot join
--no-daemon --bootstrap-timeout`` gives up naming the CSR and the approve command, and
``--dry-run`` writes nothing and creates no CSR.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningServer, server_process_running
from tests.integration.agent.nodes import NodePaths, join_info, node_csrs

KUBEBOOT = [sys.executable, "-m", "kubeboot"]


def status_of(running: RunningServer, path: str, token: str | None = None) -> int:
    context = ssl.create_default_context(cafile=str(running.ca_file))
    host = running.url.removeprefix("https://")
    conn = http.client.HTTPSConnection(host, context=context, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn.request("GET", path, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def kubeboot(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KUBEBOOT, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_anonymous_and_bootstrap_token_auth_off(tmp_path: Path) -> None:
    with server_process_running(tmp_path / "on") as on:
        token = join_info(on).token
        assert status_of(on, "/version") == 200  # anonymous: system:public-info-viewer
        assert status_of(on, "/api", token) == 200  # the bootstrap token authenticates
    with server_process_running(
        tmp_path / "off", "--anonymous-auth=false", "--enable-bootstrap-token-auth=false"
    ) as off:
        token = join_info(off).token
        assert status_of(off, "/version") == 401
        assert status_of(off, "/api", token) == 401


@pytest.fixture(scope="module")
def insecure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("insecure") / "data"
    with server_process_running(
        data,
        "--insecure-experimental-approve-all-kubelet-csrs-for-group=system:bootstrappers:legacy",
        "--experimental-cluster-signing-duration=2h",
    ) as running:
        yield running


def test_insecure_group_approver_approves_what_rbac_would_not(
    insecure: RunningServer, tmp_path: Path
) -> None:
    log = insecure.data_dir.with_suffix(".log").read_text()
    assert re.search(
        r"^W\d{4} .*\] INSECURE: --insecure-experimental-approve-all-kubelet", log, re.M
    )
    assert re.search(
        r"^W.*Flag --experimental-cluster-signing-duration has been deprecated, "
        r"use --cluster-signing-duration instead",
        log,
        re.M,
    )
    # A token of group system:bootstrappers:legacy may create CSRs, but no nodeclient
    # binding lets csrapproving's SubjectAccessReview pass: only the group approver can.
    insecure.kubectl(
        "create", "clusterrolebinding", "legacy-create-csrs",
        "--clusterrole=system:node-bootstrapper", "--group=system:bootstrappers:legacy",
    )  # fmt: skip
    created = kubeboot(
        "token", "create", "--groups", "system:bootstrappers:legacy",
        "--kubeconfig", str(insecure.kubeconfig), "--print-join-command",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    join_args = created.stdout.split()[1:]  # "join <endpoint> --token ..."
    node = NodePaths(tmp_path / "node", "legacy-1")
    joined = kubeboot(*join_args, "--no-daemon", "--bootstrap-timeout=60s", *node.flags())
    assert joined.returncode == 0, joined.stdout + joined.stderr
    assert "This node has joined the cluster:" in joined.stdout
    (csr,) = node_csrs(insecure, "legacy-1")
    approved = [c for c in csr["status"]["conditions"] if c["type"] == "Approved"]
    assert approved[0]["reason"] == "AutoApproved"
    assert approved[0]["message"] == (
        "Auto approving of all kubelet CSRs is enabled on the controller manager"
    )


@pytest.fixture(scope="module")
def manual(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A cluster that approves nothing by itself (csrapproving off)."""
    data = tmp_path_factory.mktemp("manual") / "data"
    with server_process_running(data, "--controllers=*,-csrapproving,bootstrapsigner") as running:
        yield running


def test_join_no_daemon_gives_up_at_the_bootstrap_timeout_naming_the_csr(
    manual: RunningServer, tmp_path: Path
) -> None:
    info = join_info(manual)
    node = NodePaths(tmp_path / "node", "unapproved-1")
    result = kubeboot(
        *info.join_args, "--no-daemon", "--bootstrap-timeout", "4s", *node.flags(),
        "--logging-format=json",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    (csr,) = node_csrs(manual, "unapproved-1")
    name = csr["metadata"]["name"]
    # The hint came at once, as a (JSON) log line, before giving up...
    entries = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    hints = [e for e in entries if "approve it with" in e["msg"]]
    assert hints and f"kubectl certificate approve {name}" in hints[0]["msg"]
    # ...and the last line says what was not signed and how to approve it.
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: no client certificate within --bootstrap-timeout 4s: ")
    assert f"kubectl certificate approve {name}" in last
    assert "This node has joined" not in result.stdout
    assert info.token not in result.stdout + result.stderr
    # Approving the CSR it named lets the same command line finish.
    manual.kubectl("certificate", "approve", name)
    again = kubeboot(*info.join_args, "--no-daemon", "--bootstrap-timeout", "60s", *node.flags())
    assert again.returncode == 0, again.stdout + again.stderr
    assert "This node has joined the cluster:" in again.stdout
    assert len(node_csrs(manual, "unapproved-1")) == 1  # it waited on the same CSR


def test_join_dry_run_checks_discovery_and_changes_nothing(
    manual: RunningServer, tmp_path: Path
) -> None:
    info = join_info(manual)
    node = NodePaths(tmp_path / "node", "dry-1")
    result = kubeboot(*info.join_args, "--dry-run", "--node-ip=10.0.0.8", *node.flags())
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "[preflight] Running pre-flight checks"
    assert f'Would write the TLS-bootstrap kubeconfig to "{node.bootstrap_kubeconfig}"' in (
        result.stdout
    )
    assert "kubeboot agent --kubeconfig=" in result.stdout
    assert "--node-ip=10.0.0.8" in result.stdout
    assert "[kubelet-wait] Would wait for the kubelet to be bootstrapped" in lines
    assert info.token not in result.stdout  # the agent command carries no token
    assert node.files() == []
    assert node_csrs(manual, "dry-1") == []
    # A wrong pin is still refused: discovery ran for real.
    wrong = kubeboot(
        "join", info.endpoint, "--token", info.token, "--dry-run",
        "--discovery-token-ca-cert-hash", "sha256:" + "00" * 32, *node.flags(),
    )  # fmt: skip
    assert wrong.returncode == 1
    assert "--discovery-token-ca-cert-hash" in wrong.stderr


def test_join_with_a_join_configuration_and_a_separate_tls_bootstrap_token(
    insecure: RunningServer, tmp_path: Path
) -> None:
    info = join_info(insecure)
    created = kubeboot("token", "create", "--kubeconfig", str(insecure.kubeconfig))
    assert created.returncode == 0, created.stderr
    second = created.stdout.strip()
    config = tmp_path / "join.yaml"
    config.write_text(
        "apiVersion: kubeadm.k8s.io/v1beta4\n"
        "kind: JoinConfiguration\n"
        "discovery:\n"
        "  bootstrapToken:\n"
        f"    apiServerEndpoint: {info.endpoint}\n"
        f"    token: {info.token}\n"
        f"    caCertHashes: [{info.pin}]\n"
        f"  tlsBootstrapToken: {second}\n"
        "nodeRegistration:\n"
        "  name: from-config-1\n"
        "  kubeletExtraArgs:\n"
        "  - {name: node-ip, value: 10.0.0.7}\n"
        "timeouts: {tlsBootstrap: 1m}\n"
    )
    node = NodePaths(tmp_path / "node", "ignored-by-config")
    flags = node.flags()
    flags = flags[: flags.index("--node-name")]  # the name comes from the file
    result = kubeboot("join", f"--config={config}", "--no-daemon", *flags)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "This node has joined the cluster:" in result.stdout
    boot = node.bootstrap_kubeconfig.read_text()
    assert second in boot and info.token not in boot  # TLS bootstrap with the second token
    (csr,) = node_csrs(insecure, "from-config-1")
    assert csr["spec"]["username"] == f"system:bootstrap:{second.partition('.')[0]}"
    assert second not in result.stdout + result.stderr
