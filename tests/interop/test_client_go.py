"""The official Go client (client-go v0.37.2) doing what a kubelet does, against the real server.

``tests/interop/clientgo`` is a small Go program that bootstraps a client certificate with
client-go's own ``util/certificate/csr`` code from a bootstrap-token kubeconfig, then, as
``system:node:<name>``, registers its Node, lists and watches it with a field selector,
updates and patches its status, creates and renews its Lease and records an Event. It runs
once with the kubelet's default protobuf bodies and once with JSON; the admin's kubectl then
checks what the server stored.

Skipped when ``go`` is missing or the modules cannot be downloaded (no network); a compile
error fails. The first build fills the Go build cache and can take minutes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningServer

PROGRAM_DIR = Path(__file__).parent / "clientgo"
PROTOBUF = "application/vnd.kubernetes.protobuf"
CONTENT_TYPES = {"pb": PROTOBUF, "json": "application/json"}

# What `go build` prints when it cannot reach the module proxy, as opposed to a compile error.
_OFFLINE = re.compile(
    r"dial tcp|no such host|i/o timeout|connection refused|network is unreachable|"
    r"TLS handshake timeout|proxyconnect|temporary failure in name resolution",
    re.IGNORECASE,
)


@pytest.fixture(scope="session")
def clientgo_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.skip("the Go toolchain (`go`) is not on PATH")
    binary = tmp_path_factory.mktemp("clientgo") / "clientgo"
    # -p 1: the machines that run this have two cores; a parallel build starves the suite.
    build = subprocess.run(
        [go, "build", "-p", "1", "-o", str(binary), "."],
        cwd=PROGRAM_DIR,
        capture_output=True,
        text=True,
        timeout=840,
        env={**os.environ, "GOFLAGS": "-mod=readonly"},
    )
    if build.returncode != 0:
        if _OFFLINE.search(build.stderr):
            pytest.skip(f"cannot download the Go modules (no network?): {build.stderr[-500:]}")
        raise AssertionError(f"go build failed:\n{build.stderr}")
    return binary


def _bootstrap_kubeconfig(kube: RunningServer, path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "kubeboot",
            "kubeconfig",
            "bootstrap",
            "--kubeconfig",
            str(kube.kubeconfig),
            "--output",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _run_kubelet(binary: Path, bootstrap: Path, cert_dir: Path, node: str, ctype: str) -> Any:
    result = subprocess.run(
        [
            str(binary),
            "--bootstrap-kubeconfig",
            str(bootstrap),
            "--cert-dir",
            str(cert_dir),
            "--node-name",
            node,
            "--content-type",
            ctype,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"client-go with {ctype} failed:\n{result.stderr}"
    return json.loads(result.stdout)


def _get(kube: RunningServer, *args: str) -> Any:
    return json.loads(kube.kubectl("get", *args, "-o", "json").stdout)


def _renamed(obj: Any, name: str) -> Any:
    """The object with the node's name replaced, to compare what two nodes sent."""
    return json.loads(json.dumps(obj).replace(name, "NODE"))


@pytest.mark.timeout(900)
def test_kubelet_bootstrap_and_node_traffic_with_client_go(
    clientgo_binary: Path, server_process: RunningServer, tmp_path: Path
) -> None:
    bootstrap = tmp_path / "bootstrap.conf"
    _bootstrap_kubeconfig(server_process, bootstrap)

    for suffix, ctype in CONTENT_TYPES.items():
        node = f"worker-{suffix}"
        out = _run_kubelet(clientgo_binary, bootstrap, tmp_path / node, node, ctype)
        assert out["contentType"] == ctype
        assert out["certSubject"] == f"CN=system:node:{node},O=system:nodes"
        assert out["username"] == f"system:node:{node}"
        assert set(out["groups"]) == {"system:nodes", "system:authenticated"}
        assert out["listedNodes"] == [node]
        assert out["watchEvents"] == ["MODIFIED", "MODIFIED"]
        assert out["nodeReadyStatus"] == "True"
        assert out["leaseHolder"] == node
        assert out["leaseRenewed"] is True
        assert out["leaseOwner"] == f"Node/{node}"
        assert (tmp_path / node / "kubelet-client-current.pem").stat().st_mode & 0o077 == 0

        csr = _get(server_process, "csr", out["csrName"])
        assert csr["spec"]["username"].startswith("system:bootstrap:")
        assert [c["type"] for c in csr["status"]["conditions"]] == ["Approved"]

        stored = _get(server_process, "node", node)
        assert stored["metadata"]["uid"] == out["nodeUID"]
        assert stored["metadata"]["labels"]["kubernetes.io/hostname"] == node
        assert stored["status"]["capacity"]["memory"] == "4028Mi"
        assert stored["status"]["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
        assert [c["type"] for c in stored["status"]["conditions"]] == ["Ready"]
        lease = _get(server_process, "-n", "kube-node-lease", "lease", node)
        assert lease["spec"]["holderIdentity"] == node
        assert lease["spec"]["leaseDurationSeconds"] == 40
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", lease["spec"]["renewTime"])
        assert lease["metadata"]["ownerReferences"][0]["uid"] == out["nodeUID"]
        event = _get(server_process, "-n", "default", "event", out["eventName"])
        assert event["involvedObject"] == {"kind": "Node", "name": node, "uid": node}
        assert event["reason"] == "Starting"

    # The protobuf bodies decode to what client-go sends as JSON.
    pb = _renamed(_get(server_process, "node", "worker-pb"), "worker-pb")
    js = _renamed(_get(server_process, "node", "worker-json"), "worker-json")
    assert pb["spec"] == js["spec"]
    assert pb["metadata"]["labels"] == js["metadata"]["labels"]
    assert pb["metadata"]["annotations"] == js["metadata"]["annotations"]
    for key in ("capacity", "allocatable", "addresses", "daemonEndpoints"):
        assert pb["status"][key] == js["status"][key], key
