"""The kubelet's command line and config file, run by ``kubeboot agent`` against a real server.

``--node-ip 10.0.0.1,fd00::1`` (the dual-stack form) gives the Node two InternalIP addresses
and the serving CSR both IP SANs; a KubeletConfiguration's ``serverTLSBootstrap: true``
turns the serving CSR on, its other fields are logged as ignored one line each, and
``--rotate-server-certificates=false`` on the command line overrides the file.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from tests.conftest import RunningServer, server_process_running
from tests.integration.agent.nodes import AgentProcess, kubectl_json, node_csrs

KUBEBOOT = [sys.executable, "-m", "kubeboot"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with server_process_running(tmp_path_factory.mktemp("kubelet") / "data") as running:
        yield running


def _bootstrap_conf(cluster: RunningServer, path: Path) -> Path:
    made = subprocess.run(
        [*KUBEBOOT, "kubeconfig", "bootstrap", "--kubeconfig", str(cluster.kubeconfig),
         "--output", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return path


def _node_flags(tmp: Path, name: str) -> list[str]:
    return [
        f"--kubeconfig={tmp / 'kubelet.conf'}",
        f"--cert-dir={tmp / 'pki'}",
        f"--hostname-override={name}",
    ]


def test_dual_stack_node_ip_and_serving_bootstrap_from_the_config_file(
    cluster: RunningServer, tmp_path: Path
) -> None:
    boot = _bootstrap_conf(cluster, tmp_path / "bootstrap.conf")
    config = tmp_path / "kubelet.yaml"
    config.write_text(
        textwrap.dedent(
            """\
            apiVersion: kubelet.config.k8s.io/v1beta1
            kind: KubeletConfiguration
            rotateCertificates: true
            serverTLSBootstrap: true
            cgroupDriver: systemd
            clusterDNS: [10.96.0.10]
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    with AgentProcess(
        tmp_path / "agent.log",
        "agent", f"--bootstrap-kubeconfig={boot}", f"--config={config}",
        "--node-ip=10.0.0.1,fd00::1", *_node_flags(tmp_path, "dual-1"), "--stay-resident",
        env=env,
    ) as proc:  # fmt: skip
        proc.wait_for(r"\] registered Node dual-1 \(10\.0\.0\.1, fd00::1, dual-1\)$")
        proc.wait_for(r"waiting for serving certificate signing request")
        log = proc.output()
    assert f"{config}: cgroupDriver ignored: not used by kubeboot agent" in log
    assert f"{config}: clusterDNS ignored: not used by kubeboot agent" in log
    node = kubectl_json(cluster, "get", "node", "dual-1")
    internal = [a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"]
    assert internal == ["10.0.0.1", "fd00::1"]
    serving = [
        c for c in node_csrs(cluster, "dual-1")
        if c["spec"]["signerName"] == "kubernetes.io/kubelet-serving"
    ]  # fmt: skip
    assert len(serving) == 1
    request = x509.load_pem_x509_csr(base64.b64decode(serving[0]["spec"]["request"]))
    sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(str(ip) for ip in sans.get_values_for_type(x509.IPAddress)) == [
        "10.0.0.1",
        "fd00::1",
    ]


def test_command_line_overrides_the_config_file(cluster: RunningServer, tmp_path: Path) -> None:
    boot = _bootstrap_conf(cluster, tmp_path / "bootstrap.conf")
    config = tmp_path / "kubelet.yaml"
    config.write_text(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
        "serverTLSBootstrap: true\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    with AgentProcess(
        tmp_path / "agent.log",
        "agent", f"--bootstrap-kubeconfig={boot}", f"--config={config}",
        "--rotate-server-certificates=false", "--node-ip=10.0.0.2",
        *_node_flags(tmp_path, "noserve-1"),
        env=env,
    ) as proc:  # fmt: skip
        proc.wait_for(r"\] registered Node noserve-1 \(10\.0\.0\.2, noserve-1\)$")
        # Every loop parked on a deadline (so the agent hands over to the sleeper) means no
        # serving request is waiting: the command line's =false won over the file's true.
        proc.wait_for(r"nothing to do until \S+ \(client certificate rotation\)")
        assert "waiting for serving" not in proc.output()
    signers = {c["spec"]["signerName"] for c in node_csrs(cluster, "noserve-1")}
    assert signers == {"kubernetes.io/kube-apiserver-client-kubelet"}
