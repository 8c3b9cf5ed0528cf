"""What only the SQL store has: real concurrency, the change hook, database constraints, and the
query methods behind the CLI. Runs on SQLite and PostgreSQL (``database_url``)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy import Connection, func, select

from sync.ccb.changes import Changes
from sync.ccb.errors import ConcurrentUpdateError
from sync.ccb.model import DrillKey, MeterRead, Person, SaStatus, ToDoEntry, ToDoStatus
from sync.ccb.ports import CcbView, IdSource
from sync.ccb.work import Work
from sync.clock import FixedClock
from sync.storage import ccb_schema
from sync.storage.ccb import CcbStoreError, RecordedChange, SqlCcbStore
from sync.storage.ccb_view import SqlCcbView
from tests.contract.ccb_store_support import NOW, StoreUnderTest, every_entity
from tests.integration.pipeline_support import ADMIN


@pytest.fixture
def sql(database_url: str) -> Iterator[SqlCcbStore]:
    store = SqlCcbStore(database_url, clock=FixedClock(dt.date(2025, 3, 3)))
    store.create_schema()
    store.create_schema()  # idempotent
    store.execute(lambda view, ids: every_entity())
    try:
        yield store
    finally:
        store.dispose()


def _stop_moved_by(view: CcbView, days: int) -> Changes:
    sa = view.sa("SA-1")
    assert sa is not None
    assert sa.end_date is not None
    changes = Changes()
    changes.put_sa(sa.model_copy(update={"end_date": sa.end_date + dt.timedelta(days=days),
                                         "version": sa.version + 1}))
    return changes


@pytest.mark.postgres
def test_two_threads_that_read_the_same_sa_cannot_both_win(postgres_url: str) -> None:
    store = SqlCcbStore(postgres_url)
    store.create_schema()
    store.execute(lambda view, ids: every_entity())
    both_read = threading.Barrier(2, timeout=30)
    outcomes: list[str] = []

    def worker(days: int) -> None:
        def unit(view: CcbView, ids: IdSource) -> Changes:
            changes = _stop_moved_by(view, days)
            both_read.wait()  # both transactions hold version 1 before either writes
            return changes
        try:
            store.execute(unit)
            outcomes.append("won")
        except ConcurrentUpdateError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=worker, args=(days,)) for days in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["conflict", "won"]
    sa = store.read(lambda view: view.sa("SA-1"))
    assert sa is not None
    assert sa.version == 2
    assert sa.end_date in {dt.date(2025, 4, 1), dt.date(2025, 4, 2)}
    assert [c.entity_id for c in store.entity_changes()].count("SA-1") == 2  # seed + winner
    store.dispose()


@pytest.mark.postgres
def test_a_commit_between_the_rules_read_and_the_save_is_a_conflict(postgres_url: str) -> None:
    """Read committed lets a later statement of a unit see another unit's commit. The version
    a save writes must follow the version the rules decided on, not a fresh read made at save
    time, or the unit overwrites a change it never saw (two request-stops both winning)."""
    store = SqlCcbStore(postgres_url)
    store.create_schema()
    store.execute(lambda view, ids: every_entity())

    def slow_unit(view: CcbView, ids: IdSource) -> Changes:
        work = Work(view, ids, ADMIN, dt.date(2025, 3, 3), NOW, "csr")
        sa = work.sa("SA-1")
        assert sa is not None
        assert sa.end_date is not None
        assert sa.version == 1
        store.execute(lambda v, i: _stop_moved_by(v, 1))  # another unit commits version 2
        work.save_sa(sa.model_copy(update={"end_date": sa.end_date + dt.timedelta(days=9)}))
        return work.changes

    with pytest.raises(ConcurrentUpdateError, match="SA-1"):
        store.execute(slow_unit)
    sa = store.read(lambda view: view.sa("SA-1"))
    assert sa is not None
    assert sa.version == 2
    assert sa.end_date == dt.date(2025, 4, 1)  # the other unit's change, not overwritten
    store.dispose()


def test_concurrent_writers_that_retry_lose_no_update(sql: SqlCcbStore) -> None:
    rounds = 10

    def worker() -> None:
        for _ in range(rounds):
            while True:
                try:
                    sql.execute(lambda view, ids: _stop_moved_by(view, 1))
                    break
                except ConcurrentUpdateError:
                    continue

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    sa = sql.read(lambda view: view.sa("SA-1"))
    assert sa is not None
    assert sa.version == 1 + 2 * rounds
    assert sa.end_date == dt.date(2025, 3, 31) + dt.timedelta(days=2 * rounds)


def test_change_hooks_run_inside_the_transaction_of_the_change(sql: SqlCcbStore) -> None:
    seen: list[tuple[list[str], SaStatus | None, int]] = []

    def hook(connection: Connection, view: SqlCcbView,
             recorded: Sequence[RecordedChange]) -> None:
        sa = view.sa("SA-1")
        rows = connection.execute(select(func.count()).select_from(
            ccb_schema.entity_changes)).scalar_one()
        seen.append(([c.entity_id for c in recorded], sa.status if sa else None, rows))

    sql.add_change_hook(hook)

    def stop(view: CcbView, ids: IdSource) -> Changes:
        sa = view.sa("SA-1")
        assert sa is not None
        changes = Changes()
        changes.put_sa(sa.model_copy(update={"status": SaStatus.STOPPED, "version": 2}))
        return changes

    before = len(sql.entity_changes())
    sql.execute(stop)
    assert seen == [(["SA-1"], SaStatus.STOPPED, before + 1)]


def test_a_failing_change_hook_rolls_the_change_back(sql: SqlCcbStore) -> None:
    before = StoreUnderTest("sql", sql=sql).dump()

    def hook(connection: Connection, view: SqlCcbView,
             recorded: Sequence[RecordedChange]) -> None:
        raise RuntimeError("outbox unavailable")

    sql.add_change_hook(hook)
    with pytest.raises(RuntimeError, match="outbox unavailable"):
        sql.execute(lambda view, ids: _stop_moved_by(view, 3))
    assert StoreUnderTest("sql", sql=sql).dump() == before


def test_a_reference_to_a_missing_entity_is_refused_at_commit(sql: SqlCcbStore) -> None:
    before = StoreUnderTest("sql", sql=sql).dump()

    def dangling(view: CcbView, ids: IdSource) -> Changes:
        changes = Changes()
        changes.put_read(MeterRead(id="R-9", sp_id="SP-NOWHERE", read_at=NOW, value=1.0))
        return changes

    with pytest.raises(CcbStoreError, match="refused"):
        sql.execute(dangling)
    assert StoreUnderTest("sql", sql=sql).dump() == before


def test_a_naive_timestamp_is_refused(sql: SqlCcbStore) -> None:
    def naive(view: CcbView, ids: IdSource) -> Changes:
        changes = Changes()
        changes.put_read(MeterRead(id="R-9", sp_id="SP-1E", read_at=dt.datetime(2025, 3, 1),
                                   value=1.0))
        return changes

    with pytest.raises(Exception, match="naive datetime"):
        sql.execute(naive)
    assert sql.read(lambda view: view.reads_of_sp("SP-1E"))[-1].id == "R-2"


def test_timestamps_come_back_as_the_same_instant_in_utc(sql: SqlCcbStore) -> None:
    todo = sql.read(lambda view: view.todo("TD-1"))
    assert todo is not None
    assert todo.created_at == NOW
    assert todo.created_at.utcoffset() == dt.timedelta(0)


def test_the_database_allows_one_unfinished_todo_per_type_and_key(sql: SqlCcbStore) -> None:
    def second_open(view: CcbView, ids: IdSource) -> Changes:
        changes = Changes()
        changes.put_todo(ToDoEntry(id="TD-3", todo_type="TD-SAACT", role="CSR", message="again",
                                   drill_key=DrillKey(kind="sa", id="SA-1"), created_at=NOW))
        return changes

    with pytest.raises(ConcurrentUpdateError, match="To Do"):
        sql.execute(second_open)

    def complete_then_open(view: CcbView, ids: IdSource) -> Changes:
        old = view.todo("TD-1")
        assert old is not None
        changes = second_open(view, ids)
        changes.put_todo(old.model_copy(update={"status": ToDoStatus.COMPLETE, "version": 2}))
        return changes

    sql.execute(complete_then_open)
    assert sql.read(lambda view: view.open_todo("TD-SAACT", DrillKey(kind="sa", id="SA-1"))
                    ).id == "TD-3"  # type: ignore[union-attr]


def test_search_and_worklist_queries(sql: SqlCcbStore) -> None:
    def rename(view: CcbView, ids: IdSource) -> Changes:
        changes = Changes()
        changes.put_person(Person(id="P-4", name="Brennan-Walsh,Ann"))
        return changes

    sql.execute(rename)
    result = sql.read(lambda view: {
        "by_name": [p.id for p in view.persons_by_name_prefix("brennan")],
        "by_underscore": [p.id for p in view.persons_by_name_prefix("BRENNAN_")],
        "by_phone": [p.id for p in view.persons_by_phone("773.555.0148")],
        "accounts_of_other_person": [a.id for a in view.accounts_of_person("P-3")],
        "by_address": [p.id for p in view.premises_by_address("clarendon ave, unit 2")],
        "due": [sa.id for sa in view.pending_sas_due(dt.date(2025, 3, 31))],
        "not_yet_due": [sa.id for sa in view.pending_sas_due(dt.date(2025, 3, 30))],
        "csr_open": [t.id for t in view.todos(role="CSR", status=ToDoStatus.BEING_WORKED)],
        "reminders": [c.id for c in view.contacts_with_reminders_due(dt.date(2025, 3, 20))],
        "no_reminders": [c.id for c in view.contacts_with_reminders_due(dt.date(2025, 3, 19))],
        "pending_fas": [fa.id for fa in view.pending_field_activities(dt.date(2025, 3, 31))],
        "landlord_of": [la.id for la in view.landlord_agreements_of_account("A-1")],
    })
    assert result == {
        "by_name": ["P-1", "P-4"], "by_underscore": [], "by_phone": ["P-1"],
        "accounts_of_other_person": ["A-1"], "by_address": ["PR-1-2"],
        "due": ["SA-1", "SA-2"], "not_yet_due": [], "csr_open": ["TD-1"],
        # The reminder of 10 March was sent: only the one of 20 March is due.
        "reminders": ["CC-1"], "no_reminders": [],
        "pending_fas": ["FA-2"], "landlord_of": ["LA-1"],
    }


def test_sql_store_persists_every_entity_collection_of_a_unit_of_work() -> None:
    """The SQL table map and the domain's list of entity collections name the same kinds, so a
    collection added to :class:`Changes` cannot be silently dropped by the SQL store."""
    from sync.ccb.changes import ENTITY_TABLES
    from sync.storage import ccb_schema

    assert {name: kind.model for name, kind in ccb_schema.ENTITY_TABLES.items()} == ENTITY_TABLES
