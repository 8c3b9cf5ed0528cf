"""The batch runner and selections on SQLite and PostgreSQL: chunked units of work, one failing
SA reported and the others applied, keyset pages, and the prefetching view answering exactly
as the plain one (the same run on the in-memory store gives the same result)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from sync.batches import BatchReport, JobContext, load_jobs
from sync.batches.memory import MemoryBatchQueries
from sync.ccb.changes import ENTITY_TABLES, Changes
from sync.ccb.memory import InMemoryCcb
from sync.ccb.model import (
    Account,
    Address,
    Entity,
    FaPurpose,
    FaStatus,
    FieldActivity,
    Person,
    Premise,
    SaSpLink,
    SaStatus,
    ServiceAgreement,
    ServicePoint,
    ToDoStatus,
)
from sync.ccb.ports import CcbView, IdSource
from sync.clock import FixedClock
from sync.config.admin import load_admin_config
from sync.storage.ccb import SqlCcbStore
from sync.storage.ccb_batch_queries import SqlBatchQueries

ADMIN = load_admin_config()
TODAY = dt.date(2025, 3, 3)
SINCE = dt.date(2024, 1, 1)


def _entities(count: int, bad: set[int]) -> list[Entity]:
    """``count`` customers, each with a premise, an electric SP and an SA: even numbers pending
    stop today (every third with its stop FA still pending), odd numbers pending start today
    (every third of them tomorrow); numbers in ``bad`` carry an unknown SA type."""
    found: list[Entity] = []
    for n in range(count):
        key = f"{n:03d}"
        found += [Person(id=f"P-{key}", name=f"CUSTOMER,NUMBER {key}"),
                  Account(id=f"A-{key}", main_person_id=f"P-{key}"),
                  Premise(id=f"PR-{key}", address=Address(line1=f"{n} Main St",
                                                          city="Springfield", state="IL",
                                                          postal_code="62701")),
                  ServicePoint(id=f"SP-{key}", premise_id=f"PR-{key}", sp_type="E-RES")]
        stopping = n % 2 == 0
        start = SINCE if stopping else (TODAY + dt.timedelta(days=1) if n % 3 == 0 else TODAY)
        sa = ServiceAgreement(
            id=f"SA-{key}", account_id=f"A-{key}", sa_type="BOGUS" if n in bad else "E-RES",
            status=SaStatus.PENDING_STOP if stopping else SaStatus.PENDING_START,
            start_date=start, end_date=TODAY if stopping else None, premise_id=f"PR-{key}")
        link = SaSpLink(id=f"L-{key}", sa_id=sa.id, sp_id=f"SP-{key}", start_date=start,
                        stop_date=sa.end_date)
        done = n % 3 != 0
        fa = FieldActivity(id=f"FA-{key}", fa_type="E-OFF" if stopping else "E-ON",
                           sp_id=f"SP-{key}", sa_id=sa.id, sa_sp_link_id=link.id,
                           purpose=FaPurpose.STOP if stopping else FaPurpose.START,
                           scheduled_date=TODAY if stopping else start,
                           status=FaStatus.COMPLETE if done else FaStatus.PENDING,
                           completion_read=float(1000 + n) if done else None)
        found += [sa, link, fa]
    return found


def _sql_store(url: str, entities: list[Entity]) -> SqlCcbStore:
    store = SqlCcbStore(url, clock=FixedClock(TODAY))
    store.create_schema()

    def load(view: CcbView, ids: IdSource) -> Changes:
        changes = Changes()
        for entity in entities:
            changes.table(_table_of(entity))[getattr(entity, "id")] = entity  # noqa: B009
        return changes

    store.execute(load)
    return store


def _table_of(entity: Entity) -> str:
    return next(name for name, kind in ENTITY_TABLES.items() if isinstance(entity, kind))


@pytest.fixture
def sql(database_url: str) -> Iterator[tuple[SqlCcbStore, SqlBatchQueries]]:
    store = _sql_store(database_url, _entities(26, bad={7}))
    try:
        yield store, SqlBatchQueries(store.engine)
    finally:
        store.dispose()


def _run(store: SqlCcbStore | InMemoryCcb, queries: SqlBatchQueries | MemoryBatchQueries,
         code: str = "SAACT", chunk_size: int = 10) -> BatchReport:
    return load_jobs().run(code, JobContext(admin=ADMIN, clock=FixedClock(TODAY), store=store,
                                            queries=queries, chunk_size=chunk_size))


def _statuses(view: CcbView, count: int) -> dict[str, SaStatus]:
    found = {}
    for n in range(count):
        sa = view.sa(f"SA-{n:03d}")
        assert sa is not None
        found[sa.id] = sa.status
    return found


def test_step_5_9_chunked_run_reports_the_failing_sa_and_applies_the_others(
        sql: tuple[SqlCcbStore, SqlBatchQueries]) -> None:
    store, queries = sql
    report = _run(store, queries, chunk_size=4)

    statuses = store.read(lambda view: _statuses(view, 26))
    assert statuses["SA-007"] is SaStatus.PENDING_START  # the bad one
    assert [(e.entity, e.entity_id) for e in report.errors] == [("SA", "SA-007")]
    assert "unknown SA type 'BOGUS'" in report.errors[0].reason
    # Even: stop today, ready unless n % 3 == 0.  Odd: start today unless n % 3 == 0 (tomorrow).
    stopped = {f"SA-{n:03d}" for n in range(0, 26, 2) if n % 3 != 0}
    activated = {f"SA-{n:03d}" for n in range(1, 26, 2) if n % 3 != 0 and n != 7}
    assert {k for k, v in statuses.items() if v is SaStatus.STOPPED} == stopped
    assert {k for k, v in statuses.items() if v is SaStatus.ACTIVE} == activated
    waiting = {f"SA-{n:03d}" for n in range(0, 26, 6)}
    todos = store.read(lambda view: view.todos(todo_type="TD-SAACT"))
    assert {t.drill_key.id for t in todos} == waiting
    assert report.changed == len(stopped) + len(activated)
    assert report.todos_raised == len(waiting)
    assert report.examined == len(stopped) + len(activated) + len(waiting) + 1
    links = store.read(lambda view: view.links_of_sa("SA-002"))
    assert [link.stop_read for link in links] == [1002.0]


def test_step_6_0_second_run_changes_nothing_on_the_database(
        sql: tuple[SqlCcbStore, SqlBatchQueries]) -> None:
    store, queries = sql
    _run(store, queries)
    counts = store.table_counts()
    changes = store.entity_changes()

    second = _run(store, queries)

    assert (second.changed, second.todos_raised) == (0, 0)
    assert [e.entity_id for e in second.errors] == ["SA-007"]
    assert store.table_counts() == counts
    assert store.entity_changes() == changes
    todos = store.read(lambda view: view.todos(todo_type="TD-SAACT", status=ToDoStatus.OPEN))
    assert len(todos) == len({t.drill_key.id for t in todos})


def test_sql_and_in_memory_runs_agree(sql: tuple[SqlCcbStore, SqlBatchQueries]) -> None:
    """The prefetching SQL view and the in-memory store reach the same decisions."""
    store, queries = sql
    memory = InMemoryCcb()
    memory.add(*_entities(26, bad={7}))

    sql_report = _run(store, queries, chunk_size=5)
    memory_report = _run(memory, MemoryBatchQueries(memory), chunk_size=5)

    assert store.read(lambda view: _statuses(view, 26)) == _statuses(memory, 26)
    assert (sql_report.examined, sql_report.changed, sql_report.todos_raised) == (
        memory_report.examined, memory_report.changed, memory_report.todos_raised)
    for n in range(26):
        sa_id = f"SA-{n:03d}"
        sql_links = store.read(lambda view, sa_id=sa_id: view.links_of_sa(sa_id))
        assert sql_links == memory.links_of_sa(sa_id)


def test_keyset_pages_cover_the_due_sas_once_in_date_then_id_order(
        sql: tuple[SqlCcbStore, SqlBatchQueries]) -> None:
    _store, queries = sql
    selection = queries.due_pending_sas(TODAY)
    pages = list(selection.chunks(3))

    flat = [sa_id for page in pages for sa_id in page]
    starts = [f"SA-{n:03d}" for n in range(1, 26, 2) if n % 3 != 0]
    stops = [f"SA-{n:03d}" for n in range(0, 26, 2)]
    assert flat == starts + stops
    assert selection.count() == len(flat)
    assert all(len(page) <= 3 for page in pages)
    with pytest.raises(ValueError, match="chunk size"):
        next(selection.chunks(0))
