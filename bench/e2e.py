"""End-to-end sync benchmarks: throughput, latency at a fixed load, worker memory, and a bare
aiokafka baseline moving the same messages through the same broker in the same run.

    .venv/bin/python -m bench.e2e                       # the whole set (see bench/README.md)
    .venv/bin/python -m bench.e2e --changes 10000 --databases sqlite --skip-memory   # quick

The path measured is the production one, process for process: this driver issues CCB stop
requests through the mass stop upload job (``STOPUPL``'s rows, ``--unit`` per unit of work)
into the CCB store opened through the production factory (so every change writes its sync
request), ``c2m-sync worker ccb`` relays them and records the answers, and
``c2m-sync worker mdm`` (its default engine; ``--mdm-engine faust`` for the other) applies
them to MDM and acknowledges. A change counts
when its sync request is ``SYNCHRONIZED`` in CCB. The Kafka broker is the project's launcher
broker on loopback (or ``KAFKA_BOOTSTRAP_SERVERS``).

The baseline moves the very payloads the run published: a bare aiokafka producer writes them,
a bare consumer reads each one and produces a small answer to a second topic, and a third
reader waits for every answer: the broker's and the client library's share of the path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Table, create_engine, func, insert, select

from bench import cpu, saact_data
from bench.process import add_gc_option, apply_gc_option
from bench.replay import broker, produce
from sync.batches import JobContext, load_jobs
from sync.batches.ccb_jobs import SAACT, STOPUPL, SelectionJob, saact_fast_path
from sync.batches.report import BatchReport
from sync.ccb.batches import StopRequestRow
from sync.ccb.model import SaStatus
from sync.ccb.sync_requests import SyncRequestState
from sync.clock import SystemClock
from sync.config.admin import load_admin_config
from sync.devtools.kafka import free_loopback_port
from sync.pipeline.stores import open_outbox
from sync.storage import ccb_schema as schema
from sync.storage.ccb_batch_queries import SqlBatchQueries
from sync.storage.common import normalize_url
from sync.storage.outbox import SqlOutbox
from sync.storage.outbox_schema import sync_requests
from sync.transport.bus import TopicSpec
from sync.transport.kafka import KafkaBus

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "e2e.json"
PARTITIONS = 3


# --- set-up ------------------------------------------------------------------------------------


def sa_rows(count: int, today: dt.date,
            stopping: bool) -> Iterator[tuple[Table, list[dict[str, Any]]]]:
    """SAACT's bulk rows (own person, account, premise, SP and link per SA), turned into SAs
    active for a year: what a stop request is issued on; with ``stopping``, pending stops due
    ``today``: what SAACT stops."""
    since = today - dt.timedelta(days=365)
    status = SaStatus.PENDING_STOP if stopping else SaStatus.ACTIVE
    end = today if stopping else None
    for table, rows in saact_data.due_rows(count, today):
        if table is schema.service_points:  # metered: MDM's D2-VALUSMC wants a gallon channel
            rows = [{**row, "meter_id": f"BM-{row['id']}", "measuring_components": [
                {"id": f"BMC-{row['id']}", "mc_class": "gallon", "channel": "direct"}]}
                for row in rows]
        elif table is schema.service_agreements:
            rows = [{**row, "status": status.value, "start_date": since, "end_date": end}
                    for row in rows]
        elif table is schema.sa_sp_links:
            rows = [{**row, "start_date": since, "stop_date": end} for row in rows]
        yield table, rows


def populate(url: str, count: int, today: dt.date,
             stopping: bool = False) -> list[tuple[str, str]]:
    """``count`` SAs (see :func:`sa_rows`); returns their (account, SA) ids."""
    engine = create_engine(normalize_url(url))
    try:
        schema.metadata.create_all(engine)
        filled: dict[str, None] = {}
        with engine.begin() as connection:
            for table, rows in sa_rows(count, today, stopping):
                if rows:
                    connection.execute(insert(table), rows)
                    filled[table.name] = None
        if engine.dialect.name == "postgresql":
            # The master data has statistics, as a production database's has (bench.saact
            # does the same). The tables the run fills are left never analyzed, as a new
            # installation's are: analyzed empty, the server would plan for empty tables.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql(f"ANALYZE {', '.join(filled)}")
    finally:
        engine.dispose()
    return [(f"BA-{n:07d}", f"BSA-{n:07d}") for n in range(count)]


@dataclass
class Databases:
    ccb: str
    mdm: str
    # PostgreSQL's server process (its CPU is counted by database), None for SQLite
    postmaster_pid: int | None = None

    def classify(self) -> cpu.Classifier:
        return cpu.classify_run(os.getpid(), self.postmaster_pid,
                                {"bench_ccb": "postgresql ccb", "bench_mdm": "postgresql mdm"})


@contextlib.contextmanager
def databases(kind: str, folder: Path) -> Iterator[Databases]:
    if kind == "sqlite":
        yield Databases(f"sqlite:///{folder / 'ccb.db'}", f"sqlite:///{folder / 'mdm.db'}")
        return
    from sync.devtools.postgres import ThrowawayPostgres

    server = ThrowawayPostgres()
    url = server.start()
    try:
        base = url.rsplit("/", 1)[0]
        engine = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            for name in ("bench_ccb", "bench_mdm"):
                connection.exec_driver_sql(f"CREATE DATABASE {name}")
        engine.dispose()
        yield Databases(f"{base}/bench_ccb", f"{base}/bench_mdm",
                        cpu.postmaster_of(server.data_dir))
    finally:
        server.stop()


# --- the workers -------------------------------------------------------------------------------


@dataclass
class Workers:
    env: dict[str, str]
    health_port: int
    mdm_options: tuple[str, ...] = ()  # e.g. ("--engine", "faust"); the default engine else
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def start(self, folder: Path, *sides: str) -> None:
        for side in sides:
            log = folder / f"worker-{side}.log"
            options = [*self.mdm_options, "--health-port", str(self.health_port)] \
                if side == "mdm" else []
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "sync.cli", "worker", side, *options], env=self.env,
                cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT))
            self.logs.append(log)
        if "mdm" in sides:
            wait_healthy(self.health_port, self)

    def check(self) -> None:
        for process, log in zip(self.processes, self.logs, strict=True):
            if process.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{log.name} exited with {process.returncode}:\n{tail}")

    def mdm_pid(self) -> int:
        return self.processes[-1].pid

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_healthy(port: int, workers: Workers, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        workers.check()
        with contextlib.suppress(OSError), urllib.request.urlopen(
                f"http://127.0.0.1:{port}/health", timeout=2) as answer:
            if answer.status == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"the MDM worker was not healthy within {timeout_s} s")


def worker_env(bootstrap: str, dbs: Databases, prefix: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("C2M_SYNC_")}
    env.update({
        "C2M_SYNC_BROKER_URL": f"kafka://{bootstrap}",
        "C2M_SYNC_CCB_DB_URL": dbs.ccb, "C2M_SYNC_MDM_DB_URL": dbs.mdm,
        "C2M_SYNC_TOPIC_SYNC_REQUESTS": f"{prefix}.sync-requests",
        "C2M_SYNC_TOPIC_ACKNOWLEDGEMENTS": f"{prefix}.sync-acks",
        "C2M_SYNC_TOPIC_DEAD_LETTERS": f"{prefix}.dead-letters",
        "C2M_SYNC_TOPIC_PARTITIONS": str(PARTITIONS),
        "PYTHONPATH": str(ROOT),
    })
    return env


def create_topics(bootstrap: str, names: list[str]) -> None:
    asyncio.run(_create_topics(bootstrap, names))


async def _create_topics(bootstrap: str, names: list[str]) -> None:
    bus = KafkaBus(bootstrap)
    await bus.start()
    try:
        await bus.create_topics([TopicSpec(name, PARTITIONS) for name in names])
    finally:
        await bus.stop()


def rss_kib(pid: int) -> tuple[int, int]:
    """(current, peak) resident set of ``pid`` in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


# --- the driver --------------------------------------------------------------------------------


@dataclass
class Throughput:
    database: str
    source: str
    changes: int
    seconds: float
    submit_seconds: float
    per_second: float
    states: dict[str, int]
    # CPU seconds of each process (bench/cpu.py) from the first change to the last answer
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    def cpu_us_per_change(self) -> dict[str, float]:
        return {part: round(seconds * 1e6 / self.changes, 1)
                for part, seconds in self.cpu_seconds.items()}


def wait_synchronized(outbox: SqlOutbox, expected: int, workers: Workers,
                      timeout_s: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    # Polled every 50 ms: only the requests still in flight are counted (through the state
    # index), not every request by state. Counting them all took 50 ms a poll on PostgreSQL at
    # 100,000 requests, half of a core taken from the pipeline while it drained, and counted
    # in the database's CPU per change.
    c = sync_requests.c
    in_flight = select(func.count()).select_from(sync_requests).where(
        c.state.in_([SyncRequestState.PENDING.value, SyncRequestState.SENT.value]))
    while True:
        with outbox.store.engine.connect() as connection:
            left = connection.execute(in_flight).scalar_one()
        if left == 0:
            counts = outbox.counts()
            done = counts.get("SYNCHRONIZED", 0) + counts.get("ERROR", 0)
            if done >= expected:
                return counts
        if time.monotonic() > deadline:
            raise RuntimeError(f"not synchronized within {timeout_s:.0f} s: {counts}")
        workers.check()
        time.sleep(0.05)


@dataclass
class Stage:
    """A running pipeline over ``count`` set-up SAs: the driver's store and the workers."""

    admin: Any
    clock: SystemClock
    targets: list[tuple[str, str]]
    workers: Workers
    outbox: SqlOutbox
    # The run's processes for the CPU figures (bench/cpu.py)
    classify: cpu.Classifier

    @property
    def stop_date(self) -> dt.date:
        return self.clock.business_date() + dt.timedelta(days=30)

    def request_stops(self, targets: list[tuple[str, str]]) -> None:
        """A stop request per (account, SA) through ``STOPUPL``, all of them in one unit of
        work (the job's chunk size is the number of targets)."""
        rows = [StopRequestRow(n, account, self.stop_date, (sa,))
                for n, (account, sa) in enumerate(targets, start=1)]
        report = STOPUPL.run_rows(JobContext(
            admin=self.admin, clock=self.clock, store=self.outbox.store,
            queries=SqlBatchQueries(self.outbox.store.engine), chunk_size=len(rows)), rows)
        if report.changed != len(rows):
            raise RuntimeError(f"STOPUPL applied {report.changed} of {len(rows)}: "
                               f"{report.errors[:3]}")

    def stop_due(self, targets: list[tuple[str, str]]) -> None:
        """``SAACT``'s step over these SAs (pending stops due today), in one unit of work,
        through the job's own runner, prefetch and set-based path: a slice of what a SAACT run
        does, at the moment the driver chooses."""
        context = JobContext(admin=self.admin, clock=self.clock, store=self.outbox.store,
                             queries=SqlBatchQueries(self.outbox.store.engine),
                             chunk_size=len(targets))
        job = SAACT
        assert isinstance(job, SelectionJob)
        report = BatchReport(job.code, context.date())
        context.runner(job.code).run(
            report, [[sa for _, sa in targets]], job.step, job.entity,
            prefetch=context.queries.prefetch_sas, fast_path=saact_fast_path(context))
        if report.changed != len(targets):
            raise RuntimeError(f"SAACT stopped {report.changed} of {len(targets)}: "
                               f"{report.errors[:3]}")


@contextlib.contextmanager
def staged(bootstrap: str, kind: str, count: int, stopping: bool = False,
           mdm_options: tuple[str, ...] = ()) -> Iterator[Stage]:
    with tempfile.TemporaryDirectory(prefix="c2m-bench-e2e-") as name, \
            databases(kind, Path(name)) as dbs:
        admin = load_admin_config()
        clock = SystemClock()
        targets = populate(dbs.ccb, count, clock.business_date(), stopping=stopping)
        workers = Workers(worker_env(bootstrap, dbs, f"bench-{uuid.uuid4().hex[:8]}"),
                          free_loopback_port(), mdm_options)
        outbox = open_outbox(dbs.ccb, admin, clock)
        try:
            workers.start(Path(name), "ccb", "mdm")
            yield Stage(admin, clock, targets, workers, outbox, dbs.classify())
        finally:
            workers.stop()
            outbox.store.dispose()


def run_throughput(bootstrap: str, kind: str, count: int, unit: int, source: str,
                   mdm_options: tuple[str, ...] = ()) -> tuple[Throughput, list[bytes]]:
    with staged(bootstrap, kind, count, stopping=source == "saact",
                mdm_options=mdm_options) as stage:
        outbox = stage.outbox
        classify = stage.classify
        cpu_before = cpu.snapshot(classify)
        started = time.perf_counter()
        if source == "saact":
            report = load_jobs().run("SAACT", JobContext(
                admin=stage.admin, clock=stage.clock, store=outbox.store,
                queries=SqlBatchQueries(outbox.store.engine), chunk_size=unit))
            if report.changed != count:
                raise RuntimeError(f"SAACT stopped {report.changed} of {count} SAs")
        else:
            for first in range(0, count, unit):
                stage.request_stops(stage.targets[first:first + unit])
        submitted = time.perf_counter() - started
        states = wait_synchronized(outbox, count, stage.workers, timeout_s=120 + count / 100)
        seconds = time.perf_counter() - started
        cpu_seconds = cpu.seconds_by_part(cpu_before, cpu.snapshot(classify))
        with outbox.store.engine.connect() as connection:
            payloads = list(connection.execute(
                select(sync_requests.c.payload).order_by(sync_requests.c.seq)).scalars())
    return Throughput(kind, source, count, seconds, submitted, count / seconds,
                      states, cpu_seconds), payloads


@dataclass
class Latency:
    database: str
    source: str
    tick_ms: int
    offered_per_second: int
    # what the driver managed to issue: below the offered rate when issuing is the bottleneck
    achieved_per_second: float
    changes: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    # where the median goes: commit to broker-acknowledged publication, and from there to the
    # answer recorded in CCB
    relay_p50_ms: float
    answer_p50_ms: float


def run_latency(bootstrap: str, kind: str, rate: int, seconds: int, source: str = "saact",
                tick_ms: int = 10, mdm_options: tuple[str, ...] = ()) -> Latency:
    count = rate * seconds
    tick_s = tick_ms / 1000
    per_tick = max(1, round(rate * tick_s))
    with staged(bootstrap, kind, count, stopping=source == "saact",
                mdm_options=mdm_options) as stage:
        issue = stage.stop_due if source == "saact" else stage.request_stops
        started = time.perf_counter()
        for tick, first in enumerate(range(0, count, per_tick)):
            # A fixed schedule: a late tick is not made up by a burst's worth of waiting.
            delay = started + tick * tick_s - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            issue(stage.targets[first:first + per_tick])
        achieved = count / (time.perf_counter() - started)
        wait_synchronized(stage.outbox, count, stage.workers, timeout_s=120 + count / 100)
        with stage.outbox.store.engine.connect() as connection:
            rows = connection.execute(select(
                sync_requests.c.created_at, sync_requests.c.sent_at,
                sync_requests.c.acknowledged_at)).all()
    done = [(created, sent, acked) for created, sent, acked in rows if acked is not None]
    latencies = sorted(_ms(acked - created) for created, _, acked in done)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return Latency(kind, source, tick_ms, rate, round(achieved), len(latencies), round(cuts[49], 1),
                   round(cuts[94], 1), round(cuts[98], 1), round(latencies[-1], 1),
                   round(statistics.median(_ms(sent - created) for created, sent, _ in done
                                           if sent is not None), 1),
                   round(statistics.median(_ms(acked - sent) for _, sent, acked in done
                                           if sent is not None), 1))


def _ms(delta: dt.timedelta) -> float:
    return delta.total_seconds() * 1000


@dataclass
class Memory:
    messages: int
    checkpoints: list[dict[str, Any]]


def run_memory(bootstrap: str, checkpoints: list[int]) -> Memory:
    """The MDM worker alone on ``max(checkpoints)`` messages (a fifth as many SAs), its resident
    set and CPU time (its own process's, whatever else runs on the machine) sampled when it has
    consumed each checkpoint's count."""
    total = max(checkpoints)
    with tempfile.TemporaryDirectory(prefix="c2m-bench-memory-") as name:
        folder = Path(name)
        dbs = Databases(f"sqlite:///{folder / 'ccb.db'}", f"sqlite:///{folder / 'mdm.db'}")
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        env = worker_env(bootstrap, dbs, prefix)
        topic = env["C2M_SYNC_TOPIC_SYNC_REQUESTS"]
        create_topics(bootstrap, [env["C2M_SYNC_TOPIC_ACKNOWLEDGEMENTS"],
                                  env["C2M_SYNC_TOPIC_DEAD_LETTERS"]])
        produce(bootstrap, topic, total, max(1, total // 5), PARTITIONS)
        workers = Workers(env, free_loopback_port())
        samples: list[dict[str, Any]] = []
        try:
            workers.start(folder, "mdm")
            engine = create_engine(normalize_url(dbs.mdm))
            from sync.storage.mdm_schema import consumed_positions

            pending = sorted(checkpoints)
            started = time.perf_counter()
            deadline = started + 300 + total / 500
            while pending and time.perf_counter() < deadline:
                workers.check()
                with engine.connect() as connection:
                    consumed = sum(int(offset) + 1 for offset in connection.execute(
                        select(consumed_positions.c.offset)).scalars())
                if consumed >= pending[0]:
                    current, peak = rss_kib(workers.mdm_pid())
                    samples.append({"messages": pending.pop(0), "consumed": consumed,
                                    "rss_kib": current, "peak_rss_kib": peak,
                                    "cpu_s": cpu.process_cpu_seconds(workers.mdm_pid()),
                                    "seconds": round(time.perf_counter() - started, 1)})
                time.sleep(0.2)
            engine.dispose()
            if pending:
                raise RuntimeError(f"the worker did not reach {pending} messages in time")
        finally:
            workers.stop()
    return Memory(total, samples)


# --- the baseline ------------------------------------------------------------------------------


@dataclass
class Baseline:
    messages: int
    seconds: float
    per_second: float
    # CPU µs per message by process: "driver" is the bare clients (this process)
    cpu_us_per_message: dict[str, float] = field(default_factory=dict)


async def bare_round_trip(bootstrap: str, payloads: list[bytes]) -> Baseline:
    """Produce ``payloads``, echo each as an answer from a bare consumer, and wait for every
    answer: what the same broker and client library do with no database behind them."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    prefix = f"bare-{uuid.uuid4().hex[:8]}"
    requests, answers = f"{prefix}.requests", f"{prefix}.answers"
    await _create_topics(bootstrap, [requests, answers])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                enable_idempotence=True)
    echo_producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                     enable_idempotence=True)
    echo = AIOKafkaConsumer(requests, bootstrap_servers=bootstrap, group_id=f"{prefix}-echo",
                            auto_offset_reset="earliest")
    reader = AIOKafkaConsumer(answers, bootstrap_servers=bootstrap, group_id=f"{prefix}-read",
                              auto_offset_reset="earliest")
    for client in (producer, echo_producer, echo, reader):
        await client.start()
    expected = len(payloads)

    async def run_echo() -> None:
        seen = 0
        while seen < expected:
            batches = await echo.getmany(timeout_ms=200, max_records=500)
            for records in batches.values():
                for record in records:
                    await echo_producer.send(answers, key=record.key,
                                             value=b'{"outcome":"SYNCHRONIZED"}')
                seen += len(records)
            await echo_producer.flush()

    async def read_answers() -> None:
        seen = 0
        while seen < expected:
            batches = await reader.getmany(timeout_ms=200, max_records=5000)
            seen += sum(len(records) for records in batches.values())

    classify = cpu.classify_run(os.getpid())
    try:
        cpu_before = cpu.snapshot(classify)
        started = time.perf_counter()
        tasks = [asyncio.create_task(run_echo()), asyncio.create_task(read_answers())]
        for index, payload in enumerate(payloads):
            await producer.send(requests, key=f"SA:{index}".encode(), value=payload)
        await producer.flush()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=600)
        seconds = time.perf_counter() - started
        cpu_seconds = cpu.seconds_by_part(cpu_before, cpu.snapshot(classify))
    finally:
        for client in (producer, echo_producer, echo, reader):
            await client.stop()
    return Baseline(expected, seconds, expected / seconds,
                    {part: round(value * 1e6 / expected, 1)
                     for part, value in cpu_seconds.items()})


# --- the report --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__)
    parser.add_argument("--changes", default="10000,100000",
                        help="SA changes per throughput run, comma-separated (scaling)")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--unit", type=int, default=200,
                        help="stop requests (or SAACT's SAs) per transaction")
    parser.add_argument("--sources", default="request-stop,saact",
                        help="what makes the changes: stop requests issued by the driver, "
                             "and/or SAACT stopping pending stops due today")
    parser.add_argument("--latency-rate", type=int, default=1000)
    parser.add_argument("--latency-seconds", type=int, default=30)
    parser.add_argument("--latency-sources", default="saact,request-stop",
                        help="what makes the changes at the fixed load: SAACT's step over the "
                             "tick's due SAs, and/or stop requests through STOPUPL")
    parser.add_argument("--latency-tick-ms", type=int, default=10,
                        help="one unit of work per tick, of rate x tick changes")
    parser.add_argument("--memory", default="10000,100000,1000000",
                        help="message counts at which the MDM worker's memory is sampled")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--mdm-engine", choices=("loop", "faust"), default=None,
                        help="the MDM worker's engine (default: the worker's own default)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    add_gc_option(parser)
    args = parser.parse_args(argv)
    # The driver stands for ``c2m-sync batch run STOPUPL`` / ``SAACT`` and is set as they are.
    apply_gc_option(args)
    mdm_engine: tuple[str, ...] = ("--engine", args.mdm_engine) if args.mdm_engine else ()
    sizes = [int(size) for size in args.changes.split(",") if size and int(size) > 0]
    kinds = [kind for kind in args.databases.split(",") if kind]
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average": os.getloadavg()},
        "unit": args.unit, "mdm_engine": args.mdm_engine or "default", "gc": args.gc,
        "throughput": [], "baseline": [], "latency": [], "memory": None,
    }
    with broker() as bootstrap:
        for kind in kinds:
            for source, size in itertools.product(args.sources.split(","), sizes):
                measured, payloads = run_throughput(bootstrap, kind, size, args.unit, source,
                                                    mdm_engine)
                bare = asyncio.run(bare_round_trip(bootstrap, payloads[:size]))
                ratio = measured.per_second / bare.per_second
                result["throughput"].append({**asdict(measured), "ratio": round(ratio, 3),
                                             "cpu_us_per_change": measured.cpu_us_per_change()})
                result["baseline"].append({"database": kind, **asdict(bare)})
                print(f"throughput {kind:10} {source:12} {size:>8} changes: "
                      f"{measured.per_second:8.0f}/s "
                      f"({measured.seconds:.1f} s, submitted in {measured.submit_seconds:.1f} s)"
                      f" | bare aiokafka {bare.per_second:8.0f}/s | ratio {ratio:.3f} "
                      f"| {measured.states}", flush=True)
                for name, figures in (("change", measured.cpu_us_per_change()),
                                      ("bare message", bare.cpu_us_per_message)):
                    print(f"    CPU µs per {name}: " + ", ".join(
                        f"{part} {value:.0f}" for part, value in figures.items()), flush=True)
            for latency_source in ([] if args.skip_latency
                                   else args.latency_sources.split(",")):
                latency = run_latency(bootstrap, kind, args.latency_rate, args.latency_seconds,
                                      latency_source, args.latency_tick_ms, mdm_engine)
                result["latency"].append(asdict(latency))
                print(f"latency    {kind:10} {latency_source:12} "
                      f"at {latency.offered_per_second}/s offered, "
                      f"{latency.achieved_per_second}/s issued: "
                      f"p50 {latency.p50_ms} ms, p95 {latency.p95_ms} ms, "
                      f"p99 {latency.p99_ms} ms, max {latency.max_ms} ms "
                      f"({latency.changes} changes; median relay {latency.relay_p50_ms} ms, "
                      f"answer {latency.answer_p50_ms} ms)", flush=True)
        if not args.skip_memory:
            memory = run_memory(bootstrap, [int(n) for n in args.memory.split(",") if n])
            result["memory"] = asdict(memory)
            previous: dict[str, Any] | None = None
            for sample in memory.checkpoints:
                # Between checkpoints the worker's start (imports, connections) is left out.
                since = ""
                if previous is not None:
                    per_message = ((sample["cpu_s"] - previous["cpu_s"]) * 1e6
                                   / (sample["consumed"] - previous["consumed"]))
                    since = (f", CPU µs per message since {previous['messages']}: "
                             f"{per_message:.0f}")
                print(f"memory     MDM worker after {sample['messages']:>8} messages: "
                      f"RSS {sample['rss_kib'] / 1024:.0f} MiB, peak "
                      f"{sample['peak_rss_kib'] / 1024:.0f} MiB ({sample['seconds']} s){since}",
                      flush=True)
                previous = sample
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
