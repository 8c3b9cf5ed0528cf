"""MDM worker benchmark: the CPU one batch of sync records costs the MDM worker, in process.

    python -m bench.mdm_batch                                  # 10k and 50k; SQLite and PostgreSQL
    python -m bench.mdm_batch --records 10000 --databases sqlite   # a quick run

Valid SA sync messages (a fifth as many SAs as records by default, each in successive
versions) are built beforehand as the records a transport would deliver (3 partitions). Then
:meth:`MdmProcessor.process_batch` consumes them ``--batch`` at a time into a fresh MDM store
opened by the production factory: decoding, mapping, MDM's decision and validations, the batch
transaction and the acknowledgements, all but the broker. Two kinds of messages:

- ``own-sp``: every SA links a service point of its own, so every record is applied (a new
  usage subscription, then a new version of it): the end-to-end benchmark's case;
- ``shared-sp``: ``bench.replay.messages`` as they are, every SA linking the same service point,
  so all but the first SA's records are rejected by the cross-US check (D2-USSPDTVAL).

The figure that matters is records per CPU second of this process (with PostgreSQL the
server's share is not in it); the wall-clock rate is shown beside it. PostgreSQL is a throwaway
cluster (``sync.devtools.postgres``) unless ``C2M_SYNC_BENCH_PG_URL`` names a server whose
maintenance database may create and drop databases. ``--profile FILE`` writes a cProfile of
the runs. ``--gc tuned`` (the default) sets the garbage collector as the worker process does
(:func:`sync.process_tuning.tune_garbage_collection`); ``--gc default`` leaves Python's defaults.
Results go to ``bench/results/mdm_batch.json``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.process import add_gc_option, apply_gc_option
from bench.replay import messages, template
from bench.saact import Databases, database_names
from sync.clock import SystemClock
from sync.config.admin import load_admin_config
from sync.pipeline.stores import open_mdm_store
from sync.worker.mdm_processor import MdmProcessor, SourceRecord
from sync.worker.stats import Verdict

RESULTS = Path(__file__).parent / "results" / "mdm_batch.json"
PARTITIONS = 3


@dataclass
class Measurement:
    database: str
    kind: str
    records: int
    keys: int
    batch: int
    seconds: float
    cpu_seconds: float
    verdicts: dict[str, int]
    load_average: float  # 1-minute load average of the machine at the end of the run

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0

    @property
    def per_cpu_second(self) -> float:
        return self.records / self.cpu_seconds if self.cpu_seconds else 0.0

    @property
    def cpu_us_per_record(self) -> float:
        return self.cpu_seconds / self.records * 1e6 if self.records else 0.0


KINDS = ("own-sp", "shared-sp")


def own_sp_messages(count: int, keys: int) -> Iterator[tuple[bytes, bytes]]:
    """Like :func:`bench.replay.messages`, but SA n links its own service point n."""
    documents: dict[int, dict[str, Any]] = {}
    for index in range(count):
        sa_number, version = index % keys, index // keys + 1
        if sa_number not in documents:
            documents[sa_number] = template(sa_number)
        document = dict(documents[sa_number])
        document["version"] = version
        document["syncRequestId"] = f"SR-{index}"
        yield (f"SA:SA-{sa_number:08d}".encode(),
               json.dumps(document, separators=(",", ":")).encode())


def records(kind: str, count: int, keys: int) -> list[SourceRecord]:
    source = own_sp_messages(count, keys) if kind == "own-sp" else messages(count, keys)
    return [SourceRecord("sync", index % PARTITIONS, index // PARTITIONS, key, value)
            for index, (key, value) in enumerate(source)]


def measure(url: str, database: str, kind: str, count: int, keys: int, batch: int,
            profile: cProfile.Profile | None) -> Measurement:
    source = records(kind, count, keys)
    store = open_mdm_store(url, load_admin_config())
    try:
        processor = MdmProcessor(store, SystemClock())
        verdicts: list[Verdict] = []
        if profile is not None:
            profile.enable()
        started, cpu = time.perf_counter(), time.process_time()
        for first in range(0, count, batch):
            verdicts += processor.process_batch(source[first:first + batch])
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        if profile is not None:
            profile.disable()
    finally:
        store.dispose()
    counted = Counter(verdict.value for verdict in verdicts)
    return Measurement(database, kind, count, keys, batch, seconds, cpu,
                       {verdict.value: counted[verdict.value] for verdict in Verdict
                        if counted[verdict.value]}, os.getloadavg()[0])


def _sizes(text_value: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text_value.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mdm_batch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=_sizes, default=[10_000, 50_000])
    parser.add_argument("--keys", type=int, default=0,
                        help="distinct SAs (default: a fifth of the records)")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--kinds", default=",".join(KINDS), help="own-sp, shared-sp or both")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=1, help="runs per case (best CPU kept)")
    add_gc_option(parser)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the runs here")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    chosen = database_names(parser, args.databases)
    kinds = [name.strip() for name in args.kinds.split(",") if name.strip()]
    if set(kinds) - set(KINDS):
        parser.error(f"unknown kind(s): {', '.join(sorted(set(kinds) - set(KINDS)))}")
    console = Console(width=140)
    apply_gc_option(args)
    profile = cProfile.Profile() if args.profile else None
    results: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="c2m-bench-") as folder:
        databases = Databases(Path(folder))
        try:
            for database in chosen:
                for kind in kinds:
                    for count in args.records:
                        keys = args.keys or max(count // 5, 1)
                        runs = []
                        for _ in range(args.repeat):
                            console.print(f"[dim]{database}, {kind}: {count:,} records over"
                                          f" {keys:,} SAs ...[/dim]")
                            with databases.fresh(database) as url:
                                runs.append(measure(url, database, kind, count, keys,
                                                    args.batch, profile))
                        results.append(min(runs, key=lambda m: m.cpu_seconds))
        finally:
            databases.close()
    if profile is not None:
        profile.dump_stats(args.profile)
    table = Table(title=f"MDM worker: process_batch of valid SA records (garbage collector:"
                        f" {args.gc})", title_justify="left")
    for column in ("database", "messages", "records", "SAs", "records/CPU s", "CPU µs/record",
                   "records/s", "seconds", "load", "verdicts"):
        table.add_column(column, justify="right")
    for m in results:
        table.add_row(m.database, m.kind, f"{m.records:,}", f"{m.keys:,}",
                      f"{m.per_cpu_second:,.0f}", f"{m.cpu_us_per_record:,.0f}",
                      f"{m.per_second:,.0f}", f"{m.seconds:.2f}", f"{m.load_average:.1f}",
                      " ".join(f"{name} {n:,}" for name, n in m.verdicts.items()))
    console.print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "benchmark": "MDM worker batch",
        "batch": args.batch,
        "gc": args.gc,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "runs": [{**asdict(m), "per_second": round(m.per_second, 1),
                  "per_cpu_second": round(m.per_cpu_second, 1),
                  "cpu_us_per_record": round(m.cpu_us_per_record, 1)} for m in results],
    }, indent=2) + "\n", "utf-8")
    console.print(f"results written to {args.output}")
    # Every own-sp record is applied; no valid message is ever dead-lettered.
    return 0 if all(m.verdicts.get("applied", 0) == m.records if m.kind == "own-sp"
                    else "dead_lettered" not in m.verdicts for m in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
