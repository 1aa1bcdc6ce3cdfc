"""The join storm: how fast one ``kubeboot server`` turns N booting nodes into joined ones.

Run from the repository root: ``python -m bench.join_storm`` (``make bench``). Why it exists
and how to read it: ``docs/performance.md``.

For every run it starts a fresh ``kubeboot server`` (SQLite, default flags, controllers on) as
its own process on 127.0.0.1, creates a bootstrap token with the admin kubeconfig, then runs
:mod:`bench.storm_load` in another process to join N simulated nodes. The server's CPU and
memory come from ``/proc`` (:mod:`bench.procstat`), so neither this process nor the load
generator is counted. The floor (:mod:`bench.floor`) is measured in the same invocation, and
one extra run is profiled with py-spy; everything lands in ``bench/results/``.

``--server-arg`` passes extra flags to every ``kubeboot server`` (``--server-arg=--workers=2``);
they are part of each run's label and of ``results.json``, so runs stay comparable. The
server's CPU and memory cover its whole process tree (worker processes included).

``--storage-backend etcd3`` runs the same storms on etcd: with ``--etcd-servers`` against that
cluster (each run under a fresh ``--etcd-prefix``), otherwise against a fresh single-member
etcd started per run on loopback (Debian ``etcd-server``), whose CPU is reported apart
(``etcd CPU/join``) so the server's own cost per join stays comparable across backends.

All traffic stays on loopback, every run is bounded in nodes and in time (per-node timeout,
server start timeout), and every process started here is stopped by its PID.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.floor import FloorResult, measure_floor
from bench.procstat import process_start_ticks, process_tree, sample
from kubeboot.resources import bootstrap_token as bt

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
_START_TIMEOUT = 60.0
_LISTENING = "kubeboot API server listening on "
REAL_ETCD = Path.home() / ".cache" / "kubeboot-real" / "v1.37.2" / "bin" / "etcd"
"""The etcd of the real control plane (hack/real/build.py): both sides then run one etcd."""


@dataclass(frozen=True, slots=True)
class RunSpec:
    nodes: int
    concurrency: int
    rate: float
    profile: bool = False
    backend: str = "sqlite"
    server_args: tuple[str, ...] = ()
    """Extra ``kubeboot server`` flags (``--server-arg``), e.g. ``("--workers=2",)``."""

    @property
    def label(self) -> str:
        mode = f"{self.rate:g}/s offered" if self.rate else f"full, {self.concurrency} in flight"
        backend = ", etcd" if self.backend == "etcd3" else ""
        extra = "".join(f", {a}" for a in self.server_args)
        return f"N={self.nodes}, {mode}{backend}{extra}" + (", py-spy" if self.profile else "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class EtcdProcess:
    """One etcd member on loopback (default fsync, as in production); stop() by PID.

    Alone it is a fresh single-member cluster; :func:`etcd_cluster` starts several members
    with one ``--initial-cluster``.
    """

    def __init__(
        self,
        data_dir: Path,
        log_file: Path,
        binary: str | None = None,
        *,
        name: str = "bench",
        peer: str | None = None,
        initial_cluster: str | None = None,
        wait: bool = True,
    ) -> None:
        binary = binary or shutil.which("etcd")
        if binary is None:
            raise RuntimeError("--storage-backend etcd3 needs etcd (apt-get install etcd-server)")
        client = f"http://127.0.0.1:{_free_port()}"
        peer = peer or f"http://127.0.0.1:{_free_port()}"
        self.url = client
        self._log_file = log_file
        self._log = log_file.open("wb")
        self.proc = subprocess.Popen(
            [
                *(binary, f"--name={name}", f"--data-dir={data_dir}"),
                *(f"--listen-client-urls={client}", f"--advertise-client-urls={client}"),
                *(f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}"),
                f"--initial-cluster={initial_cluster or f'{name}={peer}'}",
                *("--log-level=error", "--logger=zap"),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        if wait:
            self.wait_healthy()

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:  # noqa: S310
                    if b'"health":"true"' in r.read():
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"etcd did not start; see {self._log_file}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def etcd_cluster(
    members: int, data_root: Path, log_dir: Path, binary: str | None = None
) -> list[EtcdProcess]:
    """``members`` etcd members forming one new cluster on loopback, all healthy."""
    peers = {f"m{i}": f"http://127.0.0.1:{_free_port()}" for i in range(members)}
    initial = ",".join(f"{n}={u}" for n, u in peers.items())
    started: list[EtcdProcess] = []
    try:
        for name, peer in peers.items():
            started.append(
                EtcdProcess(
                    data_root / name,
                    log_dir / f"etcd-{name}.log",
                    binary,
                    name=name,
                    peer=peer,
                    initial_cluster=initial,
                    wait=False,
                )
            )
        for member in started:
            member.wait_healthy()
    except BaseException:
        for member in started:
            member.stop()
        raise
    return started


class ServerProcess:
    """One ``kubeboot server`` on 127.0.0.1 with a fresh data directory; stop() by PID.

    ``extra_args`` go last on the command line (after the storage flags), as given.
    """

    def __init__(
        self,
        data_dir: Path,
        log_file: Path,
        storage_flags: Sequence[str] = (),
        extra_args: Sequence[str] = (),
    ) -> None:
        self.data_dir = data_dir
        kubeboot = Path(sys.executable).parent / "kubeboot"
        self._log = log_file.open("wb")
        self.proc = subprocess.Popen(
            [
                *(str(kubeboot), "server", "--data-dir", str(data_dir)),
                *("--bind-address", "127.0.0.1", "--secure-port", "0"),
                *storage_flags,
                *extra_args,
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.url = self._wait_listening()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait_listening(self) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                break
            if line.startswith(_LISTENING):
                return line[len(_LISTENING) :].strip()
        self.stop()
        raise RuntimeError(f"kubeboot server did not start; see {self._log.name}")

    def db_bytes(self) -> int:
        return sum(
            p.stat().st_size
            for p in (self.data_dir / n for n in ("state.db", "state.db-wal"))
            if p.exists()
        )

    def stop(self) -> None:
        # The server stops its own workers on SIGTERM; any that outlive it (the server was
        # killed, or shut down badly) are stopped here by PID, after checking by start time
        # that the PID was not reused meanwhile.
        descendants = {pid: process_start_ticks(pid) for pid in self._descendants()}
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _stop_leftovers(descendants)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()

    def _descendants(self) -> list[int]:
        if self.proc.poll() is not None:
            return []
        return process_tree(self.pid)[1:]


def _stop_leftovers(started: dict[int, int | None], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL, the processes of ``started`` (PID -> start time) still running."""

    def alive() -> list[int]:
        return [p for p, t in started.items() if t is not None and process_start_ticks(p) == t]

    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = alive()
        if not left:
            return
        print(f"stopping {len(left)} leftover server process(es) with {sig.name}", file=sys.stderr)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while alive() and time.monotonic() < deadline:
            time.sleep(0.05)


def _admin_context(data_dir: Path, tmp: Path) -> ssl.SSLContext:
    """An SSL context with the admin kubeconfig's client certificate."""
    conf = yaml.safe_load((data_dir / "admin.conf").read_text())
    user = conf["users"][0]["user"]
    pem = tmp / "admin.pem"
    pem.touch(0o600)
    pem.write_bytes(
        base64.b64decode(user["client-certificate-data"])
        + base64.b64decode(user["client-key-data"])
    )
    ctx = ssl.create_default_context(cafile=data_dir / "pki" / "ca.crt")
    ctx.load_cert_chain(pem)
    return ctx


def _request(
    url: str, ctx: ssl.SSLContext, method: str, path: str, body: Any, token: str | None = None
) -> tuple[int, bytes]:
    host, _, port = url.removeprefix("https://").rpartition(":")
    conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, json.dumps(body), headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def create_bootstrap_token(server: ServerProcess, tmp: Path) -> str:
    """``kubeadm token create`` through the admin kubeconfig; returns once the token works."""
    token = bt.generate_token()
    secret = bt.build_secret(
        token,
        extra_groups=[bt.KUBEADM_DEFAULT_NODE_TOKEN_GROUP],
        expiration=dt.datetime.now(dt.UTC) + dt.timedelta(hours=2),
        description="kubeboot join storm benchmark",
    )
    admin = _admin_context(server.data_dir, tmp)
    status, body = _request(
        server.url, admin, "POST", f"/api/v1/namespaces/{bt.TOKEN_NAMESPACE}/secrets", secret
    )
    if status != 201:
        raise RuntimeError(f"creating the bootstrap token failed: HTTP {status} {body[:200]!r}")
    wait_token_accepted(server.url, server.data_dir / "pki" / "ca.crt", token)
    return token


def wait_token_accepted(url: str, ca_file: Path, token: str, timeout: float = 30.0) -> None:
    """Until a SelfSubjectReview with ``token`` succeeds at ``url``: the authenticator learns
    of new tokens through a watch (and another replica's, or kube-apiserver's, a bit later)."""
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    anonymous = ssl.create_default_context(cafile=ca_file)
    path = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _request(url, anonymous, "POST", path, review, token)[0] == 201:
            return
        time.sleep(0.05)
    raise RuntimeError(f"the new bootstrap token was never accepted by {url}")


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _profile_top(raw: Path, out: Path, limit: int = 25) -> list[str]:
    """Self and inclusive shares per function from py-spy's collapsed stacks."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        # The root frame is the thread; with --subprocesses it comes after one
        # 'process <pid>:"<cmdline>"' frame per generation (parent first, then worker).
        roots = 1
        while roots < len(frames) and frames[roots - 1].startswith("process "):
            roots += 1
        total += count
        names = [f.partition(":")[0] for f in frames[: roots - 1]] + [frames[roots - 1]]
        threads[" ".join(names)] += count
        for frame in set(frames[roots:]):
            inclusive[frame] += count
        own[frames[-1]] += count
    lines = [f"py-spy samples (non-idle threads): {total}", "", "by thread:"]
    lines += [f"  {100 * c / total:5.1f}%  {t}" for t, c in threads.most_common()]
    lines += ["", "self time (top):"]
    lines += [f"  {100 * c / total:5.1f}%  {f}" for f, c in own.most_common(limit)]
    lines += ["", "inclusive time (top):"]
    lines += [f"  {100 * c / total:5.1f}%  {f}" for f, c in inclusive.most_common(limit * 2)]
    out.write_text("\n".join(lines) + "\n")
    return lines


def run_storm(
    spec: RunSpec,
    run_dir: Path,
    node_timeout: float,
    etcd_servers: str = "",
    etcd_binary: str | None = None,
) -> dict[str, Any]:
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="kubeboot-storm-"))
    etcd: EtcdProcess | None = None
    storage_flags: list[str] = []
    if spec.backend == "etcd3":
        if not etcd_servers:
            etcd = EtcdProcess(tmp / "etcd", run_dir / "etcd.log", etcd_binary)
        storage_flags = [
            *("--storage-backend", "etcd3"),
            *("--etcd-servers", etcd_servers or (etcd.url if etcd is not None else "")),
            *("--etcd-prefix", f"/bench-{uuid.uuid4().hex[:8]}"),
        ]
    try:
        server = ServerProcess(
            tmp / "data", run_dir / "server.log", storage_flags, spec.server_args
        )
    except BaseException:
        if etcd is not None:
            etcd.stop()
        raise
    etcd_before = sample(etcd.pid).cpu_seconds if etcd is not None else 0.0
    spy: subprocess.Popen[bytes] | None = None
    try:
        token = create_bootstrap_token(server, tmp)
        idle = sample(server.pid)
        config = {
            "server": server.url,
            "ca_file": str(server.data_dir / "pki" / "ca.crt"),
            "token": token,
            "nodes": spec.nodes,
            "concurrency": spec.concurrency,
            "rate": spec.rate,
            "server_pid": server.pid,
            "node_timeout": node_timeout,
            "run_id": "storm",
        }
        py_spy = Path(sys.executable).parent / "py-spy"
        if spec.profile and py_spy.exists():
            # With worker processes, profile them too (their stacks then start with a
            # "process <pid>" frame, see _profile_top).
            workers = ("--subprocesses",) if idle.processes > 1 else ()
            spy = subprocess.Popen(
                [
                    *(str(py_spy), "record", "--pid", str(server.pid), "--format", "raw"),
                    *("--threads", "--nonblocking", "--rate", "200", *workers),
                    *("-o", str(run_dir / "profile.collapsed.txt")),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        load_before = os.getloadavg()[0]
        generator = subprocess.run(
            [sys.executable, "-m", "bench.storm_load"],
            input=json.dumps(config).encode(),
            capture_output=True,
            cwd=ROOT,
            timeout=node_timeout + spec.nodes / max(spec.rate, 20.0) + 600,
            check=False,
        )
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        if generator.returncode != 0:
            raise RuntimeError(f"load generator failed: {generator.stderr.decode()[-2000:]}")
        load = json.loads(generator.stdout)
        end = sample(server.pid)
        db = server.db_bytes()
        etcd_cpu = sample(etcd.pid).cpu_seconds - etcd_before if etcd is not None else 0.0
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
            spy.wait()
        server.stop()
        if etcd is not None:
            etcd.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    lat = sorted(load.pop("latencies_s"))
    joined = len(lat)
    result = {
        "label": spec.label,
        **asdict(spec),
        "joined": joined,
        "errors": load["errors"],
        "error_samples": load["error_samples"],
        "elapsed_s": load["elapsed_s"],
        "joins_per_s": joined / load["elapsed_s"],
        "latency_ms": {
            q: 1000 * _percentile(lat, v)
            for q, v in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
        },
        "server_cpu_ms_per_join": 1000 * load["server_cpu_s"] / max(joined, 1),
        "etcd_cpu_ms_per_join": 1000 * etcd_cpu / max(joined, 1) if etcd is not None else None,
        "generator_cpu_ms_per_join": 1000 * load["generator_cpu_s"] / max(joined, 1),
        "server_processes": end.processes,
        "server_rss_idle_mb": idle.rss_bytes / 2**20,
        "server_rss_end_mb": end.rss_bytes / 2**20,
        "server_pss_end_mb": end.pss_bytes / 2**20,
        # Summed per process: an upper bound once there are workers (see bench.procstat).
        "server_peak_rss_mb": end.peak_rss_bytes / 2**20,
        "db_mb": db / 2**20,
        "peak_in_flight": load["peak_in_flight"],
        "loadavg_1m_before": load_before,
    }
    if spec.profile:
        raw = run_dir / "profile.collapsed.txt"
        if raw.exists():
            _profile_top(raw, run_dir / "profile-top.txt")
    return result


def render_table(floor: FloorResult, runs: list[dict[str, Any]]) -> str:
    head = (
        f"floor: {floor.cpu_ms_per_join:.2f} ms server CPU per join -> "
        f"{floor.joins_per_s_one_core:.0f} joins/s on one core  ("
        + ", ".join(f"{k} {v:.3f}" for k, v in floor.parts_ms.items())
        + " ms)"
    )
    cols = (
        "run",
        "joins/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "CPU/join ms",
        "etcd CPU/join ms",
        "floor ms",
        "x floor",
        "joins/s / floor",
        "peak RSS MB",
        "DB MB",
        "errors",
        "gen CPU/join ms",
        "load",
    )
    rows = [cols]
    for r in runs:
        lat = r["latency_ms"]
        rows.append(
            (
                r["label"],
                f"{r['joins_per_s']:.0f}",
                f"{lat['p50']:.0f}",
                f"{lat['p90']:.0f}",
                f"{lat['p99']:.0f}",
                f"{lat['max']:.0f}",
                f"{r['server_cpu_ms_per_join']:.2f}",
                "-"
                if r.get("etcd_cpu_ms_per_join") is None
                else f"{r['etcd_cpu_ms_per_join']:.2f}",
                f"{r['floor_ms']:.2f}",
                f"{r['server_cpu_ms_per_join'] / r['floor_ms']:.2f}",
                f"{r['joins_per_s'] * r['floor_ms'] / 1000:.2f}",
                f"{r['server_peak_rss_mb']:.0f}",
                f"{r['db_mb']:.1f}",
                str(r["errors"]),
                f"{r['generator_cpu_ms_per_join']:.2f}",
                f"{r['loadavg_1m_before']:.2f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(cols))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return head + "\n\n" + "\n".join(lines) + "\n"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", default="100,1000", help="comma-separated N for full-speed runs")
    p.add_argument("--with-10k", action="store_true", help="also run N=10,000 at full speed")
    p.add_argument("--concurrency", type=int, default=200, help="nodes in flight at full speed")
    p.add_argument("--rate", type=float, default=150.0, help="offered joins/s (0: no such run)")
    p.add_argument("--rate-nodes", type=int, default=1500, help="N for the fixed-rate run")
    p.add_argument("--profile-nodes", type=int, default=1000, help="N of the py-spy run (0: none)")
    p.add_argument("--floor-joins", type=int, default=300)
    p.add_argument("--node-timeout", type=float, default=120.0)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument(
        "--storage-backend",
        default="sqlite",
        help="sqlite, etcd3 or both (sqlite,etcd3: each run once per backend, back to back); "
        "etcd3: a fresh single-member etcd per run, unless --etcd-servers is given",
    )
    p.add_argument(
        "--etcd-binary",
        default=str(REAL_ETCD) if REAL_ETCD.exists() else None,
        help="the etcd to start (default: the real-Kubernetes build's, else etcd on PATH)",
    )
    p.add_argument("--etcd-servers", default="", help="use this etcd cluster (comma-separated)")
    p.add_argument(
        "--workers",
        default="0,1,2",
        help="comma-separated `kubeboot server --workers` values; every run is made once per "
        "value, back to back, so the variants see the same machine (0: default flags)",
    )
    p.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="FLAG",
        help="one extra `kubeboot server` flag per use, written with '=' so it is not taken "
        "for one of ours: --server-arg=--workers=2 (recorded in the run labels)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out / f"join_storm-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    backends, conc = [b for b in args.storage_backend.split(",") if b], args.concurrency
    for be in backends:
        if be not in ("sqlite", "etcd3"):
            raise SystemExit(f"--storage-backend: {be!r} is neither sqlite nor etcd3")
    variants = [
        tuple(args.server_arg) + ((f"--workers={w}",) if int(w) else ())
        for w in args.workers.split(",")
        if w
    ]
    shapes = [(int(n), conc, 0.0, False) for n in args.nodes.split(",") if n]
    if args.with_10k:
        shapes.append((10_000, conc, 0.0, False))
    if args.rate:
        shapes.append((args.rate_nodes, max(conc, 2000), args.rate, False))
    if args.profile_nodes:
        shapes.append((args.profile_nodes, conc, 0.0, True))
    specs = [
        RunSpec(n, c, rate, profile=prof, backend=be, server_args=extra)
        for n, c, rate, prof in shapes
        for be in backends
        for extra in variants
    ]
    load_start = os.getloadavg()
    print(f"measuring the floor ({args.floor_joins} joins)...", flush=True)
    floor = measure_floor(args.floor_joins)
    runs = []
    for i, spec in enumerate(specs):
        # The floor again right before each storm: this VM's speed drifts by a third within
        # minutes (a shared host), and a ratio against a floor measured earlier mixes the
        # drift into it. The first floor stays in the header and results.json.
        run_floor = measure_floor(args.floor_joins) if i else floor
        print(f"run {i + 1}/{len(specs)}: {spec.label}...", flush=True)
        runs.append(
            run_storm(
                spec, out / f"run{i + 1}", args.node_timeout, args.etcd_servers, args.etcd_binary
            )
        )
        r = runs[-1]
        r["floor_ms"] = run_floor.cpu_ms_per_join
        etcd_cpu = r["etcd_cpu_ms_per_join"]
        print(
            f"  {r['joins_per_s']:.0f} joins/s, p99 {r['latency_ms']['p99']:.0f} ms, "
            f"{r['server_cpu_ms_per_join']:.2f} ms CPU/join"
            + (f" (+ etcd {etcd_cpu:.2f} ms)" if etcd_cpu is not None else "")
            + f", errors {r['errors']}",
            flush=True,
        )
    table = render_table(floor, runs)
    report = {
        "when": stamp,
        "server_args": args.server_arg,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "openssl": ssl.OPENSSL_VERSION,
            "loadavg_at_start": load_start,
            "loadavg_at_end": os.getloadavg(),
        },
        "floor": asdict(floor),
        "runs": runs,
    }
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "table.txt").write_text(table)
    print()
    print(table)
    print(f"results: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
