"""Where a run's CPU went, by process: the benchmark's driver, each worker, the Kafka broker,
the PostgreSQL server and everything else on the machine.

Read from ``/proc``: each live process's user and system time (``/proc/PID/stat``) at the start
and the end of the measured interval, and the machine's busy time (``/proc/stat``). A process
that lived only inside the interval (a short PostgreSQL backend, say) is not seen by its own
line, but its time is in the machine's, so it shows under ``other``: the parts always add up to
the machine's busy time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")

# A process's part: the first rule whose words are all in its command line names it.
Classifier = Callable[[int, str], str | None]


def _read_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:
        return ""


def _process_ticks(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of the line)


def process_cpu_seconds(pid: int) -> float | None:
    """User and system CPU seconds ``pid`` has used so far (None once it is gone)."""
    ticks = _process_ticks(pid)
    return None if ticks is None else ticks / TICKS_PER_SECOND


def _machine_busy_ticks() -> int:
    first = Path("/proc/stat").read_text().splitlines()[0].split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    return user + nice + system + irq + softirq + steal


def classify_by_command(parts: Mapping[str, tuple[str, ...]], driver_pid: int) -> Classifier:
    """``parts``: part name → words that must all appear in a process's command line."""
    def classify(pid: int, cmdline: str) -> str | None:
        if pid == driver_pid:
            return "driver"
        for name, words in parts.items():
            if words and all(word in cmdline for word in words):
                return name
        return None
    return classify


@dataclass(frozen=True)
class Snapshot:
    machine: int
    by_pid: dict[int, tuple[str, int]]


def snapshot(classify: Classifier) -> Snapshot:
    by_pid: dict[int, tuple[str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        part = classify(pid, _read_cmdline(pid))
        if part is None:
            continue
        ticks = _process_ticks(pid)
        if ticks is not None:
            by_pid[pid] = (part, ticks)
    return Snapshot(_machine_busy_ticks(), by_pid)


def seconds_by_part(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds of each part between two snapshots, ``other`` being the machine's busy time
    not accounted to a part, and ``machine`` the whole."""
    totals: dict[str, int] = {}
    for pid, (part, ticks) in after.by_pid.items():
        earlier = before.by_pid.get(pid)
        # A process born inside the interval counts from zero.
        spent = ticks - (earlier[1] if earlier is not None and earlier[0] == part else 0)
        totals[part] = totals.get(part, 0) + spent
    machine = after.machine - before.machine
    result = {part: ticks / TICKS_PER_SECOND for part, ticks in sorted(totals.items())}
    result["other"] = max(0, machine - sum(totals.values())) / TICKS_PER_SECOND
    result["machine"] = machine / TICKS_PER_SECOND
    return result
