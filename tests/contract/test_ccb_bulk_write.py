"""The CCB write path in bulk, on SQLite and PostgreSQL: a unit of work is persisted with a few
statements per table and its sync requests are decided for all its entities at once, and the
result is the same as writing and enqueueing one entity at a time, conflicts included."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select

from sync.batches import JobContext, load_jobs
from sync.ccb.changes import Changes
from sync.ccb.commands import CancelPendingStop, RequestStop
from sync.ccb.dispatch import unit_of_work
from sync.ccb.errors import ConcurrentUpdateError
from sync.ccb.loading import load_master_data, parse_text
from sync.ccb.model import Person, SaStatus, ToDoStatus
from sync.ccb.ports import CcbView, IdSource
from sync.ccb.sync_requests import QueuedRequest, SyncRequestState, sync_todo_types
from sync.clock import FixedClock
from sync.config.admin import load_admin_config
from sync.mapping.messages import Acknowledgement, AckOutcome, EntityType
from sync.mapping.snapshots import synchronized_entities
from sync.storage import ccb_schema
from sync.storage.ccb import RecordedChange, SqlCcbStore, SqlIdSource
from sync.storage.ccb_batch_queries import SqlBatchQueries
from sync.storage.ccb_view import SqlCcbView
from sync.storage.outbox import SqlOutbox
from sync.storage.outbox_schema import sync_entities, sync_requests
from tests.contract.ccb_store_support import StoreUnderTest, entities_of, every_entity
from tests.contract.test_batch_runner import _entities, _sql_store

ADMIN = load_admin_config()
TODAY = dt.date(2025, 3, 3)
EXAMPLE = Path(__file__).parents[2] / "examples" / "premise-landlord.yaml"
TENANT_E = "SA-TN01-E"


# --- persisting: conflicts found in a bulk update ---------------------------------------------


@pytest.fixture
def store(database_url: str) -> SqlCcbStore:
    sql = SqlCcbStore(database_url, clock=FixedClock(TODAY))
    sql.create_schema()
    sql.execute(lambda view, ids: every_entity())
    return sql


def _renamed(view: CcbView, person_ids: Sequence[str], version_read: dict[str, int]) -> Changes:
    changes = Changes()
    for person_id in person_ids:
        person = view.person(person_id)
        assert person is not None
        changes.put_person(person.model_copy(update={
            "name": person.name + " JR", "version": version_read.get(person_id,
                                                                     person.version) + 1}))
    return changes


def test_a_stale_entity_among_many_updates_is_named_and_nothing_is_written(
        store: SqlCcbStore) -> None:
    # P-2 as read by a unit that started before another one saved it (version 1 -> 2).
    store.execute(lambda view, ids: _renamed(view, ["P-2"], {}))
    before = StoreUnderTest("sql", sql=store).dump()
    with pytest.raises(ConcurrentUpdateError) as raised:
        store.execute(lambda view, ids: _renamed(view, ["P-1", "P-2", "P-3"], {"P-2": 1}))
    assert (raised.value.entity_id, raised.value.entity, raised.value.version_read) == (
        "P-2", "person", 1)
    assert StoreUnderTest("sql", sql=store).dump() == before


def test_updates_of_many_entities_are_written_when_every_version_matches(
        store: SqlCcbStore) -> None:
    store.execute(lambda view, ids: _renamed(view, ["P-1", "P-2", "P-3"], {}))
    persons = store.read(lambda view: [view.person(p) for p in ("P-1", "P-2", "P-3")])
    assert [(p.name, p.version) for p in persons if p is not None] == [
        ("BRENNAN,MARGARET JR", 2), ("OKAFOR,CHIDI JR", 2), ("Clarendon Holdings LLC JR", 2)]


def test_a_new_entity_created_meanwhile_is_a_concurrent_update(store: SqlCcbStore) -> None:
    before = StoreUnderTest("sql", sql=store).dump()

    def create(view: CcbView, ids: IdSource) -> Changes:
        changes = Changes()
        changes.put_person(Person(id="P-9", name="NEW,ONE"))
        changes.put_person(Person(id="P-2", name="OKAFOR,CHIDI"))  # version 1: "new"
        return changes

    with pytest.raises(ConcurrentUpdateError) as raised:
        store.execute(create)
    assert raised.value.entity_id == "P-2"
    assert StoreUnderTest("sql", sql=store).dump() == before


def test_a_block_of_ids_is_the_ids_one_at_a_time_skipping_taken_ones(
        database_url: str) -> None:
    first = SqlCcbStore(database_url)
    first.create_schema()
    # P-... ids: "PERSON-2" and "PERSON-3" are taken by data loaded with its own ids.
    first.execute(lambda view, ids: _people("PERSON-2", "PERSON-3"))

    def one_at_a_time(view: CcbView, ids: IdSource) -> Changes:
        found.append([ids.next_id("PERSON") for _ in range(4)])
        raise _RollbackError

    def block(view: CcbView, ids: IdSource) -> Changes:
        assert isinstance(ids, SqlIdSource)
        found.append(ids.next_ids("PERSON", 4))
        raise _RollbackError

    found: list[list[str]] = []
    for unit in (one_at_a_time, block):
        with pytest.raises(_RollbackError):
            first.execute(unit)
    assert found == [["PERSON-1", "PERSON-4", "PERSON-5", "PERSON-6"]] * 2


def test_ids_drawn_in_blocks_and_given_back_leave_the_counter_as_one_at_a_time(
        database_url: str) -> None:
    """A unit drawing many ids of a kind draws growing blocks; what it did not hand out goes
    back to the counter before commit, so the next unit continues where one-at-a-time would."""
    store = SqlCcbStore(database_url)
    store.create_schema()
    store.execute(lambda view, ids: _people("PERSON-5", "PERSON-9"))
    handed: list[list[str]] = []

    def draw(count: int) -> Callable[[CcbView, IdSource], Changes]:
        def unit(view: CcbView, ids: IdSource) -> Changes:
            drawn = [ids.next_id("PERSON") for _ in range(count)]
            handed.append(drawn)
            return _people(*drawn)
        return unit

    store.execute(draw(6))  # blocks of 1, 2, 4: seven drawn (PERSON-5 and -9 skipped)
    store.execute(draw(1))
    store.execute(draw(2))
    assert handed == [["PERSON-1", "PERSON-2", "PERSON-3", "PERSON-4", "PERSON-6",
                       "PERSON-7"], ["PERSON-8"], ["PERSON-10", "PERSON-11"]]
    with store.engine.connect() as connection:
        counter = connection.execute(select(ccb_schema.id_sequences.c.next_value).where(
            ccb_schema.id_sequences.c.kind == "PERSON")).scalar_one()
    assert counter == 11


class _RollbackError(Exception):
    pass


def _people(*person_ids: str) -> Changes:
    changes = Changes()
    for person_id in person_ids:
        changes.put_person(Person(id=person_id, name="TAKEN,ID"))
    return changes


# --- reading many: through the driver as through SQLAlchemy ----------------------------------


def test_reading_many_by_key_through_the_driver_gives_the_entities_sqlalchemy_reads(
        store: SqlCcbStore) -> None:
    """``_many_in`` (``bulk_sql.select_in``, what the prefetching views and the snapshot view
    read with) against ``_many`` (a SQLAlchemy select), for every entity table, by id and by
    each foreign key column (each key's entities in id order, as one key's list is read), with
    keys that exist, are repeated and do not exist."""
    written = entities_of(every_entity())

    def compare(view: SqlCcbView) -> int:
        compared = 0
        for attribute, kind in ccb_schema.ENTITY_TABLES.items():
            ids = sorted(written[attribute])
            assert ids, attribute
            keys = [*ids, ids[0], "NO-SUCH-KEY"]
            by_id = view._many_in(kind, "id", keys)
            assert by_id == view._many(kind, kind.table.c.id.in_(keys)), attribute
            assert {entity.id: entity for entity in by_id} == written[attribute], attribute
            for column in kind.table.c:
                if column.name == "id" or not column.foreign_keys:
                    continue
                values = sorted({row[column.name] for row in view.connection.execute(
                    select(kind.table)).mappings() if row[column.name] is not None})
                found = view._many_in(kind, column.name, [*reversed(values), "NO-SUCH-KEY"])
                assert len(found) == len({entity.id for entity in found}), attribute
                for value in values:  # each key's entities by id, as one key's list is read
                    assert [entity for entity in found
                            if getattr(entity, column.name) == value] == view._many(
                        kind, column == value), (attribute, column.name, value)
                assert sum(len(view._many(kind, column == value)) for value in values) == len(
                    found), (attribute, column.name)
                compared += 1
        return compared

    assert store.read(compare) >= 5  # SAs by account, premise and master; links by SA, SP


# --- the outbox: bulk enqueueing equals enqueueing one entity at a time ----------------------


def _enqueue_one_at_a_time(outbox: SqlOutbox):  # type: ignore[no-untyped-def]
    """The outbox hook as it was before the bulk path: for each entity its own pending and
    version reads, id, snapshot read row by row, and writes."""

    def hook(connection: Connection, _view: SqlCcbView,
             recorded: Sequence[RecordedChange]) -> None:
        if not recorded:
            return
        view = SqlCcbView(connection)
        targets = synchronized_entities(view, [(r.entity_type, r.entity_id)
                                               for r in recorded])
        ids = SqlIdSource(connection)
        plans = [outbox._plan(connection, view, ids, entity_type, entity_id,
                              recorded[0].changed_at) for entity_type, entity_id in targets]
        plans.sort(key=lambda plan: plan.publish_rank)
        ids.give_back()
        for plan in plans:
            plan.write(connection)

    return hook


def _outbox(url: str, one_at_a_time: bool) -> SqlOutbox:
    store = _sql_store(url, _entities(26, bad=set()))  # SAACT's data, without sync requests
    outbox = SqlOutbox(store, ADMIN)
    if one_at_a_time:
        store._hooks[:] = [_enqueue_one_at_a_time(outbox)]
    return outbox


def _scenario(outbox: SqlOutbox) -> None:
    """Master data loaded (persons, SAs, relationships, each a new request), a stop requested
    (the tenant's pending request refreshed), all sent, the stop canceled (a new request) and
    requested again (the pending request discarded: MDM has that state), then SAACT over 26
    SAs in chunks of 10."""
    clock = FixedClock(TODAY)
    store = outbox.store
    store.execute(load_master_data(parse_text(EXAMPLE.read_text("utf-8"), "example"),
                                   "example", ADMIN, clock.now(), "loader"))

    def run(command: object) -> None:
        store.execute(unit_of_work(command, ADMIN, TODAY, clock.now()))  # type: ignore[arg-type]

    stop = RequestStop(account_id="A-TN-01", sa_ids=(TENANT_E,), stop_date=dt.date(2025, 3, 14))
    run(stop)
    batch = outbox.next_batch(10_000)
    outbox.mark_sent([(request, 0, n) for n, request in enumerate(batch)], clock.now())
    run(CancelPendingStop(sa_id=TENANT_E))
    run(stop)
    report = load_jobs().run("SAACT", JobContext(
        admin=ADMIN, clock=clock, store=store, queries=SqlBatchQueries(store.engine),
        chunk_size=10))
    assert report.changed > 10


def _outbox_rows(outbox: SqlOutbox | SqlCcbStore
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    store = outbox.store if isinstance(outbox, SqlOutbox) else outbox
    with store.engine.connect() as connection:
        requests = [dict(row) for row in connection.execute(
            select(sync_requests).order_by(sync_requests.c.seq)).mappings()]
        entities = [dict(row) for row in connection.execute(
            select(sync_entities).order_by(sync_entities.c.entity_type,
                                           sync_entities.c.entity_id)).mappings()]
    return requests, entities


def test_bulk_outbox_writes_the_requests_and_snapshots_of_one_entity_at_a_time(
        database_url: str, postgres_or_sqlite_second_url: str) -> None:
    bulk = _outbox(database_url, one_at_a_time=False)
    single = _outbox(postgres_or_sqlite_second_url, one_at_a_time=True)
    for outbox in (bulk, single):
        _scenario(outbox)
    bulk_requests, bulk_entities = _outbox_rows(bulk)
    single_requests, single_entities = _outbox_rows(single)
    states = {row["state"] for row in bulk_requests}
    assert {"PENDING", "SENT", "DISCARDED"} <= states
    assert len(bulk_requests) > 25
    assert bulk_requests == single_requests  # ids, queue order, versions, payloads, notes
    assert bulk_entities == single_entities
    for outbox in (bulk, single):
        outbox.store.dispose()


# --- the relay and acknowledgements in bulk --------------------------------------------------


def _acks(requests: Sequence[Any], outcome: AckOutcome = AckOutcome.SYNCHRONIZED,
          ) -> list[Acknowledgement]:
    return [Acknowledgement(
        sync_request_id=r.id, entity_type=EntityType(r.entity_type), entity_id=r.entity_id,
        version=r.version, outcome=outcome, mdm_us_id=r.entity_id,
        processed_at=dt.datetime(2025, 3, 3, 12, 1, tzinfo=dt.UTC)) for r in requests]


def test_mark_sent_in_bulk_skips_a_request_refreshed_since_it_was_read(
        database_url: str) -> None:
    outbox = _outbox(database_url, one_at_a_time=False)
    clock = FixedClock(TODAY)
    outbox.store.execute(load_master_data(parse_text(EXAMPLE.read_text("utf-8"), "example"),
                                          "example", ADMIN, clock.now(), "loader"))
    batch = outbox.next_batch(10_000)
    [stale] = [r for r in batch if r.entity_id == TENANT_E]
    outbox.store.execute(unit_of_work(RequestStop(  # refreshes the tenant's pending request
        account_id="A-TN-01", sa_ids=(TENANT_E,), stop_date=dt.date(2025, 3, 14)),
        ADMIN, TODAY, clock.now()))
    sent = [(request, 0, n) for n, request in enumerate(batch)]
    marked = outbox.mark_sent(sent + sent[:3], clock.now())  # repeated entries count once
    assert marked == len(batch) - 1
    refreshed = outbox.get(stale.id)
    assert refreshed is not None
    assert refreshed.state is SyncRequestState.PENDING
    assert refreshed.version == stale.version + 1
    assert outbox.find(state=SyncRequestState.SENT) == sorted(
        (outbox.get(r.id) for r in batch if r.id != stale.id),
        key=lambda r: r.seq if r else 0)
    outbox.store.dispose()


def _loaded_and_sent(url: str, clock: FixedClock) -> tuple[SqlOutbox, list[QueuedRequest]]:
    """An outbox over the example master data, every request published and recorded sent."""
    outbox = _outbox(url, one_at_a_time=False)
    outbox.store.execute(load_master_data(parse_text(EXAMPLE.read_text("utf-8"), "example"),
                                          "example", ADMIN, clock.now(), "loader"))
    batch = outbox.next_batch(10_000)
    outbox.mark_sent([(request, 0, n) for n, request in enumerate(batch)], clock.now())
    return outbox, batch


def _requests_and_todos(outbox: SqlOutbox) -> tuple[Any, list[dict[str, Any]]]:
    with outbox.store.engine.connect() as connection:
        todos = [dict(row) for row in connection.execute(
            select(ccb_schema.todos).order_by(ccb_schema.todos.c.id)).mappings()]
    return _outbox_rows(outbox), todos


def test_acknowledging_a_batch_equals_acknowledging_one_answer_at_a_time(
        database_url: str, postgres_or_sqlite_second_url: str) -> None:
    clock = FixedClock(TODAY)
    results = []
    for url, one_by_one in ((database_url, False), (postgres_or_sqlite_second_url, True)):
        outbox, batch = _loaded_and_sent(url, clock)
        half = len(batch) // 2
        acks = (_acks(batch[:half]) + _acks(batch[half:], AckOutcome.ERROR)
                + _acks(batch[:2]))  # answered twice: the batch is applied answer by answer
        unknown = acks[0].model_copy(update={"sync_request_id": "SR-NOWHERE"})
        for chunk in ([[a] for a in [*acks, unknown]] if one_by_one
                      else [[*acks[:-2], unknown], acks[-2:]]):
            outbox.acknowledge(chunk, clock.now())
        results.append(_requests_and_todos(outbox))
        outbox.store.dispose()
    assert results[0] == results[1]
    (requests, _), todos = results[0]
    assert {r["state"] for r in requests} == {"SYNCHRONIZED", "ERROR"}
    assert len([t for t in todos if t["todo_type"] == ADMIN.todo_type_for("sync_error")]) > 0


def test_a_batch_resolves_the_sync_todos_that_answers_one_at_a_time_resolve(
        database_url: str, postgres_or_sqlite_second_url: str) -> None:
    """Requests rejected (an error To Do each) or timed out (a timeout To Do each) are resent
    or left in ERROR for a new request, others synchronized already are queued again, and MDM
    synchronizes them all (superseding the errors left): applied as
    one batch of different entities (the open To Dos read at once, only the entities with
    one resolved) or answer by answer (a batch answering one entity twice: each answer
    resolves through its own read), the rows are the same: requests, To Dos and their logs."""
    clock = FixedClock(TODAY)
    later = clock.now() + dt.timedelta(
        minutes=ADMIN.installation.sync_ack_timeout_minutes + 1)
    results = []
    for url, answer_by_answer in ((database_url, False), (postgres_or_sqlite_second_url, True)):
        outbox, batch = _loaded_and_sent(url, clock)
        third = len(batch) // 3
        outbox.acknowledge(_acks(batch[:third], AckOutcome.ERROR)
                           + _acks(batch[third:2 * third]), clock.now())
        assert len(outbox.time_out(later)) == len(batch) - 2 * third
        for request in batch[third // 2:third] + batch[2 * third:]:
            outbox.resend(request.id, later)
        # A new request for each of these; the one in ERROR is left to be superseded.
        for request in batch[:third // 2] + batch[third:2 * third]:
            outbox.requeue(request.entity_type, request.entity_id, later)
        again = outbox.next_batch(10_000)
        assert len(again) == len(batch)
        outbox.mark_sent([(request, 0, n) for n, request in enumerate(again)], later)
        answers = _acks(again)
        chunks = [answers + answers[:1]] if answer_by_answer else [answers, answers[:1]]
        for chunk in chunks:
            assert outbox.acknowledge(chunk, later).todos_raised == 0
        results.append(_requests_and_todos(outbox))
        outbox.store.dispose()
    assert results[0] == results[1]
    (requests, _), todos = results[0]
    assert {r["state"] for r in requests} == {"SYNCHRONIZED", "DISCARDED"}
    assert any(r["note"].startswith("superseded by") for r in requests
               if r["state"] == "DISCARDED")
    assert {t["todo_type"] for t in todos
            if t["status"] == ToDoStatus.COMPLETE.value} == set(sync_todo_types(ADMIN))


def test_step_3_0_answers_for_requests_discarded_after_publishing_in_a_batch_or_one_at_a_time(
        database_url: str, postgres_or_sqlite_second_url: str) -> None:
    """Two tenants' stops (and the landlord's reverted starts they queue) are read by the relay,
    which stops before recording them; both stops are canceled. MDM's answers to all of them,
    delivered twice, applied a batch of different entities at a time (where the queue-again is
    written at once among deferred writes) or in one batch answer by answer (it answers each
    entity twice), give the same rows: ids, versions, notes, sent fingerprints."""
    clock = FixedClock(TODAY)
    results = []
    for url, one_by_one in ((database_url, False), (postgres_or_sqlite_second_url, True)):
        outbox = _outbox(url, one_at_a_time=False)
        store = outbox.store
        store.execute(load_master_data(parse_text(EXAMPLE.read_text("utf-8"), "example"),
                                       "example", ADMIN, clock.now(), "loader"))
        first = outbox.next_batch(10_000)
        outbox.mark_sent([(request, 0, n) for n, request in enumerate(first)], clock.now())
        outbox.acknowledge(_acks(first), clock.now())
        for account_id, sa_id in (("A-TN-01", TENANT_E), ("A-TN-02", "SA-TN02-E")):
            store.execute(unit_of_work(RequestStop(account_id=account_id, sa_ids=(sa_id,),
                                                   stop_date=dt.date(2025, 3, 14)),
                                       ADMIN, TODAY, clock.now()))
        published = outbox.next_batch(10_000)  # never marked sent
        for sa_id in (TENANT_E, "SA-TN02-E"):
            store.execute(unit_of_work(CancelPendingStop(sa_id=sa_id), ADMIN, TODAY,
                                       clock.now()))
        acks = _acks(published)
        verdicts: dict[str, int] = {}
        for chunk in [acks + acks] if one_by_one else [acks, acks]:
            for verdict, count in outbox.acknowledge(chunk, clock.now()).verdicts.items():
                verdicts[verdict] = verdicts.get(verdict, 0) + count
        results.append((_outbox_rows(outbox), verdicts))
        outbox.store.dispose()
    assert results[0] == results[1]
    (requests, _), verdicts = results[0]
    assert verdicts["APPLIED_DISCARDED"] >= 2
    assert len({(r["entity_type"], r["entity_id"]) for r in requests
                if r["state"] == "PENDING"}) >= 2  # the canceled states queued again


def test_saact_over_a_chunk_and_sa_by_sa_gives_the_same_database(
        database_url: str, postgres_or_sqlite_second_url: str) -> None:
    """Step 5.9/6.0: the chunk's shared work (indexed pending changes, prefetched reads, one
    write per table) decides exactly what one unit of work per SA decides."""
    dumps = []
    for url, chunk_size in ((database_url, 500), (postgres_or_sqlite_second_url, 1)):
        store = _sql_store(url, _entities(26, bad=set()))
        SqlOutbox(store, ADMIN)
        report = load_jobs().run("SAACT", JobContext(
            admin=ADMIN, clock=FixedClock(TODAY), store=store,
            queries=SqlBatchQueries(store.engine), chunk_size=chunk_size))
        assert not report.errors
        statuses = store.read(lambda view: {sa.id: sa.status for sa in view.sas_with_status(
            *SaStatus)})
        requests, entities = _outbox_rows(store)
        dumps.append((statuses, _entity_rows(store),
                      sorted((r["id"], r["entity_id"], r["state"], r["version"], r["payload"])
                             for r in requests), entities))
        store.dispose()
    assert dumps[0][0]["SA-002"] is SaStatus.STOPPED
    assert dumps[0][0]["SA-001"] is SaStatus.ACTIVE
    assert dumps[0][0] == dumps[1][0]
    assert dumps[0][1] == dumps[1][1]  # SAs, links, accounts, To Dos ... row for row
    # The same requests and snapshots; only the queue order follows the units' publishing
    # ranks (stops before starts within a unit).
    assert dumps[0][2] == dumps[1][2]
    assert dumps[0][3] == dumps[1][3]


def _entity_rows(store: SqlCcbStore) -> dict[str, list[str]]:
    """Every CCB entity table, row for row (not the change log, whose unit ids are random)."""
    with store.engine.connect() as connection:
        return {kind.table.name: sorted(map(repr, connection.execute(select(kind.table))))
                for kind in ccb_schema.ENTITY_TABLES.values()}
