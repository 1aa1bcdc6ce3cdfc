"""Leaving the full agent for the small sleeper between rotations, and coming back.

When every rotation loop waits for its deadline (no CSR in flight, no back-off, the Node
registered), the agent ends its event loop and execs
``python -I -S sleeper.py <deadline> <argv>`` (:mod:`kubeboot.agent.sleeper`), which execs
``argv`` (the agent's own command line, or ``kubeboot agent …`` for ``kubeboot join``) at
the earliest deadline. The PID stays the same throughout, so a supervisor sees one process.

The rotation deadlines survive the exec in the environment (``KUBEBOOT_AGENT_DEADLINES``),
each tied to the SHA-256 fingerprint of the certificate it was drawn for: the agent that
wakes uses the same jittered deadline instead of drawing a new one (a new draw at every wake
would drift towards 90 % of the lifetime), and a certificate replaced on disk meanwhile gets
a fresh draw. With ``--metrics-bind-address`` the listening socket and what the sleeper
answers ``/metrics`` from travel the same way (:attr:`Hibernation.sleeper_env`,
:mod:`kubeboot.agent.metrics`).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEADLINES_ENV",
    "MIN_SLEEP_SECONDS",
    "Hibernation",
    "decode_deadlines",
    "encode_deadlines",
    "exec_sleeper",
    "interpreter_prefix",
    "sleeper_argv",
    "sleeper_available",
]

DEADLINES_ENV = "KUBEBOOT_AGENT_DEADLINES"
# Re-exec costs about half a CPU-second (the imports); not worth it for a shorter sleep.
MIN_SLEEP_SECONDS = 3.0
SLEEPER = Path(__file__).with_name("sleeper.py")


@dataclass(frozen=True, slots=True)
class Hibernation:
    """What the agent hands over to the sleeper."""

    until: dt.datetime  # the earliest deadline, on the agent's clock
    wall_deadline: float  # the same moment as real wall-clock epoch seconds
    what: str  # "client certificate rotation", ...
    deadlines: dict[str, dt.datetime]  # certificate fingerprint -> rotation deadline
    # More environment for the sleeper and the agent it wakes (the /metrics socket and text).
    sleeper_env: dict[str, str] = field(default_factory=dict)


def encode_deadlines(deadlines: dict[str, dt.datetime]) -> str:
    return ",".join(f"{fp}={t.timestamp():.6f}" for fp, t in sorted(deadlines.items()))


def decode_deadlines(text: str) -> dict[str, dt.datetime]:
    """The inverse of :func:`encode_deadlines`; malformed entries are ignored (a new draw)."""
    out: dict[str, dt.datetime] = {}
    for item in text.split(","):
        fp, sep, stamp = item.partition("=")
        if not sep or not fp:
            continue
        try:
            out[fp] = dt.datetime.fromtimestamp(float(stamp), dt.UTC)
        except (ValueError, OverflowError, OSError):
            continue
    return out


def interpreter_prefix(orig_argv: list[str], argv: list[str]) -> list[str]:
    """The interpreter part of the command line: ``[python, -m, kubeboot]`` or
    ``[python, /usr/bin/kubeboot]``, i.e. ``orig_argv`` without the program's arguments,
    with the interpreter as an absolute path (``sys.executable``)."""
    keep = len(orig_argv) - (len(argv) - 1)
    return [sys.executable, *orig_argv[1:keep]]


def sleeper_available() -> bool:
    """Whether ``python -I -S sleeper.py`` can run here: a real interpreter (not a frozen
    binary, which would take the arguments as its own) and the script on disk."""
    return not getattr(sys, "frozen", False) and bool(sys.executable) and SLEEPER.is_file()


def sleeper_argv(wall_deadline: float, command: list[str]) -> list[str]:
    return [sys.executable, "-I", "-S", str(SLEEPER), f"{wall_deadline:.6f}", *command]


def exec_sleeper(hibernation: Hibernation, command: list[str]) -> None:
    """Replace this process with the sleeper; returns only if exec fails (it raises)."""
    os.environ.update(hibernation.sleeper_env)
    os.environ[DEADLINES_ENV] = encode_deadlines(hibernation.deadlines)
    sys.stdout.flush()
    sys.stderr.flush()
    argv = sleeper_argv(hibernation.wall_deadline, command)
    os.execv(argv[0], argv)  # noqa: S606 (our own argv, no shell)
