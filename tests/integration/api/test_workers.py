"""``kubeboot server --workers N``: worker processes serve HTTPS over the primary's store.

Real processes throughout: the primary (in the test's loop, or as ``kubeboot server``), its
workers started with ``sys.executable``, real TLS clients, real ``kubectl`` and ``kubeboot
join``. What must hold: connections reach every worker, every worker sees one store
(reads, writes, watches, conflicts), a node joins, audit events from workers land in the
primary's log, a killed worker comes back, and no worker outlives its primary.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import (
    RunningServer,
    admin_ssl_context,
    in_process_server,
    server_process_running,
)

CM = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
async def workers_server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with in_process_server(
        tmp_path / "data", workers=2, audit_log_path=tmp_path / "audit.log"
    ) as running:
        yield running


def _worker_pids(running: RunningServer) -> list[int]:
    assert running.server is not None and running.server.workers is not None
    return running.server.workers.pids


def _sockets(pid: int) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except FileNotFoundError:
            continue
    return count


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


async def _json(http: aiohttp.ClientSession, method: str, path: str, body: Any = None) -> Any:
    async with http.request(method, path, json=body) as resp:
        return resp.status, await resp.json(content_type=None)


def _session(running: RunningServer, *, keep_alive: bool = True) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(ssl=admin_ssl_context(running), force_close=not keep_alive)
    return aiohttp.ClientSession(base_url=running.url, connector=connector)


async def test_connections_reach_every_worker(workers_server: RunningServer) -> None:
    pids = _worker_pids(workers_server)
    assert len(pids) == 2 and os.getpid() not in pids
    before = {pid: _sockets(pid) for pid in pids}
    ctx = admin_ssl_context(workers_server)
    host, port = workers_server.url.removeprefix("https://").rsplit(":", 1)
    writers = []
    for _ in range(24):
        reader, writer = await asyncio.open_connection(host, int(port), ssl=ctx)
        writer.write(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        writers.append(writer)
    gained = {pid: _sockets(pid) - before[pid] for pid in pids}
    for writer in writers:
        writer.close()
    # One accept queue, two idle workers: each connection goes to whichever accepts first
    # (measured 9-15 of 24 each over six runs); all 24 on one would mean one never accepts.
    assert sum(gained.values()) == 24
    assert all(n > 0 for n in gained.values()), gained


async def test_workers_share_one_store_and_its_watches(workers_server: RunningServer) -> None:
    async with (
        _session(workers_server) as watcher,
        _session(workers_server, keep_alive=False) as writer,
    ):
        status, listed = await _json(watcher, "GET", CM)
        assert status == 200
        rv = listed["metadata"]["resourceVersion"]
        async with watcher.get(CM, params={"watch": "1", "resourceVersion": rv}) as stream:
            # Every write on a new connection: they land on both workers.
            for i in range(12):
                body = {"metadata": {"name": f"cm-{i}"}, "data": {"i": str(i)}}
                status, _ = await _json(writer, "POST", CM, body)
                assert status == 201
            seen: list[str] = []
            while len(seen) < 12:
                event = json.loads(await asyncio.wait_for(stream.content.readline(), 10))
                assert event["type"] == "ADDED"
                seen.append(event["object"]["metadata"]["name"])
        assert seen == [f"cm-{i}" for i in range(12)]
        # A conflict is a conflict whichever worker sees the stale update.
        status, cm = await _json(writer, "GET", f"{CM}/cm-0")
        cm["data"]["i"] = "changed"
        assert (await _json(writer, "PUT", f"{CM}/cm-0", cm))[0] == 200
        cm["data"]["i"] = "stale"
        status, body = await _json(writer, "PUT", f"{CM}/cm-0", cm)
        assert status == 409 and body["reason"] == "Conflict"
        _, now = await _json(writer, "GET", f"{CM}/cm-0")
        assert now["data"]["i"] == "changed"


async def test_audit_events_from_workers_reach_the_primary_log(
    workers_server: RunningServer, tmp_path: Path
) -> None:
    async with _session(workers_server, keep_alive=False) as http:
        for i in range(6):
            async with http.get(f"{CM}/missing-{i}") as resp:
                assert resp.status == 404
                assert resp.headers["Audit-ID"]
        async with http.get("/version") as resp:
            assert resp.headers["Audit-ID"]
    srv = workers_server.server
    assert srv is not None and srv.security is not None and srv.security.audit_log is not None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        await asyncio.to_thread(srv.security.audit_log.wait_written)
        lines = (tmp_path / "audit.log").read_text().splitlines()
        uris = {json.loads(line)["requestURI"] for line in lines}
        if all(f"{CM}/missing-{i}" in uris for i in range(6)):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"audit events missing; have {sorted(uris)}")
    event = next(json.loads(line) for line in lines if "missing-0" in line)
    assert event["responseStatus"]["code"] == 404
    assert event["user"]["username"] == "kubernetes-admin"


async def test_a_killed_worker_is_replaced_and_service_continues(
    workers_server: RunningServer,
) -> None:
    victim, survivor = _worker_pids(workers_server)
    os.kill(victim, signal.SIGKILL)
    async with _session(workers_server, keep_alive=False) as http:
        # The survivor serves meanwhile; connections hashed to the dead worker's socket
        # wait in its accept queue until the replacement takes them.
        for _ in range(4):
            assert (await _json(http, "GET", "/version"))[0] == 200
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pids = _worker_pids(workers_server)
            if victim not in pids and len(pids) == 2:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the killed worker was not restarted")
        assert survivor in pids
        replacement = next(p for p in pids if p != survivor)
        before = _sockets(replacement)
        for i in range(10):
            body = {"metadata": {"name": f"after-{i}"}}
            assert (await _json(http, "POST", CM, body))[0] == 201
        assert _alive(replacement)
        _, listed = await _json(http, "GET", CM)
        assert {f"after-{i}" for i in range(10)} <= {
            item["metadata"]["name"] for item in listed["items"]
        }
    assert _sockets(replacement) >= before


def test_kubectl_and_a_node_join_through_workers(tmp_path: Path) -> None:
    with server_process_running(tmp_path / "data", "--workers", "2") as running:
        assert running.process is not None
        assert len(_children(running.process.pid)) == 2
        running.kubectl("create", "configmap", "via-workers", "--from-literal=a=b")
        got = running.kubectl("get", "configmap", "via-workers", "-o", "json")
        assert json.loads(got.stdout)["data"] == {"a": "b"}
        log = (tmp_path / "data.log").read_text()
        join = next(line.strip() for line in log.splitlines() if "kubeboot join" in line)
        words = join.split()
        node = tmp_path / "node"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "kubeboot",
                *words[1:],
                "--node-name",
                "worker-joined",
                "--cert-dir",
                str(node / "pki"),
                "--kubeconfig",
                str(node / "kubelet.conf"),
                "--bootstrap-kubeconfig",
                str(node / "bootstrap-kubelet.conf"),
                "--no-daemon",
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        whoami = running.kubectl("auth", "whoami", "-o", "json", kubeconfig=node / "kubelet.conf")
        assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == (
            "system:node:worker-joined"
        )


def test_without_an_audit_log_workers_audit_nothing(tmp_path: Path) -> None:
    """An audited response carries Audit-ID; without --audit-log-path none may."""
    with server_process_running(tmp_path / "data", "--workers", "2") as running:
        ctx = ssl.create_default_context(cafile=str(running.ca_file))
        for _ in range(6):  # new connections: both workers answer some
            url = f"{running.url}/version"  # https, built here
            with urllib.request.urlopen(url, context=ctx) as resp:  # noqa: S310
                assert resp.status == 200
                assert resp.headers.get("Audit-ID") is None


def test_workers_exit_with_their_primary(tmp_path: Path) -> None:
    with server_process_running(tmp_path / "data", "--workers", "2") as running:
        assert running.process is not None
        workers = _children(running.process.pid)
        assert len(workers) == 2
        running.process.kill()  # no chance to stop them: they must notice the link drop
        running.process.wait()
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(p) for p in workers)
        host, port = running.url.removeprefix("https://").rsplit(":", 1)
        ctx = ssl.create_default_context(cafile=str(running.ca_file))
        with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=2) as s:
            ctx.wrap_socket(s, server_hostname=host).close()


def test_sigterm_stops_primary_and_workers_cleanly(tmp_path: Path) -> None:
    with server_process_running(tmp_path / "data", "--workers", "2") as running:
        assert running.process is not None
        workers = _children(running.process.pid)
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(timeout=20) == 0
        assert not any(_alive(p) for p in workers)
        assert not (tmp_path / "data" / "run" / "store.sock").exists()


def test_a_second_server_on_the_same_port_fails_instead_of_sharing_it(tmp_path: Path) -> None:
    with server_process_running(tmp_path / "first", "--workers", "2") as running:
        port = running.url.rsplit(":", 1)[1]
        second = subprocess.run(
            [
                *(sys.executable, "-m", "kubeboot", "server", "--workers", "2"),
                *("--data-dir", str(tmp_path / "second"), "--bind-address", "127.0.0.1"),
                *("--secure-port", port),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert second.stderr.strip() == (
            f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
        )
        running.kubectl("get", "namespaces")  # the first one still serves


def test_the_failed_auth_budget_is_shared_between_workers(tmp_path: Path) -> None:
    """Burst 10 over 2 workers: 10 wrong-token answers are 401, then 429, whichever worker."""
    flags = ["--workers", "2", "--failed-auth-burst", "10", "--failed-auth-rate", "0.01"]
    with server_process_running(tmp_path / "data", *flags) as running:
        ctx = ssl.create_default_context(cafile=str(running.ca_file))
        codes = []
        for _ in range(40):  # a new connection each: both workers see the flood
            request = urllib.request.Request(  # noqa: S310 - https, built here
                f"{running.url}/api/v1/namespaces",
                headers={"Authorization": "Bearer wrong-token-Zk27"},
            )
            try:
                urllib.request.urlopen(request, context=ctx, timeout=10)  # noqa: S310
            except urllib.error.HTTPError as err:
                codes.append(err.code)
                err.close()
        assert len(codes) == 40
        assert codes.count(401) == 10, codes
        assert codes.count(429) == 30
