"""Between rotations the agent execs a small sleeper (same PID) and comes back at the
deadline, against a real ``kubeboot server --cluster-signing-duration=15m``.

A 15-minute certificate lives 20 minutes (backdated 5), so with a draw of 0 its rotation
deadline is issue + 9 min. The rotation test runs the agent through ``offset_agent.py``:
its clock is ``9 min - AHEAD_MARGIN`` ahead and its draw is 0, so each deadline comes
``AHEAD_MARGIN`` seconds of real time after its certificate was issued, and the sleeper,
the exec back into the agent, the renewal CSR and its signature are all real.

The sleeper shows in ``ps`` as ``kubeboot agent (sleeping until T)``, so the tests know it
runs by that title (the command line it was started with is gone), and learn the command it
wakes with from the process that the wake brings back in the same PID.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kubeboot.agent.hibernation import MIN_SLEEP_SECONDS, interpreter_prefix
from kubeboot.agent.kubeconfigs import bootstrap_kubeconfig, write_kubeconfig
from kubeboot.agent.sleeper import COUNTDOWNS_ENV, LISTEN_FD_ENV, METRICS_ENV, TITLE
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


def _asleep(pid: int) -> bool:
    """Whether ``pid`` runs the sleeper: its title, as ``ps`` shows it."""
    cmd = _cmdline(pid)
    return len(cmd) == 1 and cmd[0].startswith(TITLE.partition("{")[0])


def _woken_command(proc: AgentProcess, nth: int, timeout: float = 60.0) -> list[str]:
    """The command line the ``nth`` wake execs: what the PID runs once the sleeper is gone."""
    deadline = time.monotonic() + timeout
    while True:
        woke = proc.output().count("woke at ") >= nth
        # The command line is empty for an instant during the exec itself.
        if woke and (cmd := _cmdline(proc.proc.pid)) and not _asleep(proc.proc.pid):
            return cmd
        assert proc.proc.poll() is None, proc.output()
        assert time.monotonic() < deadline, proc.output()
        time.sleep(0.01)


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
    while not _asleep(pid):
        assert time.monotonic() < deadline, (_cmdline(pid), proc.output())
        time.sleep(0.01)
    _settled(pid, deadline)
    return found[nth - 1]


def _settled(pid: int, deadline: float) -> None:
    """Until ``pid`` is done with what it was doing: no context switch in 0.3 s."""
    last = -1
    while (now := _context_switches(pid)) != last:
        assert time.monotonic() < deadline, _status(pid)
        last = now
        time.sleep(0.3)


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
    env = {**os.environ, "KUBEBOOT_TEST_CLOCK_AHEAD": str(9 * 60 - AHEAD_MARGIN)}
    with AgentProcess(
        tmp_path / "agent.log",
        *info.join_args,
        *node.flags(),
        "--node-ip",
        "10.0.0.9",
        program=OFFSET_AGENT,
        env=env,
    ) as proc:
        m = _sleeping(proc, 1)
        pid = proc.proc.pid
        assert int(m.group(3)) == pid  # the PID a supervisor knows
        # Until 0.7 of the certificate's life (the launcher's draw is 0), on the agent's clock.
        issued = leaf(node.cert_dir / "kubelet-client-current.pem")
        life = issued.not_valid_after_utc - issued.not_valid_before_utc
        until = issued.not_valid_before_utc + 0.7 * life
        assert parse_time(m.group(1)) == until.replace(microsecond=0)
        assert _rss_mb(pid) < 40.0, _status(pid)
        # What `ps` shows, and the name `ps -e`, top and pgrep see. The title's time is the
        # real clock's (the launcher's clock is ahead by the offset).
        shown = subprocess.run(
            ["ps", "-o", "args=", "-p", str(pid)], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert _cmdline(pid) == [shown]
        title = re.fullmatch(TITLE.replace("(", r"\(").replace(")", r"\)").format(r"(\S+)"), shown)
        assert title, shown
        real_until = parse_time(m.group(1)) - dt.timedelta(seconds=9 * 60 - AHEAD_MARGIN)
        assert abs((parse_time(title.group(1)) - real_until).total_seconds()) <= 1.0, shown
        assert Path(f"/proc/{pid}/comm").read_text() == "kubeboot agent\n"
        # Asleep means asleep: not one context switch.
        before = _context_switches(pid)
        time.sleep(2.0)
        assert _context_switches(pid) == before
        # It comes back as `kubeboot agent` with join's agent flags, not as `join` (discovery
        # is done, the token may be gone by then).
        back = _woken_command(proc, 1)
        assert back[:3] == [*OFFSET_AGENT, "agent"], back
        assert "join" not in back and "--token" not in back
        ctx = agent.make_context("agent", back[3:])
        assert ctx.params["bootstrap_kubeconfig"] == node.bootstrap_kubeconfig
        assert ctx.params["kubeconfig"] == node.kubeconfig
        assert ctx.params["node_name"] == "hib-join"
        assert ctx.params["node_ips"] == ((ipaddress.IPv4Address("10.0.0.9"),),)
        _sleeping(proc, 2, timeout=AHEAD_MARGIN + 30)
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
        assert _woken_command(proc, 1) == [*OFFSET_AGENT, "agent", *node.flags()]
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
        assert not _asleep(proc.proc.pid)
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


def test_metrics_are_answered_while_asleep_and_across_the_wake(
    cluster: RunningServer, tmp_path: Path
) -> None:
    node = NodePaths(tmp_path / "node", "hib-metrics")
    write_kubeconfig(
        node.bootstrap_kubeconfig,
        bootstrap_kubeconfig(cluster.url, cluster.ca_file.read_bytes(), join_info(cluster).token),
    )
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "KUBEBOOT_TEST_CLOCK_AHEAD": str(9 * 60 - AHEAD_MARGIN)}
    flags = [*node.flags(), "--metrics-bind-address", address]
    with AgentProcess(
        tmp_path / "agent.log", "agent", *flags, program=OFFSET_AGENT, env=env
    ) as proc:
        pid = proc.proc.pid
        _sleeping(proc, 1)
        assert _rss_mb(pid) < 15.0, _status(pid)  # the sleeper, not the 50 MB agent
        first = _metrics(_get(address, "/metrics"))
        assert first["kubelet_certificate_manager_client_expiration_renew_errors"] == (
            "unknown",
            0.0,
        )
        assert first["kubelet_certificate_manager_server_ttl_seconds"] == ("gauge", math.inf)
        assert _get(address, "/healthz") == "ok"
        # The TTL counts down on the real clock while the sleeper answers.
        time.sleep(1.1)
        ttl = "kubelet_certificate_manager_client_ttl_seconds"
        second = _metrics(_get(address, "/metrics"))
        assert 1.0 <= first[ttl][1] - second[ttl][1] <= 5.0, (first, second)
        assert _asleep(pid)  # answering did not wake the agent
        # Idle between scrapes means no wake-up at all (once done with the last answer).
        _settled(pid, time.monotonic() + 10)
        before = _context_switches(pid)
        time.sleep(1.5)
        assert _context_switches(pid) == before
        # Scrape without pause through the wake, the renewal and the next sleep: the port
        # never closes (the socket is the same one throughout) and every answer is whole.
        answers = 0
        deadline = time.monotonic() + AHEAD_MARGIN + 60
        while proc.output().count("nothing to do until") < 2 or not _asleep(pid):
            assert time.monotonic() < deadline, proc.output()
            try:
                scraped = _metrics(_get(address, "/metrics"))
            except OSError as exc:  # say when: asleep, waking, awake, going to sleep
                raise AssertionError(
                    f"scrape {answers} failed: {exc!r}; asleep: {_asleep(pid)}\n{proc.output()}"
                ) from exc
            assert set(scraped) == set(first)
            answers += 1
        assert "woke at " in proc.output()
        renewed = _metrics(_get(address, "/metrics"))
        assert renewed[ttl][1] > second[ttl][1]  # the new certificate's TTL
        assert answers > 10
        code, _ = _terminate(proc, signal.SIGTERM)
    assert code == 0, proc.output()


def _get(address: str, path: str) -> str:
    with urllib.request.urlopen(f"http://{address}{path}", timeout=30) as resp:
        assert resp.status == 200
        return str(resp.read().decode())


def _metrics(text: str) -> dict[str, tuple[str, float]]:
    """name -> (type, value), read by the Prometheus client's parser."""
    return {f.name: (f.type, f.samples[0].value) for f in text_string_to_metric_families(text)}


def test_the_sleeper_answers_on_its_socket_then_hands_it_on(tmp_path: Path) -> None:
    """The sleeper alone: it answers on the socket it inherits, counts the TTL down, and
    execs with that socket still open (and the metrics text no longer in the environment)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.set_inheritable(True)
    address = f"127.0.0.1:{listener.getsockname()[1]}"
    fd = listener.fileno()
    out = tmp_path / "out"
    env = {
        **os.environ,
        LISTEN_FD_ENV: str(fd),
        METRICS_ENV: "# HELP ttl a gauge\n# TYPE ttl gauge\nttl 5.0\n",
        COUNTDOWNS_ENV: f"ttl={time.time() + 100:.6f}",
    }
    script = f'readlink /proc/$$/fd/{fd} > {out}; echo "[${METRICS_ENV}]" >> {out}'
    argv = [sys.executable, "-I", "-S", str(SLEEPER), f"{time.time() + 5:.6f}", "/bin/sh", "-c"]
    with subprocess.Popen(
        [*argv, script], env=env, pass_fds=(fd,), stdout=subprocess.PIPE, text=True
    ) as proc:
        listener.close()  # the test's copy; the sleeper holds its own
        ttl = _metrics(_get(address, "/metrics"))["ttl"]
        assert ttl[0] == "gauge" and 90 < ttl[1] < 100
        assert _get(address, "/healthz") == "ok"
        stdout, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "woke at" in stdout
    inherited, metrics_env = out.read_text().splitlines()
    assert inherited.startswith("socket:[")
    assert metrics_env == "[]"


def test_a_sleeper_whose_socket_is_gone_sleeps_without_it() -> None:
    env = {**os.environ, LISTEN_FD_ENV: "1000"}  # nothing open there
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(SLEEPER), f"{time.time() + 1:.6f}", "/bin/echo", "back"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "cannot answer metrics on fd 1000" in done.stdout
    assert done.stdout.endswith("back\n")


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
