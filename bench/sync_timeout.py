"""SYNC-TIMEOUT benchmark: what turning the requests MDM left unanswered into errors costs, as
after MDM was away for longer than ``installation.sync_ack_timeout_minutes``.

    python -m bench.sync_timeout                                  # 2k, 10k, 50k; both databases
    python -m bench.sync_timeout --sizes 10000 --databases sqlite  # quick

A fresh database gets ``N`` pending SA sync requests by bulk insert, which the relay's
operations then mark sent (not measured). Timed: ``SqlOutbox.time_out`` one minute later
(nothing due: the check the CCB worker makes every minute), then two hours later (every one
due: each becomes an ERROR with its To Do). PostgreSQL as in ``bench.saact``. Results go to
``bench/results/sync_timeout.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.outbox_ops import NOW, populate
from bench.saact import Databases, database_names
from sync.clock import FixedClock
from sync.config.admin import load_admin_config
from sync.pipeline.stores import open_outbox

RESULTS = Path(__file__).parent / "results" / "sync_timeout.json"


@dataclass
class Measurement:
    database: str
    sent: int
    check_ms: float  # nothing due yet
    seconds: float  # every one due
    cpu_seconds: float
    timed_out: int
    load_average: float

    @property
    def per_request_us(self) -> float:
        return self.seconds / self.timed_out * 1e6 if self.timed_out else 0.0


def measure(databases: Databases, database: str, count: int) -> Measurement:
    with databases.fresh(database) as url:
        outbox = open_outbox(url, load_admin_config(), FixedClock(NOW.date()))
        try:
            populate(outbox, count)
            while batch := outbox.next_batch(500):
                outbox.mark_sent([(r, 0, n) for n, r in enumerate(batch)], NOW)
            started = time.perf_counter()
            if outbox.time_out(NOW + dt.timedelta(minutes=1)):
                raise SystemExit("requests timed out one minute after they were sent")
            check = time.perf_counter() - started
            started, cpu = time.perf_counter(), time.process_time()
            timed_out = outbox.time_out(NOW + dt.timedelta(hours=2))
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        finally:
            outbox.store.dispose()
    if len(timed_out) != count:
        raise SystemExit(f"{database}: {len(timed_out):,} timed out instead of {count:,}")
    return Measurement(database, count, check * 1000, seconds, cpu, len(timed_out),
                       os.getloadavg()[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sync_timeout", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2000,10000,50000")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sizes = [int(part) for part in args.sizes.split(",") if part.strip()]
    chosen = database_names(parser, args.databases)
    console = Console()
    results: list[Measurement] = []
    with Databases.in_a_temp_folder() as databases:
        for database in chosen:
            for size in sizes:
                console.print(f"[dim]{database}: {size:,} requests sent ...[/dim]")
                results.append(measure(databases, database, size))
    table = Table(title="SYNC-TIMEOUT: requests left unanswered turned into errors with a To Do",
                  title_justify="left")
    for column in ("database", "sent", "check, none due (ms)", "all due (s)", "µs per request",
                   "CPU seconds", "load"):
        table.add_column(column, justify="right")
    for m in results:
        table.add_row(m.database, f"{m.sent:,}", f"{m.check_ms:.0f}", f"{m.seconds:.1f}",
                      f"{m.per_request_us:,.0f}", f"{m.cpu_seconds:.1f}", f"{m.load_average:.1f}")
    console.print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "benchmark": "SYNC-TIMEOUT",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "results": [{**asdict(m), "per_request_us": round(m.per_request_us, 1)}
                    for m in results],
    }, indent=2) + "\n", "utf-8")
    console.print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
