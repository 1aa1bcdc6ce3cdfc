"""CSR created → certificate issued: latency through the in-server approver and signer.

Starts a fresh ``kubeboot server`` subprocess on loopback (the join storm's harness),
creates a bootstrap token, and creates N kubelet client CSRs with it (as N nodes would),
either one at a time or all at once. One watch on the CSR collection timestamps the event
that carries each certificate; latency is that time minus the time the create returned.
Prints p50/p90/p99/max and writes JSON under ``bench/results/``. Not part of the tests.

    .venv/bin/python -m bench.csr_latency --count 100 --mode burst
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import ssl
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.join_storm import ServerProcess, _percentile, create_bootstrap_token

CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
RESULTS = Path(__file__).parent / "results"


def csr_body(node: str) -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}"),
        ]
    )
    req = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    pem = req.public_bytes(serialization.Encoding.PEM)
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": f"csr-{node}"},
        "spec": {
            "request": base64.b64encode(pem).decode(),
            "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
            "usages": ["digital signature", "client auth"],
        },
    }


async def measure(url: str, token: str, ca: Path, count: int, mode: str) -> list[float]:
    bodies = [csr_body(f"node-{i}") for i in range(count)]  # keys made before the clock
    created_at: dict[str, float] = {}
    issued_at: dict[str, float] = {}
    ctx = ssl.create_default_context(cafile=str(ca))
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(
        base_url=url, headers=headers, connector=aiohttp.TCPConnector(ssl=ctx)
    ) as http:
        async with http.get(CSRS) as resp:
            rv = (await resp.json())["metadata"]["resourceVersion"]
        done = asyncio.Event()
        issued_event: dict[str, asyncio.Event] = {
            b["metadata"]["name"]: asyncio.Event() for b in bodies
        }

        async def watch() -> None:
            params = {"watch": "true", "resourceVersion": rv}
            async with http.get(
                CSRS, params=params, timeout=aiohttp.ClientTimeout(total=None)
            ) as resp:
                async for line in resp.content:
                    event = json.loads(line)
                    obj = event["object"]
                    name = obj["metadata"]["name"]
                    if (obj.get("status") or {}).get("certificate") and name not in issued_at:
                        issued_at[name] = time.perf_counter()
                        issued_event[name].set()
                        if len(issued_at) == count:
                            done.set()
                            return

        watcher = asyncio.create_task(watch())

        async def create(body: dict[str, Any]) -> None:
            async with http.post(CSRS, json=body) as resp:
                if resp.status != 201:
                    raise SystemExit(f"create failed: {resp.status} {await resp.text()}")
            created_at[body["metadata"]["name"]] = time.perf_counter()

        if mode == "burst":
            await asyncio.gather(*(create(b) for b in bodies))
        else:
            for b in bodies:
                await create(b)
                await asyncio.wait_for(issued_event[b["metadata"]["name"]].wait(), 30)
        await asyncio.wait_for(done.wait(), 120)
        watcher.cancel()
    return sorted((issued_at[n] - created_at[n]) * 1000 for n in created_at)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--mode", choices=["sequential", "burst"], default="sequential")
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        help="Passed to `kubeboot server`, e.g. --server-arg=--issuance-ledger=false.",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        server = ServerProcess(data, Path(tmp) / "server.log", extra_args=args.server_arg)
        try:
            token = create_bootstrap_token(server, Path(tmp))
            ca = data / "pki" / "ca.crt"
            latencies = asyncio.run(measure(server.url, token, ca, args.count, args.mode))
        finally:
            server.stop()
    result = {
        "count": args.count,
        "mode": args.mode,
        "server_args": args.server_arg,
        "p50_ms": round(_percentile(latencies, 0.50), 2),
        "p90_ms": round(_percentile(latencies, 0.90), 2),
        "p99_ms": round(_percentile(latencies, 0.99), 2),
        "max_ms": round(latencies[-1], 2),
        "mean_ms": round(statistics.fmean(latencies), 2),
    }
    RESULTS.mkdir(exist_ok=True)
    suffix = "".join(a.replace("-", "").replace("=", "_") for a in args.server_arg)
    (RESULTS / f"csr_latency_{args.mode}_{args.count}{suffix}.json").write_text(
        json.dumps(result, indent=2)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
