"""Faults with real processes: kill -9 a replica or etcd members while nodes join.

* A replica (the Lease holder) dies mid-storm: its clients move to another replica, every
  node ends with exactly one certificate, no CSR is lost or duplicated, none is re-signed
  after its node got the certificate; the Lease moves and the controllers resume.
* The etcd leader dies mid-storm: no join fails. A majority dies: the API answers 503 with a
  message that says why; when quorum returns it serves again and every acknowledged write is
  there.
* A watch from a compacted resourceVersion gets 410 Expired; re-listing recovers.
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from etcd3aio import Etcd3Client

from kubeboot.controllers.leader import LEASE_RESOURCE
from kubeboot.resources.registry import ResourceInfo, find_resource
from kubeboot.resources.status import Expired, ServiceUnavailable, StatusError
from kubeboot.storage.factory import StorageOptions, open_store
from tests.conftest import KUBECTL
from tests.integration.replicas.conftest import (
    EtcdCluster,
    Replicas,
    admin_client,
    etcd_flags,
    start_replicas,
)
from tests.integration.replicas.nodes import JoinResult, join_node

pytestmark = pytest.mark.timeout(150)


def _res(group: str, plural: str) -> ResourceInfo:
    res = find_resource(group, "v1", plural)
    assert res is not None
    return res


CSRS = _res("certificates.k8s.io", "certificatesigningrequests")
CONFIGMAPS = _res("", "configmaps")


def _join_token(replicas: Replicas) -> str:
    found = re.search(r"--token (\S+)", replicas.log(0))
    assert found is not None
    return found.group(1)


async def _check_every_node_has_exactly_its_certificate(
    replicas: Replicas, results: list[JoinResult], url: str
) -> None:
    """One CSR per node, each issued once, holding the very certificate its node received."""
    async with admin_client(replicas.servers[0].kubeconfig, url) as admin:
        listed = (await admin.list(CSRS))["items"]
    by_name = {o["metadata"]["name"]: o for o in listed}
    assert len(by_name) == len(results) == len({r.csr_name for r in results}), (
        "one CSR per node, no duplicates from retried creates"
    )
    serials = set()
    for r in results:
        obj = by_name[r.csr_name]
        approved = [c for c in obj["status"]["conditions"] if c["type"] == "Approved"]
        assert len(approved) == 1
        stored = base64.b64decode(obj["status"]["certificate"])
        assert stored == r.certificate, f"{r.node}: CSR re-signed after the node got its cert"
        cert = x509.load_pem_x509_certificate(stored)
        assert (
            cert.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            == r.spki()
        )
        serials.add(cert.serial_number)
    assert len(serials) == len(results)


async def _lease_holder(replicas: Replicas, url: str) -> tuple[str, int]:
    async with admin_client(replicas.servers[0].kubeconfig, url) as admin:
        lease = await admin.get(LEASE_RESOURCE, "kube-controller-manager", "kube-system")
    return lease["spec"]["holderIdentity"], int(lease["spec"].get("leaseTransitions") or 0)


async def test_kill_the_lease_holder_replica_while_nodes_join(
    etcd_cluster: EtcdCluster, etcd_prefix: str, tmp_path: Path
) -> None:
    replicas = start_replicas(tmp_path, 3, etcd_flags(etcd_cluster, etcd_prefix))
    try:
        token = _join_token(replicas)
        holder, transitions = await _lease_holder(replicas, replicas.urls[0])
        leader = next(i for i in range(3) if holder in replicas.log(i))
        urls = replicas.urls
        # 30 nodes, a third of them starting at the leader replica that is about to die
        early = [
            asyncio.create_task(join_node(f"early-{i}", urls, replicas.ca_file, token, first=i))
            for i in range(18)
        ]
        done, _ = await asyncio.wait(early, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        assert done, "no node joined before the kill"
        replicas.kill(leader)
        killed_at = time.monotonic()
        survivors = [u for i, u in enumerate(urls) if i != leader]
        late = [
            asyncio.create_task(join_node(f"late-{i}", urls, replicas.ca_file, token, first=i))
            for i in range(12)
        ]
        results = list(await asyncio.wait_for(asyncio.gather(*early, *late), 90))
        await _check_every_node_has_exactly_its_certificate(replicas, results, survivors[0])
        new_holder, new_transitions = await _lease_holder(replicas, survivors[0])
        assert new_holder != holder
        assert new_transitions == transitions + 1
        # controllers resumed on the new holder: late nodes were signed after the kill
        late_results = results[len(early) :]
        assert all(r.issued_at > killed_at for r in late_results)
        resumed = min(r.issued_at for r in late_results) - killed_at
        failovers = sum(r.failovers for r in results)
        print(
            f"replica kill: {len(results)} nodes joined, {failovers} client failovers, "
            f"first signature {resumed:.1f}s after the kill (lease duration 15s), "
            f"slowest join {max(r.seconds for r in results):.1f}s"
        )
        assert failovers > 0, "some clients must have been on the killed replica"
    finally:
        replicas.stop_all()


async def _etcd_leader(cluster: EtcdCluster) -> int:
    for i, m in enumerate(cluster.members):
        async with Etcd3Client([m.client_url.removeprefix("http://")]) as client:
            assert client.maintenance is not None
            status = await client.maintenance.status(timeout=2)
            if status.leader == status.header.member_id:
                return i
    raise AssertionError("no etcd leader")


async def test_etcd_member_and_quorum_loss(
    etcd_cluster: EtcdCluster, etcd_prefix: str, tmp_path: Path
) -> None:
    replicas = start_replicas(tmp_path, 2, etcd_flags(etcd_cluster, etcd_prefix))
    killed: list[int] = []
    try:
        token = _join_token(replicas)
        urls = replicas.urls
        # 1. the etcd leader dies while 16 nodes join: none fails
        joins = [
            asyncio.create_task(join_node(f"node-{i}", urls, replicas.ca_file, token, first=i))
            for i in range(16)
        ]
        await asyncio.sleep(0.5)
        first = await _etcd_leader(etcd_cluster)
        etcd_cluster.kill(first)
        killed.append(first)
        results = list(await asyncio.wait_for(asyncio.gather(*joins), 60))
        await _check_every_node_has_exactly_its_certificate(replicas, results, urls[0])

        # 2. writes acknowledged with one member down
        acknowledged: list[str] = []
        async with admin_client(replicas.servers[0].kubeconfig, urls[0]) as admin:
            for i in range(20):
                name = f"acked-{i}"
                await admin.create(CONFIGMAPS, _configmap(name, i), "default")
                acknowledged.append(name)

            # 3. a second member dies: no quorum. The API answers 503 quickly, saying why.
            second = next(i for i in range(3) if i not in killed)
            etcd_cluster.kill(second)
            killed.append(second)
            started = time.monotonic()
            with pytest.raises(ServiceUnavailable, match="storage is unavailable") as write_err:
                await admin.create(CONFIGMAPS, _configmap("during-outage", 0), "default")
            write_seconds = time.monotonic() - started
            started = time.monotonic()
            with pytest.raises(ServiceUnavailable, match="storage is unavailable"):
                await admin.list(CONFIGMAPS, "default")
            read_seconds = time.monotonic() - started
            assert write_err.value.retry_after == 1
            assert write_seconds < 8 and read_seconds < 8
            # and /readyz takes the replica out of a load balancer's rotation
            status, body = await _readyz(replicas.ca_file, urls[1])
            assert status == 500 and "[-]etcd failed" in body

        # 4. quorum returns: the API serves again and nothing acknowledged is lost
        for i in killed:
            etcd_cluster.start(i)
        etcd_cluster.wait_healthy()
        killed.clear()
        recovered = time.monotonic()
        async with admin_client(replicas.servers[1].kubeconfig, urls[1]) as admin:
            while True:
                try:
                    listed = await admin.list(CONFIGMAPS, "default")
                    break
                except (ServiceUnavailable, StatusError):
                    assert time.monotonic() - recovered < 20, "API did not recover"
                    await asyncio.sleep(0.2)
            recovery_seconds = time.monotonic() - recovered
            names = {o["metadata"]["name"] for o in listed["items"]}
            assert set(acknowledged) <= names
        assert await _readyz(replicas.ca_file, urls[1]) == (200, "ok")
        after = await asyncio.wait_for(
            join_node("after-recovery", urls, replicas.ca_file, token), 60
        )
        print(
            f"etcd faults: 16 joins through a leader kill, 0 failed; without quorum 503 in "
            f"{write_seconds:.1f}s (write) / {read_seconds:.1f}s (read); API back "
            f"{recovery_seconds:.1f}s after quorum; join after recovery {after.seconds:.1f}s"
        )
    finally:
        for i in killed:
            etcd_cluster.start(i)
        etcd_cluster.wait_healthy()
        replicas.stop_all()


async def _readyz(ca_file: Path, url: str) -> tuple[int, str]:
    ctx = ssl.create_default_context(cafile=ca_file)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/readyz", ssl=ctx, timeout=aiohttp.ClientTimeout(total=10)) as resp,
    ):
        return resp.status, await resp.text()


def _configmap(name: str, n: int) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"n": str(n)},
    }


async def test_a_watch_behind_compaction_gets_410_and_relisting_recovers(
    etcd_cluster: EtcdCluster, etcd_prefix: str, tmp_path: Path
) -> None:
    replicas = start_replicas(tmp_path, 2, etcd_flags(etcd_cluster, etcd_prefix))
    try:
        a_url, b_url = replicas.urls
        conf = replicas.servers[0].kubeconfig
        async with admin_client(conf, a_url) as admin_a, admin_client(conf, b_url) as admin_b:
            old_rv = (await admin_b.list(CONFIGMAPS, "default"))["metadata"]["resourceVersion"]
            for i in range(5):
                await admin_a.create(CONFIGMAPS, _configmap(f"before-{i}", i), "kube-public")
            # what the periodic compactor of any replica does, now
            store = await open_store(
                StorageOptions(
                    backend="etcd3",
                    etcd_servers=tuple(etcd_cluster.servers.split(",")),
                    etcd_prefix=etcd_prefix,
                )
            )
            try:
                await store.compact(await store.current_revision())
            finally:
                await store.close()
            # a watch from the compacted resourceVersion: 410 Expired, at either replica
            for admin in (admin_a, admin_b):
                with pytest.raises(Expired, match="too old resource version"):
                    async for _ in admin.watch(CONFIGMAPS, "default", resource_version=old_rv):
                        pass
            # kubectl says so too
            path = f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={old_rv}"
            kubectl = await asyncio.to_thread(
                subprocess.run,
                [KUBECTL, "--kubeconfig", str(conf), "--server", b_url, "get", "--raw", path],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert kubectl.returncode != 0
            assert "too old resource version" in kubectl.stderr + kubectl.stdout
            # the client's recovery: re-list, then watch from the fresh resourceVersion
            fresh = (await admin_b.list(CONFIGMAPS, "default"))["metadata"]["resourceVersion"]
            events = admin_b.watch(
                CONFIGMAPS, "default", resource_version=fresh, timeout_seconds=10
            )
            await admin_a.create(CONFIGMAPS, _configmap("after", 1), "default")
            async for event in events:
                assert event["type"] == "ADDED"
                assert event["object"]["metadata"]["name"] == "after"
                break
    finally:
        replicas.stop_all()
