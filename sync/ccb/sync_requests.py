"""Sync requests: CCB's record of what it owes MDM, and the rules of their life (SPEC.md §6).

A sync request carries the latest snapshot of one entity (an SA, a person, or an SA's master/sub
relationship) for the relay to publish::

    PENDING --published--> SENT --acknowledged--> SYNCHRONIZED
       |                     \\--rejected / timed out--> ERROR --resend--> PENDING
       \\--snapshot back to what MDM already has--> DISCARDED

A request can be discarded after the relay read it (the change was undone while it was being
published): it reaches MDM all the same, so the broker's acknowledgement of it or MDM's answer
to it queues the entity's current state again (:func:`take_back`).

Accumulative, as in the source system: while an entity's request is still ``PENDING``, a later
change refreshes that request's snapshot instead of queuing another, so MDM hears the latest
state once. A change whose snapshot equals the one last handed to the relay is ``DISCARDED``:
MDM has (or is about to have) exactly that state.

Every snapshot gets the next *version* of its entity, a refresh included: the relay may have
published the old snapshot of a request while a change refreshed it, and the refreshed snapshot
must then reach MDM as a newer version, not be skipped as a duplicate. An acknowledgement counts
only for the request's current version; an older version's answer is stale and ignored.

MDM validates each US on its own, so a message can be rejected only because a related entity's
message (the landlord's canceled start, a new master) has not been applied yet. Rejections by the
checks that look across entities are therefore re-queued a few times (``sync_retry_limit``)
before they become an ``ERROR`` with a To Do.

Pure: the store reads and writes requests; these functions decide.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from sync.ccb.changes import SA, Changes
from sync.ccb.model import DrillKey, ToDoEntry, ToDoLogEntry, ToDoStatus
from sync.ccb.ports import CcbView, IdSource
from sync.ccb.todo import SYSTEM_USER, raise_todo
from sync.config.admin import AdminConfig


class SyncRequestState(StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    SYNCHRONIZED = "SYNCHRONIZED"
    ERROR = "ERROR"
    DISCARDED = "DISCARDED"


# The states a request does not leave (but for the rare take-back of a discarded one MDM
# applied all the same): the history, which SYNC-PURGE removes once it is old enough.
SETTLED_STATES = frozenset({SyncRequestState.SYNCHRONIZED, SyncRequestState.DISCARDED})


# The checks that compare a US with other USs (the SP's other subscriptions, the master): their
# rejection may only mean that the other entity's message is still on its way.
ORDER_SENSITIVE_CHECKS = frozenset({"D2-USSPDTVAL", "D2-VAL-SUBUS"})

TIMEOUT_CODE = "SYNC-TIMEOUT"
# A request the broker refused as larger than the sync topic takes: it never reached the topic.
TOO_LARGE_CODE = "SYNC-TOO-LARGE"


class SyncError(BaseModel):
    """One reason a request failed: an MDM validation (code, wire path, message) or a timeout."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    path: str = ""
    message: str

    def __str__(self) -> str:
        return f"{self.code} {self.path}: {self.message}" if self.path \
            else f"{self.code}: {self.message}"


class SyncRequest(BaseModel):
    """One sync request. ``payload`` is the encoded wire message (opaque here)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    seq: int = 0  # queue position, given by the store
    entity_type: str
    entity_id: str
    state: SyncRequestState
    version: int
    fingerprint: str
    payload: bytes
    created_at: dt.datetime
    updated_at: dt.datetime
    sent_at: dt.datetime | None = None
    acknowledged_at: dt.datetime | None = None
    partition: int | None = None
    offset: int | None = None
    errors: tuple[SyncError, ...] = ()
    mdm_us_id: str | None = None
    sends: int = 0  # times handed to the broker
    retries: int = 0  # automatic re-queues after an order-sensitive rejection
    note: str | None = None

    @property
    def key(self) -> str:
        return f"{self.entity_type}:{self.entity_id}"


@dataclass(frozen=True, slots=True)
class QueuedRequest:
    """A pending request as the relay publishes it: what goes on the topic (key, payload, id)
    and what recording its publication checks and writes (version, fingerprint)."""

    id: str
    entity_type: str
    entity_id: str
    version: int
    fingerprint: str
    payload: bytes

    @property
    def key(self) -> str:
        return f"{self.entity_type}:{self.entity_id}"


class RequestFacts(Protocol):
    """What the acknowledgement and To Do rules read of a request: a whole
    :class:`SyncRequest`, or a :class:`RequestStatus` read without its payload."""

    @property
    def id(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def entity_type(self) -> str: ...
    @property
    def entity_id(self) -> str: ...
    @property
    def state(self) -> SyncRequestState: ...
    @property
    def version(self) -> int: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def sent_at(self) -> dt.datetime | None: ...
    @property
    def errors(self) -> tuple[SyncError, ...]: ...
    @property
    def retries(self) -> int: ...
    @property
    def key(self) -> str: ...


@dataclass(frozen=True, slots=True)
class RequestStatus:
    """A request without its payload and bookkeeping: enough to judge an answer about it
    (answers come by the thousand, and the payload is the bulk of a request's row)."""

    id: str
    seq: int
    entity_type: str
    entity_id: str
    state: SyncRequestState
    version: int
    fingerprint: str
    sent_at: dt.datetime | None
    errors: tuple[SyncError, ...]
    retries: int

    @property
    def key(self) -> str:
        return f"{self.entity_type}:{self.entity_id}"

    def answered(self, state: SyncRequestState,
                 errors: tuple[SyncError, ...]) -> RequestStatus:
        """The request in the state an answer gives it, with the answer's errors."""
        return RequestStatus(self.id, self.seq, self.entity_type, self.entity_id, state,
                             self.version, self.fingerprint, self.sent_at, errors, self.retries)


# --- enqueueing --------------------------------------------------------------------------------


class EnqueueAction(StrEnum):
    UNCHANGED = "unchanged"  # the pending request already carries this snapshot
    REFRESH_PENDING = "refresh_pending"  # accumulate into the pending request
    DISCARD_PENDING = "discard_pending"  # the pending change was undone
    NEW_PENDING = "new_pending"
    NEW_DISCARDED = "new_discarded"  # recorded for the audit trail, never sent


def enqueue_action(pending_fingerprint: str | None, last_sent_fingerprint: str | None,
                   fingerprint: str) -> EnqueueAction:
    """What a change whose snapshot has ``fingerprint`` does to the entity's requests."""
    if pending_fingerprint is not None:
        if fingerprint == pending_fingerprint:
            return EnqueueAction.UNCHANGED
        if fingerprint == last_sent_fingerprint:
            return EnqueueAction.DISCARD_PENDING
        return EnqueueAction.REFRESH_PENDING
    if fingerprint == last_sent_fingerprint:
        return EnqueueAction.NEW_DISCARDED
    return EnqueueAction.NEW_PENDING


# --- acknowledgements ------------------------------------------------------------------------


class AckVerdict(StrEnum):
    SYNCHRONIZED = "SYNCHRONIZED"
    ERROR = "ERROR"
    RETRY = "RETRY"  # re-queue with a fresh snapshot (order-sensitive rejection)
    STALE = "STALE"  # not about the request's current version: ignored
    # MDM applied a request that was discarded after the relay had published it: MDM holds a
    # snapshot CCB no longer stands by (see :func:`take_back`).
    APPLIED_DISCARDED = "APPLIED_DISCARDED"
    # MDM applied an earlier version of a request whose publication was never recorded, and
    # the request has been refreshed since (and perhaps discarded): MDM holds a snapshot CCB
    # no longer has, not even its fingerprint (see :data:`UNKNOWN_SENT_FINGERPRINT`).
    APPLIED_EARLIER_VERSION = "APPLIED_EARLIER_VERSION"


# The outcomes that mean MDM holds the version answered.
_APPLIED = ("SYNCHRONIZED", "DUPLICATE")

# Recorded as the snapshot last sent when MDM holds one CCB cannot name (an earlier version of
# a refreshed request): no snapshot's fingerprint equals it, so no change of the entity is
# ever discarded as "equal to the one last sent" until a snapshot CCB knows is sent.
UNKNOWN_SENT_FINGERPRINT = "unknown: MDM applied an earlier, unrecorded version"


def ack_verdict(request: RequestFacts, version: int, outcome: str,
                errors: Sequence[SyncError], retry_limit: int) -> AckVerdict:
    """How MDM's answer ``outcome`` (``SYNCHRONIZED``/``DUPLICATE``/``ERROR``) for ``version``
    moves ``request``. A ``DUPLICATE`` means MDM already holds that version (an earlier delivery
    of the same message was applied): synchronized.

    A request discarded while the relay was publishing it (the change was undone, and the relay
    stopped before recording the publication) is on the topic all the same: MDM applying it is
    ``APPLIED_DISCARDED``, not stale, because nothing else would take it back. The same holds
    for an earlier version of a request still pending or discarded whose publication was never
    recorded (it was published, then refreshed by a newer change before the relay recorded
    it): ``APPLIED_EARLIER_VERSION``. Any other answer about an earlier version is stale: the
    version after it was recorded published, and MDM ends on that one."""
    if version != request.version:
        if (version < request.version and request.sent_at is None and outcome in _APPLIED
                and request.state in (SyncRequestState.PENDING, SyncRequestState.DISCARDED)):
            return AckVerdict.APPLIED_EARLIER_VERSION
        return AckVerdict.STALE
    if request.state is SyncRequestState.DISCARDED:
        if request.sent_at is None and outcome in _APPLIED:
            return AckVerdict.APPLIED_DISCARDED
        return AckVerdict.STALE  # MDM did not apply it, or its publication was dealt with
    if request.state is SyncRequestState.SYNCHRONIZED:
        return AckVerdict.STALE
    if request.state is SyncRequestState.ERROR and not _timed_out(request):
        return AckVerdict.STALE  # already answered; a repeated delivery of the same answer
    if outcome in _APPLIED:
        return AckVerdict.SYNCHRONIZED
    if (errors and all(error.code in ORDER_SENSITIVE_CHECKS for error in errors)
            and request.retries < retry_limit):
        return AckVerdict.RETRY
    return AckVerdict.ERROR


class TakeBack(StrEnum):
    """What a discarded request that was published all the same leaves to do."""

    NOTHING = "nothing"  # a later snapshot of the entity was published after it
    RECORD_SENT = "record_sent"  # a pending request carries the entity's current state
    RECORD_SENT_AND_QUEUE = "record_sent_and_queue"


def take_back(later: Sequence[RequestFacts]) -> TakeBack:
    """A request discarded after the relay had read it was published all the same (the broker
    acknowledged it, or MDM answered that it applied it): MDM holds, or will hold, its snapshot,
    which CCB no longer stands by. ``later`` are the entity's requests with a higher version.

    When one of them was published already, MDM ends on it and its own publication was
    recorded: nothing to do. Otherwise the discarded snapshot is now the last one sent (a
    later change back to the snapshot sent before it must not be discarded as unchanged), and
    the entity's current state must be queued with a new version even though it equals the
    snapshot sent before, unless a pending request already carries it."""
    if any(_published(request) for request in later):
        return TakeBack.NOTHING
    if any(request.state is SyncRequestState.PENDING for request in later):
        return TakeBack.RECORD_SENT
    return TakeBack.RECORD_SENT_AND_QUEUE


def _published(request: RequestFacts) -> bool:
    """Whether the request's current version is known to have reached the topic (an error
    MDM answered did, without its publication recorded when the answer came first; one the
    broker refused as too large did not)."""
    return request.sent_at is not None or request.state in (
        SyncRequestState.SENT, SyncRequestState.SYNCHRONIZED) or (
        request.state is SyncRequestState.ERROR and not refused_as_too_large(request))


def refused_as_too_large(request: RequestFacts) -> bool:
    return any(error.code == TOO_LARGE_CODE for error in request.errors)


def too_large_error(reason: str) -> SyncError:
    return SyncError(code=TOO_LARGE_CODE, message=f"not published: {reason}")


def _timed_out(request: RequestFacts) -> bool:
    return any(error.code == TIMEOUT_CODE for error in request.errors)


def timeout_error(timeout: dt.timedelta) -> SyncError:
    minutes = int(timeout.total_seconds() // 60)
    return SyncError(code=TIMEOUT_CODE, message=(
        f"no acknowledgement from MDM within {minutes} minutes of publishing"))


# --- To Do entries and alerts ------------------------------------------------------------------


def sync_todo_types(admin: AdminConfig) -> tuple[str, ...]:
    """The To Do types that report sync problems (what the account's sync alert looks for)."""
    return (admin.todo_type_for("sync_error"), admin.todo_type_for("sync_timeout"))


def drill_key_for(request: RequestFacts) -> DrillKey:
    """An SA's sync problems point at the SA (so its account shows an alert); other entities'
    at the request."""
    kind, key = drill_target(request)
    return DrillKey(kind=kind, id=key)


def drill_target(request: RequestFacts) -> tuple[str, str]:
    """The kind and id of :func:`drill_key_for`'s key (for looking many up at once)."""
    if request.entity_type == SA:
        return "sa", request.entity_id
    return "sync_request", request.id


def raise_sync_todo(view: CcbView, ids: IdSource, admin: AdminConfig,
                    request: RequestFacts, now: dt.datetime, changes: Changes) -> ToDoEntry:
    """The To Do for an ``ERROR`` request: every validation message (or the timeout) in it."""
    timeout = _timed_out(request)
    what = (f"sync request {request.id} for {request.entity_type} {request.entity_id} "
            f"(version {request.version})")
    reasons = "; ".join(str(error) for error in request.errors) or "no reason given"
    resend = f"then resend (c2m-sync ccb sync resend {request.id})"
    if timeout:
        message = f"MDM did not acknowledge {what}: {reasons}"
    elif refused_as_too_large(request):
        message = (f"the broker refused {what} as too large: {reasons}. Raise the sync "
                   f"topic's max.message.bytes, {resend}")
    else:
        message = f"MDM rejected {what}: {reasons}. Fix the data, {resend}"
    raised = raise_todo(view, ids, admin, "sync_timeout" if timeout else "sync_error",
                        drill_key_for(request), message, now, changes=changes)
    return raised.entry


def resolve_sync_todos(view: CcbView, admin: AdminConfig, request: RequestFacts,
                       now: dt.datetime, changes: Changes) -> list[ToDoEntry]:
    """Complete the open sync error/timeout To Dos of the request's drill key: the entity is
    synchronized now, so the issue they report is resolved."""
    resolved = []
    drill_key = drill_key_for(request)
    for purpose in ("sync_error", "sync_timeout"):
        todo_type = admin.todo_type_for(purpose)
        entry = view.open_todo(todo_type, drill_key)
        if entry is None or entry.status is ToDoStatus.COMPLETE:
            continue
        log = (*entry.log, ToDoLogEntry(
            at=now, user=SYSTEM_USER,
            comment=f"resolved: sync request {request.id} version {request.version} "
                    "synchronized"))
        done = entry.model_copy(update={"status": ToDoStatus.COMPLETE, "log": log,
                                        "version": entry.version + 1})
        changes.put_todo(done)
        changes.note(f"To Do {entry.id} completed: {request.key} is synchronized")
        resolved.append(done)
    return resolved

