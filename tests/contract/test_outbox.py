"""The sync outbox on SQLite and PostgreSQL: requests written with the change, accumulative,
discarded when unchanged, and moved by acknowledgements, timeouts and resends (SPEC.md §6)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from sync.ccb.alerts import SyncErrorAlert, account_alerts
from sync.ccb.changes import Changes
from sync.ccb.commands import CancelPendingStop, ChangeStopDate, RequestStop
from sync.ccb.dispatch import unit_of_work
from sync.ccb.errors import ConcurrentUpdateError, InvalidCommand
from sync.ccb.loading import load_master_data, parse_text
from sync.ccb.model import DrillKey, ToDoStatus
from sync.ccb.ports import CcbView, IdSource
from sync.ccb.sync_requests import (
    QueuedRequest,
    SyncRequest,
    SyncRequestState,
    drill_target,
    sync_todo_types,
)
from sync.clock import FixedClock
from sync.config.admin import load_admin_config
from sync.mapping.codec import decode_sync_message
from sync.mapping.messages import AckError, Acknowledgement, AckOutcome, EntityType
from sync.mapping.snapshots import SnapshotError
from sync.pipeline.stores import open_outbox
from sync.storage import ccb_schema
from sync.storage import outbox_rows as rows
from sync.storage.ccb import SqlCcbStore
from sync.storage.outbox import AckPositions, LostAnswersError, SqlOutbox
from sync.storage.outbox_schema import sync_entities, sync_requests

EXAMPLE = Path(__file__).parents[2] / "examples" / "premise-landlord.yaml"
ADMIN = load_admin_config()
TODAY = dt.date(2025, 3, 3)
TENANT_E = "SA-TN01-E"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(TODAY)


@pytest.fixture
def outbox(database_url: str, clock: FixedClock) -> SqlOutbox:
    outbox = open_outbox(database_url, ADMIN, clock)
    outbox.store.execute(load_master_data(parse_text(EXAMPLE.read_text("utf-8"), "example"),
                                          "example", ADMIN, clock.now(), "loader"))
    return outbox


def run(outbox: SqlOutbox, clock: FixedClock, command: object) -> Changes:
    return outbox.store.execute(unit_of_work(command, ADMIN, clock.business_date(),  # type: ignore[arg-type]
                                             clock.now()))


def pending(outbox: SqlOutbox, entity_id: str, entity_type: str = "SA") -> SyncRequest:
    [request] = outbox.find(state=SyncRequestState.PENDING, entity_type=entity_type,
                            entity_id=entity_id)
    return request


def send_all(outbox: SqlOutbox, clock: FixedClock) -> list[SyncRequest]:
    batch = outbox.next_batch(10_000)
    outbox.mark_sent([(request, 0, n) for n, request in enumerate(batch)], clock.now())
    return batch


def ack(request: SyncRequest, outcome: AckOutcome = AckOutcome.SYNCHRONIZED,
        errors: tuple[AckError, ...] = (), version: int | None = None) -> Acknowledgement:
    return Acknowledgement(
        sync_request_id=request.id, entity_type=EntityType(request.entity_type),
        entity_id=request.entity_id, version=request.version if version is None else version,
        outcome=outcome, errors=errors, mdm_us_id=request.entity_id,
        processed_at=dt.datetime(2025, 3, 3, 12, 1, tzinfo=dt.UTC))


OVERLAP = AckError(code="D2-USSPDTVAL", path="spLinks[0].startDate",
                   message="SP SP-4410-1E is linked to US SA-LL-1E over an overlapping period")
MC = AckError(code="D2-VALUSMC", path="spLinks[0].spId",
              message="SP SP-4410-1E has no direct measuring component of class kWh")


def test_loading_enqueues_one_pending_request_per_entity(outbox: SqlOutbox) -> None:
    requests = outbox.find()
    keys = [request.key for request in requests]
    assert len(keys) == len(set(keys))
    assert {"SA:SA-TN01-E", "SA:SA-LL-3G", "PERSON:P-TN-03"} <= set(keys)
    assert all(request.state is SyncRequestState.PENDING for request in requests)
    message = decode_sync_message(pending(outbox, TENANT_E).payload)
    assert (message.external_id, message.version) == (TENANT_E, 1)
    assert message.sync_request_id == pending(outbox, TENANT_E).id


def test_a_later_change_refreshes_the_pending_request_with_a_new_version(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    """Accumulative: one pending request per entity carries the latest snapshot."""
    before = pending(outbox, TENANT_E)
    run(outbox, clock, RequestStop(account_id="A-TN-01", sa_ids=(TENANT_E,),
                                   stop_date=dt.date(2025, 3, 14)))
    after = pending(outbox, TENANT_E)
    assert after.id == before.id
    assert after.version == before.version + 1
    message = decode_sync_message(after.payload)
    assert message.version == after.version
    assert message.sa_status == "30"


def test_step_1_4_stop_request_enqueues_tenant_and_landlord_requests(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    send_all(outbox, clock)
    run(outbox, clock, RequestStop(account_id="A-TN-01", sa_ids=(TENANT_E,),
                                   stop_date=dt.date(2025, 3, 14)))
    queued = outbox.next_batch(100)
    messages = [decode_sync_message(request.payload) for request in queued]
    by_id = {message.external_id: message for message in messages}
    assert by_id[TENANT_E].sa_status == "30"
    landlord = [m for m in messages if getattr(m, "external_account_id", None) == "A-LL-01"]
    assert [m.sa_status for m in landlord] == ["10"]
    assert all(request.version == 2 for request in queued if request.entity_id == TENANT_E)


def touch_account(view: CcbView, _ids: IdSource) -> Changes:
    """A change of account A-TN-01 that leaves its SAs' snapshots as they were: the mailing
    premise does not travel to MDM."""
    account = view.account("A-TN-01")
    assert account is not None
    changes = Changes()
    changes.put_account(account.model_copy(update={"mailing_premise_id": "PR-4410-2",
                                                   "version": account.version + 1}))
    return changes


def test_a_change_that_leaves_the_snapshot_as_sent_is_discarded(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    send_all(outbox, clock)
    outbox.store.execute(touch_account)
    assert outbox.next_batch(100) == []
    discarded = outbox.find(state=SyncRequestState.DISCARDED, entity_id=TENANT_E)
    assert len(discarded) == 1
    assert "equals the one last sent" in (discarded[0].note or "")


def _former_fingerprint(payload: bytes) -> str:
    """The fingerprint as earlier versions stored it: the snapshot's JSON with sorted keys."""
    content = decode_sync_message(payload).model_dump(
        mode="json", by_alias=True, exclude={"version", "sync_request_id", "event_time"})
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def test_a_fingerprint_stored_in_the_former_form_sends_an_unchanged_snapshot_once_more(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    """The upgrade from sorted-key fingerprints (docs/wire-contract.md): the first unchanged
    snapshot after it is sent again, in the current form, and the next one is discarded."""
    sent = {request.entity_id: request for request in send_all(outbox, clock)}
    with outbox.store.engine.begin() as connection:
        for request in sent.values():
            connection.execute(sync_entities.update().where(
                sync_entities.c.entity_type == request.entity_type,
                sync_entities.c.entity_id == request.entity_id).values(
                sent_fingerprint=_former_fingerprint(request.payload)))
    outbox.store.execute(touch_account)
    resent = pending(outbox, TENANT_E)
    assert resent.version == sent[TENANT_E].version + 1
    assert decode_sync_message(resent.payload).model_dump(
        exclude={"version", "sync_request_id", "event_time"}) == decode_sync_message(
        sent[TENANT_E].payload).model_dump(exclude={"version", "sync_request_id", "event_time"})
    assert resent.fingerprint != _former_fingerprint(resent.payload)
    send_all(outbox, clock)
    outbox.store.execute(touch_account)
    assert outbox.next_batch(100) == []
    assert len(outbox.find(state=SyncRequestState.DISCARDED, entity_id=TENANT_E)) == 1


def test_an_account_change_reaches_the_snapshots_of_its_sas(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    send_all(outbox, clock)

    def new_division(view: CcbView, _ids: IdSource) -> Changes:
        account = view.account("A-TN-01")
        assert account is not None
        changes = Changes()
        changes.put_account(account.model_copy(update={"bill_cycle": "BC09",
                                                       "version": account.version + 1}))
        return changes

    outbox.store.execute(new_division)
    queued = {request.entity_id for request in outbox.next_batch(100)}
    assert queued == {"SA-TN01-E", "SA-TN01-G"}
    message = decode_sync_message(pending(outbox, TENANT_E).payload)
    assert message.account.bill_cycle == "BC09"


def test_undoing_a_pending_change_discards_the_pending_request(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    send_all(outbox, clock)
    run(outbox, clock, RequestStop(account_id="A-TN-01", sa_ids=(TENANT_E,),
                                   stop_date=dt.date(2025, 3, 14)))
    stop_request = pending(outbox, TENANT_E)
    run(outbox, clock, CancelPendingStop(sa_id=TENANT_E))
    assert outbox.find(state=SyncRequestState.PENDING, entity_id=TENANT_E) == []
    undone = outbox.get(stop_request.id)
    assert undone is not None
    assert undone.state is SyncRequestState.DISCARDED


def test_a_failed_unit_of_work_leaves_no_sync_request(outbox: SqlOutbox,
                                                      clock: FixedClock) -> None:
    send_all(outbox, clock)
    before = outbox.find()
    with pytest.raises(InvalidCommand):
        run(outbox, clock, RequestStop(account_id="A-TN-01", sa_ids=(TENANT_E,),
                                       stop_date=dt.date(2020, 1, 1)))
    assert outbox.find() == before


def test_mark_sent_skips_a_request_refreshed_after_it_was_read(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    [read] = [r for r in outbox.next_batch(100) if r.entity_id == TENANT_E]
    run(outbox, clock, RequestStop(account_id="A-TN-01", sa_ids=(TENANT_E,),
                                   stop_date=dt.date(2025, 3, 14)))
    assert outbox.mark_sent([(read, 1, 7)], clock.now()) == 0
    still = pending(outbox, TENANT_E)
    assert still.version == read.version + 1


def test_synchronized_acknowledgement_and_stale_ones(outbox: SqlOutbox,
                                                     clock: FixedClock) -> None:
    sent = {r.entity_id: r for r in send_all(outbox, clock)}
    request = sent[TENANT_E]
    report = outbox.acknowledge([ack(request, version=request.version + 5)], clock.now())
    assert report.verdicts["STALE"] == 1
    assert outbox.get(request.id).state is SyncRequestState.SENT  # type: ignore[union-attr]
    outbox.acknowledge([ack(request)], clock.now())
    done = outbox.get(request.id)
    assert done is not None
    assert (done.state, done.mdm_us_id) == (SyncRequestState.SYNCHRONIZED, TENANT_E)
    again = outbox.acknowledge([ack(request, AckOutcome.DUPLICATE)], clock.now())
    assert again.verdicts["STALE"] == 1


def test_error_raises_a_todo_with_every_validation_and_resend_clears_it(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    sent = {r.entity_id: r for r in send_all(outbox, clock)}
    request = sent[TENANT_E]
    report = outbox.acknowledge([ack(request, AckOutcome.ERROR, (MC, OVERLAP))], clock.now())
    assert report.verdicts["ERROR"] == 1
    assert report.todos_raised == 1
    failed = outbox.get(request.id)
    assert failed is not None
    assert failed.state is SyncRequestState.ERROR
    assert [e.code for e in failed.errors] == ["D2-VALUSMC", "D2-USSPDTVAL"]
    todo_type = ADMIN.todo_type_for("sync_error")
    todo = outbox.store.read(lambda view: view.open_todo(todo_type, DrillKey(kind="sa",
                                                                             id=TENANT_E)))
    assert todo is not None
    assert "D2-VALUSMC" in todo.message
    assert "D2-USSPDTVAL" in todo.message
    assert request.id in todo.message

    resent = outbox.resend(request.id, clock.now())
    assert (resent.id, resent.state) == (request.id, SyncRequestState.PENDING)
    assert resent.version > request.version
    assert resent.errors == ()
    send_all(outbox, clock)
    outbox.acknowledge([ack(resent)], clock.now())
    resolved = outbox.store.read(lambda view: view.todo(todo.id))
    assert resolved is not None
    assert resolved.status is ToDoStatus.COMPLETE
    assert "synchronized" in resolved.log[-1].comment


def test_step_1_4_an_entity_synchronized_again_settles_only_its_own_requests_in_error(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    """A later request of an SA synchronizing discards that SA's earlier requests in ERROR
    (MDM holds a newer state); another SA's request in ERROR stays for the operator."""
    sent = {r.entity_id: r for r in send_all(outbox, clock)}
    other = "SA-TN02-E"
    outbox.acknowledge([ack(sent[TENANT_E], AckOutcome.ERROR, (MC,)),
                        ack(sent[other], AckOutcome.ERROR, (MC,))], clock.now())
    run(outbox, clock, RequestStop(account_id="A-TN-01", sa_ids=(TENANT_E,),
                                   stop_date=dt.date(2025, 3, 14)))
    [newer] = [r for r in send_all(outbox, clock) if r.entity_id == TENANT_E]
    outbox.acknowledge([ack(newer), *(ack(r) for r in sent.values()
                                      if r.entity_id not in (TENANT_E, other))], clock.now())
    settled = outbox.get(sent[TENANT_E].id)
    assert settled is not None
    assert settled.state is SyncRequestState.DISCARDED
    assert settled.note == f"superseded by {newer.id}, synchronized as version {newer.version}"
    left = outbox.get(sent[other].id)
    assert left is not None
    assert left.state is SyncRequestState.ERROR
    assert [r.entity_id for r in outbox.find(state=SyncRequestState.ERROR)] == [other]


def test_the_entities_in_error_are_read_through_their_own_index(tmp_path: Path) -> None:
    """SQLite: the read of which entities of a batch have a request in ERROR probes the
    partial index of those requests. Through the (state, seq) index, which SQLite's planner
    prefers when left to itself, it read every request in ERROR for every batch."""
    outbox = open_outbox(f"sqlite:///{tmp_path / 'ccb.db'}", ADMIN, FixedClock(TODAY))
    try:
        statement = rows._ERRED_ENTITIES.raw.statement.compile(
            dialect=outbox.store.engine.dialect).construct_expanded_state(
            {"entity_ids": ["SA-1", "SA-2"]}).statement
        with outbox.store.engine.connect() as connection:
            plan = [row[3] for row in connection.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement}", ("SA-1", "SA-2"))]
    finally:
        outbox.store.dispose()
    assert plan == ["SEARCH ccb_sync_requests USING INDEX ix_ccb_sync_requests_errors "
                    "(entity_id=?)"]


OTHER = AckError(code="D2-VALSPTYPE", path="spLinks[0].spId",
                 message="SP SP-4410-2E is of a type the US type does not allow")


def test_step_1_4_resend_errors_queues_the_requests_in_error_again_chunk_by_chunk(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    """After a wave of rejections: every request in ERROR with the code asked for is queued
    again (a later pending change carries its entity's), the others stay; then the rest; a
    run with nothing left in ERROR changes nothing."""
    sent = {r.entity_id: r for r in send_all(outbox, clock) if r.entity_type == "SA"}
    wave = sorted(sent)[:4]
    outbox.acknowledge([ack(sent[sa_id], AckOutcome.ERROR, (OTHER,) if n == 3 else (MC,))
                        for n, sa_id in enumerate(wave)], clock.now())
    carried = wave[0]  # a later change queues its entity again before the resend
    run(outbox, clock, RequestStop(account_id=outbox.store.read(
        lambda view: view.sa(carried)).account_id, sa_ids=(carried,),  # type: ignore[union-attr]
        stop_date=dt.date(2025, 3, 14)))
    later = pending(outbox, carried)
    seen: list[int] = []

    report = outbox.resend_errors(clock.now(), code="D2-VALUSMC", chunk=1,
                                  progress=seen.append)
    assert (report.examined, sorted(report.resent), report.carried_by_pending,
            report.failed) == (4, sorted(sent[sa_id].id for sa_id in wave[:3]), 1, [])
    assert seen == [1, 1, 1, 1]  # one chunk per request in ERROR
    superseded = outbox.get(sent[carried].id)
    assert superseded is not None
    assert (superseded.state, superseded.note) == (SyncRequestState.DISCARDED,
                                                   f"superseded by {later.id} on resend")
    assert pending(outbox, carried).version > later.version
    for sa_id in wave[1:3]:
        again = outbox.get(sent[sa_id].id)
        assert again is not None
        assert (again.state, again.errors) == (SyncRequestState.PENDING, ())
        assert again.version > sent[sa_id].version
    [left] = outbox.find(state=SyncRequestState.ERROR)
    assert left.id == sent[wave[3]].id

    rest = outbox.resend_errors(clock.now())
    assert (rest.examined, rest.resent) == (1, [left.id])
    before = outbox.find()
    nothing = outbox.resend_errors(clock.now())
    assert (nothing.examined, nothing.resent, nothing.failed) == (0, [], [])
    assert outbox.find() == before


def test_step_1_4_resend_errors_leaves_a_request_whose_entity_cannot_be_snapshotted(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    """A request whose entity still cannot be snapshotted stays in ERROR, reported with why,
    and nothing of it is written (not even the discard in favour of its entity's pending
    request); the others are queued all the same."""
    sent = {r.entity_id: r for r in send_all(outbox, clock) if r.entity_type == "SA"}
    broken, fine = sorted(sent)[:2]
    outbox.acknowledge([ack(sent[broken], AckOutcome.ERROR, (MC,)),
                        ack(sent[fine], AckOutcome.ERROR, (MC,))], clock.now())
    run(outbox, clock, RequestStop(account_id=outbox.store.read(
        lambda view: view.sa(broken)).account_id, sa_ids=(broken,),  # type: ignore[union-attr]
        stop_date=dt.date(2025, 3, 14)))
    later = pending(outbox, broken)
    sa_table = ccb_schema.service_agreements
    with outbox.store.engine.begin() as connection:
        connection.execute(sa_table.update().where(sa_table.c.id == broken)
                           .values(sa_type="NOT-CONFIGURED"))
    entities_before = _rows(outbox, sync_entities)

    report = outbox.resend_errors(clock.now())
    assert report.resent == [sent[fine].id]
    [(request_id, reason)] = report.failed
    assert request_id == sent[broken].id
    assert "'NOT-CONFIGURED' is not configured" in reason
    left = outbox.get(sent[broken].id)
    assert left is not None
    assert (left.state, left.version) == (SyncRequestState.ERROR, sent[broken].version)
    assert pending(outbox, broken) == later
    after = {row["entity_id"]: row for row in _rows(outbox, sync_entities)}
    assert after[broken] == {row["entity_id"]: row for row in entities_before}[broken]


def _rows(outbox: SqlOutbox, table: Any) -> list[dict[str, Any]]:
    with outbox.store.engine.connect() as connection:
        return [dict(row) for row in connection.execute(select(table)).mappings()]


def test_purge_removes_the_requests_settled_before_the_cutoff_and_nothing_else(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    """SYNC-PURGE: requests SYNCHRONIZED or DISCARDED before the cutoff go; one in ERROR, one
    settled after the cutoff though queued before it, and those queued after it stay, as do
    the entities' versions and last snapshots sent. A run asked to stop ends between two
    chunks; the next one takes up the rest. A second run removes nothing."""
    sent = send_all(outbox, clock)
    late = next(r for r in sent if r.entity_id == "SA-TN02-E")  # answered 40 days later
    outbox.acknowledge([ack(r, AckOutcome.ERROR, (MC,)) if r.entity_id == TENANT_E else ack(r)
                        for r in sent if r is not late], clock.now())
    outbox.store.execute(touch_account)  # requests equal to the snapshot sent: DISCARDED
    cutoff = clock.now() + dt.timedelta(days=30)
    clock.advance(days=40)
    outbox.acknowledge([ack(late)], clock.now())
    run(outbox, clock, RequestStop(account_id="A-TN-01", sa_ids=(TENANT_E,),
                                   stop_date=clock.business_date()))
    everything = outbox.find()
    entities = _rows(outbox, sync_entities)
    doomed = {r.id for r in everything if r.updated_at < cutoff and r.state in (
        SyncRequestState.SYNCHRONIZED, SyncRequestState.DISCARDED)}
    assert {r.state for r in everything if r.id in doomed} == {
        SyncRequestState.SYNCHRONIZED, SyncRequestState.DISCARDED}
    kept = {r.id: r.state for r in everything if r.id not in doomed}
    assert kept[late.id] is SyncRequestState.SYNCHRONIZED
    assert {SyncRequestState.ERROR, SyncRequestState.PENDING} <= set(kept.values())

    # Asked to stop after its first chunk (SIGTERM, a cancel): it ends there, and says so.
    answers = iter([False, True])
    stopped = outbox.purge_settled(cutoff, chunk=3, stop=lambda: next(answers))
    assert (stopped.stopped, stopped.examined) == (True, 3)
    assert 0 < stopped.removed <= 3
    report = outbox.purge_settled(cutoff, chunk=3)
    assert not report.stopped
    assert report.removed == len(doomed) - stopped.removed
    assert report.examined == sum(1 for r in everything if r.created_at < cutoff) \
        - stopped.removed
    assert report.examined < len(everything)  # the scan stopped at the first queued later
    assert {r.id: r.state for r in outbox.find()} == kept
    assert _rows(outbox, sync_entities) == entities
    again = outbox.purge_settled(cutoff, chunk=3)
    assert again.removed == 0
    assert {r.id: r.state for r in outbox.find()} == kept


def test_counts_for_monitoring_keep_the_history_counts_a_while_and_the_rest_exact(
        database_url: str, clock: FixedClock) -> None:
    """With a maximum age, SYNCHRONIZED and DISCARDED (the history kept) are counted again
    only once their counts are that old; the states an operator acts on are always exact."""
    seconds = [1000.0]
    store = SqlCcbStore(database_url, clock=clock)
    store.create_schema()
    outbox = SqlOutbox(store, ADMIN, monotonic=lambda: seconds[0])
    outbox.store.execute(load_master_data(parse_text(EXAMPLE.read_text("utf-8"), "example"),
                                          "example", ADMIN, clock.now(), "loader"))
    sent = send_all(outbox, clock)
    outbox.acknowledge([ack(sent[0])], clock.now())
    first = outbox.counts(settled_max_age_s=300)
    assert first == outbox.counts()
    assert (first["SYNCHRONIZED"], first["SENT"]) == (1, len(sent) - 1)

    outbox.acknowledge([ack(r) for r in sent[1:3]], clock.now())
    outbox.acknowledge([ack(sent[3], AckOutcome.ERROR, (MC,))], clock.now())
    seconds[0] += 299
    cached = outbox.counts(settled_max_age_s=300)
    assert (cached["SYNCHRONIZED"], cached["SENT"], cached["ERROR"]) == (
        1, len(sent) - 4, 1)  # the history as counted 299 s before, the rest as it is now
    seconds[0] += 2
    recounted = outbox.counts(settled_max_age_s=300)
    assert recounted["SYNCHRONIZED"] == 3
    assert recounted == outbox.counts()  # without a maximum age: exact


def test_resend_refuses_a_request_that_is_not_in_error(outbox: SqlOutbox) -> None:
    request = pending(outbox, TENANT_E)
    with pytest.raises(InvalidCommand, match="only a request in ERROR"):
        outbox.resend(request.id, dt.datetime(2025, 3, 3, tzinfo=dt.UTC))


def test_order_sensitive_rejections_are_requeued_before_they_become_errors(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    """Step 5.4: the tenant's US may reach MDM before the landlord's cancel."""
    send_all(outbox, clock)
    for attempt in range(ADMIN.installation.sync_retry_limit):
        request = [r for r in outbox.find(entity_id=TENANT_E)][-1]
        report = outbox.acknowledge([ack(request, AckOutcome.ERROR, (OVERLAP,))], clock.now())
        assert report.verdicts["RETRY"] == 1, attempt
        requeued = pending(outbox, TENANT_E)
        assert requeued.retries == attempt + 1
        send_all(outbox, clock)
    request = outbox.find(entity_id=TENANT_E)[-1]
    report = outbox.acknowledge([ack(request, AckOutcome.ERROR, (OVERLAP,))], clock.now())
    assert report.verdicts["ERROR"] == 1
    assert report.todos_raised == 1


@pytest.mark.parametrize("chunk", [500, 3], ids=["one-transaction", "chunks-of-3"])
def test_step_1_4_sync_timeout_turns_old_sent_requests_into_errors_with_a_todo(
        outbox: SqlOutbox, clock: FixedClock, chunk: int) -> None:
    sent = send_all(outbox, clock)
    assert outbox.time_out(clock.now(), chunk=chunk) == []
    clock.advance(seconds=ADMIN.installation.sync_ack_timeout_minutes * 60)
    timed_out = outbox.time_out(clock.now(), chunk=chunk)
    assert [r.id for r in timed_out] == [r.id for r in sent]  # every one, in queue order
    assert all(r.state is SyncRequestState.ERROR for r in timed_out)
    assert outbox.counts()["SENT"] == 0
    todos = outbox.store.read(lambda view: view.todos(todo_type=ADMIN.todo_type_for(
        "sync_timeout")))
    assert len(todos) == len({drill_target(r) for r in timed_out})  # one per drill key
    todo_type = ADMIN.todo_type_for("sync_timeout")
    todo = outbox.store.read(lambda view: view.open_todo(todo_type, DrillKey(kind="sa",
                                                                             id=TENANT_E)))
    assert todo is not None
    assert "SYNC-TIMEOUT" in todo.message
    assert outbox.time_out(clock.now()) == []  # idempotent


def test_step_1_4_a_request_timed_out_again_keeps_its_one_open_todo(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    """Resent after a timeout and unanswered again: the drill key's open To Do (read for the
    whole chunk at once) is the one kept, not a second one."""
    timeout = dt.timedelta(minutes=ADMIN.installation.sync_ack_timeout_minutes)
    send_all(outbox, clock)
    clock.advance(seconds=timeout.total_seconds())
    first = outbox.time_out(clock.now(), chunk=3)
    todo_type = ADMIN.todo_type_for("sync_timeout")
    before = outbox.store.read(lambda view: view.todos(todo_type=todo_type, unfinished=True))
    assert outbox.resend_errors(clock.now()).resent == [r.id for r in first]
    send_all(outbox, clock)
    clock.advance(seconds=timeout.total_seconds())
    again = outbox.time_out(clock.now(), chunk=3)
    assert [r.id for r in again] == [r.id for r in first]
    after = outbox.store.read(lambda view: view.todos(todo_type=todo_type, unfinished=True))
    assert sorted(t.id for t in after) == sorted(t.id for t in before)


def test_concurrent_refresh_of_one_pending_request_is_a_conflict(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    request = pending(outbox, TENANT_E)
    run(outbox, clock, RequestStop(account_id="A-TN-01", sa_ids=(TENANT_E,),
                                   stop_date=dt.date(2025, 3, 14)))
    # An acknowledgement decided on the version read before the refresh must not overwrite it.
    from sync.storage.outbox import _save

    with outbox.store.engine.begin() as connection, pytest.raises(ConcurrentUpdateError):
        _save(connection, request, state="SENT")


def test_a_sync_error_shows_as_an_account_alert_until_resynchronized(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    sent = {r.entity_id: r for r in send_all(outbox, clock)}
    outbox.acknowledge([ack(sent[TENANT_E], AckOutcome.ERROR, (MC,))], clock.now())
    types = sync_todo_types(ADMIN)
    alerts = outbox.store.read(lambda view: account_alerts(view, "A-TN-01", types))
    [alert] = [a for a in alerts if isinstance(a, SyncErrorAlert)]
    assert alert.sa_id == TENANT_E
    assert "not synchronized" in alert.text
    resent = outbox.resend(sent[TENANT_E].id, clock.now())
    send_all(outbox, clock)
    outbox.acknowledge([ack(resent)], clock.now())
    alerts = outbox.store.read(lambda view: account_alerts(view, "A-TN-01", types))
    assert not [a for a in alerts if isinstance(a, SyncErrorAlert)]


def test_requeue_sends_an_unchanged_synchronized_entity_again_with_a_new_version(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    """reconcile --repair: MDM lost what it was sent; CCB's state did not change."""
    sent = {r.entity_id: r for r in send_all(outbox, clock)}
    outbox.acknowledge([ack(sent[TENANT_E])], clock.now())
    requeued = outbox.requeue("SA", TENANT_E, clock.now())
    assert requeued.id != sent[TENANT_E].id
    assert requeued.state is SyncRequestState.PENDING
    assert requeued.version == sent[TENANT_E].version + 1
    message = decode_sync_message(requeued.payload)
    assert (message.external_id, message.version, message.sync_request_id) == (
        TENANT_E, requeued.version, requeued.id)
    # The same state as sent before: only the delivery fields differ.
    assert requeued.fingerprint == sent[TENANT_E].fingerprint
    synchronized = outbox.get(sent[TENANT_E].id)
    assert synchronized is not None
    assert synchronized.state is SyncRequestState.SYNCHRONIZED


def test_requeue_refreshes_the_pending_request_instead_of_adding_one(
        outbox: SqlOutbox) -> None:
    before = pending(outbox, TENANT_E)
    requeued = outbox.requeue("SA", TENANT_E, dt.datetime(2025, 3, 3, 9, tzinfo=dt.UTC))
    assert requeued.id == before.id
    assert requeued.version == before.version + 1
    assert pending(outbox, TENANT_E).version == requeued.version


def test_requeue_of_an_unknown_sa_names_it_and_changes_nothing(outbox: SqlOutbox) -> None:
    counts = outbox.counts()
    with pytest.raises(SnapshotError, match=r"SA 'SA-NOPE'.*SA not found"):
        outbox.requeue("SA", "SA-NOPE", dt.datetime(2025, 3, 3, tzinfo=dt.UTC))
    assert outbox.counts() == counts


def test_republish_unanswered_queues_sent_requests_again_unless_superseded(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    sent = {r.entity_id: r for r in send_all(outbox, clock)}
    run(outbox, clock, RequestStop(account_id="A-TN-01", sa_ids=(TENANT_E,),
                                   stop_date=dt.date(2025, 3, 14)))
    newer = pending(outbox, TENANT_E)
    again = outbox.republish_unanswered(clock.now())
    assert again == len(sent) - 1
    superseded = outbox.get(sent[TENANT_E].id)
    assert superseded is not None
    assert superseded.state is SyncRequestState.DISCARDED
    requeued = outbox.get(sent["SA-TN02-E"].id)
    assert requeued is not None
    assert (requeued.state, requeued.version) == (SyncRequestState.PENDING,
                                                  sent["SA-TN02-E"].version)
    assert pending(outbox, TENANT_E) == newer
    assert outbox.counts()["SENT"] == 0


@pytest.mark.parametrize("publication_recorded", [True, False],
                         ids=["recorded-after-the-answer", "never-recorded"])
def test_a_request_answered_before_it_is_marked_published_still_counts_as_sent(
        outbox: SqlOutbox, clock: FixedClock, publication_recorded: bool) -> None:
    """Found by the broker-restart fault test: MDM answered a cancel before the relay recorded
    its publication. The stop made again afterwards equalled the stop sent before the cancel
    and was discarded as "equal to the one last sent", so MDM kept the cancel for ever. The
    relay may also stop before recording it at all."""
    stop = RequestStop(account_id="A-TN-01", sa_ids=(TENANT_E,), stop_date=dt.date(2025, 3, 14))
    send_all(outbox, clock)
    run(outbox, clock, stop)
    [stopped] = [r for r in send_all(outbox, clock) if r.entity_id == TENANT_E]
    outbox.acknowledge([ack(stopped)], clock.now())
    run(outbox, clock, CancelPendingStop(sa_id=TENANT_E))
    batch = outbox.next_batch(10_000)
    [canceled] = [r for r in batch if r.entity_id == TENANT_E]
    outbox.acknowledge([ack(canceled)], clock.now())  # the answer comes first
    if publication_recorded:
        outbox.mark_sent([(request, 0, n) for n, request in enumerate(batch)], clock.now())
    run(outbox, clock, stop)
    [again] = outbox.find(state=SyncRequestState.PENDING, entity_type="SA", entity_id=TENANT_E)
    assert again.version == canceled.version + 1
    assert decode_sync_message(again.payload).end_date == dt.date(2025, 3, 14)


# --- a change undone while the relay was publishing it -----------------------------------------


def published_then_undone(outbox: SqlOutbox, clock: FixedClock
                          ) -> tuple[SyncRequest, QueuedRequest]:
    """The tenant's stop is read and published by the relay, which stops before recording the
    publication; the stop is canceled meanwhile, which discards its still pending request as
    "undone before it was sent". Returns the discarded request, and the stop as the relay
    read it."""
    send_all(outbox, clock)
    run(outbox, clock, RequestStop(account_id="A-TN-01", sa_ids=(TENANT_E,),
                                   stop_date=dt.date(2025, 3, 14)))
    [published] = [r for r in outbox.next_batch(10_000) if r.entity_id == TENANT_E]
    run(outbox, clock, CancelPendingStop(sa_id=TENANT_E))
    discarded = outbox.get(published.id)
    assert discarded is not None
    assert (discarded.state, discarded.sent_at) == (SyncRequestState.DISCARDED, None)
    assert outbox.find(state=SyncRequestState.PENDING, entity_id=TENANT_E) == []
    return discarded, published


@pytest.mark.parametrize("outcome", [AckOutcome.SYNCHRONIZED, AckOutcome.DUPLICATE])
def test_step_3_0_mdm_applying_a_request_discarded_after_it_was_published_queues_the_sa_again(
        outbox: SqlOutbox, clock: FixedClock, outcome: AckOutcome) -> None:
    """Found by the CCB-database restart fault test: a relay that dies between publishing a
    stop and recording it, and a cancel meanwhile, left MDM with the stop and every request
    settled."""
    stopped, read = published_then_undone(outbox, clock)
    report = outbox.acknowledge([ack(stopped, outcome)], clock.now())
    assert report.verdicts == {"APPLIED_DISCARDED": 1}
    again = pending(outbox, TENANT_E)
    assert again.id != stopped.id
    assert again.version == stopped.version + 1
    assert decode_sync_message(again.payload).end_date is None  # the canceled stop
    kept = outbox.get(stopped.id)
    assert kept is not None
    assert (kept.state, kept.sent_at) == (SyncRequestState.DISCARDED, clock.now())
    assert kept.note == (f"published before it was discarded, and MDM applied it: the current "
                         f"state is queued again as version {again.version} ({again.id})")
    # The same answer read again (a redelivery), or the relay recording the publication late,
    # changes nothing more.
    before = outbox.find()
    assert outbox.acknowledge([ack(stopped, outcome)], clock.now()).verdicts == {"STALE": 1}
    assert outbox.mark_sent([(read, 1, 9)], clock.now()) == 0
    assert outbox.find() == before
    # The stop is now the snapshot last sent: the same stop made again while the cancel is
    # still pending takes the pending cancel back instead of leaving it to be sent after it.
    run(outbox, clock, RequestStop(account_id="A-TN-01", sa_ids=(TENANT_E,),
                                   stop_date=dt.date(2025, 3, 14)))
    assert outbox.find(state=SyncRequestState.PENDING, entity_id=TENANT_E) == []


def published_then_refreshed(outbox: SqlOutbox, clock: FixedClock) -> tuple[SyncRequest, int]:
    """The tenant's stop on the 14th is read and published by the relay, which stops before
    recording the publication; the stop date is then moved to the 21st, which refreshes the
    still pending request to a newer version. Returns the request and the version MDM got."""
    send_all(outbox, clock)
    run(outbox, clock, RequestStop(account_id="A-TN-01", sa_ids=(TENANT_E,),
                                   stop_date=dt.date(2025, 3, 14)))
    [published] = [r for r in outbox.next_batch(10_000) if r.entity_id == TENANT_E]
    run(outbox, clock, ChangeStopDate(sa_id=TENANT_E, stop_date=dt.date(2025, 3, 21)))
    refreshed = pending(outbox, TENANT_E)
    assert (refreshed.id, refreshed.version) == (published.id, published.version + 1)
    return refreshed, published.version


def test_step_3_0_an_earlier_version_of_a_refreshed_then_discarded_request_queues_the_sa(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    """Published, refreshed, then undone: the cancel discards the pending request as "back to
    what was sent", but MDM holds the stop it was published with (its earlier version)."""
    refreshed, earlier = published_then_refreshed(outbox, clock)
    run(outbox, clock, CancelPendingStop(sa_id=TENANT_E))
    assert outbox.find(state=SyncRequestState.PENDING, entity_id=TENANT_E) == []
    report = outbox.acknowledge([ack(refreshed, version=earlier)], clock.now())
    assert report.verdicts == {"APPLIED_EARLIER_VERSION": 1}
    again = pending(outbox, TENANT_E)
    assert again.id != refreshed.id
    assert decode_sync_message(again.payload).end_date is None  # the canceled stop
    kept = outbox.get(refreshed.id)
    assert kept is not None
    assert (kept.state, kept.sent_at) == (SyncRequestState.DISCARDED, clock.now())
    assert kept.note == (f"published before it was discarded, and MDM applied its earlier "
                         f"version {earlier}: the current state is queued again as version "
                         f"{again.version} ({again.id})")
    # The same answer read again changes nothing more.
    before = outbox.find()
    assert outbox.acknowledge([ack(refreshed, version=earlier)],
                              clock.now()).verdicts == {"STALE": 1}
    assert outbox.find() == before


def test_step_3_0_an_earlier_version_mdm_applied_keeps_the_undo_of_a_refreshed_request_queued(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    """The answer arrives while the refreshed request is still pending: a cancel then must
    not discard it as "back to what was sent", because MDM holds the stop."""
    refreshed, earlier = published_then_refreshed(outbox, clock)
    report = outbox.acknowledge([ack(refreshed, version=earlier)], clock.now())
    assert report.verdicts == {"APPLIED_EARLIER_VERSION": 1}
    assert pending(outbox, TENANT_E) == refreshed  # it carries the current state
    run(outbox, clock, CancelPendingStop(sa_id=TENANT_E))
    canceled = pending(outbox, TENANT_E)
    assert canceled.id == refreshed.id
    assert decode_sync_message(canceled.payload).end_date is None
    # Once that is sent, the entity's snapshots compare with it again as usual.
    send_all(outbox, clock)
    run(outbox, clock, RequestStop(account_id="A-TN-01", sa_ids=(TENANT_E,),
                                   stop_date=dt.date(2025, 3, 21)))
    run(outbox, clock, CancelPendingStop(sa_id=TENANT_E))
    assert outbox.find(state=SyncRequestState.PENDING, entity_id=TENANT_E) == []


def test_step_3_0_an_error_answer_for_a_request_discarded_after_it_was_published_changes_nothing(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    """MDM did not apply it: it holds what it held before the stop, which is CCB's state."""
    stopped, _ = published_then_undone(outbox, clock)
    before = outbox.find()
    report = outbox.acknowledge([ack(stopped, AckOutcome.ERROR, (MC,))], clock.now())
    assert report.verdicts == {"STALE": 1}
    assert outbox.find() == before


def test_step_3_0_a_newer_pending_request_carries_the_state_for_a_discarded_one_mdm_applied(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    """No extra request: the pending one carries the SA's current state. But the stop MDM
    applied is recorded as the last snapshot sent, so that canceling the newer change does not
    discard the pending request as "back to what was sent"."""
    stopped, _ = published_then_undone(outbox, clock)
    run(outbox, clock, RequestStop(account_id="A-TN-01", sa_ids=(TENANT_E,),
                                   stop_date=dt.date(2025, 3, 21)))
    newer = pending(outbox, TENANT_E)
    assert outbox.acknowledge([ack(stopped)], clock.now()).verdicts == {"APPLIED_DISCARDED": 1}
    assert outbox.find(state=SyncRequestState.PENDING, entity_id=TENANT_E) == [newer]
    kept = outbox.get(stopped.id)
    assert kept is not None
    assert kept.note == ("published before it was discarded, and MDM applied it: "
                         f"{newer.id} carries the current state")
    run(outbox, clock, CancelPendingStop(sa_id=TENANT_E))
    canceled = pending(outbox, TENANT_E)
    assert canceled.id == newer.id
    assert decode_sync_message(canceled.payload).end_date is None


def test_step_3_0_an_answer_for_a_discarded_request_overtaken_by_a_published_one_is_ignored(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    """A newer change was published (and recorded) before MDM's answer to the discarded stop
    arrived: MDM ends on the newer one, and the stop must not become the snapshot last sent."""
    stopped, _ = published_then_undone(outbox, clock)
    run(outbox, clock, RequestStop(account_id="A-TN-01", sa_ids=(TENANT_E,),
                                   stop_date=dt.date(2025, 3, 21)))
    send_all(outbox, clock)
    before = outbox.find()
    assert outbox.acknowledge([ack(stopped)], clock.now()).verdicts == {"APPLIED_DISCARDED": 1}
    assert outbox.find() == before
    # The stop on the 14th is not what was sent last (the stop on the 21st is): made again
    # after a cancel, it is sent.
    run(outbox, clock, CancelPendingStop(sa_id=TENANT_E))
    run(outbox, clock, RequestStop(account_id="A-TN-01", sa_ids=(TENANT_E,),
                                   stop_date=dt.date(2025, 3, 14)))
    assert decode_sync_message(pending(outbox, TENANT_E).payload).end_date == dt.date(2025, 3, 14)


def test_step_3_0_a_discarded_request_published_all_the_same_is_taken_back_once(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    """The relay records the publication of the discarded stop (which queues the SA again)
    before MDM's answer to it arrives: the answer then has nothing left to do."""
    stopped, read = published_then_undone(outbox, clock)
    assert outbox.mark_sent([(read, 2, 40)], clock.now()) == 0
    recorded = outbox.get(stopped.id)
    assert recorded is not None
    assert (recorded.state, recorded.partition, recorded.offset) == (
        SyncRequestState.DISCARDED, 2, 40)
    cancel = pending(outbox, TENANT_E)
    assert cancel.version == stopped.version + 1
    assert recorded.note == ("published before it was discarded, and the broker acknowledged "
                             f"it: the current state is queued again as version "
                             f"{cancel.version} ({cancel.id})")
    before = outbox.find()
    assert outbox.acknowledge([ack(stopped)], clock.now()).verdicts == {"STALE": 1}
    assert outbox.find() == before


# --- the acknowledgement consumer's positions --------------------------------------------------

ACKS = "c2m.sync-acks"


def test_step_1_4_answers_record_their_positions_in_their_own_transaction(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    sent = send_all(outbox, clock)
    assert outbox.ack_positions(ACKS) == {}
    # The first batch after the consumer was assigned: partitions 0 and 2 read from their
    # committed offsets (7 and 0), partition 1 at its end (4) with nothing to read.
    outbox.acknowledge([ack(sent[0]), ack(sent[1])], clock.now(),
                       AckPositions(ACKS, {0: 8}, {0: (0, 7), 1: (0, 4), 2: (0, 0)}))
    assert outbox.ack_positions(ACKS) == {0: 8, 1: 3, 2: -1}
    outbox.acknowledge([ack(sent[2])], clock.now(), AckPositions(ACKS, {2: 0}))
    assert outbox.ack_positions(ACKS) == {0: 8, 1: 3, 2: 0}
    assert outbox.ack_positions("another-topic") == {}


def test_step_1_4_a_batch_that_fails_records_no_position(
        outbox: SqlOutbox, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = send_all(outbox, clock)
    outbox.acknowledge([ack(sent[0])], clock.now(), AckPositions(ACKS, {0: 3}))

    def broken(*_: object) -> None:
        raise RuntimeError("the last write of the batch failed")

    monkeypatch.setattr(rows, "supersede_errors", broken)
    with pytest.raises(RuntimeError):
        outbox.acknowledge([ack(sent[1])], clock.now(), AckPositions(ACKS, {0: 4}))
    assert outbox.ack_positions(ACKS) == {0: 3}
    assert outbox.get(sent[1].id).state is SyncRequestState.SENT  # type: ignore[union-attr]


def test_step_1_4_a_database_behind_the_consumer_is_told_and_applies_nothing(
        outbox: SqlOutbox, clock: FixedClock) -> None:
    sent = send_all(outbox, clock)
    outbox.acknowledge([ack(sent[0])], clock.now(),
                       AckPositions(ACKS, {0: 10, 1: 20}, {0: (0, 10), 1: (0, 20)}))
    before = outbox.find()
    # The consumer group committed up to 15 and 30 for answers the database no longer holds;
    # partition 1's answers before 25 are gone (retention); partition 2 was never recorded.
    with pytest.raises(LostAnswersError) as raised:
        outbox.acknowledge([ack(sent[1])], clock.now(), AckPositions(
            ACKS, {0: 15, 1: 30, 2: 5}, {0: (0, 15), 1: (25, 30), 2: (0, 5)}))
    assert raised.value.partitions == {0: (11, 15), 1: (25, 30)}
    assert "the CCB database lost transactions it had confirmed" in str(raised.value)
    assert outbox.find() == before
    assert outbox.ack_positions(ACKS) == {0: 10, 1: 20}
    # Read from where the database stands (or the oldest answer still on the topic), it is
    # applied; so is a partition that merely moved on to where nothing was lost.
    outbox.acknowledge([ack(sent[1])], clock.now(), AckPositions(
        ACKS, {0: 15, 1: 30}, {0: (0, 11), 1: (25, 25), 2: (0, 5)}))
    assert outbox.ack_positions(ACKS) == {0: 15, 1: 30, 2: 4}


def _dump(outbox: SqlOutbox) -> list[list[dict[str, object]]]:
    with outbox.store.engine.connect() as connection:
        return [[dict(row) for row in connection.execute(
            select(table).order_by(*table.primary_key.columns)).mappings()]
            for table in (sync_requests, sync_entities, ccb_schema.todos)]


def test_step_1_4_answers_applied_again_change_nothing(outbox: SqlOutbox,
                                                      clock: FixedClock) -> None:
    """What the consumer does when it reads answers again (the database lost them, or the
    group's commit did not follow its transaction): every kind of answer, applied twice."""
    sent = send_all(outbox, clock)
    stopped, _ = published_then_undone(outbox, clock)
    by_entity = {request.entity_id: request for request in sent}
    answers = [ack(by_entity["SA-TN02-E"]),  # synchronized
               ack(by_entity["SA-TN01-G"], AckOutcome.ERROR, (MC,)),  # error, To Do
               ack(by_entity["SA-LL-3E"], AckOutcome.ERROR, (OVERLAP,)),  # re-queued
               ack(by_entity["SA-TN02-G"], AckOutcome.DUPLICATE),
               ack(stopped),  # a discarded request MDM applied: queued again
               ack(stopped).model_copy(update={"sync_request_id": "SR-NOWHERE"})]
    first = outbox.acknowledge(answers, clock.now())
    assert {"SYNCHRONIZED", "ERROR", "RETRY", "APPLIED_DISCARDED"} <= set(first.verdicts)
    after = _dump(outbox)
    again = outbox.acknowledge(answers, clock.now())
    assert set(again.verdicts) == {"STALE"}
    assert again.todos_raised == 0
    assert _dump(outbox) == after
