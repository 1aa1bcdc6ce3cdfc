"""Between rotations the agent execs a small sleeper (same PID) and comes back at the
deadline, against a real ``kubeboot server --cluster-signing-duration=15m``.

A 15-minute certificate lives 20 minutes (backdated 5), so with a draw of 0 its rotation
deadline is issue + 9 min. The rotation test runs the agent through ``offset_agent.py``:
its clock is ``9 min - AHEAD_MARGIN`` ahead and its draw is 0, so each deadline comes
``AHEAD_MARGIN`` seconds of real time after its certificate was issued, and the sleeper,
the exec back into the agent, the renewal CSR and its signature are all real.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubeboot.agent.hibernation import MIN_SLEEP_SECONDS, interpreter_prefix
from kubeboot.agent.kubeconfigs import bootstrap_kubeconfig, write_kubeconfig
from kubeboot.cli.agent import agent, agent_flags
from kubeboot.clock import parse_time
from tests.conftest import RunningServer, server_process_running
from tests.integration.agent.nodes import (
    AgentProcess,
    NodePaths,
    conditions,
    free_port,
    join_info,
    leaf,
    node_csrs,
)

SLEEPING = (
    r"\] nothing to do until (\S+) \((client|serving) certificate rotation\); .*same pid (\d+)"
)
# Real seconds from issue to the rotation deadline. The agent hands over to the sleeper only
# if the deadline is MIN_SLEEP_SECONDS (3 s) away once its Node is registered, and issue is
# NotBefore in whole seconds: 5 s left it 1-2 s from issue to registration (about 1 s spare
# measured on a loaded 2-core machine); short of that it stayed resident and rotated again.
AHEAD_MARGIN = 10.0
OFFSET_AGENT = [sys.executable, str(Path(__file__).with_name("offset_agent.py"))]
SLEEPER = Path(sys.modules["kubeboot.agent.hibernation"].__file__ or "").with_name("sleeper.py")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with server_process_running(
        tmp_path_factory.mktemp("hib") / "data", "--cluster-signing-duration=15m"
    ) as running:
        yield running


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def _rss_mb(pid: int) -> float:
    return int(_status(pid)["VmRSS"].split()[0]) / 1024


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def _context_switches(pid: int) -> int:
    status = _status(pid)
    return int(status["voluntary_ctxt_switches"]) + int(status["nonvoluntary_ctxt_switches"])


def _sleeping(proc: AgentProcess, nth: int, timeout: float = 30.0) -> re.Match[str]:
    """The ``nth`` (1-based) "nothing to do until" line, once the sleeper runs."""
    deadline = time.monotonic() + timeout
    while True:
        found = list(re.finditer(SLEEPING, proc.output(), re.M))
        if len(found) >= nth:
            break
        assert proc.proc.poll() is None, proc.output()
        assert time.monotonic() < deadline, proc.output()
        time.sleep(0.05)
    # The line is printed just before the exec; wait for the exec, then for the sleeper to
    # be done starting (no context switch in 0.3 s).
    pid = proc.proc.pid
    while str(SLEEPER) not in _cmdline(pid):
        assert time.monotonic() < deadline, (_cmdline(pid), proc.output())
        time.sleep(0.01)
    last = -1
    while (now := _context_switches(pid)) != last:
        assert time.monotonic() < deadline, proc.output()
        last = now
        time.sleep(0.3)
    return found[nth - 1]


def _terminate(proc: AgentProcess, sig: signal.Signals) -> tuple[int, float]:
    start = time.monotonic()
    proc.proc.send_signal(sig)
    code = proc.proc.wait(timeout=10)
    return code, time.monotonic() - start


def test_join_sleeps_in_a_small_process_and_sigterm_exits_0(
    cluster: RunningServer, tmp_path: Path
) -> None:
    info = join_info(cluster)
    node = NodePaths(tmp_path / "node", "hib-join")
    with AgentProcess(
        tmp_path / "agent.log",
        *info.join_args,
        *node.flags(),
        "--node-ip",
        "10.0.0.9",
    ) as proc:
        m = _sleeping(proc, 1)
        pid = proc.proc.pid
        assert int(m.group(3)) == pid  # the PID a supervisor knows
        # The real clock: 9 to 13 minutes after issue (15m signing, backdated 5 min).
        issued = leaf(node.cert_dir / "kubelet-client-current.pem").not_valid_before_utc
        minutes = (parse_time(m.group(1)) - issued).total_seconds() / 60
        assert 14 <= minutes <= 18, m.group(0)
        assert _rss_mb(pid) < 40.0, _status(pid)
        # It comes back as `kubeboot agent` with join's agent flags, not as `join` (discovery
        # is done, the token may be gone by then).
        cmd = _cmdline(pid)
        assert cmd[:4] == [sys.executable, "-I", "-S", str(SLEEPER)]
        back = cmd[5:]
        assert back[:4] == [sys.executable, "-m", "kubeboot", "agent"], cmd
        assert "join" not in back and "--token" not in back
        ctx = agent.make_context("agent", back[4:])
        assert ctx.params["bootstrap_kubeconfig"] == node.bootstrap_kubeconfig
        assert ctx.params["kubeconfig"] == node.kubeconfig
        assert ctx.params["node_name"] == "hib-join"
        assert ctx.params["node_ips"] == ((ipaddress.IPv4Address("10.0.0.9"),),)
        # Asleep means asleep: not one context switch.
        before = _context_switches(pid)
        time.sleep(2.0)
        assert _context_switches(pid) == before
        code, took = _terminate(proc, signal.SIGTERM)
    assert code == 0, proc.output()
    assert took < 2.0
    assert "Traceback" not in proc.output()


def test_agent_wakes_at_the_deadline_rotates_and_sleeps_again(
    cluster: RunningServer, tmp_path: Path
) -> None:
    node = NodePaths(tmp_path / "node", "hib-rot")
    write_kubeconfig(
        node.bootstrap_kubeconfig,
        bootstrap_kubeconfig(cluster.url, cluster.ca_file.read_bytes(), join_info(cluster).token),
    )
    env = {**os.environ, "KUBEBOOT_TEST_CLOCK_AHEAD": str(9 * 60 - AHEAD_MARGIN)}
    assert AHEAD_MARGIN >= MIN_SLEEP_SECONDS + 7  # 6 s or more to bootstrap and register
    with AgentProcess(
        tmp_path / "agent.log", "agent", *node.flags(), program=OFFSET_AGENT, env=env
    ) as proc:
        pid = proc.proc.pid
        first = _sleeping(proc, 1)
        assert int(first.group(3)) == pid
        assert _rss_mb(pid) < 40.0, _status(pid)
        # Back as this very command line (the launcher, "agent", the node's flags).
        assert _cmdline(pid)[5:] == [*OFFSET_AGENT, "agent", *node.flags()]
        second = _sleeping(proc, 2, timeout=AHEAD_MARGIN + 30)
        assert int(second.group(3)) == pid
        assert proc.output().count("woke at ") == 1
        code, took = _terminate(proc, signal.SIGINT)
    assert code == 130, proc.output()
    assert took < 2.0

    pairs = sorted(node.cert_dir.glob("kubelet-client-2*.pem"))
    assert len(pairs) == 2, proc.output()
    csrs = sorted(node_csrs(cluster, "hib-rot"), key=lambda c: c["metadata"]["creationTimestamp"])
    assert len(csrs) == 2
    renewal = csrs[1]
    assert renewal["spec"]["username"] == "system:node:hib-rot"
    assert ("Approved", "AutoApproved") in conditions(renewal)
    # Renewed at the deadline drawn before the exec (issue + AHEAD_MARGIN), not earlier, and
    # not re-drawn after it: the first sleep was until exactly that moment.
    renewed_at = parse_time(renewal["metadata"]["creationTimestamp"])
    issued_at = leaf(pairs[0]).not_valid_before_utc.replace(microsecond=0)
    wait = (renewed_at - issued_at).total_seconds() - 5 * 60
    assert AHEAD_MARGIN - 1 <= wait <= AHEAD_MARGIN + 10, proc.output()
    # The next sleep is until the new certificate's deadline, drawn afresh (0.5 here).
    renewed = leaf(pairs[1])
    life = renewed.not_valid_after_utc - renewed.not_valid_before_utc
    next_deadline = renewed.not_valid_before_utc + 0.8 * life
    assert parse_time(second.group(1)) == next_deadline.replace(microsecond=0)


def test_no_sleep_while_a_serving_request_waits_for_approval(
    cluster: RunningServer, tmp_path: Path
) -> None:
    info = join_info(cluster)
    node = NodePaths(tmp_path / "node", "hib-serving")
    with AgentProcess(
        tmp_path / "agent.log",
        *info.join_args,
        *node.flags(),
        "--node-ip",
        "10.0.0.8",
        "--rotate-server-certificates",
    ) as proc:
        approve = proc.wait_for(
            r"waiting for serving .*; approve it with: (kubectl certificate approve \S+)$"
        )
        time.sleep(1.5)  # the client side is idle long since; the serving CSR still waits
        assert "nothing to do until" not in proc.output()
        assert str(SLEEPER) not in _cmdline(proc.proc.pid)
        cluster.kubectl(*approve.group(1).split()[1:])
        m = _sleeping(proc, 1)
        assert _rss_mb(proc.proc.pid) < 40.0
        # Until the earlier of the two deadlines (both certificates are 20-minute ones).
        client = leaf(node.cert_dir / "kubelet-client-current.pem")
        serving = leaf(node.cert_dir / "kubelet-server-current.pem")
        until = parse_time(m.group(1))
        windows = [
            (c.not_valid_before_utc + f * (c.not_valid_after_utc - c.not_valid_before_utc))
            for c in (client, serving)
            for f in (0.7, 0.9)
        ]
        assert until <= min(windows[1], windows[3]), (until, windows)  # neither is missed
        second = dt.timedelta(seconds=1)  # the line shows whole seconds
        assert windows[0] - second <= until or windows[2] - second <= until
        code, _ = _terminate(proc, signal.SIGTERM)
    assert code == 0


def test_metrics_keep_the_agent_resident(cluster: RunningServer, tmp_path: Path) -> None:
    info = join_info(cluster)
    node = NodePaths(tmp_path / "node", "hib-metrics")
    address = f"127.0.0.1:{free_port()}"
    with AgentProcess(
        tmp_path / "agent.log",
        *info.join_args,
        *node.flags(),
        "--metrics-bind-address",
        address,
    ) as proc:
        proc.wait_for(r"\] wrote " + str(node.kubeconfig))
        deadline = time.monotonic() + 20
        while "kubelet_certificate_manager_client_ttl_seconds" not in _scrape(address):
            assert time.monotonic() < deadline, proc.output()
            time.sleep(0.1)
        time.sleep(1.0)
        assert proc.proc.poll() is None
        assert str(SLEEPER) not in _cmdline(proc.proc.pid)
        assert "kubelet_certificate_manager_client_ttl_seconds" in _scrape(address)
    assert "sleeping until then" not in proc.output()


def _scrape(address: str) -> str:
    """The /metrics text, or "" while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as resp:
            return str(resp.read().decode())
    except OSError:
        return ""


def test_sleeper_with_a_past_deadline_execs_at_once(tmp_path: Path) -> None:
    out = tmp_path / "out"
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(SLEEPER), "0", "/bin/sh", "-c", f"echo $$ > {out}"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert time.monotonic() - start < 2.0
    assert "woke at" in done.stdout
    assert out.read_text().strip().isdigit()


def test_sleeper_that_cannot_exec_the_agent_says_so_and_exits_1(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-python"
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(SLEEPER), "0", str(missing), "-m", "kubeboot"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert done.returncode == 1
    assert f"cannot start the agent again ({missing} -m kubeboot)" in done.stderr


def test_join_plan_becomes_the_same_agent_plan() -> None:
    """What join execs after discovery (``kubeboot agent`` + agent_flags) means the same."""
    from kubeboot.cli.agent import given_on, resolve_agent
    from kubeboot.cli.join import join, join_spec

    args = [
        "10.0.0.1:6443", "--token", "abcdef.0123456789abcdef", "--bootstrap-kubeconfig",
        "boot.conf", "--kubeconfig", "k.conf", "--cert-dir", "pki", "--node-name", "n1",
        "--node-ip", "10.0.0.1,fd00::1", "--rotate-certificates=false",
        "--rotate-server-certificates", "--bootstrap-timeout", "12.5s", "--rotation-wait=15m",
    ]  # fmt: skip
    ctx = join.make_context("join", args)
    plan = join_spec(ctx.params, given_on(ctx)).agent
    assert plan is not None
    flags = agent_flags(plan)
    assert not any("abcdef.0123456789abcdef" in f for f in flags)  # the token stays behind
    again_ctx = agent.make_context("agent", flags)
    again = resolve_agent(again_ctx.params, given_on(again_ctx))
    assert (again.kubeconfig, again.cert_dir, again.node_name, again.node_ips) == (
        Path("k.conf"),
        Path("pki"),
        "n1",
        ["10.0.0.1", "fd00::1"],
    )
    assert again.bootstrap_kubeconfig == Path("boot.conf")
    assert (again.rotate_certificates, again.rotate_server_certificates) == (False, True)
    assert (again.bootstrap_wait_seconds, again.rotation_wait_seconds) == (12.5, 900.0)


def test_interpreter_prefix() -> None:
    assert interpreter_prefix(
        ["python3", "-m", "kubeboot", "agent", "-x"], ["m.py", "agent", "-x"]
    ) == [
        sys.executable,
        "-m",
        "kubeboot",
    ]
    assert interpreter_prefix(
        ["py", "/usr/bin/kubeboot", "agent"], ["/usr/bin/kubeboot", "agent"]
    ) == [
        sys.executable,
        "/usr/bin/kubeboot",
    ]
