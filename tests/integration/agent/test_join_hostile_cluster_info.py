"""``kubeboot join`` against a hostile but correctly signed cluster-info (issue 14).

A server that holds the token can sign anything. Its answer must never crash the join,
never make the node read a local file the server names (kubeadm trusts embedded CA data
only), and never leave anything on disk: each case is one clear line and exit 1.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

from kubeboot.cli.join import join
from kubeboot.clock import SystemClock
from kubeboot.pki.authority import create_self_signed_ca
from kubeboot.pki.b64url import b64url_encode
from kubeboot.pki.jws import detached_jws
from kubeboot.pki.keys import dump_private_key_pem
from kubeboot.pki.kubeconfig import cluster_info_kubeconfig
from kubeboot.pki.pem import encode_pem
from kubeboot.pki.pins import spki_pin

TOKEN_ID, TOKEN_SECRET = "abcdef", "0123456789abcdef"
TOKEN = f"{TOKEN_ID}.{TOKEN_SECRET}"


class HostileServer:
    """An HTTPS server answering cluster-info with whatever the test sets (in a thread)."""

    def __init__(self, tmp: Path) -> None:
        clock = SystemClock()
        self.ca = create_self_signed_ca(clock=clock)
        cert, key = self.ca.issue_serving_cert(
            common_name="hostile",
            dns_names=["localhost"],
            ips=[ipaddress.ip_address("127.0.0.1")],
            clock=clock,
        )
        self.cert_file, self.key_file = tmp / "srv.crt", tmp / "srv.key"
        self.cert_file.write_bytes(
            encode_pem("CERTIFICATE", cert.public_bytes(serialization.Encoding.DER))
        )
        self.key_file.write_bytes(dump_private_key_pem(key))
        self.ca_pem = encode_pem(
            "CERTIFICATE", self.ca.certificate.public_bytes(serialization.Encoding.DER)
        )
        self.pin = spki_pin(self.ca.certificate)
        self.configmap: dict[str, Any] = {}
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def cluster_info(_: web.Request) -> web.Response:
            return web.json_response(self.configmap)

        async def start() -> web.AppRunner:
            app = web.Application()
            app.router.add_get(
                "/api/v1/namespaces/kube-public/configmaps/cluster-info", cluster_info
            )
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(self.cert_file, self.key_file)
            site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
            await site.start()
            port = runner.addresses[0][1]
            self.url = f"https://127.0.0.1:{port}"
            return runner

        asyncio.set_event_loop(self._loop)
        self.runner = self._loop.run_until_complete(start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.runner.cleanup())
        self._loop.close()

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(30)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)

    def serve(self, kubeconfig: Any, *, data: Any = None, kid: str = TOKEN_ID) -> None:
        """cluster-info holding ``kubeconfig``, signed for our token (``kid`` may lie)."""
        text = kubeconfig if isinstance(kubeconfig, str) else json.dumps(kubeconfig)
        jws = detached_jws(text, TOKEN_ID, TOKEN_SECRET)
        if kid != TOKEN_ID:
            header = b64url_encode(json.dumps({"alg": "HS256", "kid": kid}).encode())
            jws = header + jws[jws.index(".") :]
        body = data if data is not None else {"kubeconfig": text, f"jws-kubeconfig-{TOKEN_ID}": jws}
        self.configmap = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cluster-info"},
            "data": body,
        }


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[HostileServer]:
    server = HostileServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _cluster(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Config", "clusters": [{"name": "", "cluster": fields}]}


def _join(hostile: HostileServer, node: Path, *extra: str) -> Any:
    args = [
        hostile.url.removeprefix("https://"),
        "--token",
        TOKEN,
        "--discovery-token-ca-cert-hash",
        hostile.pin,
        "--discovery-timeout",
        "10s",
        "--bootstrap-kubeconfig",
        str(node / "etc" / "bootstrap.conf"),
        "--kubeconfig",
        str(node / "etc" / "kubelet.conf"),
        "--cert-dir",
        str(node / "pki"),
        "--node-name",
        "n1",
        "--no-daemon",
        *extra,
    ]
    return CliRunner().invoke(join, args)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("cluster-is-a-string", "its first cluster entry is not a map"),
        ("ca-data-not-base64", "certificate-authority-data is not base64"),
        ("data-is-a-list", "data is not a map of strings"),
        ("non-ascii-kid", "the JWS key id does not match token abcdef"),
        ("ca-file-named-by-server", "only embedded certificate-authority-data is trusted"),
        ("alias-bomb", "excessive aliasing"),
        ("not-yaml", "cluster-info holds no usable kubeconfig"),
    ],
)
def test_hostile_cluster_info_is_one_clear_line(
    hostile: HostileServer, tmp_path: Path, case: str, message: str
) -> None:
    node = tmp_path / "node"
    node.mkdir()
    sentinel = tmp_path / "local-ca.pem"  # a CA the pin matches, on the node's disk
    sentinel.write_bytes(hostile.ca_pem)
    bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]\n"
        for i in range(6)
    )
    if case == "cluster-is-a-string":
        hostile.serve({"clusters": ["a string"]})
    elif case == "ca-data-not-base64":
        hostile.serve(
            _cluster(server=hostile.url, **{"certificate-authority-data": "!!not base64"})
        )
    elif case == "data-is-a-list":
        hostile.serve("", data=["kubeconfig"])
    elif case == "non-ascii-kid":
        hostile.serve(cluster_info_kubeconfig(hostile.url, hostile.ca_pem), kid="äbcdef")
    elif case == "ca-file-named-by-server":
        hostile.serve(_cluster(server=hostile.url, **{"certificate-authority": str(sentinel)}))
    elif case == "alias-bomb":
        hostile.serve(bomb)
    else:
        hostile.serve("{not: [yaml")
    result = _join(hostile, node)
    assert result.exit_code == 1, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert list(node.iterdir()) == []  # nothing written


@pytest.mark.parametrize(
    "case", ["cert-dir-is-a-file", "pem-is-a-directory", "kubeconfig-is-a-directory"]
)
def test_unusable_paths_say_what_to_fix_before_anything_is_written(
    hostile: HostileServer, tmp_path: Path, case: str
) -> None:
    node = tmp_path / "node"
    node.mkdir()
    hostile.serve(cluster_info_kubeconfig(hostile.url, hostile.ca_pem))
    if case == "cert-dir-is-a-file":
        (node / "pki").write_text("not a directory")
        expect = "is a file, not a directory"
    elif case == "pem-is-a-directory":
        (node / "pki" / "kubelet-client-current.pem").mkdir(parents=True)
        expect = "kubelet-client-current.pem is a directory"
    else:
        (node / "etc" / "bootstrap.conf").mkdir(parents=True)
        expect = "bootstrap.conf is a directory where a kubeconfig file goes"
    before = sorted(str(p) for p in node.rglob("*"))
    result = _join(hostile, node)
    assert result.exit_code == 1, result.output
    assert expect in result.output
    assert "Errno" not in result.output
    assert sorted(str(p) for p in node.rglob("*")) == before
