"""Serving bootstrap with manual approval, rotation, expiry while offline, against a real
``kubeboot server --cluster-signing-duration=15m``.

15 minutes is below the signer's 8 h threshold, so a certificate is backdated by 5 minutes
and not shortened (pki/authority ``validity_window``): NotBefore = t - 5 min, NotAfter =
t + 15 min, a 20-minute life whose rotation deadline is NotBefore + U[0.7, 0.9) x 20 min,
i.e. t + 9 to 13 min. The rotation test runs the agent in-process with a clock 9 min ahead
(minus a second and a half) and a draw of 0, so the real wait is about a second: the
certificate, the CSR, the approval and the signature are all real, only the agent's sense
of "now" is moved.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import json
import random
import shlex
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from kubeboot.agent.certstore import CertStore
from kubeboot.agent.constants import CLIENT_PREFIX
from kubeboot.agent.daemon import Agent, AgentOptions
from kubeboot.agent.kubeconfigs import (
    bootstrap_kubeconfig,
    kubelet_kubeconfig,
    write_kubeconfig,
)
from kubeboot.clock import SystemClock, parse_time
from tests.conftest import RunningServer, server_process_running
from tests.integration.agent.nodes import (
    AgentProcess,
    NodePaths,
    conditions,
    issue_with_cluster_ca,
    join_info,
    kubectl_json,
    leaf,
    node_csrs,
    openssl_verify,
    run_kubeboot,
)

SERVING_HINT = "waiting for serving certificate signing request"
SERVING_WAIT = (
    r"waiting for serving certificate signing request .*; "
    r"approve it with: (kubectl certificate approve (node-csr-[A-Za-z0-9_-]+))$"
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with server_process_running(
        tmp_path_factory.mktemp("short") / "data", "--cluster-signing-duration=15m"
    ) as running:
        yield running


def _join_daemon(cluster: RunningServer, node: NodePaths, log: Path, *extra: str) -> AgentProcess:
    info = join_info(cluster)
    return AgentProcess(
        log,
        *info.join_args,
        *node.flags(),
        *extra,
    )


def _events(cluster: RunningServer, node: str) -> list[tuple[str, str, str]]:
    items = kubectl_json(cluster, "get", "events", "-n", "default")["items"]
    return [
        (e["type"], e["reason"], e["message"]) for e in items if e["involvedObject"]["name"] == node
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(address: str) -> dict[str, str]:
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as resp:
                text = resp.read().decode()
            break
        except OSError:
            assert time.monotonic() < deadline, f"no /metrics on {address}"
            time.sleep(0.05)
    return dict(line.split(" ", 1) for line in text.splitlines() if not line.startswith("#"))


def _wait_file(path: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def test_serving_certificate_after_manual_approval_with_the_printed_command(
    cluster: RunningServer, tmp_path: Path
) -> None:
    node = NodePaths(tmp_path / "node", "srv-1")
    serving = node.cert_dir / "kubelet-server-current.pem"
    metrics = f"127.0.0.1:{_free_port()}"
    flags = ["--rotate-server-certificates", "--node-ip", "10.0.0.5", "--node-ip", "fd00::5"]
    with _join_daemon(cluster, node, tmp_path / "join.log", *flags) as joined:
        first_name = joined.wait_for(SERVING_WAIT).group(2)
        # kill -9 while the serving CSR waits for a person (the join's agent dies).
    log = tmp_path / "agent.log"
    with AgentProcess(
        log, "agent", *node.flags(), *flags, "--metrics-bind-address", metrics
    ) as proc:
        m = proc.wait_for(SERVING_WAIT)
        command, name = m.group(1), m.group(2)
        assert name == first_name  # the pending key was reused: the same CSR, adopted
        assert "(resumed)" in proc.output()
        assert not serving.exists()
        assert _scrape(metrics)["kubelet_certificate_manager_server_ttl_seconds"] == "+Inf"
        # The exact command the agent printed, run with the admin's credentials.
        argv = shlex.split(command)
        assert argv[0] == "kubectl"
        cluster.kubectl(*argv[1:])
        _wait_file(serving)
        proc.wait_for(rf"kubelet-server certificate issued by {name}")
        scraped = _scrape(metrics)
        # 15 minutes from issue, as the server's --cluster-signing-duration says.
        assert 800 < float(scraped["kubelet_certificate_manager_server_ttl_seconds"]) <= 900
        assert 800 < float(scraped["kubelet_certificate_manager_client_ttl_seconds"]) <= 900
        assert scraped["kubelet_server_expiration_renew_errors"] == "0.0"
        # The agent posts the CertificateIssued Event after printing the line: leaving this
        # block kills it, so wait (bounded) for the Event first, or a loaded machine loses it.
        deadline = time.monotonic() + 20
        while not any(r == "CertificateIssued" for _, r, _ in _events(cluster, "srv-1")):
            assert time.monotonic() < deadline, proc.output()
            time.sleep(0.1)

    openssl_verify(cluster.ca_file, serving, "sslserver")
    cert = leaf(serving)
    assert cert.subject.rfc4514_string() == "CN=system:node:srv-1,O=system:nodes"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["srv-1"]
    assert sorted(map(str, san.get_values_for_type(x509.IPAddress))) == ["10.0.0.5", "fd00::5"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert serving.resolve().name.startswith("kubelet-server-2")

    serving_csrs = [
        c
        for c in node_csrs(cluster, "srv-1")
        if c["spec"]["signerName"] == "kubernetes.io/kubelet-serving"
    ]
    assert [c["metadata"]["name"] for c in serving_csrs] == [name]
    csr = serving_csrs[0]
    assert csr["spec"]["signerName"] == "kubernetes.io/kubelet-serving"
    assert csr["spec"]["username"] == "system:node:srv-1"
    assert ("Approved", "KubectlApprove") in conditions(csr)
    # The Node the approver checks SANs against, and the Events of the exchange.
    addresses = kubectl_json(cluster, "get", "node", "srv-1")["status"]["addresses"]
    assert {"type": "InternalIP", "address": "10.0.0.5"} in addresses
    assert {"type": "Hostname", "address": "srv-1"} in addresses
    events = _events(cluster, "srv-1")
    assert {"CertificateWaiting", "CertificateIssued"} <= {reason for _, reason, _ in events}
    # Events leave the node: no absolute path of its files in any of them.
    assert not [message for _, _, message in events if str(tmp_path) in message]


def test_denied_serving_request_is_reported_and_not_retried_in_a_loop(
    cluster: RunningServer, tmp_path: Path
) -> None:
    node = NodePaths(tmp_path / "node", "srv-denied")
    with _join_daemon(
        cluster,
        node,
        tmp_path / "agent.log",
        "--rotate-server-certificates",
        "--node-ip",
        "10.0.0.6",
    ) as proc:
        name = proc.wait_for(SERVING_WAIT).group(2)
        cluster.kubectl("certificate", "deny", name)
        proc.wait_for(rf"certificate signing request {name} was denied: KubectlDeny: ")
        proc.wait_for(r"retrying the serving certificate request in 300s")
        time.sleep(2.0)
        serving = [
            c
            for c in node_csrs(cluster, "srv-denied")
            if c["spec"]["signerName"] == "kubernetes.io/kubelet-serving"
        ]
        assert [c["metadata"]["name"] for c in serving] == [name]
        assert proc.output().count("retrying the serving certificate request") == 1
    warnings = [(r, m) for t, r, m in _events(cluster, "srv-denied") if t == "Warning"]
    assert warnings == [
        (
            "CertificateDenied",
            f"certificate signing request {name} was denied: KubectlDeny: "
            "This CSR was denied by kubectl certificate deny.",
        )
    ]


class _AheadClock(SystemClock):
    """The real clock, ``ahead`` in the future (only the agent uses it)."""

    def __init__(self, ahead: dt.timedelta) -> None:
        self.ahead = ahead

    def now(self) -> dt.datetime:
        return super().now() + self.ahead


class _FixedDraw(random.Random):
    def random(self) -> float:
        return 0.0


def _say_until_rotated(lines: list[str], clock: _AheadClock) -> Callable[[str], None]:
    """The agent's ``say``: records each line, and at the second client certificate (the
    rotation under test) sets the agent's clock back to real time. ``say`` runs inside the
    agent's own step, before it draws the new certificate's deadline, so that deadline is
    9 minutes away; set from the test's polling loop instead, the agent may already have
    drawn it on the ahead clock and rotated again 1.5 s later (a third CSR under load)."""

    def say(line: str) -> None:
        lines.append(line)
        if sum("kubelet-client certificate issued" in x for x in lines) == 2:
            clock.ahead = dt.timedelta(0)

    return say


def _bootstrap_files(cluster: RunningServer, node: NodePaths) -> None:
    token = join_info(cluster).token
    write_kubeconfig(
        node.bootstrap_kubeconfig,
        bootstrap_kubeconfig(cluster.url, cluster.ca_file.read_bytes(), token),
    )


async def test_client_rotation_at_the_deadline_from_the_signing_duration(
    cluster: RunningServer, tmp_path: Path
) -> None:
    node = NodePaths(tmp_path / "node", "rot-1")
    _bootstrap_files(cluster, node)
    lines: list[str] = []
    agent = Agent(
        AgentOptions(
            kubeconfig=node.kubeconfig,
            bootstrap_kubeconfig=node.bootstrap_kubeconfig,
            cert_dir=node.cert_dir,
            node_name="rot-1",
        ),
        clock := _AheadClock(dt.timedelta(minutes=9) - dt.timedelta(seconds=1.5)),
        say=_say_until_rotated(lines, clock),
        rng=_FixedDraw(),
    )
    task = asyncio.create_task(agent.run())
    try:
        async with asyncio.timeout(30):
            while sum("kubelet-client certificate issued" in line for line in lines) < 2:
                assert not task.done(), lines
                await asyncio.sleep(0.05)
            rotated = False
            while not rotated:
                await asyncio.sleep(0.05)
                events = await _events_async(cluster)
                rotated = any(reason == "CertificateRotated" for _, reason, _ in events)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    pairs = sorted(p for p in node.cert_dir.glob("kubelet-client-2*.pem"))
    assert len(pairs) == 2, lines
    first, second = (leaf(p) for p in pairs)
    current = node.cert_dir / "kubelet-client-current.pem"
    assert current.resolve() == pairs[1]
    # The server's duration, backdated but not shortened: 20 minutes of validity.
    for cert in (first, second):
        assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(minutes=20)
    csrs = sorted(node_csrs(cluster, "rot-1"), key=lambda c: c["metadata"]["creationTimestamp"])
    assert len(csrs) == 2
    bootstrap_csr, renewal = csrs
    assert bootstrap_csr["spec"]["username"].startswith("system:bootstrap:")
    # Renewed with the node's own certificate: the "selfnodeclient" auto-approval.
    assert renewal["spec"]["username"] == "system:node:rot-1"
    assert ("Approved", "AutoApproved") in conditions(renewal)
    # Not renewed before the deadline: NotBefore + 0.7 x 20 min on the agent's clock, which
    # is issue + 1.5 s on the real one.
    renewed_at = parse_time(renewal["metadata"]["creationTimestamp"])
    issued_at = first.not_valid_before_utc + dt.timedelta(minutes=5)
    assert issued_at + dt.timedelta(seconds=1) <= renewed_at <= issued_at + dt.timedelta(seconds=15)
    # The kubeconfig follows the symlink: kubectl now presents the renewed certificate.
    whoami = json.loads(
        cluster.kubectl("auth", "whoami", "-o", "json", kubeconfig=node.kubeconfig).stdout
    )
    assert whoami["status"]["userInfo"]["username"] == "system:node:rot-1"


async def _events_async(cluster: RunningServer) -> list[tuple[str, str, str]]:
    return await asyncio.to_thread(_events, cluster, "rot-1")


def test_expired_while_offline_bootstraps_again(cluster: RunningServer, tmp_path: Path) -> None:
    node = NodePaths(tmp_path / "node", "offline-1")
    _bootstrap_files(cluster, node)
    # What a node finds after a long power-off: a pair the cluster CA issued, expired an
    # hour ago, in the kubelet layout, and the kubeconfig pointing at it.
    now = dt.datetime.now(dt.UTC)
    cert_pem, key_pem = issue_with_cluster_ca(
        cluster, "system:node:offline-1", now - dt.timedelta(hours=2), now - dt.timedelta(hours=1)
    )
    store = CertStore(node.cert_dir, CLIENT_PREFIX)
    old = store.install(cert_pem, key_pem, now - dt.timedelta(hours=2))
    cluster_entry = {"server": cluster.url, "certificate-authority": str(cluster.ca_file)}
    write_kubeconfig(node.kubeconfig, kubelet_kubeconfig(cluster_entry, store.current_path))
    assert cluster.kubectl("get", "ns", kubeconfig=node.kubeconfig, check=False).returncode != 0

    with AgentProcess(tmp_path / "agent.log", "agent", *node.flags()) as proc:
        proc.wait_for(r"expired at .*; bootstrapping a client certificate")
        proc.wait_for(r"\] wrote " + str(node.kubeconfig))
    new = store.current_path.resolve()
    assert new != old
    assert old.exists()  # kept: the newest three pairs stay
    assert leaf(new).not_valid_after_utc > now
    whoami = json.loads(
        cluster.kubectl("auth", "whoami", "-o", "json", kubeconfig=node.kubeconfig).stdout
    )
    assert whoami["status"]["userInfo"]["username"] == "system:node:offline-1"
    assert len(node_csrs(cluster, "offline-1")) == 1


def test_expired_without_a_bootstrap_kubeconfig_says_to_join_again(
    cluster: RunningServer, tmp_path: Path
) -> None:
    node = NodePaths(tmp_path / "node", "offline-2")
    now = dt.datetime.now(dt.UTC)
    cert_pem, key_pem = issue_with_cluster_ca(
        cluster, "system:node:offline-2", now - dt.timedelta(hours=2), now - dt.timedelta(hours=1)
    )
    store = CertStore(node.cert_dir, CLIENT_PREFIX)
    store.install(cert_pem, key_pem, now - dt.timedelta(hours=2))
    cluster_entry = {"server": cluster.url, "certificate-authority": str(cluster.ca_file)}
    write_kubeconfig(node.kubeconfig, kubelet_kubeconfig(cluster_entry, store.current_path))
    result = run_kubeboot("agent", *node.flags())
    assert result.returncode == 1
    assert "expired at" in result.stderr
    assert "run `kubeboot join` again with a new token" in result.stderr
    assert node_csrs(cluster, "offline-2") == []


async def test_client_rotation_while_a_serving_request_waits_keeps_the_wait(
    cluster: RunningServer, tmp_path: Path
) -> None:
    """The client certificate rotates (new credentials, connections closed) while the
    serving CSR waits for a person: the wait goes on with the new credentials, no failure is
    reported, no second serving CSR is made, and no old session is left open."""
    node = NodePaths(tmp_path / "node", "rot-srv")
    _bootstrap_files(cluster, node)
    lines: list[str] = []
    agent = Agent(
        AgentOptions(
            kubeconfig=node.kubeconfig,
            bootstrap_kubeconfig=node.bootstrap_kubeconfig,
            cert_dir=node.cert_dir,
            node_name="rot-srv",
            node_ips=["10.0.0.7"],
            rotate_server_certificates=True,
        ),
        clock := _AheadClock(dt.timedelta(minutes=9) - dt.timedelta(seconds=1.5)),
        say=_say_until_rotated(lines, clock),  # one rotation is the point
        rng=_FixedDraw(),
    )

    async def until(predicate: Callable[[], bool]) -> None:
        while not predicate():
            assert not task.done(), lines
            await asyncio.sleep(0.05)

    task = asyncio.create_task(agent.run())
    try:
        async with asyncio.timeout(30):
            await until(lambda: any(SERVING_HINT in line for line in lines))
            name = next(line for line in lines if SERVING_HINT in line).split()[-1]
            await until(lambda: sum("kubelet-client certificate issued" in x for x in lines) >= 2)
            assert clock.ahead == dt.timedelta(0)  # the next rotation is 9 min away
            await asyncio.to_thread(cluster.kubectl, "certificate", "approve", name)
            await until(lambda: any("kubelet-server certificate issued" in x for x in lines))
            # One client, one session: none left behind holding the old certificate (a swap
            # in flight may hold two for a moment under load; a leak never gets back to one).
            await until(lambda: _open_client_sessions() <= 1)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    assert not [line for line in lines if line.startswith("kubelet-server: ")], lines
    serving = [
        c
        for c in node_csrs(cluster, "rot-srv")
        if c["spec"]["signerName"] == "kubernetes.io/kubelet-serving"
    ]
    assert [c["metadata"]["name"] for c in serving] == [name]


def test_a_renamed_node_does_not_keep_the_old_identity(
    cluster: RunningServer, tmp_path: Path
) -> None:
    old = NodePaths(tmp_path / "node", "rename-a")
    info = join_info(cluster)
    joined = run_kubeboot(
        *info.join_args,
        "--no-daemon",
        *old.flags(),
    )
    assert joined.returncode == 0, joined.stdout + joined.stderr
    # Same files, new --node-name: the kubeconfig and the stored pair are rename-a's.
    new = NodePaths(tmp_path / "node", "rename-b")
    with AgentProcess(tmp_path / "agent.log", "agent", *new.flags()) as proc:
        proc.wait_for(
            r"certificate is for system:node:rename-a, not system:node:rename-b "
            r"\(was the node name changed\?\); bootstrapping a client certificate"
        )
        proc.wait_for(r"\] wrote " + str(new.kubeconfig))
    whoami = json.loads(
        cluster.kubectl("auth", "whoami", "-o", "json", kubeconfig=new.kubeconfig).stdout
    )
    assert whoami["status"]["userInfo"]["username"] == "system:node:rename-b"


async def test_clock_far_ahead_backs_off_instead_of_bootstrapping_in_a_loop(
    cluster: RunningServer, tmp_path: Path
) -> None:
    """A node clock 25 min ahead of a signer issuing 15-min certificates: every new
    certificate is expired on arrival. The agent says so and backs off."""
    node = NodePaths(tmp_path / "node", "skewed-1")
    _bootstrap_files(cluster, node)
    lines: list[str] = []
    agent = Agent(
        AgentOptions(
            kubeconfig=node.kubeconfig,
            bootstrap_kubeconfig=node.bootstrap_kubeconfig,
            cert_dir=node.cert_dir,
            node_name="skewed-1",
        ),
        _AheadClock(dt.timedelta(minutes=25)),
        say=lines.append,
        rng=_FixedDraw(),
    )
    task = asyncio.create_task(agent.run())
    try:
        async with asyncio.timeout(30):
            while not any("is this node's clock right?" in line for line in lines):
                assert not task.done(), lines
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # the first back-off is 2 s: nothing new meanwhile
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert any("retrying the client certificate request in 2s" in line for line in lines)
    # One at start, one for the in-process re-bootstrap; not one per loop turn.
    assert len(await asyncio.to_thread(node_csrs, cluster, "skewed-1")) == 2


def _open_client_sessions() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, aiohttp.ClientSession) and not o.closed)
