"""The scale-out table: kubeboot on SQLite, on etcd, as replicas, and the real control plane.

Run from the repository root: ``python -m bench.join_table`` (``make bench-table``). Why it
exists and how to read it: ``docs/performance.md``, "kubeboot on etcd and the real control
plane".

Every system gets the same storm from :mod:`bench.storm_load` (cluster-info, a CSR with a
bootstrap token, a watch until issued, one mutual-TLS request; each node from its own
loopback address), back to back in one invocation, so the ratios between rows are measured
on the same machine minutes apart. The CPU column is every server-side process of the system
over the storm (kubeboot's processes with their workers, every etcd member; for the real
plane kube-apiserver + kube-controller-manager + etcd), from ``/proc``; the load generator
and the load balancer are reported apart.

Rows (``--systems`` picks some, in this order):

* ``real``: etcd 3.7.3 + kube-apiserver + kube-controller-manager v1.37.2
  (``tests/real/controlplane.py``; no audit log and etcd with fsync, as kubeboot), default
  flags: KCM's client is limited to 20 requests/s;
* ``real-tuned``: the same with KCM ``--kube-api-qps 500 --kube-api-burst 750``;
* ``sqlite``, ``sqlite-workers``: ``kubeboot server`` on SQLite, one process and
  ``--workers 2``;
* ``etcd``, ``etcd-workers``: on a fresh single-member etcd (the real plane's etcd binary);
* ``replicas1``, ``replicas2``: one and two replicas (``--workers 1`` each) on a 3-member
  etcd behind :mod:`bench.tcp_balancer` with the PROXY protocol v2; CPU per join per replica
  and per replica's primary process, the check that every CSR was signed exactly once (the
  ``CSR ... signed`` log lines over all replicas), and the model of ``--cores``.

The real rows need the binaries of ``hack/real/build.py``; without them they are left out
with a note. Every process started here is stopped by its PID.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.join_storm import (
    REAL_ETCD,
    RESULTS,
    ROOT,
    EtcdProcess,
    ServerProcess,
    create_bootstrap_token,
    etcd_cluster,
    wait_token_accepted,
)
from bench.tcp_balancer import balancer_process

__all__ = ["main"]

SYSTEMS = (
    "real",
    "real-tuned",
    "sqlite",
    "sqlite-workers",
    "etcd",
    "etcd-workers",
    "replicas1",
    "replicas2",
)
BALANCER_SOURCE = "127.0.0.2"
"""The balancer's own address towards the replicas: the one trusted for PROXY headers."""
_SIGNED = re.compile(r"CSR (\S+) signed: serial")


@dataclass
class Plane:
    """A running system under test: where nodes join, and which processes to measure."""

    label: str
    url: str
    ca_file: Path
    token: str = ""
    pids: dict[str, int] = field(default_factory=dict)
    """Server-side processes (each with its descendants): name -> PID."""
    primaries: dict[str, int] = field(default_factory=dict)
    """Replica name -> its primary's PID (measured alone, without its workers)."""
    other_pids: dict[str, int] = field(default_factory=dict)
    """Measured but not server-side (the load balancer)."""
    server_logs: list[Path] = field(default_factory=list)


def _real_available() -> bool:
    from tests.real.binaries import bin_dir

    return all(
        (bin_dir() / b).exists() for b in ("kube-apiserver", "kube-controller-manager", "kubectl")
    )


@contextlib.contextmanager
def real_plane(workdir: Path, tuned: bool) -> Iterator[Plane]:
    from tests.real.controlplane import real_control_plane

    kcm = ("--kube-api-qps=500", "--kube-api-burst=750") if tuned else ()
    with real_control_plane(workdir, kcm_flags=kcm, audit=False, etcd_fsync=True) as cp:
        token = cp.create_token(ttl=dt.timedelta(hours=2))
        wait_token_accepted(cp.url, cp.ca_file, token)
        flags = ", KCM --kube-api-qps 500 --kube-api-burst 750" if tuned else ", default flags"
        yield Plane(
            "real (kube-apiserver + KCM + etcd 3.7.3)" + flags,
            cp.url,
            cp.ca_file,
            token,
            pids=dict(cp.pids),
        )


@contextlib.contextmanager
def kubeboot_plane(
    tmp: Path,
    run_dir: Path,
    *,
    backend: str,
    workers: int,
    etcd_members: int = 1,
    replicas: int = 0,
    etcd_binary: str | None = None,
) -> Iterator[Plane]:
    """``replicas`` 0: one server, nodes connect to it directly; N >= 1: N servers sharing
    one CA behind the PROXY-protocol balancer."""
    with contextlib.ExitStack() as stack:
        storage: list[str] = []
        pids: dict[str, int] = {}
        if backend == "etcd3":
            members = (
                etcd_cluster(etcd_members, tmp / "etcd", run_dir, etcd_binary)
                if etcd_members > 1
                else [EtcdProcess(tmp / "etcd", run_dir / "etcd.log", etcd_binary)]
            )
            for i, member in enumerate(members):
                stack.callback(member.stop)
                pids[f"etcd-{i}"] = member.pid
            urls = ",".join(m.url for m in members)
            storage = ["--storage-backend", "etcd3", "--etcd-servers", urls]
        extra = (f"--workers={workers}",) if workers else ()
        servers: list[ServerProcess] = []
        for i in range(max(replicas, 1)):
            flags = list(extra)
            if replicas:
                flags.append(f"--proxy-protocol-trusted-cidrs={BALANCER_SOURCE}/32")
            if servers:  # later replicas share the first one's CA
                pki = servers[0].data_dir / "pki"
                flags += [
                    f"--cluster-signing-cert-file={pki / 'ca.crt'}",
                    f"--cluster-signing-key-file={pki / 'ca.key'}",
                ]
            server = ServerProcess(tmp / f"data-{i}", run_dir / f"server-{i}.log", storage, flags)
            stack.callback(server.stop)
            servers.append(server)
            pids[f"kubeboot-{i}"] = server.pid
        first = servers[0]
        token = create_bootstrap_token(first, tmp)
        ca_file = first.data_dir / "pki" / "ca.crt"
        for server in servers[1:]:
            wait_token_accepted(server.url, ca_file, token)
        what = "SQLite" if backend == "sqlite" else f"etcd ({etcd_members} member(s))"
        workers_text = f", --workers {workers}" if workers else ", one process"
        if not replicas:
            yield Plane(
                f"kubeboot, {what}{workers_text}",
                first.url,
                ca_file,
                token,
                pids=pids,
                primaries={"kubeboot-0": first.pid},
                server_logs=[run_dir / "server-0.log"],
            )
            return
        backends = [_host_port(s.url) for s in servers]
        proc, (host, port) = stack.enter_context(
            balancer_process(
                backends,
                proxy_protocol=2,
                source_address=BALANCER_SOURCE,
                log=run_dir / "balancer.log",
            )
        )
        yield Plane(
            f"kubeboot, {replicas} replica(s){workers_text}, {what}, balancer with PROXY v2",
            f"https://{host}:{port}",
            ca_file,
            token,
            pids=pids,
            primaries={f"kubeboot-{i}": s.pid for i, s in enumerate(servers)},
            other_pids={"balancer": proc.pid},
            server_logs=[run_dir / f"server-{i}.log" for i in range(len(servers))],
        )


def _host_port(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("https://").rpartition(":")
    return host, int(port)


def storm(plane: Plane, nodes: int, concurrency: int, node_timeout: float) -> dict[str, Any]:
    """One storm against ``plane``; per-process CPU over exactly the storm's window."""
    names = {**plane.pids, **plane.other_pids}
    alone = {f"{n} (primary alone)": p for n, p in plane.primaries.items()}
    watched = list(names.values())
    first, *rest = watched
    config = {
        "server": plane.url,
        "ca_file": str(plane.ca_file),
        "token": plane.token,
        "nodes": nodes,
        "concurrency": concurrency,
        "rate": 0.0,
        "server_pid": first,
        "also_pids": rest,
        "node_timeout": node_timeout,
        "run_id": "storm",
    }
    load_before = os.getloadavg()[0]
    generator = subprocess.run(
        [sys.executable, "-m", "bench.storm_load"],
        input=json.dumps(config).encode(),
        capture_output=True,
        cwd=ROOT,
        timeout=node_timeout + nodes / 5 + 600,
        check=False,
    )
    if generator.returncode != 0:
        raise RuntimeError(f"load generator failed: {generator.stderr.decode()[-2000:]}")
    load = json.loads(generator.stdout)
    by_pid = load.pop("cpu_s_by_pid")
    joined = len(load["latencies_s"])
    per_join = 1000 / max(joined, 1)
    cpu = {n: by_pid[str(p)][0] * per_join for n, p in names.items()}
    cpu |= {n: by_pid[str(p)][1] * per_join for n, p in alone.items()}
    lat = sorted(load.pop("latencies_s"))
    signed = collections.Counter(
        m.group(1)
        for log in plane.server_logs
        for m in _SIGNED.finditer(log.read_text(errors="replace"))
    )
    return {
        "label": plane.label,
        "nodes": nodes,
        "concurrency": concurrency,
        "joined": joined,
        "errors": load["errors"],
        "error_samples": load["error_samples"],
        "elapsed_s": load["elapsed_s"],
        "joins_per_s": joined / load["elapsed_s"],
        "p50_ms": 1000 * lat[len(lat) // 2] if lat else float("nan"),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan"),
        "cpu_ms_per_join": cpu,
        "server_cpu_ms_per_join": sum(cpu[n] for n in plane.pids),
        "etcd_cpu_ms_per_join": sum(v for n, v in cpu.items() if n.startswith("etcd")),
        "generator_cpu_ms_per_join": 1000 * load["generator_cpu_s"] / max(joined, 1),
        # kubeboot only: every CSR signed exactly once (one "signed" line over all replicas)
        "signed_lines": sum(signed.values()) if plane.server_logs else None,
        "signed_twice": sum(1 for c in signed.values() if c > 1) if plane.server_logs else None,
        "loadavg_1m_before": load_before,
    }


def model(run: dict[str, Any], cores: int) -> float:
    """Joins/s predicted on ``cores`` cores for the system of ``run`` (one machine's worth of
    cores for replicas + etcd, the load generator elsewhere).

    Two limits: all server-side CPU per join spread over the cores, and the one process that
    cannot be spread — the Lease holder's primary (its event loop runs the approver, the
    signer and its workers' store calls) — on one core.
    """
    total = float(run["server_cpu_ms_per_join"])
    serial = max(
        (float(v) for n, v in run["cpu_ms_per_join"].items() if n.endswith("(primary alone)")),
        default=0.0,
    )
    spread = 1000 * cores / total
    return min(spread, 1000 / serial) if serial else spread


def render(runs: list[dict[str, Any]], cores: list[int]) -> str:
    cols = [
        "system",
        "joins/s",
        "p50 ms",
        "p99 ms",
        "server CPU/join ms",
        "of which etcd",
        "x SQLite 1 proc",
        "errors",
        "signed once",
    ]
    base = next((r for r in runs if r["label"].startswith("kubeboot, SQLite, one")), None)
    rows = [cols]
    for r in runs:
        ratio = r["server_cpu_ms_per_join"] / base["server_cpu_ms_per_join"] if base else None
        once = (
            "-"
            if r["signed_lines"] is None
            else ("yes" if r["signed_lines"] == r["joined"] and not r["signed_twice"] else "NO")
        )
        rows.append(
            [
                r["label"],
                f"{r['joins_per_s']:.0f}",
                f"{r['p50_ms']:.0f}",
                f"{r['p99_ms']:.0f}",
                f"{r['server_cpu_ms_per_join']:.2f}",
                f"{r['etcd_cpu_ms_per_join']:.2f}" if r["etcd_cpu_ms_per_join"] else "-",
                f"{ratio:.2f}" if ratio is not None else "-",
                str(r["errors"]),
                once,
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(cols))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    out = ["\n".join(lines), "", "CPU per join by process (ms):"]
    for r in runs:
        parts = ", ".join(f"{n} {v:.2f}" for n, v in r["cpu_ms_per_join"].items())
        out.append(f"  {r['label']}: {parts}; generator {r['generator_cpu_ms_per_join']:.2f}")
    replicated = [r for r in runs if "replica" in r["label"]]
    if replicated:
        out += [
            "",
            "model (min of all server CPU over the cores, the Lease holder's primary on one core):",
        ]
        for r in replicated:
            preds = ", ".join(f"{c} cores {model(r, c):.0f} joins/s" for c in cores)
            out.append(f"  {r['label']}: {preds}")
    return "\n".join(out) + "\n"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated rows")
    p.add_argument("--nodes", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument("--workers", type=int, default=2, help="--workers of the *-workers rows")
    p.add_argument("--replica-workers", type=int, default=1, help="--workers of each replica")
    p.add_argument("--node-timeout", type=float, default=300.0)
    p.add_argument("--cores", default="8,32", help="core counts the model predicts for")
    p.add_argument(
        "--etcd-binary",
        default=str(REAL_ETCD) if REAL_ETCD.exists() else None,
        help="the etcd kubeboot runs on (default: the real plane's, else etcd on PATH)",
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    systems = [s for s in args.systems.split(",") if s]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        raise SystemExit(f"--systems: unknown {sorted(unknown)}; choose from {SYSTEMS}")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out / f"join_table-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    notes = []
    if any(s.startswith("real") for s in systems) and not _real_available():
        notes.append("real rows left out: hack/real/build.py has not built kube-apiserver")
        systems = [s for s in systems if not s.startswith("real")]
    runs = []
    for i, name in enumerate(systems):
        run_dir = out / f"{i + 1}-{name}"
        run_dir.mkdir()
        tmp = Path(tempfile.mkdtemp(prefix="kubeboot-table-"))
        try:
            with _plane(name, tmp, run_dir, args) as plane:
                print(f"{name}: {plane.label}...", flush=True)
                r = storm(plane, args.nodes, args.concurrency, args.node_timeout)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        r["system"] = name
        runs.append(r)
        print(
            f"  {r['joins_per_s']:.0f} joins/s, {r['server_cpu_ms_per_join']:.2f} ms CPU/join, "
            f"errors {r['errors']}",
            flush=True,
        )
        time.sleep(2)  # let the stopped processes' exit work finish before the next storm
    cores = [int(c) for c in args.cores.split(",") if c]
    table = render(runs, cores) + "".join(f"\nnote: {n}" for n in notes)
    report = {"when": stamp, "args": vars(args) | {"out": str(args.out)}, "runs": runs}
    report["notes"] = notes
    report["model"] = {
        r["system"]: {c: model(r, c) for c in cores} for r in runs if "replica" in r["label"]
    }
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "table.txt").write_text(table)
    print()
    print(table)
    print(f"results: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


def _plane(
    name: str, tmp: Path, run_dir: Path, args: argparse.Namespace
) -> contextlib.AbstractContextManager[Plane]:
    etcd = args.etcd_binary
    if name.startswith("real"):
        return real_plane(run_dir / "plane", tuned=name == "real-tuned")
    if name.startswith("replicas"):
        return kubeboot_plane(
            tmp,
            run_dir,
            backend="etcd3",
            workers=args.replica_workers,
            etcd_members=3,
            replicas=int(name.removeprefix("replicas")),
            etcd_binary=etcd,
        )
    workers = args.workers if name.endswith("-workers") else 0
    backend = "sqlite" if name.startswith("sqlite") else "etcd3"
    return kubeboot_plane(tmp, run_dir, backend=backend, workers=workers, etcd_binary=etcd)


if __name__ == "__main__":
    main()
