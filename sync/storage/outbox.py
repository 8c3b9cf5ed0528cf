"""The sync outbox on the CCB store: sync requests written in the transaction of the change.

:class:`SqlOutbox` registers a change hook on a :class:`~sync.storage.ccb.SqlCcbStore`: every
unit of work that changes an SA, a person or a relationship (or an account, premise or service
point that SA snapshots carry) leaves a sync request in ``ccb_sync_requests`` before it commits,
or leaves nothing at all. The rules (accumulate, discard, acknowledge, retry, time out) are the
pure functions of :mod:`sync.ccb.sync_requests`; this module reads and writes the rows.

Every update of a request row is conditional on the version read (``WHERE id = :id AND version =
:read``): the relay marking a request ``SENT`` after publishing version 3 does nothing when a
change refreshed it to version 4 meanwhile, so version 4 is published next instead of being
lost. Two writers racing on one entity's pending request make the later one fail with
:class:`~sync.ccb.errors.ConcurrentUpdateError` (and the partial unique index guarantees one
``PENDING`` request per entity even for inserts).
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.engine import RowMapping

from sync.ccb.changes import Changes
from sync.ccb.errors import InvalidCommand, NotFound
from sync.ccb.ports import IdSource
from sync.ccb.sync_requests import (
    SETTLED_STATES,
    UNKNOWN_SENT_FINGERPRINT,
    AckVerdict,
    EnqueueAction,
    QueuedRequest,
    RequestFacts,
    RequestStatus,
    SyncError,
    SyncRequest,
    SyncRequestState,
    TakeBack,
    ack_verdict,
    enqueue_action,
    raise_sync_todo,
    resolve_sync_todos,
    take_back,
    timeout_error,
    too_large_error,
)
from sync.config.admin import AdminConfig
from sync.mapping.codec import encode
from sync.mapping.messages import Acknowledgement, SaSyncMessage, snapshot_fingerprint
from sync.mapping.snapshots import (
    Delivery,
    SnapshotError,
    document_fingerprint,
    document_json,
    encode_document,
    snapshot_for,
    synchronized_entities,
)
from sync.storage import outbox_rows as rows
from sync.storage.ccb import RecordedChange, SqlCcbStore, SqlIdSource
from sync.storage.ccb_view import SqlCcbView
from sync.storage.outbox_schema import sync_requests
from sync.storage.saact_fast import set_based_snapshots as _set_based_snapshots
from sync.storage.snapshot_view import SnapshotView
from sync.storage.stop_upload_fast import stop_request_snapshots as _stop_request_snapshots

ID_KIND = "SR"

# Publishing order within one unit of work: MDM compares a US with the other USs of its service
# points, so SAs leaving service go first (the landlord's canceled start before the tenant's
# restored service, step 5.4) and new pending starts last (the landlord's reverted start after
# the tenant's stop, step 4.7). Rejections this order cannot prevent (a date moved in either
# direction, records on different partitions) are re-queued by the acknowledgement rules.
_PUBLISH_RANK = {"40": 0, "60": 0, "70": 0, "10": 2}


@dataclass
class AckReport:
    """What applying a batch of acknowledgements did, by verdict."""

    verdicts: Counter[str] = field(default_factory=Counter)
    todos_raised: int = 0
    unknown: list[str] = field(default_factory=list)


_SETTLED = frozenset(state.value for state in SETTLED_STATES)
# How old the settled states' counts may be on the monitoring pages (/metrics, the console).
SETTLED_COUNTS_MAX_AGE_S = 300.0
_ACTIVE = tuple(sorted(state.value for state in SyncRequestState if state.value not in _SETTLED))


@dataclass
class PurgeReport:
    """What :meth:`SqlOutbox.purge_settled` did: requests older than the cutoff looked at, and
    how many of them it removed."""

    examined: int = 0
    removed: int = 0
    stopped: bool = False  # asked to stop before the history was gone through


@dataclass
class ResendReport:
    """What :meth:`SqlOutbox.resend_errors` did: requests in ``ERROR`` looked at, the ids of
    those queued again, and how many of them a pending request of their entity carries (a
    later change had queued one: the request in ``ERROR`` is discarded in its favour), and
    those left in ``ERROR`` because their entity still cannot be snapshotted, with why."""

    examined: int = 0
    resent: list[str] = field(default_factory=list)
    carried_by_pending: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (request id, why)
    stopped: bool = False  # asked to stop before every request in ERROR was looked at


def _matches(request: SyncRequest, code: str | None, entity_type: str | None) -> bool:
    return (entity_type is None or request.entity_type == entity_type) and (
        code is None or any(error.code == code for error in request.errors))


@dataclass(frozen=True)
class AckPositions:
    """Where a batch of answers was read on the acknowledgement ``topic``: per partition the
    offset of the last record read (``last``) and, to be compared with what the database has
    applied, per partition the oldest offset known to be on the topic and the position the
    batch was read from (``read_from``): every partition assigned for the comparison after
    assignment or an outage, the batch's own partitions for every other batch."""

    topic: str
    last: Mapping[int, int]
    read_from: Mapping[int, tuple[int, int]] | None = None


class LostAnswersError(Exception):
    """The database has applied less of the acknowledgement topic than the consumer was about
    to read from: it lost transactions it had confirmed (a crash with ``synchronous_commit =
    off``, a failover to a standby that was behind) after the consumer group's offsets were
    committed. ``partitions`` maps each such partition to (the offset to read again from, the
    position the consumer was at)."""

    def __init__(self, topic: str, partitions: dict[int, tuple[int, int]]) -> None:
        super().__init__(
            f"the CCB database lost transactions it had confirmed: {topic} "
            + ", ".join(f"partition {partition} from offset {again} (the consumer was at "
                        f"{position})" for partition, (again, position) in partitions.items()))
        self.topic = topic
        self.partitions = partitions


def lost_answers(stored: Mapping[int, int], read_from: Mapping[int, tuple[int, int]]
                 ) -> dict[int, tuple[int, int]]:
    """Partitions whose answers between the last one the database applied (``stored``) and
    the position read from are still on the topic: ``partition -> (offset to read again
    from, position)``. A partition the database never recorded is left to the consumer
    group's committed offset (it was created, or upgraded, after those answers)."""
    lost = {}
    for partition, (beginning, position) in sorted(read_from.items()):
        if partition not in stored:
            continue
        # Answers older than the topic's retention are gone: from its beginning then.
        again = max(stored[partition] + 1, beginning)
        if again < position:
            lost[partition] = (again, position)
    return lost


class SqlOutbox:
    """Sync requests of one CCB store; see the module documentation."""

    def __init__(self, store: SqlCcbStore, admin: AdminConfig, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.admin = admin
        store.add_change_hook(self._on_changes)
        self._monotonic = monotonic
        # When the settled states were last counted, and their counts (see :meth:`counts`).
        self._settled_counts: tuple[float, dict[str, int]] | None = None

    # --- enqueueing (inside the change's transaction) ---------------------------------------

    def _on_changes(self, connection: Connection, view: SqlCcbView,
                    recorded: Sequence[RecordedChange]) -> None:
        """One sync request per entity the unit changed, decided and written for all of them
        at once: the snapshots' reads, the pending requests and the entities' versions are one
        query per table, the ids one block, the writes one statement per kind of write."""
        if not recorded:
            return
        at = recorded[0].changed_at
        changed = [(r.entity_type, r.entity_id) for r in recorded]
        # SAs a batch moved on set-based: their snapshots come from the rows it read.
        documents, own_targets = _set_based_snapshots(view.written, self.admin)
        stop_documents, stop_targets = _stop_request_snapshots(view.written, self.admin)
        documents.update(stop_documents)
        own_targets.update(stop_targets)
        source = SnapshotView(view)
        source.load_changed([entry for entry in changed if entry not in own_targets])
        targets = list(dict.fromkeys(
            target for entry in changed
            for target in (own_targets[entry] if entry in own_targets
                           else synchronized_entities(source, [entry]))))
        source.load_targets([target for target in targets if target not in documents])
        pending = rows.pending_of_many(connection, targets, lock=True)
        known = rows.sync_entities_of_many(connection, targets, lock=True)
        new_ids = iter(SqlIdSource(connection).next_ids(
            ID_KIND, sum(1 for target in targets if target not in pending)))
        planned = [self._decide(source, entity_type, entity_id, at, pending.get(key),
                                known.get(key),
                                pending[key].id if key in pending else next(new_ids),
                                document=documents.get(key))
                   for key in targets for entity_type, entity_id in (key,)]
        planned.sort(key=lambda plan: plan.publish_rank)
        rows.write(connection, [op for plan in planned for op in plan.operations()])

    def _plan(self, connection: Connection, view: SqlCcbView, ids: IdSource, entity_type: str,
              entity_id: str, at: dt.datetime, *, force: bool = False,
              reuse: SyncRequest | None = None) -> _Plan:
        """Decide what a new snapshot of the entity does; ``force`` sends it even when it
        equals the last one sent (a resend or retry), ``reuse`` is the request it revives."""
        pending = rows.pending_of(connection, entity_type, entity_id)
        entity = rows.sync_entities_of_many(connection, [(entity_type, entity_id)]).get(
            (entity_type, entity_id))
        target = pending or reuse
        request_id = target.id if target is not None else ids.next_id(ID_KIND)
        return self._decide(view, entity_type, entity_id, at, pending, entity, request_id,
                            force=force, reuse=reuse)

    def _decide(self, view: SqlCcbView, entity_type: str, entity_id: str, at: dt.datetime,
                pending: SyncRequest | None, entity: RowMapping | None, request_id: str, *,
                force: bool = False, reuse: SyncRequest | None = None,
                document: Mapping[str, Any] | None = None) -> _Plan:
        """The plan for the entity's snapshot now, given its pending request and its
        ``ccb_sync_entities`` row as read, and the id a new request would take; ``document``
        is the SA's snapshot built from rows already (the same bytes as through the models)."""
        last_version = int(entity["last_version"]) if entity is not None else 0
        sent_fingerprint = None if force or entity is None else entity["sent_fingerprint"]
        target = pending or reuse
        delivery = Delivery(last_version + 1, request_id, at)
        if document is not None:
            encoded = document_json(document)
            fingerprint = document_fingerprint(document, encoded)
            payload = encode_document(document, delivery, encoded)
            rank = _PUBLISH_RANK.get(document["saStatus"], 1)
        else:
            message = snapshot_for(view, self.admin, entity_type, entity_id, delivery)
            fingerprint = snapshot_fingerprint(message)
            payload = encode(message)
            rank = (_PUBLISH_RANK.get(message.sa_status, 1)
                    if isinstance(message, SaSyncMessage) else 1)
        if force:
            action = (EnqueueAction.REFRESH_PENDING if target is not None
                      else EnqueueAction.NEW_PENDING)
        else:
            action = enqueue_action(None if pending is None else pending.fingerprint,
                                    sent_fingerprint, fingerprint)
        return _Plan(action, entity_type, entity_id, request_id, target,
                     last_version, entity is not None, fingerprint, payload, at, rank)

    # --- the relay's side -------------------------------------------------------------------

    def next_batch(self, limit: int) -> list[QueuedRequest]:
        """Up to ``limit`` pending requests in queue order."""
        with self.store.engine.connect() as connection:
            return rows.queued(connection, limit)

    def mark_sent(self, sent: Sequence[tuple[QueuedRequest, int, int]], at: dt.datetime) -> int:
        """Record that the broker acknowledged these writes (request, partition, offset).
        A request refreshed since it was read stays pending; one discarded since (the change
        was undone) is taken back (:meth:`_take_back`); returns how many were marked.
        One read of the rows (locked where the database has row locks) and one update of
        each table for the whole batch."""
        marked = 0

        def unit(view: SqlCcbView, _ids: IdSource) -> Changes:
            nonlocal marked
            connection = view.connection
            stored = rows.states_of(connection, [request.id for request, _, _ in sent],
                                    lock=True)
            chosen: dict[str, tuple[QueuedRequest, int, int]] = {}
            undone: dict[str, tuple[int, int]] = {}
            for request, partition, offset in sent:
                state = stored.get(request.id)
                if request.id not in chosen and state == (
                        request.version, SyncRequestState.PENDING):
                    chosen[request.id] = (request, partition, offset)
                elif state == (request.version, SyncRequestState.DISCARDED):
                    undone[request.id] = (partition, offset)
            rows.mark_requests_sent(connection, list(chosen.values()), at)
            # A change undone while its snapshot was being published is on the topic all the
            # same, and MDM applies it. Rare: read again and taken back one at a time.
            if undone:
                discarded = rows.statuses_of(connection, list(undone))
                for status in sorted(discarded.values(),
                                     key=lambda r: (r.entity_type, r.entity_id)):
                    if status.sent_at is not None:
                        continue  # MDM's answer to it came first and took it back
                    partition, offset = undone[status.id]
                    self._take_back(view, _ids, status, at, "the broker acknowledged it", {
                        "sent_at": at, "partition": partition, "offset": offset})
            rows.write(connection, [
                rows.SentFingerprint(request.entity_type, request.entity_id,
                                     request.fingerprint)
                for request, _, _ in chosen.values()])
            marked = len(chosen)
            return Changes()

        self.store.execute(unit)
        return marked

    def set_aside(self, refused: Sequence[tuple[QueuedRequest, str]], now: dt.datetime) -> int:
        """Requests the broker refused as larger than the sync topic takes (request, why)
        become ``ERROR`` (``SYNC-TOO-LARGE``) with a To Do each, so that the requests behind
        them go out. One still pending in the version read is set aside; one refreshed or
        discarded since stays as it is. Returns how many were set aside."""
        set_aside = 0

        def unit(view: SqlCcbView, ids: IdSource) -> Changes:
            nonlocal set_aside
            changes = Changes()
            connection = view.connection
            stored = rows.states_of(connection, [request.id for request, _ in refused],
                                    lock=True)
            set_aside = 0
            for queued, reason in refused:
                if stored.get(queued.id) != (queued.version, SyncRequestState.PENDING):
                    continue
                request = _by_id(connection, queued.id)
                assert request is not None
                error = too_large_error(reason)
                _save(connection, request, state=SyncRequestState.ERROR.value, errors=(error,),
                      updated_at=now, note="set aside: too large for the sync topic")
                failed = request.model_copy(update={"state": SyncRequestState.ERROR,
                                                    "errors": (error,)})
                raise_sync_todo(view, ids, self.admin, failed, now, changes)
                set_aside += 1
            return changes

        self.store.execute(unit)
        return set_aside

    # --- acknowledgements, timeouts, resends -------------------------------------------------

    def acknowledge(self, acks: Sequence[Acknowledgement], now: dt.datetime,
                    positions: AckPositions | None = None) -> AckReport:
        """Apply MDM's answers in one transaction: set request states, raise a To Do for each
        new error, resolve the sync To Dos of entities that are synchronized again, and
        re-queue order-sensitive rejections. ``positions`` (where the answers were read) are
        recorded in the same transaction (:meth:`ack_positions`); when they say where the
        batch was read from, they are first compared with what the database has applied, and
        :class:`LostAnswersError` is raised, nothing applied, if it lost answers before them.

        The answers are decided in order from one read of their requests (locked where the
        database has row locks) and of the open sync To Dos they may resolve, and written with
        one update per kind of write. A batch that answers one entity more than once is applied
        answer by answer instead, so that each answer sees what the one before it did."""
        report = AckReport()

        def unit(view: SqlCcbView, ids: IdSource) -> Changes:
            changes = Changes()
            connection = view.connection
            recorded: dict[int, int] = {}
            if positions is not None and positions.read_from:
                stored = rows.ack_positions_of(connection, positions.topic)
                lost = lost_answers(stored, positions.read_from)
                if lost:
                    raise LostAnswersError(positions.topic, lost)
                # A partition not recorded yet is recorded from where it was read (the group's
                # committed offset): a batch of it lost later is then found, though this
                # batch has no answer of it.
                recorded = {partition: position - 1 for partition, (_, position)
                            in positions.read_from.items() if partition not in stored}
            # Without their payloads: a re-queued rejection reads its request whole.
            requests = rows.statuses_of(connection, [ack.sync_request_id for ack in acks],
                                        lock=True)
            known = [requests[ack.sync_request_id] for ack in acks
                     if ack.sync_request_id in requests]
            if len({(r.entity_type, r.entity_id) for r in known}) == len(known):
                self._acknowledge_all(view, ids, acks, requests, now, changes, report)
            else:
                for ack in acks:
                    verdict = self._acknowledge_one(view, ids, ack, now, changes)
                    if verdict is None:
                        report.unknown.append(ack.sync_request_id)
                    else:
                        report.verdicts[verdict.value] += 1
            report.todos_raised = sum(1 for todo in changes.todos.values() if todo.version == 1)
            if positions is not None:
                rows.record_ack_positions(connection, positions.topic,
                                          {**recorded, **positions.last})
            return changes

        self.store.execute(unit)
        return report

    def ack_positions(self, topic: str) -> dict[int, int]:
        """Per partition of the acknowledgement ``topic``, the offset of the last answer this
        database has applied (partitions it never recorded are absent)."""
        with self.store.engine.connect() as connection:
            return rows.ack_positions_of(connection, topic)

    def _acknowledge_all(self, view: SqlCcbView, ids: IdSource,
                         acks: Sequence[Acknowledgement], requests: dict[str, RequestStatus],
                         now: dt.datetime, changes: Changes, report: AckReport) -> None:
        """Answers about different entities: decided in order, written at the end."""
        todos = rows.SyncTodoView(view, self.admin, list(requests.values()))
        updates: list[rows.RequestUpdate] = []
        published: list[rows.SentFingerprint] = []
        synchronized: list[RequestStatus] = []
        retry_limit = self.admin.installation.sync_retry_limit
        for ack in acks:
            request = requests.get(ack.sync_request_id)
            if request is None:
                report.unknown.append(ack.sync_request_id)
                continue
            errors = tuple(SyncError(code=e.code, path=e.path, message=e.message)
                           for e in ack.errors) if ack.errors else ()
            verdict = ack_verdict(request, ack.version, ack.outcome.value, errors, retry_limit)
            report.verdicts[verdict.value] += 1
            if verdict is AckVerdict.STALE:
                continue
            if verdict is AckVerdict.RETRY:
                # Rare: written at once (it touches only this entity's rows).
                whole = _by_id(view.connection, request.id)
                assert whole is not None  # read and locked above
                self._retry(view, ids, whole, errors, now)
                continue
            if verdict is AckVerdict.APPLIED_DISCARDED:
                # Rare, and written at once too: the batch answers no other request of this
                # entity (``acknowledge`` sends a batch that does answer by answer), so the
                # deferred writes of the others cannot meet the rows this writes.
                self._take_back(view, ids, request, now, "MDM applied it",
                                _answered(ack, now))
                continue
            if verdict is AckVerdict.APPLIED_EARLIER_VERSION:
                self._earlier_version_applied(view, ids, request, ack, now)  # rare, likewise
                continue
            state = (SyncRequestState.SYNCHRONIZED if verdict is AckVerdict.SYNCHRONIZED
                     else SyncRequestState.ERROR)
            updates.append(rows.RequestUpdate(request, {
                "state": state.value, "errors": errors, "acknowledged_at": now,
                "updated_at": now, "mdm_us_id": ack.mdm_us_id}))
            published.extend(_published_unrecorded(request))
            if state is SyncRequestState.ERROR:
                raise_sync_todo(todos, ids, self.admin, request.answered(state, errors), now,
                                changes)
            else:
                if todos.may_have_open(request):
                    resolve_sync_todos(todos, self.admin, request.answered(state, errors), now,
                                       changes)
                # What superseding errors reads of it (id, entity, seq, version) the answer
                # leaves as it was: most answers build no answered copy.
                synchronized.append(request)
        rows.update_requests(view.connection, updates)
        rows.write(view.connection, published)
        rows.supersede_errors(view.connection, synchronized, now)

    def _retry(self, view: SqlCcbView, ids: IdSource, request: SyncRequest,
               errors: tuple[SyncError, ...], now: dt.datetime) -> None:
        """An order-sensitive rejection: re-queue the entity's current snapshot (on the
        request itself, unless a later change is queued already)."""
        connection = view.connection
        pending = _pending_of(connection, request.entity_type, request.entity_id)
        if pending is not None and pending.id != request.id:
            # A later change is queued already: it carries the entity's current state.
            _save(connection, request, state=SyncRequestState.DISCARDED.value,
                  errors=errors, acknowledged_at=now, updated_at=now,
                  note=f"rejected, superseded by {pending.id}")
            return
        plan = self._plan(connection, view, ids, request.entity_type, request.entity_id,
                          now, force=True, reuse=request)
        plan.retry = True
        plan.errors = errors
        plan.write(connection)

    def _earlier_version_applied(self, view: SqlCcbView, ids: IdSource,
                                 request: RequestFacts, ack: Acknowledgement,
                                 now: dt.datetime) -> None:
        """MDM applied ``ack.version``, an earlier version of ``request`` published and then
        refreshed before its publication was recorded: MDM holds a snapshot whose fingerprint
        CCB no longer has. It is recorded as sent under :data:`UNKNOWN_SENT_FINGERPRINT`, so
        that no later change is discarded as "equal to the one last sent" (the entity going
        back to the snapshot sent before it, say). A discarded request is taken back besides,
        as one MDM applied (:meth:`_take_back`); a pending one carries the current state."""
        if request.state is SyncRequestState.DISCARDED:
            self._take_back(view, ids, request, now,
                            f"MDM applied its earlier version {ack.version}",
                            _answered(ack, now), sent_fingerprint=UNKNOWN_SENT_FINGERPRINT)
            return
        rows.write(view.connection, [rows.SentFingerprint(
            request.entity_type, request.entity_id, UNKNOWN_SENT_FINGERPRINT)])

    def _take_back(self, view: SqlCcbView, ids: IdSource, request: RequestFacts,
                   now: dt.datetime, how: str, recorded: dict[str, Any],
                   sent_fingerprint: str | None = None) -> None:
        """``request`` was discarded (the change was undone) after the relay had read it, and
        it was published all the same (``how`` we know: the broker acknowledged it, or MDM
        applied it). Unless a later snapshot of the entity was published since, record its
        snapshot (or ``sent_fingerprint``, when what was published is not the request's
        current snapshot) as the last one sent and queue the entity's current state with a new
        version (:func:`~sync.ccb.sync_requests.take_back`). The request stays ``DISCARDED``,
        with ``recorded`` (what is known of its publication or answer) and a note saying so."""
        connection = view.connection
        later = rows.later_statuses(connection, request)
        action = take_back(later)
        if action is TakeBack.NOTHING:
            return
        if action is TakeBack.RECORD_SENT:
            [pending] = [r for r in later if r.state is SyncRequestState.PENDING]
            follow_up = f"{pending.id} carries the current state"
            operations: list[rows.Operation] = []
        else:
            plan = self._plan(connection, view, ids, request.entity_type, request.entity_id,
                              now, force=True)
            follow_up = (f"the current state is queued again as version "
                         f"{plan.last_version + 1} ({plan.request_id})")
            operations = plan.operations()
        operations.append(rows.RequestUpdate(request, {
            **recorded, "updated_at": now,
            "note": f"published before it was discarded, and {how}: {follow_up}"}))
        operations.extend(_published_unrecorded(request) if sent_fingerprint is None else [
            rows.SentFingerprint(request.entity_type, request.entity_id, sent_fingerprint)])
        rows.write(connection, operations)

    def _acknowledge_one(self, view: SqlCcbView, ids: IdSource, ack: Acknowledgement,
                         now: dt.datetime, changes: Changes) -> AckVerdict | None:
        connection = view.connection
        request = _by_id(connection, ack.sync_request_id)
        if request is None:
            return None
        errors = tuple(SyncError(code=e.code, path=e.path, message=e.message)
                       for e in ack.errors)
        verdict = ack_verdict(request, ack.version, ack.outcome.value, errors,
                              self.admin.installation.sync_retry_limit)
        if verdict is AckVerdict.STALE:
            return verdict
        if verdict is AckVerdict.RETRY:
            self._retry(view, ids, request, errors, now)
            return verdict
        if verdict is AckVerdict.APPLIED_DISCARDED:
            self._take_back(view, ids, request, now, "MDM applied it", _answered(ack, now))
            return verdict
        if verdict is AckVerdict.APPLIED_EARLIER_VERSION:
            self._earlier_version_applied(view, ids, request, ack, now)
            return verdict
        state = (SyncRequestState.SYNCHRONIZED if verdict is AckVerdict.SYNCHRONIZED
                 else SyncRequestState.ERROR)
        _save(connection, request, state=state.value, errors=errors, acknowledged_at=now,
              updated_at=now, mdm_us_id=ack.mdm_us_id)
        rows.write(connection, _published_unrecorded(request))
        answered = request.model_copy(update={"state": state, "errors": errors})
        if state is SyncRequestState.ERROR:
            raise_sync_todo(view, ids, self.admin, answered, now, changes)
        else:
            resolve_sync_todos(view, self.admin, answered, now, changes)
            rows.supersede_errors(connection, [answered], now)
        return verdict

    def time_out(self, now: dt.datetime, *, chunk: int = 500) -> list[SyncRequest]:
        """``SYNC-TIMEOUT``: requests sent longer ago than the configured timeout become errors,
        each with a To Do. Returns them (empty when there was nothing to do). ``chunk`` at a
        time in queue order, each chunk in one transaction: after MDM was away for a while
        there are tens of thousands, and one transaction for all of them would hold the CCB
        database's write lock (SQLite) for as long as they take."""
        timeout = dt.timedelta(minutes=self.admin.installation.sync_ack_timeout_minutes)
        timed_out: list[SyncRequest] = []
        after = 0
        while True:
            done = self._time_out_chunk(after, now - timeout, timeout_error(timeout), now, chunk)
            timed_out.extend(done)
            if len(done) < chunk:
                return timed_out
            after = done[-1].seq

    def _time_out_chunk(self, after: int, cutoff: dt.datetime, error: SyncError,
                        now: dt.datetime, chunk: int) -> list[SyncRequest]:
        """One transaction of :meth:`time_out`: up to ``chunk`` requests sent at or before
        ``cutoff``, after queue position ``after``, turned into errors with a To Do each."""
        done: list[SyncRequest] = []

        def unit(view: SqlCcbView, ids: IdSource) -> Changes:
            changes = Changes()
            requests = rows.in_state_after(view.connection, SyncRequestState.SENT, after, chunk,
                                           sent_by=cutoff)
            # One update for the chunk, and the open sync To Dos of its drill keys in one
            # read (as the acknowledgements do), not a write and a read per request.
            rows.update_requests(view.connection, [rows.RequestUpdate(request, {
                "state": SyncRequestState.ERROR.value, "errors": (error,), "updated_at": now})
                for request in requests])
            todos = rows.SyncTodoView(view, self.admin, requests)
            done[:] = [request.model_copy(update={"state": SyncRequestState.ERROR,
                                                  "errors": (error,)}) for request in requests]
            for failed in done:
                raise_sync_todo(todos, ids, self.admin, failed, now, changes)
            return changes

        self.store.execute(unit)
        return done

    def purge_settled(self, before: dt.datetime, *, chunk: int = 5_000,
                      progress: Callable[[int], None] | None = None,
                      stop: Callable[[], bool] | None = None) -> PurgeReport:
        """``SYNC-PURGE``: remove the requests that settled (``SYNCHRONIZED``, ``DISCARDED``)
        before ``before``. Requests in ``ERROR`` wait for an operator and stay, as do those
        still pending or sent, and every entity's versions and last snapshot sent
        (``ccb_sync_entities``), so that nothing about what MDM is sent next changes.

        The requests are read in queue order, ``chunk`` at a time, each chunk in one
        transaction, up to the first one created at or after ``before``: every request after
        it in the queue was queued after ``before``, so it cannot have settled before. The
        cost is the history older than ``before``, not the whole table; ``progress`` is told
        how many requests each chunk looked at. When ``stop`` answers true between two chunks
        the purge ends there (the report says so); the next one takes up the rest."""
        report = PurgeReport()
        after: int | None = 0
        while after is not None:
            if stop is not None and stop():
                report.stopped = True
                break
            looked, removed, after = self._purge_chunk(after, before, chunk)
            report.examined += looked
            report.removed += removed
            if progress is not None and looked:
                progress(looked)
        return report

    def _purge_chunk(self, after: int, before: dt.datetime,
                     chunk: int) -> tuple[int, int, int | None]:
        """One transaction of :meth:`purge_settled`: how many requests after queue position
        ``after`` it looked at and removed, and where the next chunk starts (None: done)."""
        result: list[tuple[int, int, int | None]] = []

        def unit(view: SqlCcbView, _ids: IdSource) -> Changes:
            head = rows.queue_after(view.connection, after, chunk)
            older = list(itertools.takewhile(lambda row: row.created_at < before, head))
            settled = [row.seq for row in older
                       if row.state in _SETTLED and row.updated_at < before]
            removed = rows.remove_settled(view.connection, settled, before)
            done = len(older) < len(head) or len(head) < chunk
            result[:] = [(len(older), removed, None if done else head[-1].seq)]
            return Changes()

        self.store.execute(unit)
        return result[0]

    def resend(self, request_id: str, now: dt.datetime) -> SyncRequest:
        """Send an ``ERROR`` request again with a fresh snapshot of the entity (after the data
        was fixed in CCB or the configuration in MDM). Returns the request that will carry it:
        the same one, or the entity's pending request when a later change already queued one."""
        result: list[SyncRequest] = []

        def unit(view: SqlCcbView, ids: IdSource) -> Changes:
            request = _by_id(view.connection, request_id)
            if request is None:
                raise NotFound("sync request", request_id, "id")
            if request.state is not SyncRequestState.ERROR:
                raise InvalidCommand("sync request", request_id, "state",
                                     f"is {request.state.value}; only a request in ERROR "
                                     "can be resent")
            found = self._resend(view, ids, request, now)
            result.append(found)
            return Changes(notes=[f"sync request {found.id} queued again as version "
                                  f"{found.version}"])

        self.store.execute(unit)
        return result[0]

    def resend_errors(self, now: dt.datetime, *, code: str | None = None,
                      entity_type: str | None = None, chunk: int = 500,
                      progress: Callable[[int], None] | None = None,
                      stop: Callable[[], bool] | None = None) -> ResendReport:
        """:meth:`resend` every request in ``ERROR`` (only those with an error of ``code``,
        only of ``entity_type``, when given): what an operator does once the cause of a wave
        of rejections is fixed. ``chunk`` requests at a time in queue order, each chunk in one
        transaction, so that a failure keeps what the chunks before it queued and a second
        run goes on with what is left; ``progress`` is told how many requests each chunk
        looked at. A request whose entity still cannot be snapshotted (the data was not
        fixed) stays in ``ERROR`` and is reported; the others are queued all the same. When
        ``stop`` answers true between two chunks the resend ends there (the report says so)."""
        report = ResendReport()
        after = 0
        while True:
            if stop is not None and stop():
                report.stopped = True
                return report
            looked, queued, failed = self._resend_chunk(after, chunk, code, entity_type, now)
            if not looked:
                return report
            after = looked[-1].seq
            report.examined += len(looked)
            report.failed.extend(failed)
            for resent_id, carrier in queued:
                report.resent.append(resent_id)
                if carrier.id != resent_id:
                    report.carried_by_pending += 1
            if progress is not None:
                progress(len(looked))

    def _resend_chunk(self, after: int, chunk: int, code: str | None, entity_type: str | None,
                      now: dt.datetime) -> tuple[list[SyncRequest],
                                                 list[tuple[str, SyncRequest]],
                                                 list[tuple[str, str]]]:
        """One transaction of :meth:`resend_errors`: the requests in ``ERROR`` after queue
        position ``after`` it looked at, each one queued again with the request that carries
        it, and each one left in ``ERROR`` with the reason its snapshot cannot be built."""
        looked: list[SyncRequest] = []
        queued: list[tuple[str, SyncRequest]] = []
        failed: list[tuple[str, str]] = []

        def unit(view: SqlCcbView, ids: IdSource) -> Changes:
            looked[:] = rows.in_state_after(view.connection, SyncRequestState.ERROR, after,
                                            chunk)
            queued.clear()
            failed.clear()
            for request in looked:
                if not _matches(request, code, entity_type):
                    continue
                try:
                    queued.append((request.id, self._resend(view, ids, request, now)))
                except SnapshotError as error:  # its entity's data is still not fit to send
                    failed.append((request.id, str(error)))
            return Changes(notes=[f"{len(queued)} sync requests in ERROR queued again"])

        self.store.execute(unit)
        return looked, queued, failed

    def _resend(self, view: SqlCcbView, ids: IdSource, request: SyncRequest,
                now: dt.datetime) -> SyncRequest:
        """Queue ``request`` (in ``ERROR``) again with a fresh snapshot; the request that
        carries it."""
        connection = view.connection
        pending = _pending_of(connection, request.entity_type, request.entity_id)
        # The snapshot first: an entity that still cannot be snapshotted raises before
        # anything of this request is written.
        plan = self._plan(connection, view, ids, request.entity_type, request.entity_id,
                          now, force=True, reuse=None if pending is not None else request)
        if pending is not None:
            _save(connection, request, state=SyncRequestState.DISCARDED.value,
                  updated_at=now, note=f"superseded by {pending.id} on resend")
        plan.write(connection)
        found = _by_id(connection, plan.request_id)
        assert found is not None
        return found

    def requeue(self, entity_type: str, entity_id: str, now: dt.datetime) -> SyncRequest:
        """Queue a fresh snapshot of the entity with a new version even when it equals the one
        last sent (``reconcile --repair``: MDM lost or altered what it was sent). Refreshes the
        entity's pending request, or adds one; returns it."""
        result: list[SyncRequest] = []

        def unit(view: SqlCcbView, ids: IdSource) -> Changes:
            plan = self._plan(view.connection, view, ids, entity_type, entity_id, now,
                              force=True)
            plan.write(view.connection)
            found = _by_id(view.connection, plan.request_id)
            assert found is not None
            result.append(found)
            return Changes(notes=[f"{entity_type} {entity_id} queued again as version "
                                  f"{found.version} ({found.id})"])

        self.store.execute(unit)
        return result[0]

    def republish_unanswered(self, now: dt.datetime) -> int:
        """Queue every ``SENT`` request again, as it is (same version). For a bus that did not
        outlive the process that published to it (the in-process bus): MDM never saw those
        records, and one it did see is answered as a duplicate. A request whose entity has a
        newer pending one is superseded by it instead. Returns how many were queued again."""
        c = sync_requests.c
        count = 0

        def unit(view: SqlCcbView, _ids: IdSource) -> Changes:
            nonlocal count
            rows = view.connection.execute(select(sync_requests).where(
                c.state == SyncRequestState.SENT.value).order_by(c.seq)).mappings().all()
            for row in rows:
                request = _request(row)
                pending = _pending_of(view.connection, request.entity_type, request.entity_id)
                if pending is not None:
                    _save(view.connection, request, state=SyncRequestState.DISCARDED.value,
                          updated_at=now, note=f"superseded by {pending.id}")
                    continue
                _save(view.connection, request, state=SyncRequestState.PENDING.value,
                      updated_at=now, sent_at=None, partition=None, offset=None,
                      note="queued again: the bus it was published on is gone")
                count += 1
            return Changes()

        self.store.execute(unit)
        return count

    # --- reading ----------------------------------------------------------------------------

    def get(self, request_id: str) -> SyncRequest | None:
        with self.store.engine.connect() as connection:
            return _by_id(connection, request_id)

    def find(self, *, state: SyncRequestState | None = None, entity_type: str | None = None,
             entity_id: str | None = None, limit: int | None = None,
             newest_first: bool = False) -> list[SyncRequest]:
        c = sync_requests.c
        query = select(sync_requests)
        if state is not None:
            query = query.where(c.state == state.value)
        if entity_type is not None:
            query = query.where(c.entity_type == entity_type)
        if entity_id is not None:
            query = query.where(c.entity_id == entity_id)
        query = query.order_by(c.seq.desc() if newest_first else c.seq)
        if limit is not None:
            query = query.limit(limit)
        with self.store.engine.connect() as connection:
            return [_request(row) for row in connection.execute(query).mappings().all()]

    def counts(self, *, settled_max_age_s: float | None = None) -> dict[str, int]:
        """Requests per state (every state present, zero included). With
        ``settled_max_age_s``, the ``SYNCHRONIZED`` and ``DISCARDED`` counts may be that many
        seconds old (for monitoring): they count the history kept, as many rows as changes,
        and counting them reads them all (about 100 ms over a million, on either database);
        the other states are counted exactly each time, through the state index, in time
        that follows how many there are (few: they are what an operator acts on)."""
        c = sync_requests.c
        cached = self._settled_counts
        fresh = (settled_max_age_s is not None and cached is not None
                 and self._monotonic() - cached[0] <= settled_max_age_s)
        with self.store.engine.connect() as connection:
            rows = connection.execute(
                select(c.state, func.count()).where(c.state.in_(_ACTIVE)).group_by(c.state)
                if fresh else select(c.state, func.count()).group_by(c.state)).all()
        found = {str(state): int(count) for state, count in rows}
        if fresh:
            assert cached is not None
            found.update(cached[1])
        else:
            self._settled_counts = (self._monotonic(), {
                state: found.get(state, 0) for state in _SETTLED})
        return {state.value: found.get(state.value, 0) for state in SyncRequestState}


# --- planning and writing one request --------------------------------------------------------


@dataclass
class _Plan:
    action: EnqueueAction
    entity_type: str
    entity_id: str
    request_id: str
    existing: SyncRequest | None
    last_version: int
    entity_known: bool
    fingerprint: str
    payload: bytes
    at: dt.datetime
    publish_rank: int
    retry: bool = False
    errors: tuple[SyncError, ...] = ()

    def write(self, connection: Connection) -> None:
        rows.write(connection, self.operations())

    def operations(self) -> list[rows.Operation]:
        """The writes this plan makes."""
        if self.action is EnqueueAction.UNCHANGED:
            return []
        if self.action is EnqueueAction.DISCARD_PENDING:
            assert self.existing is not None
            return [rows.RequestUpdate(self.existing, {
                "state": SyncRequestState.DISCARDED.value, "updated_at": self.at,
                "note": "the change was undone before it was sent"})]
        version = self.last_version + 1
        # The entity's next snapshot version (the payload was built with it).
        versioning: rows.Operation = (
            rows.VersionUpdate(self.entity_type, self.entity_id, self.last_version)
            if self.entity_known
            else rows.VersionInsert(self.entity_type, self.entity_id, version))
        if self.action in (EnqueueAction.NEW_PENDING, EnqueueAction.NEW_DISCARDED):
            state = (SyncRequestState.PENDING if self.action is EnqueueAction.NEW_PENDING
                     else SyncRequestState.DISCARDED)
            return [versioning, rows.RequestInsert({
                "id": self.request_id, "entity_type": self.entity_type,
                "entity_id": self.entity_id, "state": state.value, "version": version,
                "fingerprint": self.fingerprint, "payload": self.payload,
                "created_at": self.at, "updated_at": self.at,
                "note": None if state is SyncRequestState.PENDING
                else "the snapshot equals the one last sent"})]
        assert self.existing is not None
        values: dict[str, Any] = {
            "state": SyncRequestState.PENDING.value, "version": version,
            "fingerprint": self.fingerprint, "payload": self.payload, "updated_at": self.at,
            "sent_at": None, "partition": None, "offset": None}
        if self.retry:
            values.update(retries=self.existing.retries + 1, errors=self.errors,
                          acknowledged_at=self.at, note=(
                              "re-queued: rejected by a check that compares with other "
                              "entities, which may not have reached MDM yet"))
        elif self.existing.state is not SyncRequestState.PENDING:
            values.update(errors="[]", acknowledged_at=None, note="resent")
        return [versioning, rows.RequestUpdate(self.existing, values)]


# --- rows ------------------------------------------------------------------------------------

_request = rows.request_of
_by_id = rows.by_id
_pending_of = rows.pending_of


def _save(connection: Connection, request: RequestFacts, **values: Any) -> None:
    """Update the request's row if it is still the version read."""
    rows.update_requests(connection, [rows.RequestUpdate(request, values)])


def _published_unrecorded(request: RequestFacts) -> list[rows.SentFingerprint]:
    """MDM answered ``request`` before its publication was recorded (the broker was slow to
    acknowledge the write, or the relay stopped in between): it was published all the same,
    and its snapshot is now the last one sent. Without recording it, a later change back to
    the snapshot sent before it would be discarded as "equal to the one last sent" and MDM
    would keep this one."""
    if request.sent_at is not None:  # mark_sent recorded it
        return []
    return [rows.SentFingerprint(request.entity_type, request.entity_id, request.fingerprint)]


def _answered(ack: Acknowledgement, now: dt.datetime) -> dict[str, Any]:
    """What MDM's answer records on a discarded request it applied: the answer, and that the
    request was published (when CCB learned it), so that the same answer read again, or the
    relay's late record of the publication, finds it taken back already."""
    return {"acknowledged_at": now, "mdm_us_id": ack.mdm_us_id, "sent_at": now}
