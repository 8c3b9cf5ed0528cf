"""SAACT benchmark: how fast the activation batch moves due pending SAs on, and whether its cost
follows the due SAs rather than the size of the SA table.

    python -m bench.saact                                   # 10k, 100k, 1M on SQLite and PostgreSQL
    python -m bench.saact --sizes 10000 --databases sqlite  # a quick run

For each size and database a fresh database is filled with bulk inserts (``bench.saact_data``),
the store is opened the way the CLI opens it (``bench.store``), and ``SAACT`` runs once; the
table shows SAs per second and seconds. Then ``--due`` SAs are run in a table of ``--due`` rows
and in one of ``--table-size`` rows (the rest dated a year ahead). PostgreSQL is a throwaway
cluster (``sync.devtools.postgres``) unless ``C2M_SYNC_BENCH_PG_URL`` names a server whose
maintenance database may create and drop databases. Results go to ``bench/results/saact.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, make_url, text

from bench.process import add_gc_option, apply_gc_option
from bench.saact_data import populate
from bench.store import open_production_store
from sync.batches import JobContext, load_jobs
from sync.clock import FixedClock
from sync.config.admin import load_admin_config
from sync.storage.ccb_batch_queries import SqlBatchQueries
from sync.storage.common import create_engine_for

TODAY = dt.date(2025, 3, 3)
RESULTS = Path(__file__).parent / "results" / "saact.json"


@dataclass
class Measurement:
    database: str
    due: int
    table_size: int
    seconds: float
    setup_seconds: float
    changed: int
    errors: int
    # CPU time of this process during the run: on a shared machine, what the run itself cost
    # (with SQLite, all of the work; with PostgreSQL, the server's share is not in it).
    cpu_seconds: float = 0.0
    load_average: float = 0.0  # 1-minute load average of the machine at the end of the run

    @property
    def per_second(self) -> float:
        return self.due / self.seconds if self.seconds else 0.0

    @property
    def per_cpu_second(self) -> float:
        return self.due / self.cpu_seconds if self.cpu_seconds else 0.0


def database_names(parser: argparse.ArgumentParser, text: str) -> list[str]:
    """The ``--databases`` list, refused through ``parser`` when it names an unknown one."""
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = set(chosen) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown database(s): {', '.join(sorted(unknown))}")
    return chosen


class Databases:
    """Fresh databases per case: SQLite files in a temp folder, PostgreSQL databases on one
    server (started on first use, stopped at the end)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._pg_server: str | None = os.environ.get("C2M_SYNC_BENCH_PG_URL")
        self._cluster: object | None = None

    def _postgres_server(self) -> str:
        if self._pg_server is None:
            from sync.devtools.postgres import ThrowawayPostgres

            cluster = ThrowawayPostgres()
            cluster.start()
            self._cluster = cluster
            self._pg_server = cluster.url
        return self._pg_server

    @contextmanager
    def fresh(self, database: str) -> Iterator[str]:
        if database == "sqlite":
            path = self.folder / f"saact-{uuid.uuid4().hex[:8]}.db"
            try:
                yield f"sqlite:///{path}"
            finally:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        server = self._postgres_server()
        name = f"bench_{uuid.uuid4().hex[:12]}"
        admin = create_engine(make_url(server).set(drivername="postgresql+psycopg"),
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(server).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.stop()  # type: ignore[attr-defined]

    @classmethod
    @contextmanager
    def in_a_temp_folder(cls) -> Iterator[Databases]:
        """Databases for one benchmark run, everything they made removed at the end."""
        with tempfile.TemporaryDirectory(prefix="c2m-bench-") as folder:
            databases = cls(Path(folder))
            try:
                yield databases
            finally:
                databases.close()


def measure(databases: Databases, database: str, due: int, table_size: int,
            chunk_size: int) -> Measurement:
    with databases.fresh(database) as url:
        started = time.perf_counter()
        schema_store = open_production_store(url, TODAY)  # creates the tables and indexes
        schema_store.dispose()
        engine = create_engine_for(url)
        populate(engine, due, max(table_size - due, 0), TODAY)
        if database == "postgresql":
            # The bulk load's aftermath belongs to the set-up: statistics, the visibility map
            # and a checkpoint now, not autovacuum and the checkpointer competing with the
            # measured run for the two cores (a production database is past them).
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("VACUUM ANALYZE"))
                connection.execute(text("CHECKPOINT"))
        engine.dispose()
        setup = time.perf_counter() - started
        store = open_production_store(url, TODAY)
        try:
            context = JobContext(admin=load_admin_config(), clock=FixedClock(TODAY),
                                 store=store, queries=SqlBatchQueries(store.engine),
                                 chunk_size=chunk_size)
            cpu = time.process_time()
            report = load_jobs().run("SAACT", context)
            cpu = time.process_time() - cpu
        finally:
            store.dispose()
    return Measurement(database, due, table_size, report.seconds, setup, report.changed,
                       len(report.errors), cpu, os.getloadavg()[0])


def _result(m: Measurement) -> dict[str, object]:
    return {**asdict(m), "per_second": round(m.per_second, 1),
            "per_cpu_second": round(m.per_cpu_second, 1)}


def _sizes(text_value: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text_value.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.saact", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=_sizes, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--due", type=int, default=10_000,
                        help="due SAs of the due-versus-table-size comparison")
    parser.add_argument("--table-size", type=int, default=1_000_000,
                        help="SA table size of that comparison (0: skip it)")
    parser.add_argument("--chunk-size", type=int, default=500)
    parser.add_argument("--output", type=Path, default=RESULTS)
    add_gc_option(parser)
    args = parser.parse_args(argv)
    chosen = database_names(parser, args.databases)
    apply_gc_option(args)
    console = Console()
    scaling: list[Measurement] = []
    versus: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="c2m-bench-") as folder:
        databases = Databases(Path(folder))
        try:
            for database in chosen:
                for size in args.sizes:
                    console.print(f"[dim]{database}: {size:,} due SAs ...[/dim]")
                    scaling.append(measure(databases, database, size, size, args.chunk_size))
                if args.table_size:
                    for table_size in (args.due, args.table_size):
                        console.print(f"[dim]{database}: {args.due:,} due SAs in a table of"
                                      f" {table_size:,} ...[/dim]")
                        versus.append(measure(databases, database, args.due, table_size,
                                              args.chunk_size))
        finally:
            databases.close()
    table = Table(title="SAACT: due pending SAs activated or stopped", title_justify="left")
    for column in ("due SAs", "SA table", "database", "SAs/second", "seconds",
                   "SAs/CPU second", "load", "changed", "errors"):
        table.add_column(column, justify="right")
    for m in scaling + versus:
        table.add_row(f"{m.due:,}", f"{m.table_size:,}", m.database, f"{m.per_second:,.0f}",
                      f"{m.seconds:.1f}", f"{m.per_cpu_second:,.0f}", f"{m.load_average:.1f}",
                      f"{m.changed:,}", str(m.errors))
    console.print(table)
    for database in chosen:
        pair = [m for m in versus if m.database == database]
        if len(pair) == 2:
            console.print(f"{database}: {pair[0].due:,} due SAs take {pair[0].seconds:.2f} s in"
                          f" a table of {pair[0].table_size:,} and {pair[1].seconds:.2f} s in a"
                          f" table of {pair[1].table_size:,}"
                          f" (x{pair[1].seconds / pair[0].seconds:.2f})")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "benchmark": "SAACT",
        "business_date": TODAY.isoformat(),
        "chunk_size": args.chunk_size,
        "gc": args.gc,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "scaling": [_result(m) for m in scaling],
        "due_versus_table_size": [_result(m) for m in versus],
    }, indent=2) + "\n", "utf-8")
    console.print(f"results written to {args.output}")
    return 0 if all(m.errors == 0 and m.changed == m.due for m in scaling + versus) else 1


if __name__ == "__main__":
    raise SystemExit(main())
