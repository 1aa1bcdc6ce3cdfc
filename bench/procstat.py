"""What the benchmarks read about a process tree from ``/proc``: CPU, memory, wake-ups.

Why ``/proc`` and not ``resource.getrusage``: the measured process is another process (the
server or the agent), and its figures must not include the load generator's. Every field is
summed over all threads, because the server does work on its SQLite writer/reader threads and
the agent's idle wake-ups can come from any thread.

Why a tree: ``kubeboot server --workers N`` serves HTTPS from N child processes while the
parent keeps storage and controllers, so the server's cost is the parent's plus its
descendants'. :func:`sample` reads the PID and every live descendant (found by scanning
``/proc/*/stat`` for parent PIDs: this kernel has no ``/proc/<pid>/task/<tid>/children``);
:func:`sample_process` reads one process alone. Both work for a process that re-execs itself
in place (the agent's sleeper keeps its PID).

Invariants and limits of a tree sample:

* CPU is ``utime + stime + cutime + cstime`` of every process in the tree. A descendant that
  exited and was waited for has moved its CPU (and its own reaped descendants') into its
  parent's ``cutime``/``cstime``, so it is counted once whether it is alive or gone. Lost:
  a descendant that is re-parented away (double fork, or its parent died first), and one that
  exits and is reaped between the moment the tree is listed and the moment it is read.
* The tree is listed once and read process by process; it is not an atomic snapshot.
* ``rss_bytes`` sums ``VmRSS``, so pages shared between processes (copy-on-write after
  ``fork``, shared libraries) count once per process; ``pss_bytes`` shares them out instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcSample", "process_start_ticks", "process_tree", "sample", "sample_process"]

_TICKS = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class ProcSample:
    cpu_seconds: float
    """User + system CPU of all threads since the process started, plus that of its descendants
    (live ones directly, exited and reaped ones through ``cutime``/``cstime``)."""
    rss_bytes: int
    """Sum of ``VmRSS`` over the processes: shared pages count once per process."""
    pss_bytes: int
    """Sum of ``Pss`` (``smaps_rollup``): shared pages are divided among the processes that map
    them, so this is what the tree really holds; 0 if the kernel does not provide it."""
    peak_rss_bytes: int
    """Sum of ``VmHWM``, the high-water mark of each resident set, so a short peak is not
    missed. For more than one process an upper bound: the peaks need not be simultaneous, and
    shared pages count once per process."""
    context_switches: int
    """Voluntary + involuntary switches of all threads: each one is a wake-up or preemption."""
    processes: int
    """How many processes the figures cover (1 for :func:`sample_process`)."""


@dataclass(frozen=True, slots=True)
class _One:
    cpu_ticks: int
    rss_bytes: int
    pss_bytes: int
    peak_rss_bytes: int
    context_switches: int


def _stat_fields(pid: int) -> list[str]:
    """``/proc/<pid>/stat`` from field 3 (state) on; the command name may contain spaces."""
    return (_PROC / str(pid) / "stat").read_text().rpartition(")")[2].split()


def _status_fields(path: Path) -> dict[str, str]:
    fields = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return fields


def _kib(value: str) -> int:
    return int(value.split()[0]) * 1024


def _pss(proc: Path) -> int:
    try:
        text = (proc / "smaps_rollup").read_text()
    except FileNotFoundError:
        return 0  # no smaps_rollup (kernel < 4.14), or the process is a zombie
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return _kib(line.partition(":")[2])
    return 0


def _read_one(pid: int, *, with_children: bool) -> _One:
    """Raises ``FileNotFoundError`` (or ``ProcessLookupError``, in a race) if ``pid`` is gone."""
    proc = _PROC / str(pid)
    stat = _stat_fields(pid)
    # utime, stime, cutime, cstime are fields 14-17 of stat(5); stat[0] is field 3.
    ticks = int(stat[11]) + int(stat[12])
    if with_children:
        ticks += int(stat[13]) + int(stat[14])
    status = _status_fields(proc / "status")
    switches = 0
    for task in (proc / "task").iterdir():
        try:
            fields = _status_fields(task / "status")
        except FileNotFoundError:
            continue  # the thread ended between listing and reading
        switches += int(fields["voluntary_ctxt_switches"])
        switches += int(fields["nonvoluntary_ctxt_switches"])
    return _One(
        cpu_ticks=ticks,
        # A zombie has no memory fields: it holds no memory any more.
        rss_bytes=_kib(status.get("VmRSS", "0")),
        pss_bytes=_pss(proc),
        peak_rss_bytes=_kib(status.get("VmHWM", "0")),
        context_switches=switches,
    )


def process_start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks after boot), or None if it is not running (no such
    process, or a zombie: exited, not yet waited for). With the PID, the start time names one
    process even if the PID is reused later."""
    try:
        stat = _stat_fields(pid)
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if stat[0] == "Z" else int(stat[19])  # state is field 3, starttime field 22


def process_tree(pid: int) -> list[int]:
    """``pid`` followed by its live descendants (breadth first), from one scan of ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(entry.name))[1])
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited between listing and reading
        children.setdefault(ppid, []).append(int(entry.name))
    tree = [pid]
    for member in tree:  # grows while iterating: breadth-first walk
        tree.extend(children.get(member, ()))
    return tree


def _total(parts: list[_One]) -> ProcSample:
    return ProcSample(
        cpu_seconds=sum(p.cpu_ticks for p in parts) / _TICKS,
        rss_bytes=sum(p.rss_bytes for p in parts),
        pss_bytes=sum(p.pss_bytes for p in parts),
        peak_rss_bytes=sum(p.peak_rss_bytes for p in parts),
        context_switches=sum(p.context_switches for p in parts),
        processes=len(parts),
    )


def sample(pid: int) -> ProcSample:
    """One reading of ``pid`` and all its descendants; raises ``FileNotFoundError`` if ``pid``
    itself has exited (a descendant that exits meanwhile is skipped)."""
    root, *descendants = process_tree(pid)
    parts = [_read_one(root, with_children=True)]
    for child in descendants:
        try:
            parts.append(_read_one(child, with_children=True))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return _total(parts)


def sample_process(pid: int) -> ProcSample:
    """One reading of ``pid`` alone: its threads, without any child process's CPU or memory;
    raises ``FileNotFoundError`` if it has exited."""
    return _total([_read_one(pid, with_children=False)])
