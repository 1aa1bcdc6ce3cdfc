"""The server's own certificates over a cluster's life, with real processes.

* a restart on another port reconciles admin.conf, cluster-info and the serving certificate,
  and a ``kubeboot join`` at the new port works;
* ``kubeboot certs check-expiration`` / ``renew`` on a data dir made on a warped clock;
* automatic renewal at 2/3 of the serving certificate's life with the server up and two
  worker processes: new TLS handshakes on every worker present the new certificate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from kubeboot.api.server.serve import Server
from kubeboot.clock import FakeClock
from kubeboot.pki.renewal import admin_conf_certificate
from tests.conftest import server_config, server_process_running
from tests.integration.agent.nodes import NodePaths, join_info, run_kubeboot

KUBEBOOT = [sys.executable, "-m", "kubeboot"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _presented(port: int) -> bytes:
    """The DER of the certificate a new TLS handshake on ``port`` presents."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def _server_of(kubeconfig_text: str) -> str:
    return str(yaml.safe_load(kubeconfig_text)["clusters"][0]["cluster"]["server"])


def test_restart_on_a_new_port_then_join(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with server_process_running(data) as first:
        old_url = first.url
    port = _free_port()
    with server_process_running(data, "--secure-port", str(port), "--tls-san", "kb.test") as again:
        log = data.with_suffix(".log").read_text()
        url = f"https://127.0.0.1:{port}"
        assert again.url == url
        assert _server_of((data / "admin.conf").read_text()) == url
        assert f"admin.conf: server changed from {old_url} to {url}" in log
        assert "reissued the serving certificate" in log and "kb.test" in log
        cert = x509.load_pem_x509_certificate((data / "pki" / "apiserver.crt").read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "kb.test" in san.get_values_for_type(x509.DNSName)
        cm = again.kubectl("get", "configmap", "-n", "kube-public", "cluster-info", "-o", "yaml")
        assert _server_of(yaml.safe_load(cm.stdout)["data"]["kubeconfig"]).endswith(f":{port}")
        # A join at the new port: discovery, then the bootstrap kubeconfig it writes.
        info = join_info(again)
        assert info.endpoint.endswith(f":{port}")
        node = NodePaths(tmp_path / "node", "moved-1")
        joined = run_kubeboot(*info.join_args, "--no-daemon", *node.flags(), timeout=90)
        assert joined.returncode == 0, joined.stdout + joined.stderr
        assert _server_of(node.bootstrap_kubeconfig.read_text()).endswith(f":{port}")
        assert node.kubeconfig.exists()
    # A third start with the same flags changes nothing.
    with server_process_running(data, "--secure-port", str(port), "--tls-san", "kb.test"):
        log = data.with_suffix(".log").read_text()
        assert "admin.conf: server changed" not in log
        assert "reissued the serving certificate" not in log
        assert "cluster-info updated" not in log


def test_user_supplied_serving_pair_is_left_alone_with_a_warning(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with server_process_running(data):
        pass
    mine = tmp_path / "mine"
    mine.mkdir()
    for name in ("apiserver.crt", "apiserver.key"):
        (mine / name).write_bytes((data / "pki" / name).read_bytes())
    before = (mine / "apiserver.crt").read_bytes()
    flags = ["--tls-cert-file", str(mine / "apiserver.crt")]
    flags += ["--tls-private-key-file", str(mine / "apiserver.key"), "--tls-san", "other.test"]
    with server_process_running(data, *flags):
        log = data.with_suffix(".log").read_text()
    assert (mine / "apiserver.crt").read_bytes() == before
    assert re.search(
        r"^W\d{4} .*\] the serving certificate .*apiserver.crt \(--tls-cert-file\) does "
        r"not name other.test",
        log,
        re.M,
    ), log
    report = subprocess.run(
        [*KUBEBOOT, "certs", "check-expiration", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert re.search(r"^apiserver\s+.*\s+ca\s+yes\s*$", report.stdout, re.M), report.stdout
    refused = subprocess.run(
        [*KUBEBOOT, "certs", "renew", "apiserver", "--data-dir", str(data)],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1
    assert "apiserver is externally managed" in refused.stderr
    assert (mine / "apiserver.crt").read_bytes() == before


async def test_check_expiration_and_renew_on_a_warped_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # Made 400 days ago: admin.conf and apiserver (one year) have expired, the CA has not.
    past = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=400)
    srv = Server(server_config(data), clock=FakeClock(past))
    await srv.start()
    await srv.stop()
    report = await _run("certs", "check-expiration", "--data-dir", str(data))
    lines = report.splitlines()
    assert lines[0] == (
        "CERTIFICATE   EXPIRES                  RESIDUAL TIME   CERTIFICATE AUTHORITY   "
        "EXTERNALLY MANAGED"
    )
    # One year less the 5 minutes the signing policy takes off long lifetimes.
    expired = (past + dt.timedelta(days=365, minutes=-5)).strftime("%b %d, %Y %H:%M UTC")
    assert lines[1] == f"admin.conf    {expired}   <invalid>       ca                      no      "
    assert lines[2] == f"apiserver     {expired}   <invalid>       ca                      no      "
    assert lines[3] == ""
    assert (
        lines[4]
        == "CERTIFICATE AUTHORITY   EXPIRES                  RESIDUAL TIME   EXTERNALLY MANAGED"
    )
    assert re.fullmatch(
        r"ca                      \w{3} \d\d, \d{4} \d\d:\d\d UTC   8y              no      ",
        lines[5],
    )

    renewed = await _run("certs", "renew", "all", "--data-dir", str(data))
    assert renewed.splitlines()[:2] == [
        "certificate embedded in the kubeconfig file for the admin to use and for kubeboot "
        "itself renewed",
        "certificate for serving the Kubernetes API renewed",
    ]
    report = await _run("certs", "check-expiration", "--data-dir", str(data))
    assert re.search(r"^admin.conf\s+.*\s+(364d|365d)\s+ca\s+no", report, re.M), report
    assert re.search(r"^apiserver\s+.*\s+(364d|365d)\s+ca\s+no", report, re.M), report
    admin = admin_conf_certificate(data / "admin.conf")
    assert admin is not None
    assert admin.subject.rfc4514_string() == "CN=kubernetes-admin,O=system:masters"
    # The renewed admin.conf works against the server.
    with server_process_running(data) as running:
        assert "kubernetes-admin" in running.kubectl("auth", "whoami").stdout


async def _run(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *KUBEBOOT, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_serving_certificate_renewed_and_reloaded_by_every_worker(tmp_path: Path) -> None:
    data = tmp_path / "data"
    now = dt.datetime.now(dt.UTC)
    # The server first started 250 days ago: its one-year serving certificate is past 2/3.
    clock = FakeClock(now - dt.timedelta(days=250))
    config = server_config(
        data, workers=2, certificate_check_interval=0.2, serving_reload_interval=0.2
    )
    srv = Server(config, clock=clock)
    await srv.start()
    try:
        old = (data / "pki" / "apiserver.crt").read_bytes()
        old_cert = x509.load_pem_x509_certificate(old)
        for _ in range(6):  # both workers accept from one queue: several handshakes
            assert await asyncio.to_thread(_presented, srv.port) == old_cert.public_bytes(ssl_der())
        clock.advance(250 * 86400)  # now: 2/3 of the life has passed
        deadline = time.monotonic() + 30
        while (data / "pki" / "apiserver.crt").read_bytes() == old:
            assert time.monotonic() < deadline, "the serving certificate was not renewed"
            await asyncio.sleep(0.1)
        new_cert = x509.load_pem_x509_certificate((data / "pki" / "apiserver.crt").read_bytes())
        assert new_cert.serial_number != old_cert.serial_number
        assert new_cert.not_valid_before_utc > now - dt.timedelta(minutes=10)
        new_der = new_cert.public_bytes(ssl_der())
        deadline = time.monotonic() + 30
        seen: list[bytes] = []
        while len(seen) < 12 or any(der != new_der for der in seen[-12:]):
            assert time.monotonic() < deadline, "a worker still presents the old certificate"
            seen.append(await asyncio.to_thread(_presented, srv.port))
        assert srv.workers is not None and len(srv.workers.pids) == 2  # no worker restarted
    finally:
        await srv.stop()


def ssl_der() -> Encoding:
    return Encoding.DER
