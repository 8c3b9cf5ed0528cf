"""Running batch jobs on a schedule: a bounded, stoppable loop.

``c2m-sync batch schedule --every 15m SAACT TD-SSFTL`` runs the jobs one after the other, then
waits until the next period starts (fixed rate: a run that takes longer than the period is
followed at once by the next, never overlapped). The loop ends after ``max_runs`` rounds or when
``stop`` is set (the CLI sets it on SIGTERM and Ctrl-C). The CLI hands the same ``stop`` to the
jobs, so a job under way ends after its unit of work (never half-way through a chunk) and the
round's other jobs wait for the next start. Each round reads the business date from
the clock again, so a loop running past midnight works on the new day.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Callable

_PERIOD = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_period(text: str) -> dt.timedelta:
    """``30s``, ``15m``, ``1h``, ``1d`` -> a positive period."""
    match = _PERIOD.match(text)
    if match is None:
        raise ValueError(f"invalid period {text!r} (expected a number and s, m, h or d,"
                         " e.g. 15m)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"invalid period {text!r}: must be more than zero")
    return dt.timedelta(seconds=seconds)


def run_every(period: dt.timedelta, run_round: Callable[[int], None], stop: threading.Event,
              max_runs: int | None = None,
              monotonic: Callable[[], float] = time.monotonic) -> int:
    """Call ``run_round(n)`` for n = 1, 2, ... once per period; the number of rounds run."""
    rounds = 0
    next_start = monotonic()
    while not stop.is_set():
        rounds += 1
        run_round(rounds)
        if max_runs is not None and rounds >= max_runs:
            break
        next_start += period.total_seconds()
        wait = next_start - monotonic()
        if wait <= 0:
            next_start = monotonic()  # overran the period: start again now, do not catch up
            continue
        if stop.wait(wait):
            break
    return rounds
