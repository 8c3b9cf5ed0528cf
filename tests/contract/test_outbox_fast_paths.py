"""The relay's and the acknowledgements' narrow reads and driver-level writes give exactly what
the general ones give, on SQLite and PostgreSQL: ``next_batch`` the pending requests' fields as
their whole rows hold them, the payload-less request status the whole request's fields, and
``update_many`` (the request updates, the publication record) the very rows SQLAlchemy's own
``executemany`` writes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import Connection, bindparam, insert, select, update

from sync.ccb.errors import ConcurrentUpdateError
from sync.ccb.sync_requests import QueuedRequest, SyncError, SyncRequestState
from sync.clock import FixedClock
from sync.config.admin import load_admin_config
from sync.pipeline.stores import open_outbox
from sync.storage import outbox_rows as rows
from sync.storage.outbox import SqlOutbox
from sync.storage.outbox_schema import ack_positions, sync_entities, sync_requests

ADMIN = load_admin_config()
NOW = dt.datetime(2025, 3, 3, 12, 0, tzinfo=dt.UTC)
ERRORS = (SyncError(code="D2-VALUSMC", path="spLinks[0].spId", message="no kWh component"),
          SyncError(code="SYNC-TIMEOUT", message="no answer in 60 minutes"))
# Queue positions of the requests the tests look at (``seq`` starts at 1).
STATES = [SyncRequestState.PENDING, SyncRequestState.SENT, SyncRequestState.ERROR,
          SyncRequestState.SYNCHRONIZED, SyncRequestState.DISCARDED]


def _row(n: int) -> dict[str, Any]:
    state = STATES[n % len(STATES)]
    sent = state is not SyncRequestState.PENDING and n % 3 != 0
    return {
        "id": f"SR-{n:04d}", "entity_type": "SA" if n % 4 else "PERSON",
        "entity_id": f"E-{n:04d}", "state": state.value, "version": 1 + n % 7,
        "fingerprint": f"{n:064x}", "payload": f'{{"n":{n},"name":"Zoë"}}'.encode() + bytes([n]),
        "created_at": NOW - dt.timedelta(minutes=n), "updated_at": NOW,
        "sent_at": NOW + dt.timedelta(seconds=n) if sent else None,
        "acknowledged_at": None, "partition": n % 3 if sent else None,
        "offset": n if sent else None,
        "errors": rows.errors_document(ERRORS if state is SyncRequestState.ERROR else ()),
        "mdm_us_id": None, "sends": 1 if sent else 0, "retries": n % 2, "note": None}


@pytest.fixture
def outbox(database_url: str) -> SqlOutbox:
    return _filled(database_url)


def _filled(url: str, count: int = 60) -> SqlOutbox:
    outbox = open_outbox(url, ADMIN, FixedClock(NOW.date()))
    with outbox.store.engine.begin() as connection:
        connection.execute(insert(sync_requests), [_row(n) for n in range(count)])
        connection.execute(insert(sync_entities), [
            {"entity_type": row["entity_type"], "entity_id": row["entity_id"],
             "last_version": row["version"], "sent_fingerprint": None}
            for row in map(_row, range(count))])
    return outbox


def _dump(outbox: SqlOutbox) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    with outbox.store.engine.connect() as connection:
        return ([dict(row) for row in connection.execute(
                    select(sync_requests).order_by(sync_requests.c.seq)).mappings()],
                [dict(row) for row in connection.execute(
                    select(sync_entities).order_by(sync_entities.c.entity_type,
                                                   sync_entities.c.entity_id)).mappings()])


# --- reading ---------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [5, 1000])
def test_next_batch_gives_the_pending_requests_as_their_whole_rows_hold_them(
        outbox: SqlOutbox, limit: int) -> None:
    whole = outbox.find(state=SyncRequestState.PENDING)[:limit]
    assert whole
    assert outbox.next_batch(limit) == [
        QueuedRequest(r.id, r.entity_type, r.entity_id, r.version, r.fingerprint, r.payload)
        for r in whole]
    assert [r.key for r in outbox.next_batch(limit)] == [r.key for r in whole]


@pytest.mark.parametrize("lock", [False, True])
def test_a_request_status_is_the_whole_request_without_its_payload(
        outbox: SqlOutbox, lock: bool) -> None:
    ids = [f"SR-{n:04d}" for n in range(60, -1, -1)] + ["SR-NOWHERE", "SR-0007"]
    with outbox.store.engine.begin() as connection:
        whole = rows.by_ids(connection, ids)
        statuses = rows.statuses_of(connection, ids, lock=lock)
        states = rows.states_of(connection, ids, lock=lock)
    assert len(whole) == 60
    assert {r.state for r in whole.values()} == set(STATES)
    assert any(r.errors for r in whole.values())
    assert any(r.sent_at is not None for r in whole.values())
    assert statuses.keys() == whole.keys()
    for request_id, status in statuses.items():
        request = whole[request_id]
        assert (status.id, status.seq, status.entity_type, status.entity_id, status.state,
                status.version, status.fingerprint, status.sent_at, status.errors,
                status.retries, status.key) == (
            request.id, request.seq, request.entity_type, request.entity_id, request.state,
            request.version, request.fingerprint, request.sent_at, request.errors,
            request.retries, request.key)
        assert states[request_id] == (request.version, request.state)


# --- writing ---------------------------------------------------------------------------------


def _general_update_requests(connection: Connection, updates: Sequence[rows.RequestUpdate]
                             ) -> None:
    """The request updates through SQLAlchemy's own parameter handling, as they were written
    before the driver-level ``executemany``."""
    c = sync_requests.c
    statement = update(sync_requests).where(
        c.id == bindparam("w_id"), c.version == bindparam("w_version"),
        c.state == bindparam("w_state"))
    shapes: dict[tuple[str, ...], list[rows.RequestUpdate]] = {}
    for op in updates:
        shapes.setdefault(tuple(sorted(op.values)), []).append(op)
    for ops in shapes.values():
        result = connection.execute(statement, [
            {**rows.row_values(op.values), "w_id": op.request.id,
             "w_version": op.request.version, "w_state": op.request.state.value}
            for op in ops])
        assert result.rowcount == len(ops)


def _general_mark_sent(connection: Connection, sent: Sequence[tuple[QueuedRequest, int, int]],
                       at: dt.datetime) -> None:
    c = sync_requests.c
    result = connection.execute(update(sync_requests).where(
        c.id == bindparam("w_id"), c.version == bindparam("w_version"),
        c.state == SyncRequestState.PENDING.value).values(
        state=SyncRequestState.SENT.value, sent_at=at, updated_at=at,
        partition=bindparam("sent_partition"), offset=bindparam("sent_offset"),
        sends=c.sends + 1), [
        {"w_id": request.id, "w_version": request.version, "sent_partition": partition,
         "sent_offset": offset} for request, partition, offset in sent])
    assert result.rowcount == len(sent)
    connection.execute(update(sync_entities).where(
        sync_entities.c.entity_type == bindparam("w_type"),
        sync_entities.c.entity_id == bindparam("w_entity")), [
        {"w_type": request.entity_type, "w_entity": request.entity_id,
         "sent_fingerprint": request.fingerprint} for request, _, _ in sent])


def _updates(connection: Connection) -> list[rows.RequestUpdate]:
    """Updates of every shape the outbox writes: the batch's one time stamp (the same object
    in every row) and time stamps of their own, errors as models and as stored, None values."""
    requests = rows.by_ids(connection, [f"SR-{n:04d}" for n in range(60)])
    answered = NOW + dt.timedelta(minutes=5)
    updates = []
    for n, request in enumerate(requests.values()):
        if n % 3 == 0:
            values: dict[str, Any] = {
                "state": SyncRequestState.SYNCHRONIZED.value, "errors": (),
                "acknowledged_at": answered, "updated_at": answered, "mdm_us_id": f"US-{n}"}
        elif n % 3 == 1:
            values = {"state": SyncRequestState.ERROR.value, "errors": ERRORS,
                      "acknowledged_at": answered, "updated_at": answered, "mdm_us_id": None}
        else:
            values = {"state": SyncRequestState.PENDING.value, "version": request.version + 1,
                      "fingerprint": f"{n:064d}", "payload": b"\x00refreshed\xff",
                      "updated_at": NOW + dt.timedelta(seconds=n), "sent_at": None,
                      "partition": None, "offset": None, "errors": "[]",
                      "acknowledged_at": None, "note": "resent"}
        updates.append(rows.RequestUpdate(request, values))
    return updates


def _both(database_url: str, second_url: str,
          fast: Callable[[SqlOutbox, Connection], None],
          general: Callable[[SqlOutbox, Connection], None]) -> None:
    """The rows ``fast`` leaves equal those ``general`` leaves, on two databases filled alike
    (and differ from those before: the writes wrote)."""
    dumps, befores = [], []
    for url, write in ((database_url, fast), (second_url, general)):
        outbox = _filled(url)
        befores.append(_dump(outbox))
        with outbox.store.engine.begin() as connection:
            write(outbox, connection)
        dumps.append(_dump(outbox))
        outbox.store.dispose()
    assert befores[0] == befores[1]
    assert dumps[0] == dumps[1]
    assert dumps[0] != befores[0]


def test_request_updates_write_the_rows_sqlalchemy_writes(
        database_url: str, postgres_or_sqlite_second_url: str) -> None:
    _both(database_url, postgres_or_sqlite_second_url,
          lambda _, connection: rows.update_requests(connection, _updates(connection)),
          lambda _, connection: _general_update_requests(connection, _updates(connection)))


def test_recording_publications_writes_the_rows_sqlalchemy_writes(
        database_url: str, postgres_or_sqlite_second_url: str) -> None:
    def sent(outbox: SqlOutbox) -> list[tuple[QueuedRequest, int, int]]:
        return [(request, n % 3, 1000 + n) for n, request in enumerate(outbox.next_batch(100))]

    def fast(outbox: SqlOutbox, connection: Connection) -> None:
        batch = sent(outbox)
        rows.mark_requests_sent(connection, batch, NOW)
        rows.write(connection, [rows.SentFingerprint(r.entity_type, r.entity_id, r.fingerprint)
                                for r, _, _ in batch])

    _both(database_url, postgres_or_sqlite_second_url, fast,
          lambda outbox, connection: _general_mark_sent(connection, sent(outbox), NOW))


def test_a_request_update_on_a_row_changed_since_it_was_read_names_the_first_one(
        outbox: SqlOutbox) -> None:
    before = _dump(outbox)
    with outbox.store.engine.connect() as connection:
        updates = _updates(connection)
    lost = updates[4]  # the second of its shape (every third update has the same columns)
    stale = lost.request.model_copy(update={"version": lost.request.version - 1})
    updates[4] = rows.RequestUpdate(stale, lost.values)
    with pytest.raises(ConcurrentUpdateError) as raised, \
            outbox.store.engine.begin() as connection:
        rows.update_requests(connection, updates)
    assert (raised.value.entity_id, raised.value.version_read) == (
        stale.id, stale.version)
    assert _dump(outbox) == before


def test_recording_a_publication_of_a_row_changed_since_it_was_read_names_it(
        outbox: SqlOutbox) -> None:
    batch = outbox.next_batch(100)
    stale = QueuedRequest(batch[3].id, batch[3].entity_type, batch[3].entity_id,
                          batch[3].version + 1, batch[3].fingerprint, batch[3].payload)
    before = _dump(outbox)
    with pytest.raises(ConcurrentUpdateError) as raised, \
            outbox.store.engine.begin() as connection:
        rows.mark_requests_sent(connection, [(r, 0, n) for n, r in
                                             enumerate([*batch[:3], stale, *batch[4:]])], NOW)
    assert (raised.value.entity_id, raised.value.version_read) == (stale.id, stale.version)
    assert _dump(outbox) == before


def test_recording_ack_positions_writes_the_rows_the_upsert_statement_writes(
        database_url: str, postgres_or_sqlite_second_url: str) -> None:
    """New partitions, positions moving on and moving back (a topic created again), another
    topic left alone: through the driver as through SQLAlchemy's execution of the upsert."""
    batches = [("c2m.sync-acks", {0: 41, 1: 7}), ("c2m.other", {0: 3}),
               ("c2m.sync-acks", {1: 9, 2: 0, 0: 2**40}), ("c2m.sync-acks", {0: 5})]
    dumps = []
    for url, through_driver in ((database_url, True), (postgres_or_sqlite_second_url, False)):
        outbox = _filled(url, count=1)
        for topic, positions in batches:
            with outbox.store.engine.begin() as connection:
                if through_driver:
                    rows.record_ack_positions(connection, topic, positions)
                else:
                    connection.execute(rows._ack_position_upsert(connection.dialect.name), [
                        {"topic": topic, "partition": partition, "offset": offset}
                        for partition, offset in sorted(positions.items())])
        with outbox.store.engine.connect() as connection:
            dumps.append(sorted(tuple(row) for row in connection.execute(
                select(ack_positions)).all()))
            assert rows.ack_positions_of(connection, "c2m.sync-acks") == {0: 5, 1: 9, 2: 0}
        outbox.store.dispose()
    assert dumps[0] == dumps[1]
    assert len(dumps[0]) == 4
