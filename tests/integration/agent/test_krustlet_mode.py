"""Krustlet's command line and ``$KUBECONFIG``, against a real server.

The seed's line, ``KUBECONFIG=~/.krustlet/config/kubeconfig krustlet-wasi --port 3000
--bootstrap-file <bootstrap.conf>``, with ``kubeboot agent`` for ``krustlet-wasi``: the
client kubeconfig lands at ``$KUBECONFIG``, the serving CSR is ``<hostname>-tls`` so
``kubectl certificate approve <hostname>-tls`` works verbatim, the serving pair is written to
``$KRUSTLET_DATA_DIR/config/krustlet.crt|.key`` (key 0600), and a restart finds both and
makes no CSR. A ``$KUBECONFIG`` that holds another identity (the admin's) is never
overwritten.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningServer, server_process_running
from tests.integration.agent.nodes import AgentProcess, leaf, node_csrs

KUBEBOOT = [sys.executable, "-m", "kubeboot"]
SERVING_WAIT = (
    r"waiting for serving certificate signing request krusty-1-tls: pending; "
    r"approve it with: kubectl certificate approve krusty-1-tls$"
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with server_process_running(tmp_path_factory.mktemp("krustlet") / "data") as running:
        yield running


def _bootstrap_conf(cluster: RunningServer, home: Path) -> Path:
    env = {**os.environ, "HOME": str(home), "CONFIG_DIR": str(home / ".krustlet/config")}
    made = subprocess.run(
        [*KUBEBOOT, "kubeconfig", "bootstrap", "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return home / ".krustlet/config/bootstrap.conf"


def test_krustlet_command_line(cluster: RunningServer, tmp_path: Path) -> None:
    home = tmp_path / "home"
    bootstrap = _bootstrap_conf(cluster, home)
    kubeconfig = home / ".krustlet/config/kubeconfig"
    env = {**os.environ, "HOME": str(home), "KUBECONFIG": str(kubeconfig)}
    env.pop("KRUSTLET_DATA_DIR", None)
    args = ["agent", "--port", "3000", "--bootstrap-file", str(bootstrap),
            "--hostname", "Krusty-1", "--node-ip", "127.0.0.1", "--stay-resident"]  # fmt: skip
    with AgentProcess(tmp_path / "first.log", *args, env=env) as proc:
        proc.wait_for(SERVING_WAIT, timeout=60)
        assert kubeconfig.exists()  # the client kubeconfig went where KUBECONFIG says
        cluster.kubectl("certificate", "approve", "krusty-1-tls")
        proc.wait_for(r"wrote the serving certificate to \S+/krustlet.crt", timeout=60)
    cert_file = home / ".krustlet/config/krustlet.crt"
    key_file = home / ".krustlet/config/krustlet.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    serving = leaf(cert_file)
    assert serving.subject.rfc4514_string() == "CN=system:node:krusty-1,O=system:nodes"
    assert (home / ".krustlet/pki/kubelet-server-current.pem").exists()
    before = {c["metadata"]["name"] for c in node_csrs(cluster, "krusty-1")}
    assert "krusty-1-tls" in before and len(before) == 2  # the client CSR and the serving one
    # Restart, as Krustlet: the kubeconfig and the serving pair are there; no new CSR.
    with AgentProcess(tmp_path / "second.log", *args, env=env) as again:
        again.wait_for(r"\] registered Node krusty-1 \(127.0.0.1, Krusty-1\)$", timeout=30)
        assert "bootstrapping" not in again.output()
        assert "waiting for serving" not in again.output()
    assert {c["metadata"]["name"] for c in node_csrs(cluster, "krusty-1")} == before


def test_kubeconfig_from_env_holding_another_identity_is_not_overwritten(
    cluster: RunningServer, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    bootstrap = _bootstrap_conf(cluster, home)
    admin = tmp_path / "admin.conf"
    admin.write_bytes(cluster.kubeconfig.read_bytes())
    env = {**os.environ, "HOME": str(home), "KUBECONFIG": str(admin)}
    result = subprocess.run(
        [*KUBEBOOT, "agent", f"--experimental-bootstrap-kubeconfig={bootstrap}",
         "--cert-dir", str(tmp_path / "pki"), "--node-name", "guarded-1"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Flag --experimental-bootstrap-kubeconfig has been deprecated, use " in result.stderr
    assert f"{admin} (from $KUBECONFIG or the default) is not this node's kubeconfig" in (
        result.stderr
    )
    assert "kubernetes-admin" in result.stderr
    assert admin.read_bytes() == cluster.kubeconfig.read_bytes()
    assert node_csrs(cluster, "guarded-1") == []
