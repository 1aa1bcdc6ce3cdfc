"""``kubeboot join`` against a real ``kubeboot server`` process: discovery and client bootstrap.

One server for the module (its first start prints the join command, which is what a user
copies); each test uses its own node name, so CSR counts are per test. The happy path checks
what the kubelet's layout promises (node-facts §1.8, §1.9) with independent tools: ``openssl
verify`` for the chain and real ``kubectl auth whoami`` for the kubeconfig. Each refusal is
checked for its message and for "nothing written to disk".
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import signal
import ssl
import stat
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeboot.pki.keys import dump_private_key_pem, generate_private_key
from tests.conftest import RunningServer, server_process_running
from tests.integration.agent.nodes import (
    AgentProcess,
    JoinInfo,
    NodePaths,
    conditions,
    create_token,
    join_info,
    leaf,
    node_csrs,
    openssl_verify,
    run_kubeboot,
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with server_process_running(tmp_path_factory.mktemp("cluster") / "data") as running:
        yield running


def _join(info: JoinInfo, node: NodePaths, *extra: str, endpoint: str | None = None) -> str:
    result = run_kubeboot(
        "join",
        endpoint or info.endpoint,
        "--token",
        info.token,
        *extra,
        "--discovery-timeout",
        "1s",
        "--no-daemon",
        *node.flags(),
    )
    return f"exit {result.returncode}\n{result.stdout}{result.stderr}"


def test_join_with_the_printed_pin_bootstraps_a_working_client_certificate(
    cluster: RunningServer, tmp_path: Path
) -> None:
    info = join_info(cluster)
    node = NodePaths(tmp_path, "worker-1")
    out = _join(info, node, "--discovery-token-ca-cert-hash", info.pin)
    assert out.startswith("exit 0"), out
    # (Auto-approval can beat the first look at the CSR, so "waiting" may not be printed.)
    assert "kubelet-client certificate issued by node-csr-" in out

    # The bootstrap kubeconfig (kubeadm's bootstrap-kubelet.conf): token user, pinned CA.
    boot = yaml.safe_load(node.bootstrap_kubeconfig.read_text())
    assert boot["users"] == [{"name": "tls-bootstrap-token-user", "user": {"token": info.token}}]
    ca_data = boot["clusters"][0]["cluster"]["certificate-authority-data"]
    assert base64.b64decode(ca_data) == cluster.ca_file.read_bytes()

    # The cert-dir: one timestamped pair, the -current symlink to its absolute path, no
    # pending key left behind; everything private.
    names = sorted(p.name for p in node.cert_dir.iterdir())
    assert len(names) == 2, names
    assert names[1] == "kubelet-client-current.pem"
    pair = node.cert_dir / names[0]
    assert pair.name.startswith("kubelet-client-2") and pair.suffix == ".pem"
    current = node.cert_dir / "kubelet-client-current.pem"
    assert current.is_symlink()
    assert Path(current.readlink()) == pair.absolute()
    for path in (pair, node.kubeconfig, node.bootstrap_kubeconfig):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    blocks = pair.read_text()
    assert blocks.index("BEGIN CERTIFICATE") < blocks.index("BEGIN EC PRIVATE KEY")

    # The certificate: chains to the cluster CA for client auth; the kubelet's subject and
    # usages for an ECDSA P-256 key (no key encipherment, kubernetes#111660).
    openssl_verify(cluster.ca_file, pair, "sslclient")
    cert = leaf(pair)
    assert cert.subject.rfc4514_string() == "CN=system:node:worker-1,O=system:nodes"
    key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert key_usage.digital_signature
    assert not key_usage.key_encipherment
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    public_key = cert.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert public_key.curve.name == "secp256r1"

    # The kubeconfig the kubelet would write, used by the real kubectl.
    conf = yaml.safe_load(node.kubeconfig.read_text())
    assert conf["current-context"] == "default-context"
    assert conf["users"] == [
        {
            "name": "default-auth",
            "user": {"client-certificate": str(current), "client-key": str(current)},
        }
    ]
    whoami = json.loads(
        cluster.kubectl("auth", "whoami", "-o", "json", kubeconfig=node.kubeconfig).stdout
    )
    user = whoami["status"]["userInfo"]
    assert user["username"] == "system:node:worker-1"
    assert "system:nodes" in user["groups"]

    # Exactly one CSR: made with the token, auto-approved by the controller manager.
    csrs = node_csrs(cluster, "worker-1")
    assert len(csrs) == 1, [c["metadata"]["name"] for c in csrs]
    token_id = info.token.split(".")[0]
    assert csrs[0]["spec"]["username"] == f"system:bootstrap:{token_id}"
    assert csrs[0]["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
    assert ("Approved", "AutoApproved") in conditions(csrs[0])


def test_wrong_pin_is_refused_and_the_message_shows_the_pin_found(
    cluster: RunningServer, tmp_path: Path
) -> None:
    info = join_info(cluster)
    node = NodePaths(tmp_path / "node", "worker-wrong-pin")
    wrong = ["sha256:" + "ab" * 32, "sha256:" + "cd" * 32]
    out = _join(
        info,
        node,
        "--discovery-token-ca-cert-hash",
        wrong[0],
        "--discovery-token-ca-cert-hash",
        wrong[1],
    )
    assert out.startswith("exit 1"), out
    assert (
        f"the cluster's CA {info.pin} matches none of the given pins ({wrong[0]}, {wrong[1]}); "
        "if this is your cluster, pass that hash as --discovery-token-ca-cert-hash" in out
    )
    assert node.files() == []
    assert node_csrs(cluster, "worker-wrong-pin") == []


@pytest.mark.parametrize(
    ("token_id", "signing", "expires"),
    [
        ("expird", True, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)),
        ("nosign", False, None),
    ],
    ids=["expired-token", "non-signing-token"],
)
def test_token_without_a_signature_is_refused(
    cluster: RunningServer,
    tmp_path: Path,
    token_id: str,
    signing: bool,
    expires: dt.datetime | None,
) -> None:
    info = join_info(cluster)
    token = create_token(cluster, token_id, "0123456789abcdef", signing=signing, expires=expires)
    node = NodePaths(tmp_path / "node", f"worker-{token_id}")
    result = run_kubeboot(
        "join",
        info.endpoint,
        "--token",
        token,
        "--discovery-token-ca-cert-hash",
        info.pin,
        "--discovery-timeout",
        "1s",
        "--no-daemon",
        *node.flags(),
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert f"no signature for token id {token_id!r} in cluster-info" in out
    assert "the token is unknown, expired, spent" in out
    assert "or not a signing token" in out
    assert node.files() == []


class _TamperingProxy(ThreadingHTTPServer):
    """A man in the middle: serves the real cluster-info with its kubeconfig edited (the
    server URL now points at the proxy), keeping the real, now non-matching, signature."""

    def __init__(self, upstream: str, tls: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _TamperingHandler)
        self.upstream = upstream
        self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.tampered = threading.Event()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"


class _TamperingHandler(BaseHTTPRequestHandler):
    server: _TamperingProxy

    def do_GET(self) -> None:
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        with urllib.request.urlopen(  # noqa: S310 (the URL is the test's own server)
            self.server.upstream + self.path, context=insecure
        ) as resp:
            body = json.loads(resp.read())
        if body.get("kind") == "ConfigMap" and "kubeconfig" in body.get("data", {}):
            original = body["data"]["kubeconfig"]
            body["data"]["kubeconfig"] = original.replace(self.server.upstream, self.server.url)
            if body["data"]["kubeconfig"] != original:
                self.server.tampered.set()
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _self_signed(tmp_path: Path) -> ssl.SSLContext:
    key = generate_private_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    pem = tmp_path / "attacker.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + dump_private_key_pem(key))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pem))
    return ctx


def test_tampered_cluster_info_is_refused(cluster: RunningServer, tmp_path: Path) -> None:
    info = join_info(cluster)
    proxy = _TamperingProxy(cluster.url, _self_signed(tmp_path))
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        node = NodePaths(tmp_path / "node", "worker-tampered")
        out = _join(
            info,
            node,
            "--discovery-token-ca-cert-hash",
            info.pin,
            endpoint=proxy.url.removeprefix("https://"),
        )
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join()
    assert proxy.tampered.is_set()
    assert out.startswith("exit 1"), out
    assert "failed to verify the JWS signature of cluster-info" in out
    assert "do not trust this API server" in out
    assert node.files() == []


def _context_switches(pid: int) -> int:
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        for line in status.read_text().splitlines():
            if "ctxt_switches:" in line:
                total += int(line.split()[1])
    return total


def test_idle_agent_does_not_wake_up(cluster: RunningServer, tmp_path: Path) -> None:
    """Between rotations nothing may wake the agent: no poll, no keep-alive timer (aiohttp's
    closed-transport cleanup ran every 2 s while a session lived)."""
    info = join_info(cluster)
    node = NodePaths(tmp_path / "node", "idle-1")
    with AgentProcess(
        tmp_path / "agent.log",
        *info.join_args,
        *node.flags(),
        "--stay-resident",  # the full agent; the sleeper is test_hibernation.py's
    ) as proc:
        proc.wait_for(r"\] wrote " + str(node.kubeconfig))
        deadline = time.monotonic() + 20
        # Registered: created, then its status (addresses) patched; the last request.
        jsonpath = "-o=jsonpath={.status.addresses[*].address}"
        while (
            "idle-1" not in cluster.kubectl("get", "node", "idle-1", jsonpath, check=False).stdout
        ):
            assert time.monotonic() < deadline, proc.output()
            time.sleep(0.1)
        # Let the agent handle that last response: a quiet second (not a fixed sleep, which
        # a loaded machine can outlast), bounded; an agent that never goes quiet fails here.
        settle = time.monotonic() + 20
        before = -1
        while (now := _context_switches(proc.proc.pid)) != before:
            assert time.monotonic() < settle, f"never a quiet second:\n{proc.output()}"
            before = now
            time.sleep(1.0)
        time.sleep(5.0)
        woke = _context_switches(proc.proc.pid) - before
        assert proc.proc.poll() is None
        start = time.monotonic()
        proc.proc.send_signal(signal.SIGTERM)
        code = proc.proc.wait(timeout=10)
    assert woke == 0, f"{woke} context switches in 5 s of idling"
    assert "sleeping until then" not in proc.output()
    # A supervisor's stop is not a failure: the resident agent cancels its work and exits 0.
    assert code == 0, proc.output()
    assert time.monotonic() - start < 5
    assert "SIGTERM: stopping" in proc.output()
