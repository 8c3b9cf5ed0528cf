"""Where a run's CPU went, by process: the benchmark's driver, each worker, the Kafka broker,
the PostgreSQL server and everything else on the machine.

Processes are told apart by who started them as well as by their command lines, so that
another broker or database server on the same machine counts as ``other``, not as the run's.

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

# A process's part, from its id, its parent's id and its command line (None: not a part).
Classifier = Callable[[int, int, str], str | None]


def _read_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:
        return ""


def _parent_and_ticks(pid: int) -> tuple[int, int] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = text[text.rindex(")") + 2:].split()
    # ppid (field 4 of the line), utime and stime (fields 14 and 15)
    return int(fields[1]), int(fields[11]) + int(fields[12])


def process_cpu_seconds(pid: int) -> float | None:
    """User and system CPU seconds ``pid`` has used so far (None once it is gone)."""
    read = _parent_and_ticks(pid)
    return None if read is None else read[1] / TICKS_PER_SECOND


def _machine_busy_ticks() -> int:
    first = Path("/proc/stat").read_text().splitlines()[0].split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    return user + nice + system + irq + softirq + steal


def classify_run(driver_pid: int, postmaster_pid: int | None = None,
                 databases: Mapping[str, str] | None = None) -> Classifier:
    """The parts of a benchmark run: this process (``driver``), the workers it started
    (``worker ccb``, ``worker mdm``), the Kafka broker it started (or any Kafka broker when it
    started none: one given by ``KAFKA_BOOTSTRAP_SERVERS``), and the PostgreSQL server whose
    postmaster is ``postmaster_pid``: its backends by database (``databases``: database name ->
    part) and the rest of the server (``postgresql``)."""
    databases = databases or {}

    def classify(pid: int, ppid: int, cmdline: str) -> str | None:
        if pid == driver_pid:
            return "driver"
        if ppid == driver_pid and "sync.cli worker " in cmdline:
            return "worker " + cmdline.split("sync.cli worker ", 1)[1].split(" ", 1)[0]
        if "java" in cmdline and "kafka.Kafka" in cmdline and (
                ppid == driver_pid or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")):
            return "kafka"
        if postmaster_pid is not None and postmaster_pid in (pid, ppid):
            # A backend's title is "postgres: <user> <database> <client> <state>".
            words = cmdline.split()
            database = words[2] if len(words) > 2 and words[0] == "postgres:" else ""
            return databases.get(database, "postgresql")
        return None
    return classify


def postmaster_of(data_dir: Path) -> int | None:
    """The server's process id, from its ``postmaster.pid`` file."""
    try:
        return int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None


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
        read = _parent_and_ticks(pid)
        if read is None:
            continue
        part = classify(pid, read[0], _read_cmdline(pid))
        if part is not None:
            by_pid[pid] = (part, read[1])
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
