"""What the benchmarks read about a process from ``/proc``: CPU, memory, wake-ups.

Why ``/proc`` and not ``resource.getrusage``: the measured process is another process (the
server or the agent), and its figures must not include the load generator's. Every field is
summed over all threads, because the server does work on its SQLite writer/reader threads and
the agent's idle wake-ups can come from any thread.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcSample", "sample"]

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcSample:
    cpu_seconds: float
    """User + system CPU of all threads since the process started."""
    rss_bytes: int
    peak_rss_bytes: int
    """``VmHWM``: the high-water mark of the resident set, so a short peak is not missed."""
    context_switches: int
    """Voluntary + involuntary switches of all threads: each one is a wake-up or preemption."""


def _status_fields(path: Path) -> dict[str, str]:
    fields = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return fields


def _kib(value: str) -> int:
    return int(value.split()[0]) * 1024


def sample(pid: int) -> ProcSample:
    """One reading of ``pid``; raises ``FileNotFoundError`` if it has exited."""
    proc = Path(f"/proc/{pid}")
    # utime and stime are fields 14 and 15; the command name (field 2) may contain spaces.
    stat = (proc / "stat").read_text().rpartition(")")[2].split()
    cpu = (int(stat[11]) + int(stat[12])) / _TICKS
    status = _status_fields(proc / "status")
    switches = 0
    for task in (proc / "task").iterdir():
        try:
            fields = _status_fields(task / "status")
        except FileNotFoundError:
            continue  # the thread ended between listing and reading
        switches += int(fields["voluntary_ctxt_switches"])
        switches += int(fields["nonvoluntary_ctxt_switches"])
    return ProcSample(
        cpu_seconds=cpu,
        rss_bytes=_kib(status["VmRSS"]),
        peak_rss_bytes=_kib(status["VmHWM"]),
        context_switches=switches,
    )
