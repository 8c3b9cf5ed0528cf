"""What every fault test needs: streams of changes, worker processes, a broker that can be
stopped and started again, and the one check of the suite, written once: nothing lost, nothing
applied twice.

The check has two forms.

- :func:`assert_stream_applied_once` for a stream published straight onto the sync topic: every
  source offset has exactly one answer, every (entity, version) of the stream was applied
  exactly once, every entity ends at its last version, and the consumed positions reach the
  end of every partition.
- :func:`assert_ccb_and_mdm_agree` for the whole pipeline: every sync request is answered
  (no ``PENDING``, ``SENT`` or ``ERROR``), CCB's current state and MDM agree field by field
  (:func:`sync.reconcile.compare.compare`, versions included), and every synchronized request's
  (entity, version) was applied in MDM exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from sync.ccb.commands import CancelPendingStop, RequestStop
from sync.ccb.dispatch import unit_of_work
from sync.ccb.loading import load_master_data
from sync.ccb.model import SaStatus
from sync.ccb.sync_requests import SyncRequestState
from sync.clock import FixedClock
from sync.config.admin import AdminConfig
from sync.config.settings import Settings, TopicNames
from sync.devtools.kafka import BrokerState, KafkaBroker
from sync.devtools.postgres import PostgresLauncherError, ThrowawayPostgres
from sync.mapping.codec import decode_acknowledgement, encode
from sync.mapping.messages import Acknowledgement, EntityType, SyncMessage
from sync.pipeline.stores import open_mdm_store, open_outbox
from sync.reconcile.compare import compare
from sync.reconcile.run import ccb_expectations
from sync.storage.mdm import MdmStore
from sync.storage.mdm_schema import acknowledgements, dead_letters
from sync.storage.outbox import SqlOutbox
from sync.transport.bus import Bus, Message, Record
from sync.transport.kafka import KafkaBus
from sync.transport.topics import sync_topic_specs
from tests.conftest import unavailable
from tests.unit.mapping.builders import person_message, sa_message

ROOT = Path(__file__).resolve().parents[2]

# Size of the SIGKILL stream. The suite runs 100,000; C2M_SYNC_FAULT_STREAM=10000 while
# developing (a multiple of 100).
FAULT_STREAM = int(os.environ.get("C2M_SYNC_FAULT_STREAM", "100000"))
# The slowest rate the timeouts allow for (messages per second, the worker being alone on the
# machine's two cores): waits are bounded by size / rate plus start-up and session time.
SLOWEST_RATE = 60


def budget_s(messages: int, fixed_s: float = 120.0) -> float:
    """How long ``messages`` may take to be consumed, at the slowest rate allowed."""
    return fixed_s + messages / SLOWEST_RATE


# --- waiting ----------------------------------------------------------------------------------


async def wait_for(condition: Callable[[], bool], timeout_s: float, what: str,
                   *, every_s: float = 0.2, detail: Callable[[], str] | None = None) -> None:
    """Poll ``condition``; on time-out, fail with ``detail()`` (a worker's log tail, counts)
    so that a hang says where it stopped."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            message = f"timed out after {timeout_s:.0f} s waiting for {what}"
            raise AssertionError(f"{message}\n{detail()}" if detail else message)
        await asyncio.sleep(every_s)


# --- settings and streams ---------------------------------------------------------------------


def fault_settings(broker_url: str, prefix: str, *, mdm_db_url: str = "sqlite:///:memory:",
                   ccb_db_url: str = "sqlite:///:memory:", partitions: int = 3) -> Settings:
    """Settings with topics of their own (a shared broker keeps other tests' records)."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    return Settings(broker_url=broker_url, mdm_db_url=mdm_db_url, ccb_db_url=ccb_db_url,
                    topic_partitions=partitions,
                    topics=TopicNames(sync_requests=f"{name}.sync",
                                      acknowledgements=f"{name}.acks",
                                      dead_letters=f"{name}.dlq"))


async def create_topics(settings: Settings) -> None:
    """The topics of ``settings``, as ``c2m-sync topics create`` makes them before workers
    start (a faust worker started before its topic exists is assigned nothing)."""
    bus = KafkaBus(settings.kafka_bootstrap_servers)
    await bus.start()
    try:
        await bus.create_topics(sync_topic_specs(settings))
    finally:
        await bus.stop()


def keyed(message: SyncMessage) -> Message:
    return Message(message.key.encode(), encode(message))


VERSIONS = 10


def change_stream(size: int) -> list[SyncMessage]:
    """``size`` messages (a multiple of 100): entities changing version by version, 1 to 10,
    the entities of one version interleaved; nine in ten are SAs (a pending stop every other
    version), one in ten persons (a new name each version). Every SA has an SP of its own, so
    every version is valid and applies."""
    if size <= 0 or size % 100:
        raise ValueError(f"stream size {size}: a positive multiple of 100")
    entities = size // VERSIONS
    persons = entities // 10
    sas = entities - persons
    stop_date = dt.date(2025, 9, 1)
    messages: list[SyncMessage] = []
    for version in range(1, VERSIONS + 1):
        pending_stop = version % 2 == 0
        for n in range(sas):
            messages.append(sa_message(
                f"SA-{n:06d}", version=version, sp_ids=(f"SP-{n:06d}",),
                sa_status="30" if pending_stop else "20",
                end=stop_date if pending_stop else None))
        messages.extend(person_message(f"PER-{n:06d}", version=version,
                                       name=f"TENANT,NUMBER{version}")
                        for n in range(persons))
    return messages


async def publish_stream(bus: Bus, topic: str, messages: Sequence[Message],
                         batch: int = 2000) -> list[Record]:
    records: list[Record] = []
    for start in range(0, len(messages), batch):
        records += await bus.publish_batch(topic, list(messages[start:start + batch]))
    return records


async def read_topic(bus: Bus, topic: str, count: int, timeout_s: float = 60) -> list[Record]:
    """Every record of ``topic`` once it holds at least ``count``."""
    deadline = time.monotonic() + timeout_s
    while sum((await bus.end_offsets(topic)).values()) < count:
        assert time.monotonic() < deadline, f"{topic}: fewer than {count} records"
        await asyncio.sleep(0.2)
    ends = await bus.end_offsets(topic)
    consumer = await bus.consumer([topic])
    records: list[Record] = []
    try:
        while len(records) < sum(ends.values()):
            assert time.monotonic() < deadline, f"{topic}: only {len(records)} records read"
            records += await consumer.getmany(timeout_ms=500, max_records=10_000)
    finally:
        await consumer.stop()
    return records


async def read_acknowledgements(bus: Bus, topic: str, count: int,
                                timeout_s: float = 60) -> list[Acknowledgement]:
    return [decode_acknowledgement(record.value or b"")
            for record in await read_topic(bus, topic, count, timeout_s)]


# --- CCB with tenants -------------------------------------------------------------------------

BUSINESS_DATE = dt.date(2025, 3, 3)


def tenants(count: int) -> dict[str, Any]:
    """Master data: ``count`` tenants, each with an account, a premise, an electric SP and an
    active SA ``SA-T<n>`` (no landlord agreement: a stop starts nobody else's service)."""
    numbers = range(count)
    return {
        "persons": [{"id": f"P-T{n:04d}", "name": f"TENANT,{_letters(n)}",
                     "phones": [{"type": "mobile", "number": f"(773) 555-{n:04d}",
                                 "primary": True}]} for n in numbers],
        "accounts": [{"id": f"A-T{n:04d}", "main_person_id": f"P-T{n:04d}",
                      "customer_class": "RES", "bill_cycle": "BC02"} for n in numbers],
        "premises": [{"id": f"PR-T{n:04d}",
                      "address": {"line1": f"{n} N Clarendon Ave", "city": "Chicago",
                                  "state": "IL", "postal_code": "60640"}} for n in numbers],
        "service_points": [{"id": f"SP-T{n:04d}", "premise_id": f"PR-T{n:04d}",
                            "sp_type": "E-RES", "meter_id": f"M-T{n:04d}",
                            "measuring_components": [{"id": f"MC-T{n:04d}",
                                                      "mc_class": "kWh"}]} for n in numbers],
        "service_agreements": [{"id": f"SA-T{n:04d}", "account_id": f"A-T{n:04d}",
                                "sa_type": "E-RES", "status": "active",
                                "start_date": "2024-06-01", "premise_id": f"PR-T{n:04d}",
                                "links": [{"sp_id": f"SP-T{n:04d}", "start_read": 100.0}]}
                               for n in numbers],
    }


def _letters(n: int) -> str:
    """``n`` spelled in letters (A, B, ... Z, BA, BB...): person names hold no digits."""
    text = ""
    while True:
        n, digit = divmod(n, 26)
        text = chr(ord("A") + digit) + text
        if not n:
            return text


class Clerk:
    """CCB commands from a thread of their own, one every ``pause_s`` until told to stop, each
    toggling a pending stop of one of ``tenants`` tenants (walked out of order): changes keep
    coming before, during and after an outage. With ``refusals_expected`` a command the
    database refuses (it is down) is counted in ``refused`` and the clerk goes on; any other
    failure ends the clerk and is kept in ``failures`` for the test to report."""

    def __init__(self, outbox: SqlOutbox, admin: AdminConfig, tenants: int, stop_date: dt.date,
                 *, pause_s: float = 0.05, refusals_expected: bool = False) -> None:
        self.outbox = outbox
        self.admin = admin
        self.tenants = tenants
        self.stop_date = stop_date
        self.pause_s = pause_s
        self.refusals_expected = refusals_expected
        self.done = 0
        self.refused = 0
        self.failures: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, daemon=True)

    def _work(self) -> None:
        n = 0
        while not self._stop.is_set():
            try:
                toggle_stop(self.outbox, self.admin, n % self.tenants, self.stop_date)
                self.done += 1
            except DBAPIError as error:
                if not self.refusals_expected:
                    self.failures.append(error)
                    return
                self.refused += 1  # the database is down: the command is not made
            except BaseException as error:  # the test reports it
                self.failures.append(error)
                return
            n += 7  # walk the tenants out of order
            self._stop.wait(self.pause_s)

    def __enter__(self) -> Clerk:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(60)


def load_tenants(outbox: SqlOutbox, admin: AdminConfig, count: int) -> None:
    now = dt.datetime.combine(BUSINESS_DATE, dt.time(9), tzinfo=dt.UTC)
    outbox.store.execute(load_master_data(tenants(count), "tenants", admin, now, "loader"))


def toggle_stop(outbox: SqlOutbox, admin: AdminConfig, n: int, stop_date: dt.date) -> None:
    """Request a stop of tenant ``n``'s SA, or cancel it when one is pending: one more SA
    version to synchronize either way."""
    sa_id, account_id = f"SA-T{n:04d}", f"A-T{n:04d}"
    sa = outbox.store.read(lambda view: view.sa(sa_id))
    assert sa is not None, sa_id
    command: object = (CancelPendingStop(sa_id=sa_id) if sa.status is SaStatus.PENDING_STOP
                       else RequestStop(account_id=account_id, sa_ids=(sa_id,),
                                        stop_date=stop_date))
    now = dt.datetime.now(dt.UTC)
    outbox.store.execute(unit_of_work(command, admin, BUSINESS_DATE, now))  # type: ignore[arg-type]


# --- worker processes -------------------------------------------------------------------------


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    topics = settings.topics
    return {**os.environ, "PYTHONPATH": str(ROOT),
            "C2M_SYNC_BROKER_URL": settings.broker_url,
            "C2M_SYNC_CCB_DB_URL": settings.ccb_db_url,
            "C2M_SYNC_MDM_DB_URL": settings.mdm_db_url,
            "C2M_SYNC_TOPIC_SYNC_REQUESTS": topics.sync_requests,
            "C2M_SYNC_TOPIC_ACKNOWLEDGEMENTS": topics.acknowledgements,
            "C2M_SYNC_TOPIC_DEAD_LETTERS": topics.dead_letters,
            "C2M_SYNC_TOPIC_PARTITIONS": str(settings.topic_partitions),
            "C2M_SYNC_BUSINESS_DATE": BUSINESS_DATE.isoformat(), **extra}


class WorkerProcess:
    """A worker started as an operator starts it, its output appended to ``log_path``."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.argv = list(argv)
        self.env = env
        self.log_path = log_path
        self.starts = 0
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def mdm(cls, settings: Settings, log_path: Path, *, app_id: str | None = None,
            engine: str = "loop") -> WorkerProcess:
        """``python -m sync.worker.mdm`` (the bus loop, the default engine, unless ``engine``)."""
        argv = [sys.executable, "-m", "sync.worker.mdm", "--engine", engine,
                "--app-id", app_id or f"mdm-fault-{uuid.uuid4().hex[:6]}"]
        return cls(argv, worker_env(settings), log_path)

    @classmethod
    def ccb(cls, settings: Settings, log_path: Path) -> WorkerProcess:
        """``c2m-sync worker ccb``: the relay, the acknowledgement consumer, the timeouts."""
        return cls([sys.executable, "-m", "sync.cli", "worker", "ccb"],
                   worker_env(settings), log_path)

    def start(self) -> WorkerProcess:
        assert not self.alive, "already running"
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts + 1}: {' '.join(self.argv[1:])}\n".encode())
            self.process = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT)
        self.starts += 1
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as a crash or the OOM killer."""
        assert self.process is not None
        assert self.alive, self.log_tail()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self, timeout_s: float = 60) -> int:
        """SIGTERM and the exit code (SIGKILL after ``timeout_s``)."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
                raise
        return int(self.process.returncode)

    def ensure_stopped(self) -> None:
        """For ``finally``: whatever happened, leave no process behind."""
        if self.alive:
            assert self.process is not None
            self.process.kill()
            self.process.wait(30)

    def stacks(self, chars: int = 12000) -> str:
        """The log tail after asking the worker for its thread and task stacks (SIGUSR1,
        :mod:`sync.worker.diagnostics`): what a hung worker is waiting for."""
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGUSR1)
            time.sleep(2)
        return self.log_tail(chars)

    def log_tail(self, chars: int = 4000) -> str:
        if not self.log_path.exists():
            return "(no output)"
        return self.log_path.read_text("utf-8", errors="replace")[-chars:]


# --- a broker of the test's own -----------------------------------------------------------------


class RestartableBroker(KafkaBroker):
    """A :class:`KafkaBroker` that :meth:`restart` brings back on the same ports and data.

    ``KafkaBroker.start`` keeps the previous ports only when a probe can bind them; the probe
    binds without ``SO_REUSEADDR``, and the connections a stopped broker closed under its
    clients sit in TIME_WAIT for a minute, so a start within that minute picks new ports and
    every client is left knocking on the old ones. The broker (Java) binds with
    ``SO_REUSEADDR``: the ports of the first start are simply kept for every later one."""

    _kept_ports: Any = None

    def _ports(self) -> Any:
        if self._kept_ports is None:
            self._kept_ports = super()._ports()
        return self._kept_ports

    def restart(self, down_s: float) -> BrokerState:
        """Stop (SIGTERM: a clean shutdown), stay down ``down_s`` seconds, start again."""
        before = self.state()
        assert before is not None, "the broker is not running"
        self.stop()
        time.sleep(down_s)
        after = self.start()
        assert (after.port, after.controller_port) == (before.port, before.controller_port)
        return after


# --- the checks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MdmAnswers:
    """What the MDM store answered, counted from its outbox tables (each row is the answer to
    one source offset, stored in the transaction that consumed it)."""

    answers: int
    distinct_positions: int
    outcomes: Counter[str]
    synchronized: Counter[tuple[str, str, int]]  # (entity type, id, version) -> times
    dead_letters: int

    @classmethod
    def of(cls, store: MdmStore) -> MdmAnswers:
        c = acknowledgements.c
        with store.engine.connect() as connection:
            rows = connection.execute(select(c.source_topic, c.source_partition,
                                             c.source_offset, c.entity_type, c.entity_id,
                                             c.version, c.outcome)).all()
            letters = connection.execute(
                select(dead_letters.c.source_topic, dead_letters.c.source_partition,
                       dead_letters.c.source_offset)).all()
        positions = {(r[0], r[1], r[2]) for r in rows} | {tuple(r) for r in letters}
        return cls(
            answers=len(rows) + len(letters), distinct_positions=len(positions),
            outcomes=Counter(str(r.outcome) for r in rows),
            synchronized=Counter((str(r.entity_type), str(r.entity_id), int(r.version))
                                 for r in rows if r.outcome == "SYNCHRONIZED"),
            dead_letters=len(letters))

    def twice(self) -> dict[tuple[str, str, int], int]:
        return {key: times for key, times in self.synchronized.items() if times > 1}


def answer_rows(store: MdmStore) -> int:
    """Answers stored so far (cheap enough to poll while a worker writes)."""
    with store.engine.connect() as connection:
        return sum(int(connection.execute(select(func.count()).select_from(table)).scalar_one())
                   for table in (acknowledgements, dead_letters))


async def assert_stream_applied_once(store: MdmStore, bus: Bus, topic: str,
                                     messages: Sequence[SyncMessage], *,
                                     other_records: int = 0) -> MdmAnswers:
    """Every message of ``messages`` (published once each on ``topic``) applied exactly once,
    one answer per offset, every entity at its last version. ``other_records`` are the topic's
    records that are not in ``messages`` (poison): they need an answer each, and that answer is
    not an applied change."""
    answers = MdmAnswers.of(store)
    total = len(messages) + other_records
    assert answers.answers == answers.distinct_positions == total, (
        f"{answers.answers} answers for {answers.distinct_positions} offsets; "
        f"{total} records published")
    assert answers.twice() == {}, f"applied more than once: {list(answers.twice())[:10]}"
    wanted = Counter((str(m.entity_type), m.external_id, m.version) for m in messages)
    missing = wanted - answers.synchronized
    assert not missing, f"{len(missing)} changes never applied, e.g. {list(missing)[:10]}"
    assert answers.outcomes["SYNCHRONIZED"] == len(messages), answers.outcomes
    if not other_records:
        assert answers.outcomes == Counter({"SYNCHRONIZED": len(messages)}), answers.outcomes
        assert answers.dead_letters == 0
    last = latest_versions(messages)
    for (entity_type, entity_id), version in last.items():
        if entity_type == EntityType.SA.value:
            us = store.get_us(entity_id)
            assert us is not None, entity_id
            assert us.last_applied_version == version, (entity_id, us)
        else:
            contact = store.get_contact(entity_id)
            assert contact is not None, entity_id
            assert contact.version == version, (entity_id, contact)
    ends = await bus.end_offsets(topic)
    assert store.last_positions(topic) == {p: end - 1 for p, end in ends.items() if end}
    assert store.unpublished(1) == [], "answers left unpublished"
    return answers


def latest_versions(messages: Iterable[SyncMessage]) -> dict[tuple[str, str], int]:
    last: dict[tuple[str, str], int] = {}
    for m in messages:
        key = (str(m.entity_type), m.external_id)
        last[key] = max(m.version, last.get(key, 0))
    return last


def assert_ccb_and_mdm_agree(outbox: SqlOutbox, mdm: MdmStore, admin: AdminConfig) -> None:
    """The pipeline converged: every request answered, CCB and MDM equal per SA (versions
    included), every synchronized request applied exactly once."""
    counts = outbox.counts()
    unsettled = {state: counts[state.value] for state in (
        SyncRequestState.PENDING, SyncRequestState.SENT, SyncRequestState.ERROR)}
    assert not any(unsettled.values()), f"sync requests not settled: {unsettled}"
    expected, _ = ccb_expectations(outbox, admin)
    comparison = compare(expected, mdm.list_us())
    assert comparison.agree, comparison.summary() + "\n" + "\n".join(
        drift.message for drift in comparison.drifts[:20])
    answers = MdmAnswers.of(mdm)
    assert answers.twice() == {}, f"applied more than once: {list(answers.twice())[:10]}"
    synchronized = outbox.find(state=SyncRequestState.SYNCHRONIZED)
    lost = [(r.entity_type, r.entity_id, r.version) for r in synchronized
            if answers.synchronized[(r.entity_type, r.entity_id, r.version)] != 1]
    assert not lost, f"synchronized in CCB, not applied once in MDM: {lost[:10]}"


def describe(value: Any, chars: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= chars else text[:chars] + "..."


@contextlib.contextmanager
def stopped_on_exit(*workers: WorkerProcess) -> Any:
    try:
        yield
    finally:
        for worker in workers:
            worker.ensure_stopped()


def unsettled(outbox: SqlOutbox) -> int:
    """Sync requests not yet answered (``PENDING`` or ``SENT``); -1 while the database does not
    answer."""
    try:
        counts = outbox.counts()
    except DBAPIError:
        return -1
    return counts[SyncRequestState.PENDING.value] + counts[SyncRequestState.SENT.value]


@dataclass
class RunningPipeline:
    """``c2m-sync worker ccb`` and the MDM worker as processes over ``settings``, and the test's
    own handles on both databases."""

    outbox: SqlOutbox
    mdm: MdmStore
    ccb_worker: WorkerProcess
    mdm_worker: WorkerProcess

    @property
    def alive(self) -> bool:
        return self.ccb_worker.alive and self.mdm_worker.alive

    def ensure_stopped(self) -> None:
        self.ccb_worker.ensure_stopped()
        self.mdm_worker.ensure_stopped()

    def assert_converged_and_stop(self, admin: AdminConfig) -> None:
        """Both workers still running, CCB and MDM agreeing (:func:`assert_ccb_and_mdm_agree`),
        and both stopping cleanly on SIGTERM."""
        assert self.ccb_worker.alive, self.ccb_worker.log_tail()
        assert self.mdm_worker.alive, self.mdm_worker.log_tail()
        assert_ccb_and_mdm_agree(self.outbox, self.mdm, admin)
        assert self.ccb_worker.stop() == 0, self.ccb_worker.log_tail()
        assert self.mdm_worker.stop() == 0, self.mdm_worker.log_tail()

    def close(self) -> None:
        """Stop what still runs and close the test's database handles."""
        self.ensure_stopped()
        self.outbox.store.dispose()
        self.mdm.dispose()


async def start_pipeline(settings: Settings, admin: AdminConfig, tenants: int,
                         folder: Path) -> RunningPipeline:
    """Load ``tenants`` tenants into CCB, create the topics, start both workers (their logs in
    ``folder``) and wait until the loaded tenants are synchronized."""
    outbox = open_outbox(settings.ccb_db_url, admin, FixedClock(BUSINESS_DATE))
    mdm = open_mdm_store(settings.mdm_db_url, admin)
    load_tenants(outbox, admin, tenants)
    await create_topics(settings)
    running = RunningPipeline(outbox, mdm, WorkerProcess.ccb(settings, folder / "ccb-worker.log"),
                              WorkerProcess.mdm(settings, folder / "mdm-worker.log"))
    running.ccb_worker.start()
    running.mdm_worker.start()
    try:
        await wait_for(lambda: outbox.counts()["SYNCHRONIZED"] >= tenants * 2
                       or not running.alive, 240, "the loaded tenants to synchronize",
                       detail=running.ccb_worker.stacks)
        assert running.ccb_worker.alive, running.ccb_worker.log_tail()
        assert running.mdm_worker.alive, running.mdm_worker.log_tail()
    except BaseException:
        running.ensure_stopped()
        raise
    return running


def own_postgres(*, synchronous_commit: bool = False) -> ThrowawayPostgres:
    """A PostgreSQL server of the test's own, started (the session's shared one is never
    restarted); the caller stops it. Unavailable: a failure under CI, a skip elsewhere."""
    server: ThrowawayPostgres | None = None
    try:
        server = ThrowawayPostgres(synchronous_commit=synchronous_commit)
        server.start()
    except PostgresLauncherError as error:
        if server is not None:
            server.stop()  # removes its folder
        unavailable("PostgreSQL", str(error))
    assert server is not None
    return server
