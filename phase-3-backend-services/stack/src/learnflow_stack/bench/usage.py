"""What each process of the stack used, read from /proc: peak memory (VmHWM) and CPU time,
its living descendants (e.g. PostgreSQL backends) included."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from learnflow_stack.process import ManagedProcess

_MIB = 1024 * 1024


def status_kib(status_text: str, name: str) -> int | None:
    """A ``kB`` field (``VmHWM``, ``VmRSS``, ...) of a /proc/<pid>/status text, in KiB."""
    for line in status_text.splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return int(value.split()[0])
    return None


def stat_fields(stat_text: str) -> list[str]:
    """The fields of a /proc/<pid>/stat text from field 3 (state) on. The command name (field
    2) may hold spaces and parentheses, so counting starts after its last closing one."""
    return stat_text[stat_text.rindex(")") + 2 :].split()


def parent_pid(stat_text: str) -> int:
    return int(stat_fields(stat_text)[1])


def cpu_ticks(stat_text: str, *, reaped_children: bool) -> int:
    """utime + stime in clock ticks, plus cutime + cstime (children it has waited for) if
    ``reaped_children``."""
    fields = stat_fields(stat_text)
    own = int(fields[11]) + int(fields[12])
    return own + (int(fields[13]) + int(fields[14]) if reaped_children else 0)


def stolen_ticks(proc_stat_text: str) -> int:
    """The machine's steal time in clock ticks, from /proc/stat's ``cpu`` line (its 8th value):
    time its CPUs had work ready while the hypervisor ran something else. On a shared VM it is
    the noise of a figure; on a machine of its own it stays 0."""
    for line in proc_stat_text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            return int(fields[8]) if len(fields) > 8 else 0
    raise ValueError("no cpu line in /proc/stat")


def stolen_cpu_seconds() -> float:
    """The steal time of the machine since it booted, in seconds (0 where /proc/stat is not)."""
    text = _read("/proc/stat")
    return stolen_ticks(text) / os.sysconf("SC_CLK_TCK") if text else 0.0


def descendants(pid: int, parents: Mapping[int, int]) -> list[int]:
    """Every process below ``pid`` in the ``child -> parent`` map."""
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    found: list[int] = []
    frontier = [pid]
    while frontier:
        below = children.get(frontier.pop(), [])
        found.extend(below)
        frontier.extend(below)
    return found


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None  # the process ended while we looked


def process_parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _read(f"/proc/{entry.name}/stat")):
            parents[int(entry.name)] = parent_pid(stat)
    return parents


@dataclass(frozen=True)
class ProcessUsage:
    name: str
    pid: int
    peak_mib: float | None  # VmHWM; None if the process had ended
    children: int  # living descendants, e.g. PostgreSQL backends
    children_peak_mib: float  # their VmHWM summed: shared pages are counted in each one
    cpu_seconds: float  # since it started: itself, its reaped and its living descendants


def cpu_seconds_of(pid: int, parents: Mapping[int, int]) -> float:
    """CPU time of ``pid`` since it started: itself, its reaped and its living descendants."""
    stat = _read(f"/proc/{pid}/stat")
    ticks = cpu_ticks(stat, reaped_children=True) if stat else 0
    for child in descendants(pid, parents):
        if child_stat := _read(f"/proc/{child}/stat"):
            ticks += cpu_ticks(child_stat, reaped_children=False)
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_seconds_by_process(processes: Iterable[ManagedProcess]) -> dict[str, float]:
    parents = process_parents()
    return {process.name: cpu_seconds_of(process.pid, parents) for process in processes}


def process_usage(processes: Iterable[ManagedProcess]) -> list[ProcessUsage]:
    parents = process_parents()
    measured: list[ProcessUsage] = []
    for process in processes:
        status = _read(f"/proc/{process.pid}/status")
        peak = status_kib(status, "VmHWM") if status else None
        child_peaks = [
            child_peak
            for child in descendants(process.pid, parents)
            if (child_status := _read(f"/proc/{child}/status"))
            and (child_peak := status_kib(child_status, "VmHWM"))
        ]
        measured.append(
            ProcessUsage(
                name=process.name,
                pid=process.pid,
                peak_mib=None if peak is None else peak * 1024 / _MIB,
                children=len(child_peaks),
                children_peak_mib=sum(child_peaks) * 1024 / _MIB,
                cpu_seconds=cpu_seconds_of(process.pid, parents),
            )
        )
    return measured
