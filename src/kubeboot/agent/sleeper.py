"""The agent between rotations: a minimal process that sleeps until a deadline, then execs
the full agent again in the same PID.

Run by the agent as ``python -I -S sleeper.py <deadline> <argv...>``, never imported: it
must stay a stdlib-only script (``os``, ``signal``, ``sys``, ``time``, ``ctypes``) so the
sleeping process holds about 10 MB instead of the full agent's 50 (interpreter, asyncio and
ssl, cryptography, aiohttp).

``<deadline>`` is absolute wall-clock time (seconds since the epoch, UTC). The sleep is
``clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME)``: a wall-clock step forward past the
deadline, or a suspend that outlasts it, wakes the process at once, and nothing else does
(no polling, no timer but the one). Every wake re-reads the clock and sleeps again if the
deadline is still ahead (a clock stepped back). A deadline already past execs at once.
SIGTERM exits 0 and SIGINT 130, at once, as the agent itself does.
"""

import ctypes
import os
import signal
import sys
import time

_CLOCK_REALTIME = 0
_TIMER_ABSTIME = 1
_EINTR = 4


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _exit_on(signum: int, _frame: object) -> None:
    sys.exit(0 if signum == signal.SIGTERM else 130)


def _absolute_sleep() -> object:
    """``clock_nanosleep`` from libc, or None where it cannot be had."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.clock_nanosleep
    except (OSError, AttributeError):
        return None


def sleep_until(deadline: float) -> None:
    nanosleep = _absolute_sleep()
    while (remaining := deadline - time.time()) > 0:
        if nanosleep is None:
            time.sleep(remaining)  # monotonic: a suspend delays the wake; re-checked below
            continue
        seconds = int(deadline)
        spec = _Timespec(seconds, int((deadline - seconds) * 1e9))
        err = nanosleep(_CLOCK_REALTIME, _TIMER_ABSTIME, ctypes.byref(spec), None)  # type: ignore[operator]
        if err not in (0, _EINTR):
            time.sleep(remaining)


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGTERM, _exit_on)
    signal.signal(signal.SIGINT, _exit_on)
    if len(argv) < 3:
        sys.exit("usage: sleeper.py <deadline epoch seconds> <command...>")
    deadline = float(argv[1])
    command = argv[2:]
    sleep_until(deadline)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"woke at {stamp}; starting the agent again (pid {os.getpid()})", flush=True)
    try:
        os.execv(command[0], command)  # noqa: S606 (our own argv, no shell)
    except OSError as e:
        sys.exit(f"error: cannot start the agent again ({' '.join(command)}): {e}")


if __name__ == "__main__":
    main(sys.argv)
