"""The agent between rotations: a minimal process that sleeps until a deadline, then execs
the full agent again in the same PID.

Run by the agent as ``python -I -S sleeper.py <deadline> <argv...>``, never run imported (the
agent imports only its constants): it must stay a stdlib-only script (``os``, ``signal``,
``sys``, ``time``, ``ctypes``; ``socket`` and ``select`` when it answers metrics) so the
sleeping process holds about 10 MB instead of the full agent's 50 (interpreter, asyncio and
ssl, cryptography, aiohttp).

``<deadline>`` is absolute wall-clock time (seconds since the epoch, UTC). The sleep is
``clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME)``: a wall-clock step forward past the
deadline, or a suspend that outlasts it, wakes the process at once, and nothing else does
(no polling, no timer but the one). Every wake re-reads the clock and sleeps again if the
deadline is still ahead (a clock stepped back). A deadline already past execs at once.
SIGTERM exits 0 and SIGINT 130, at once, as the agent itself does.

``ps`` shows the process as ``kubeboot agent (sleeping until <deadline>)``: the command line
is rewritten in place (the kernel shows a rewritten argv area, as ``setproctitle(3)`` does)
and the thread name set with ``prctl(PR_SET_NAME)`` (``ps -e``, ``top``, ``pgrep kubeboot``).

**Metrics while asleep.** With ``--metrics-bind-address`` the agent leaves its listening
socket open across the exec (:data:`LISTEN_FD_ENV`) and the exposition it last rendered
(:data:`METRICS_ENV`), with the wall-clock expiry behind each TTL gauge
(:data:`COUNTDOWNS_ENV`). The sleeper then waits on that socket and on a ``timerfd`` armed
for the deadline (``CLOCK_REALTIME``, absolute, cancelled on a clock step, so the same wake
rules hold), and answers ``GET /metrics`` (the TTLs counted down to now) and ``GET
/healthz`` (``ok``) itself, one short connection at a time. The socket stays open through
both execs, so a scrape never finds the port closed.
"""

import ctypes
import os
import signal
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # imported when serving only: 0.6 MB a sleeper without metrics saves
    import socket

# The agent sets these before it execs the sleeper (kubeboot.agent.metrics).
LISTEN_FD_ENV = "KUBEBOOT_SLEEPER_LISTEN_FD"
METRICS_ENV = "KUBEBOOT_SLEEPER_METRICS"
COUNTDOWNS_ENV = "KUBEBOOT_SLEEPER_COUNTDOWNS"
TITLE = "kubeboot agent (sleeping until {})"

_CLOCK_REALTIME = 0
_TIMER_ABSTIME = 1
_TFD_TIMER_CANCEL_ON_SET = 2
_EINTR = 4
_PR_SET_NAME = 15
REQUEST_LIMIT = 8192
CLIENT_TIMEOUT = 10.0  # seconds one scrape may take (Prometheus: 10 s); a wake waits at most this


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _exit_on(signum: int, _frame: object) -> None:
    sys.exit(0 if signum == signal.SIGTERM else 130)


def _libc() -> object:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _timespec(deadline: float) -> _Timespec:
    seconds = int(deadline)
    return _Timespec(seconds, int((deadline - seconds) * 1e9))


def wall_time(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def set_title(title: str) -> None:
    """Show ``title`` as this process's command line and name (Linux; elsewhere a no-op).

    The argv strings the kernel shows lie between ``arg_start`` and ``arg_end`` of
    ``/proc/self/stat``; the title and NULs overwrite them, and a non-NUL last byte tells
    the kernel to show the area up to the first NUL (its ``setproctitle`` rule). Python
    copied argv at start, so ``sys.argv`` is unaffected.
    """
    libc = _libc()
    if libc is None:
        return
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
        start, end = int(fields[45]), int(fields[46])  # fields 48 and 49 of proc(5)
    except (OSError, IndexError, ValueError):
        return
    size = end - start
    if size < 2:
        return
    text = title.encode()[: size - 2]
    ctypes.memmove(start, text + b"\0" * (size - len(text) - 1) + b" ", size)
    libc.prctl(_PR_SET_NAME, b"kubeboot agent", 0, 0, 0)  # type: ignore[attr-defined]


def sleep_until(deadline: float) -> None:
    libc = _libc()
    nanosleep = getattr(libc, "clock_nanosleep", None)
    while (remaining := deadline - time.time()) > 0:
        if nanosleep is None:
            time.sleep(remaining)  # monotonic: a suspend delays the wake; re-checked below
            continue
        err = nanosleep(_CLOCK_REALTIME, _TIMER_ABSTIME, ctypes.byref(_timespec(deadline)), None)
        if err not in (0, _EINTR):
            time.sleep(remaining)


def metrics_text(template: str, countdowns: str, now: float) -> bytes:
    """``template`` with each countdown gauge's sample set to its expiry minus ``now``."""
    expiries: dict[str, float] = {}
    for item in countdowns.split(","):
        name, _, at = item.partition("=")
        try:
            expiries[name] = float(at)
        except ValueError:
            continue
    lines = []
    for line in template.splitlines():
        name = line.partition(" ")[0]
        if name in expiries and not line.startswith("#"):
            line = f"{name} {expiries[name] - now!r}"
        lines.append(line)
    return ("\n".join(lines) + "\n").encode()


def response_to(request: bytes, metrics: bytes) -> bytes:
    """The whole HTTP/1.1 answer (the connection closes after it) to one request head."""
    parts = request.split(b"\r\n", 1)[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        status, body, kind = "400 Bad Request", b"bad request\n", "text/plain; charset=utf-8"
    elif parts[0] != b"GET":
        status, body, kind = "405 Method Not Allowed", b"GET only\n", "text/plain; charset=utf-8"
    else:
        path = parts[1].partition(b"?")[0]
        if path == b"/metrics":
            status, body, kind = "200 OK", metrics, "text/plain; version=0.0.4; charset=utf-8"
        elif path == b"/healthz":
            status, body, kind = "200 OK", b"ok", "text/plain; charset=utf-8"
        else:
            status, body = "404 Not Found", b"404 page not found\n"
            kind = "text/plain; charset=utf-8"
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


def _answer(listener: "socket.socket", template: str, countdowns: str) -> None:
    try:
        conn, _ = listener.accept()
    except OSError:  # gone already, or another wake took it
        return
    with conn:
        conn.settimeout(CLIENT_TIMEOUT)
        request = b""
        try:
            while b"\r\n\r\n" not in request and len(request) < REQUEST_LIMIT:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            metrics = metrics_text(template, countdowns, time.time())
            conn.sendall(response_to(request, metrics))
        except OSError:
            return


def deadline_timer(deadline: float) -> int | None:
    """A timerfd that becomes readable at ``deadline`` (or when the clock is set), or None."""
    libc = _libc()
    create = getattr(libc, "timerfd_create", None)
    settime = getattr(libc, "timerfd_settime", None)
    if create is None or settime is None:
        return None
    fd = create(_CLOCK_REALTIME, os.O_CLOEXEC | os.O_NONBLOCK)
    if fd < 0:
        return None
    spec = _Itimerspec(_Timespec(0, 0), _timespec(deadline))
    if settime(fd, _TIMER_ABSTIME | _TFD_TIMER_CANCEL_ON_SET, ctypes.byref(spec), None) != 0:
        os.close(fd)
        return None
    return int(fd)


def serve_until(deadline: float, listen_fd: int, template: str, countdowns: str) -> None:
    """Answer scrapes on ``listen_fd`` until the wall clock reaches ``deadline``."""
    import select
    import socket

    try:
        listener = socket.socket(fileno=listen_fd)
    except OSError as e:  # not a socket (any more): sleep without answering
        print(f"cannot answer metrics on fd {listen_fd} ({e}); sleeping without", flush=True)
        sleep_until(deadline)
        return
    poller = select.poll()
    poller.register(listener, select.POLLIN)
    timer = None
    try:
        while (remaining := deadline - time.time()) > 0:
            if timer is None:
                timer = deadline_timer(deadline)
                if timer is not None:
                    poller.register(timer, select.POLLIN)
            # Without a timerfd: poll's own (monotonic) timeout, re-checked on every wake.
            events = poller.poll(None if timer is not None else remaining * 1000 + 1)
            for fd, _ in events:
                if fd != timer:
                    _answer(listener, template, countdowns)
                    continue
                # Expired, or cancelled by a clock step: either way the loop re-reads the
                # clock, and arms a new timer if the deadline is still ahead.
                poller.unregister(fd)
                os.close(fd)
                timer = None
    finally:
        if timer is not None:
            os.close(timer)
        listener.detach()  # stays open, inheritable, for the agent the exec brings back


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGTERM, _exit_on)
    signal.signal(signal.SIGINT, _exit_on)
    if len(argv) < 3:
        sys.exit("usage: sleeper.py <deadline epoch seconds> <command...>")
    deadline = float(argv[1])
    command = argv[2:]
    set_title(TITLE.format(wall_time(deadline)))
    template = os.environ.pop(METRICS_ENV, "")
    countdowns = os.environ.pop(COUNTDOWNS_ENV, "")
    listen_fd = os.environ.get(LISTEN_FD_ENV, "")
    if listen_fd.isdigit():
        serve_until(deadline, int(listen_fd), template, countdowns)
    else:
        sleep_until(deadline)
    stamp = wall_time(time.time())
    print(f"woke at {stamp}; starting the agent again (pid {os.getpid()})", flush=True)
    try:
        os.execv(command[0], command)  # noqa: S606 (our own argv, no shell)
    except OSError as e:
        sys.exit(f"error: cannot start the agent again ({' '.join(command)}): {e}")


if __name__ == "__main__":
    main(sys.argv)
