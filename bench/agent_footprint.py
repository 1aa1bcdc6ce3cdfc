"""What an idle joined node and an idle server cost: RSS, CPU-seconds and wake-ups per minute.

Run from the repository root: ``python -m bench.agent_footprint``. Why: a node agent runs on
every machine of a fleet for its whole life, so its idle cost is paid thousands of times, and
an agent that polls shows up here as wake-ups even when its CPU looks small.

1. A fresh ``kubeboot server`` and four ``kubeboot agent`` processes that join it with a
   bootstrap token: one as shipped (between rotations it execs the small sleeper, same PID),
   one with ``--stay-resident`` (the full agent waits for the deadline), and the same two
   with ``--metrics-bind-address`` (the sleeper then answers ``/metrics`` itself). Once all
   have written their kubeconfig and the sleeping ones run the sleeper, all are left alone
   for ``--idle-seconds`` and sampled from ``/proc`` before and after: the agents' figures,
   and the server's with 0 storm nodes joined. Then each agent with metrics is scraped
   ``--scrapes`` times, back to back: CPU-seconds and wake-ups per scrape.
2. 1,000 nodes join through the join storm's load generator, then the server is measured idle
   again. (The storm's nodes disconnect once joined; real kubelets would keep a watch open.)

Wake-ups are context switches summed over all threads (voluntary + involuntary): every timer,
poll or socket event that wakes a thread counts once.
"""

from __future__ import annotations

import argparse
import base64
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from bench.join_storm import RESULTS, ROOT, ServerProcess, create_bootstrap_token
from bench.procstat import ProcSample, sample
from kubeboot.agent.sleeper import TITLE

__all__ = ["main"]


def _idle(pids: dict[str, int], seconds: float) -> dict[str, dict[str, float]]:
    before = {name: sample(pid) for name, pid in pids.items()}
    time.sleep(seconds)
    after = {name: sample(pid) for name, pid in pids.items()}
    return {name: _figures(before[name], after[name], seconds) for name in pids}


def _figures(before: ProcSample, after: ProcSample, seconds: float) -> dict[str, float]:
    return {
        "rss_mb": after.rss_bytes / 2**20,
        "peak_rss_mb": after.peak_rss_bytes / 2**20,
        "cpu_s_per_min": (after.cpu_seconds - before.cpu_seconds) * 60 / seconds,
        "wakeups_per_min": (after.context_switches - before.context_switches) * 60 / seconds,
    }


def _bootstrap_kubeconfig(server: ServerProcess, token: str, path: Path) -> None:
    ca = (server.data_dir / "pki" / "ca.crt").read_bytes()
    conf = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kubeboot",
                "cluster": {
                    "server": server.url,
                    "certificate-authority-data": base64.b64encode(ca).decode(),
                },
            }
        ],
        "users": [{"name": "tls-bootstrap-token-user", "user": {"token": token}}],
        "contexts": [
            {
                "name": "tls-bootstrap-token-user@kubeboot",
                "context": {"cluster": "kubeboot", "user": "tls-bootstrap-token-user"},
            }
        ],
        "current-context": "tls-bootstrap-token-user@kubeboot",
    }
    path.touch(0o600)
    path.write_text(yaml.safe_dump(conf))


def _start_agent(
    server: ServerProcess, token: str, tmp: Path, name: str, *extra: str
) -> subprocess.Popen[bytes]:
    node = tmp / name
    node.mkdir()
    _bootstrap_kubeconfig(server, token, node / "bootstrap-kubelet.conf")
    kubeboot = Path(sys.executable).parent / "kubeboot"
    log = tmp / f"{name}.log"
    with log.open("wb") as out:
        agent = subprocess.Popen(
            [
                *(str(kubeboot), "agent", "--node-name", name),
                *("--bootstrap-kubeconfig", str(node / "bootstrap-kubelet.conf")),
                *("--kubeconfig", str(node / "kubelet.conf"), "--cert-dir", str(node / "pki")),
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while not (node / "kubelet.conf").exists():
        if agent.poll() is not None or time.monotonic() > deadline:
            agent.kill()
            raise RuntimeError(f"the agent did not join; see {log}")
        time.sleep(0.1)
    return agent


def _wait_for_sleeper(agent: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Until the agent's PID runs the sleeper (``ps`` shows its title)."""
    cmdline = Path(f"/proc/{agent.pid}/cmdline")
    title = TITLE.partition("{")[0].encode()
    deadline = time.monotonic() + timeout
    while not cmdline.read_bytes().startswith(title):
        if agent.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the agent did not hand over to the sleeper")
        time.sleep(0.1)


def _free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def _scrapes(pid: int, address: str, count: int) -> dict[str, float]:
    """CPU-seconds and wake-ups of ``pid`` per ``/metrics`` scrape, ``count`` back to back."""
    before = sample(pid)
    for _ in range(count):
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=30) as resp:
            resp.read()
    time.sleep(0.5)  # let the last answer's close settle
    after = sample(pid)
    return {
        "rss_mb": after.rss_bytes / 2**20,
        "cpu_ms_per_scrape": (after.cpu_seconds - before.cpu_seconds) * 1000 / count,
        "wakeups_per_scrape": (after.context_switches - before.context_switches) / count,
    }


def _join_storm(server: ServerProcess, token: str, nodes: int) -> None:
    config = {
        "server": server.url,
        "ca_file": str(server.data_dir / "pki" / "ca.crt"),
        "token": token,
        "nodes": nodes,
        "concurrency": 100,
        "rate": 0.0,
        "server_pid": server.pid,
        "node_timeout": 120.0,
        "run_id": "footprint",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.storm_load"],
        input=json.dumps(config).encode(),
        capture_output=True,
        cwd=ROOT,
        timeout=900,
        check=True,
    )
    errors = json.loads(done.stdout)["errors"]
    if errors:
        raise RuntimeError(f"{errors} of {nodes} storm nodes failed to join")


def measure(idle_seconds: float, storm_nodes: int, scrapes: int, log_dir: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kubeboot-footprint-") as tmp_name:
        tmp = Path(tmp_name)
        server = ServerProcess(tmp / "data", log_dir / "server.log")
        agents: dict[str, subprocess.Popen[bytes]] = {}
        metrics = {"agent_metrics": _free_address(), "agent_metrics_resident": _free_address()}
        try:
            token = create_bootstrap_token(server, tmp)
            variants = {
                "agent": (),
                "agent_resident": ("--stay-resident",),
                "agent_metrics": ("--metrics-bind-address", metrics["agent_metrics"]),
                "agent_metrics_resident": (
                    "--stay-resident",
                    "--metrics-bind-address",
                    metrics["agent_metrics_resident"],
                ),
            }
            for i, (name, extra) in enumerate(variants.items()):
                agents[name] = _start_agent(server, token, tmp, f"footprint-{i + 1}", *extra)
            _wait_for_sleeper(agents["agent"])
            _wait_for_sleeper(agents["agent_metrics"])
            time.sleep(2)  # let the join's last writes and log lines settle
            pids = {name: agent.pid for name, agent in agents.items()}
            first = _idle({**pids, "server": server.pid}, idle_seconds)
            scraped = {name: _scrapes(pids[name], metrics[name], scrapes) for name in metrics}
            _join_storm(server, token, storm_nodes)
            time.sleep(2)
            second = _idle({"server": server.pid}, idle_seconds)
        finally:
            for agent in agents.values():
                agent.terminate()
                agent.wait(15)
            server.stop()
    return {
        "idle_seconds": idle_seconds,
        "agent_joined_idle": first["agent"],
        "agent_stay_resident_idle": first["agent_resident"],
        "agent_metrics_idle": first["agent_metrics"],
        "agent_metrics_stay_resident_idle": first["agent_metrics_resident"],
        "server_0_nodes_idle": first["server"],
        f"server_{storm_nodes}_nodes_idle": second["server"],
        "scrapes": scrapes,
        "agent_metrics_scraped": scraped["agent_metrics"],
        "agent_metrics_stay_resident_scraped": scraped["agent_metrics_resident"],
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--idle-seconds", type=float, default=60.0)
    p.add_argument("--storm-nodes", type=int, default=1000)
    p.add_argument("--scrapes", type=int, default=200, help="back-to-back /metrics scrapes")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    out = args.out / f"agent_footprint-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    report = measure(args.idle_seconds, args.storm_nodes, args.scrapes, out)
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'process':<34} {'RSS MB':>8} {'CPU s/min':>10} {'wake-ups/min':>13}")
    for name, fig in report.items():
        if isinstance(fig, dict) and "cpu_s_per_min" in fig:
            print(
                f"{name:<34} {fig['rss_mb']:>8.1f} {fig['cpu_s_per_min']:>10.3f} "
                f"{fig['wakeups_per_min']:>13.0f}"
            )
    print(f"\n{'per /metrics scrape':<34} {'RSS MB':>8} {'CPU ms':>10} {'wake-ups':>13}")
    for name, fig in report.items():
        if isinstance(fig, dict) and "cpu_ms_per_scrape" in fig:
            print(
                f"{name:<34} {fig['rss_mb']:>8.1f} {fig['cpu_ms_per_scrape']:>10.2f} "
                f"{fig['wakeups_per_scrape']:>13.1f}"
            )
    print(f"results: {out}")


if __name__ == "__main__":
    main()
