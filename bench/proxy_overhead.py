"""What the PROXY protocol costs the server per connection, with and without a header.

Run from the repository root: ``python -m bench.proxy_overhead``. Why: with
``--proxy-protocol-trusted-cidrs`` the server accepts connections in its own accept loop
(it must read the header off the raw socket before TLS) instead of the event loop's C one,
and the question is whether that shows next to a TLS handshake, for connections that carry
a header and for those that do not.

Three ``kubeboot server`` processes (default flags; the flag with the client untrusted, so
its connections are only peeked at; the flag with the client trusted, each connection
carrying a PROXY v2 header), then rounds: in each round every server gets ``--connections``
sequential connections from one client (a TCP connect from 127.0.0.1, the header when
trusted, a TLS handshake with the admin client certificate, ``GET /healthz``, close), and
the server's CPU for them is read from ``/proc``. Rounds alternate the servers so that they
see the same machine; the report gives each server's median CPU per connection over the
rounds. Loopback only, bounded in connections and time.
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import statistics
import tempfile
import time
from pathlib import Path

from bench.join_storm import RESULTS, ServerProcess
from bench.procstat import sample
from kubeboot.api.server.proxyprotocol import encode_v2

__all__ = ["main"]

# name -> (server flags, whether the client sends a PROXY v2 header)
MODES: dict[str, tuple[tuple[str, ...], bool]] = {
    "default flags": ((), False),
    "flag on, client untrusted (peeked)": (
        ("--proxy-protocol-trusted-cidrs=127.255.255.254/32",),
        False,
    ),
    "flag on, client trusted (PROXY v2)": (("--proxy-protocol-trusted-cidrs=127.0.0.1/32",), True),
}


def _client_context(data_dir: Path) -> ssl.SSLContext:
    import base64

    import yaml

    conf = yaml.safe_load((data_dir / "admin.conf").read_text())
    user = conf["users"][0]["user"]
    ca = base64.b64decode(conf["clusters"][0]["cluster"]["certificate-authority-data"])
    ctx = ssl.create_default_context(cadata=ca.decode())
    pair = data_dir / "bench-admin.pem"
    pair.write_bytes(
        base64.b64decode(user["client-certificate-data"])
        + base64.b64decode(user["client-key-data"])
    )
    pair.chmod(0o600)
    ctx.load_cert_chain(str(pair))
    return ctx


def _connections(url: str, ctx: ssl.SSLContext, count: int, header: bool) -> None:
    host, _, port = url.removeprefix("https://").rpartition(":")
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    for i in range(count):
        with socket.create_connection((host, int(port)), timeout=30) as raw:
            if header:
                client = ("10.200.0.1", 40000 + i % 20000)
                raw.sendall(encode_v2(client, (host, int(port))))
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                tls.sendall(request)
                answer = b""
                while chunk := tls.recv(4096):
                    answer += chunk
        if not answer.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"unexpected answer: {answer[:80]!r}")


def measure(connections: int, rounds: int, log_dir: Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="kubeboot-proxy-") as tmp_name:
        tmp = Path(tmp_name)
        servers = {
            name: ServerProcess(tmp / f"data{i}", log_dir / f"server{i}.log", extra_args=flags)
            for i, (name, (flags, _)) in enumerate(MODES.items())
        }
        try:
            contexts = {name: _client_context(s.data_dir) for name, s in servers.items()}
            per_connection: dict[str, list[float]] = {name: [] for name in servers}
            for _ in range(rounds):
                for name, server in servers.items():
                    before = sample(server.pid)
                    _connections(server.url, contexts[name], connections, MODES[name][1])
                    time.sleep(0.2)  # the last close
                    after = sample(server.pid)
                    cpu = after.cpu_seconds - before.cpu_seconds
                    per_connection[name].append(cpu * 1000 / connections)
        finally:
            for server in servers.values():
                server.stop()
    return {
        "connections_per_round": connections,
        "rounds": rounds,
        "cpu_ms_per_connection": per_connection,
        "median_cpu_ms_per_connection": {
            name: statistics.median(values) for name, values in per_connection.items()
        },
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", type=int, default=500, help="per server and round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    out = args.out / f"proxy_overhead-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    report = measure(args.connections, args.rounds, out)
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    medians = report["median_cpu_ms_per_connection"]
    assert isinstance(medians, dict)
    for name, value in medians.items():
        print(f"{name:<38} {value:6.3f} ms server CPU per connection (median)")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
