"""Outbox relay and acknowledgement benchmark: how many sync requests per second the CCB store
hands to the relay and takes acknowledgements for.

    python -m bench.outbox_ops                         # 100k requests, SQLite and PostgreSQL
    python -m bench.outbox_ops --requests 20000 --databases sqlite

A fresh database gets ``--requests`` pending SA sync requests by bulk insert (not measured).
Then, timed separately, as the relay and the acknowledgement consumer use the outbox, a batch
(``--batch``, default 500, the relay's and the consumer's default) at a time:

- **relay**: ``next_batch`` + ``mark_sent`` until nothing is pending;
- **acknowledge**: ``acknowledge`` of a ``SYNCHRONIZED`` answer for every request, with the
  batch's position on the acknowledgement topic, as the consumer records it;
- **purge**: ``purge_settled`` (``SYNC-PURGE``) removing every request just answered.

``--errors 0,100000`` repeats the whole measurement (each on a fresh database) with that many
other SAs' requests left in ``ERROR`` beforehand, as after a wave of MDM rejections that an
operator has not resent yet: the traffic around such a wave should cost what it costs without
it. Each run's rows name how many were in ``ERROR``.

PostgreSQL as in ``bench.saact`` (a throwaway cluster, or ``C2M_SYNC_BENCH_PG_URL``). Results
go to ``bench/results/outbox_ops.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import insert

from bench.saact import Databases, database_names
from sync.ccb.model import ToDoStatus
from sync.ccb.sync_requests import SyncRequestState
from sync.clock import FixedClock
from sync.config.admin import load_admin_config
from sync.mapping.messages import Acknowledgement, AckOutcome, EntityType
from sync.pipeline.stores import open_outbox
from sync.storage.ccb_schema import todos
from sync.storage.outbox import AckPositions, SqlOutbox
from sync.storage.outbox_schema import sync_entities, sync_requests

RESULTS = Path(__file__).parent / "results" / "outbox_ops.json"
NOW = dt.datetime(2025, 3, 3, 12, 0, tzinfo=dt.UTC)
ACK_TOPIC = "c2m.sync-acks"
PAYLOAD = b'{"schemaVersion":1,"entityType":"SA"}' + b" " * 700  # about a real snapshot's size
ERRORS = json.dumps([{"code": "D2-USSPDTVAL", "message": "service point already used"}])


@dataclass
class Measurement:
    database: str
    operation: str
    requests: int
    seconds: float
    cpu_seconds: float
    load_average: float
    in_error: int = 0  # other SAs' requests left in ERROR beforehand

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def populate(outbox: SqlOutbox, count: int, errors: int = 0) -> None:
    """``count`` pending requests, after ``errors`` requests of other SAs left in ``ERROR``
    (answered), each with its open sync error To Do."""
    rows, entities, todo_rows = [], [], []
    todo_type = outbox.admin.todo_type_for("sync_error")
    for n in range(errors):
        entity_id = f"ESA-{n:07d}"
        rows.append({"id": f"SR-E{n + 1}", "entity_type": "SA", "entity_id": entity_id,
                     "state": SyncRequestState.ERROR.value, "version": 1,
                     "fingerprint": f"{n:064d}", "payload": PAYLOAD, "created_at": NOW,
                     "updated_at": NOW, "sent_at": NOW, "acknowledged_at": NOW,
                     "errors": ERRORS})
        entities.append({"entity_type": "SA", "entity_id": entity_id, "last_version": 1})
        todo_rows.append({"id": f"TD-E{n + 1}", "todo_type": todo_type, "role": "SYNC",
                          "status": ToDoStatus.OPEN.value, "message": "D2-USSPDTVAL",
                          "drill_kind": "sa", "drill_id": entity_id, "created_at": NOW,
                          "log": [], "version": 1})
    for n in range(count):
        entity_id = f"BSA-{n:07d}"
        rows.append({"id": f"SR-{n + 1}", "entity_type": "SA", "entity_id": entity_id,
                     "state": SyncRequestState.PENDING.value, "version": 1,
                     "fingerprint": f"{n:064d}", "payload": PAYLOAD, "created_at": NOW,
                     "updated_at": NOW})
        entities.append({"entity_type": "SA", "entity_id": entity_id, "last_version": 1})
    with outbox.store.engine.begin() as connection:
        for start in range(0, len(rows), 20_000):
            connection.execute(insert(sync_requests), rows[start:start + 20_000])
            connection.execute(insert(sync_entities), entities[start:start + 20_000])
        for start in range(0, len(todo_rows), 20_000):
            connection.execute(insert(todos), todo_rows[start:start + 20_000])


def timed(database: str, operation: str, count: int, work: Callable[[], int],
          in_error: int) -> Measurement:
    started, cpu = time.perf_counter(), time.process_time()
    done = work()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if done != count:
        raise SystemExit(f"{database} {operation}: {done:,} requests instead of {count:,}")
    return Measurement(database, operation, count, seconds, cpu, os.getloadavg()[0], in_error)


def measure(databases: Databases, database: str, count: int, batch: int,
            errors: int = 0) -> list[Measurement]:
    with databases.fresh(database) as url:
        outbox = open_outbox(url, load_admin_config(), FixedClock(NOW.date()))
        try:
            populate(outbox, count, errors)
            sent = []

            def relay() -> int:
                while requests := outbox.next_batch(batch):
                    outbox.mark_sent([(r, 0, n) for n, r in enumerate(requests)], NOW)
                    sent.extend(requests)
                return len(sent)

            relayed = timed(database, "relay: next_batch + mark_sent", count, relay, errors)
            # The answers as the acknowledgement consumer hands them over (decoding them is
            # the consumer's work, not measured here).
            answers = [[Acknowledgement(
                sync_request_id=r.id, entity_type=EntityType.SA, entity_id=r.entity_id,
                version=r.version, outcome=AckOutcome.SYNCHRONIZED, mdm_us_id=r.entity_id,
                processed_at=NOW) for r in sent[start:start + batch]]
                for start in range(0, len(sent), batch)]

            def acknowledge() -> int:
                # Each batch's answers as if read from one partition, one after the other.
                return sum(outbox.acknowledge(acks, NOW, AckPositions(
                    ACK_TOPIC, {0: number * batch + len(acks) - 1})).verdicts["SYNCHRONIZED"]
                    for number, acks in enumerate(answers))

            acknowledged = timed(database, "acknowledge", count, acknowledge, errors)

            def purge() -> int:
                # Everything answered is settled: SYNC-PURGE with a cutoff after the answers
                # removes it (the requests in ERROR stay).
                return outbox.purge_settled(NOW + dt.timedelta(seconds=1)).removed

            return [relayed, acknowledged,
                    timed(database, "purge: purge_settled", count, purge, errors)]
        finally:
            outbox.store.dispose()


def _counts(text_value: str) -> list[int]:
    return [int(part) for part in text_value.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.outbox_ops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--errors", type=_counts, default=[0],
                        help="other SAs' requests in ERROR beforehand, one run per count")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    chosen = database_names(parser, args.databases)
    console = Console()
    results: list[Measurement] = []
    with Databases.in_a_temp_folder() as databases:
        for database in chosen:
            for errors in args.errors:
                console.print(f"[dim]{database}: {args.requests:,} requests, {errors:,} "
                              "in ERROR ...[/dim]")
                results += measure(databases, database, args.requests, args.batch, errors)
    table = Table(title="Outbox: requests handed to the relay and acknowledged",
                  title_justify="left")
    for column in ("database", "operation", "requests", "in ERROR", "requests/second",
                   "seconds", "CPU seconds", "load"):
        table.add_column(column, justify="right")
    for m in results:
        table.add_row(m.database, m.operation, f"{m.requests:,}", f"{m.in_error:,}",
                      f"{m.per_second:,.0f}",
                      f"{m.seconds:.1f}", f"{m.cpu_seconds:.1f}", f"{m.load_average:.1f}")
    console.print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "benchmark": "outbox relay and acknowledgements",
        "batch": args.batch,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "results": [{**asdict(m), "per_second": round(m.per_second, 1)} for m in results],
    }, indent=2) + "\n", "utf-8")
    console.print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
